/* exec.c - the child's last two steps: wait for the parent's go, then
 * execve the command along the container's own PATH.  Child only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Block until the parent says go with one byte on fd: once it has
 * finished the container's network (the go pipe, or bocker-oci's
 * exec.fifo), or written an OCI user namespace's id maps.  EOF means the
 * parent gave up: go no further then. */
int wait_go(int fd)
{
    char b;
    ssize_t n;
    do
        n = read(fd, &b, 1);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno;
    close(fd);
    return n == 1 ? 0 : ECANCELED;
}

/* Find envp's PATH value, or the Docker default. */
static const char *env_path(const char *const *envp)
{
    for (; envp && *envp; envp++)
        if (strncmp(*envp, "PATH=", 5) == 0)
            return *envp + 5;
    return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

/* Try argv[0] as execve would find it: as given if it holds a '/', else
 * in each directory of the container's own PATH (execvpe() would search
 * the *caller's*).  try() returns 0 to stop there, or the errno of that
 * candidate.  Returns 0 once a try succeeded, else the errno that best
 * explains the failure: one of a candidate that existed but could not
 * run (EACCES), else ENOENT. */
static int along_path(const struct shim_spawn *req, int (*try)(const char *path,
                                                                 const struct shim_spawn *req))
{
    const char *cmd = req->argv[0];
    if (!cmd || !*cmd)
        return ENOENT;
    if (strchr(cmd, '/'))
        return try(cmd, req);
    int best = ENOENT;
    char buf[4096];
    const char *p = env_path(req->envp);
    size_t clen = strlen(cmd);
    while (*p) {
        const char *end = strchrnul(p, ':');
        size_t dlen = (size_t)(end - p);
        if (dlen + 1 + clen + 1 <= sizeof buf) {
            memcpy(buf, p, dlen);
            buf[dlen] = '/';
            memcpy(buf + dlen + 1, cmd, clen + 1);
            int err = try(dlen ? buf : cmd, req);
            if (!err)
                return 0;
            if (err != ENOENT && err != ENOTDIR)
                best = err;
        }
        p = *end ? end + 1 : end;
    }
    return best;
}

/* One candidate of exec_command: only returns if execve failed. */
static int try_execve(const char *path, const struct shim_spawn *req)
{
    execve(path, (char *const *)req->argv, (char *const *)req->envp);
    return errno;
}

/* Run the command along the container's PATH; returns only on failure,
 * with the errno that best explains it. */
int exec_command(const struct shim_spawn *req)
{
    return along_path(req, try_execve);
}

/* Could execve run path: a regular file we may execute (0), else its
 * errno (EACCES for a directory or a file without x). */
static int runnable(const char *path, const struct shim_spawn *req)
{
    (void)req;
    struct stat st;
    if (stat(path, &st) < 0)
        return errno;
    if (!S_ISREG(st.st_mode))
        return EACCES;
    return access(path, X_OK) < 0 ? errno : 0;
}

/* OCI create: would exec_command find argv[0]?  The same search along
 * the container's PATH, without running anything, so that `create`
 * fails (as runc's does) rather than the later `start`.  0, or ENOENT
 * when nothing is found, or the errno of a candidate that exists but
 * could not run. */
int check_command(const struct shim_spawn *req)
{
    return along_path(req, runnable);
}
