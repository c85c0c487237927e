/* probe.c - a small static program the escape tests run inside containers.
 *
 * One verb per confinement question, each printing one short, parseable
 * answer: "ok" or the errno's name (EROFS, EACCES, ENOENT, ...), so a test
 * can assert the exact reason something was refused.  Modelled on crun's
 * tests/init.c.  Nothing here harms the host: writes to kernel settings
 * only ever put back the value just read, and sysrq-trigger is opened,
 * never written.
 *
 *   probe open PATH r|w|rw|dir     open without writing
 *   probe write PATH DATA          create/truncate PATH and write DATA
 *   probe rewrite PATH             read PATH, write the same bytes back
 *   probe read PATH MAXBYTES       "ok N" then the bytes read
 *   probe stat PATH                "TYPE [MAJ:MIN] FS ro|rw"
 *   probe ls PATH                  the entries of a directory, one a line
 *   probe fds                      open fds > 2: "N -> TARGET"
 *   probe sid                      session, process group, pid, /dev/tty
 *   probe kill-pgrp SIG            kill(0, SIG), with SIG ignored here
 *   probe ioctl-tiocsti            TIOCSTI on stdin and on /dev/tty
 *   probe forkbomb N               fork until failure or N; count; reap
 *   probe caps                     the Cap* lines of /proc/self/status
 *   probe rlimit RESOURCE          "SOFT HARD" (NOFILE, NPROC, CORE, ...)
 *   probe proc-peek PID            exe, environ and fd/ of another pid
 *   probe proc-scan                watch every new pid's /proc/PID/exe
 *                                  until SIGTERM (see below)
 *   probe sleep [SECONDS]          sleep (forever); SIGTERM ends it
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* The errno's symbolic name, which is what the tests compare. */
static const char *err_name(int err)
{
    const char *name = strerrorname_np(err);
    return name ? name : "E?";
}

static int usage(void)
{
    fprintf(stderr, "usage: probe VERB [ARGS] (see probe.c)\n");
    return 2;
}

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
}

/* PID 1 of a PID namespace gets no signal it has no handler for, so
 * install one for SIGTERM: `bocker stop` then ends the probe at once. */
static void catch_term(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term; /* no SA_RESTART: a blocking call returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
}

static int verb_open(const char *path, const char *mode)
{
    int flags = O_RDONLY;
    if (!strcmp(mode, "w"))
        flags = O_WRONLY;
    else if (!strcmp(mode, "rw"))
        flags = O_RDWR;
    else if (!strcmp(mode, "dir"))
        flags = O_RDONLY | O_DIRECTORY;
    else if (strcmp(mode, "r"))
        return usage();
    int fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        printf("%s\n", err_name(errno));
        return 1;
    }
    close(fd);
    printf("ok\n");
    return 0;
}

static int verb_write(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, data, strlen(data)) < 0) {
        printf("%s\n", err_name(errno));
        return 1;
    }
    close(fd);
    printf("ok\n");
    return 0;
}

/* Write back exactly what PATH holds now: a sysctl probe that, when it
 * succeeds, changes nothing. */
static int verb_rewrite(const char *path)
{
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        printf("read %s\n", err_name(errno));
        return 1;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n <= 0 || n == (ssize_t)sizeof buf) { /* empty, failed, or too long to be sure */
        printf("read %s\n", n < 0 ? err_name(errno) : "short");
        return 1;
    }
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        printf("%s\n", err_name(errno));
        return 1;
    }
    if (write(fd, buf, (size_t)n) != n) {
        printf("write %s\n", err_name(errno));
        close(fd);
        return 1;
    }
    close(fd);
    printf("ok\n");
    return 0;
}

static int verb_read(const char *path, const char *max)
{
    size_t limit = strtoul(max, NULL, 10);
    char *buf = malloc(limit + 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (!buf || fd < 0) {
        printf("%s\n", err_name(errno));
        return 1;
    }
    size_t got = 0;
    while (got < limit) {
        ssize_t n = read(fd, buf + got, limit - got);
        if (n < 0) {
            printf("%s\n", err_name(errno));
            return 1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    printf("ok %zu\n", got);
    fwrite(buf, 1, got, stdout);
    return 0;
}

static const char *fs_name(long type)
{
    switch (type) {
    case 0x9fa0: return "proc";
    case 0x01021994: return "tmpfs";
    case 0x62656572: return "sysfs";
    case 0x9123683e: return "btrfs";
    case 0x1cd1: return "devpts";
    default: return "other";
    }
}

/* What is mounted at PATH: file type (and device numbers of a character
 * device: a masked file is /dev/null, 1:3), filesystem, ro or rw. */
static int verb_stat(const char *path)
{
    struct stat st;
    struct statfs fs;
    struct statvfs vfs;
    if (lstat(path, &st) < 0 || statfs(path, &fs) < 0 || statvfs(path, &vfs) < 0) {
        printf("%s\n", err_name(errno));
        return 1;
    }
    const char *type = S_ISDIR(st.st_mode) ? "dir" : S_ISREG(st.st_mode) ? "reg"
                     : S_ISCHR(st.st_mode) ? "chr" : S_ISLNK(st.st_mode) ? "lnk" : "other";
    if (S_ISCHR(st.st_mode))
        printf("%s %u:%u", type, major(st.st_rdev), minor(st.st_rdev));
    else
        printf("%s", type);
    printf(" %s %s\n", fs_name((long)fs.f_type), vfs.f_flag & ST_RDONLY ? "ro" : "rw");
    return 0;
}

static int verb_ls(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        printf("%s\n", err_name(errno));
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            printf("%s\n", e->d_name);
    closedir(d);
    return 0;
}

/* Every fd above stderr that this process was given (its own listing fd
 * left out), with what it points at. */
static int verb_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        printf("%s\n", err_name(errno));
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(d))
            continue;
        char link[64], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = '\0';
        printf("%d -> %s\n", fd, target);
    }
    closedir(d);
    return 0;
}

/* getsid/getpgrp are 0 when the session or group leader lives outside our
 * PID namespace: the caller's. */
static int verb_sid(void)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    printf("sid=%d pgrp=%d pid=%d tty=%s\n", (int)getsid(0), (int)getpgrp(), (int)getpid(),
           fd < 0 ? err_name(errno) : "ok");
    if (fd >= 0)
        close(fd);
    return 0;
}

static int verb_kill_pgrp(const char *name)
{
    int sig = !strcmp(name, "USR1") ? SIGUSR1 : !strcmp(name, "USR2") ? SIGUSR2
            : !strcmp(name, "HUP") ? SIGHUP : !strcmp(name, "INT") ? SIGINT : atoi(name);
    if (sig <= 0)
        return usage();
    signal(sig, SIG_IGN); /* our own copy is harmless */
    if (kill(0, sig) < 0) {
        printf("%s\n", err_name(errno));
        return 1;
    }
    printf("sent\n");
    return 0;
}

/* Push a byte into a terminal's input queue, on stdin and on the
 * controlling terminal: the way out through a caller's shell. */
static int verb_tiocsti(void)
{
    char c = '#';
    int rc0 = ioctl(0, TIOCSTI, &c);
    printf("stdin=%s ", rc0 < 0 ? err_name(errno) : "injected");
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        printf("tty=%s\n", err_name(errno));
        return 0;
    }
    int rc1 = ioctl(fd, TIOCSTI, &c);
    printf("tty=%s\n", rc1 < 0 ? err_name(errno) : "injected");
    close(fd);
    return 0;
}

/* Fork children that only wait, until fork fails or N exist; print how
 * many, then kill and reap them all. */
static int verb_forkbomb(const char *count)
{
    long n = strtol(count, NULL, 10), made = 0;
    pid_t *kids = calloc((size_t)n, sizeof *kids);
    int err = 0;
    if (!kids)
        return 1;
    fflush(stdout);
    while (made < n) {
        pid_t pid = fork();
        if (pid == 0) {
            pause();
            _exit(0);
        }
        if (pid < 0) {
            err = errno;
            break;
        }
        kids[made++] = pid;
    }
    for (long i = 0; i < made; i++)
        kill(kids[i], SIGKILL);
    for (long i = 0; i < made; i++)
        waitpid(kids[i], NULL, 0);
    printf("forked=%ld err=%s\n", made, err ? err_name(err) : "none");
    return 0;
}

static int verb_caps(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) {
        printf("%s\n", err_name(errno));
        return 1;
    }
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Cap", 3))
            fputs(line, stdout);
    fclose(f);
    return 0;
}

static int verb_rlimit(const char *name)
{
    static const struct { const char *name; int res; } table[] = {
        { "NOFILE", RLIMIT_NOFILE }, { "NPROC", RLIMIT_NPROC }, { "CORE", RLIMIT_CORE },
        { "STACK", RLIMIT_STACK },   { "MEMLOCK", RLIMIT_MEMLOCK },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(name, table[i].name))
            continue;
        struct rlimit rl;
        getrlimit(table[i].res, &rl);
        char soft[32], hard[32];
        snprintf(soft, sizeof soft, "%llu", (unsigned long long)rl.rlim_cur);
        snprintf(hard, sizeof hard, "%llu", (unsigned long long)rl.rlim_max);
        printf("%s %s\n", rl.rlim_cur == RLIM_INFINITY ? "unlimited" : soft,
               rl.rlim_max == RLIM_INFINITY ? "unlimited" : hard);
        return 0;
    }
    return usage();
}

/* errno name of opening /proc/PID/WHAT ("ok" when it opens). */
static const char *peek(int pid, const char *what, int flags)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, what);
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return err_name(errno);
    close(fd);
    return "ok";
}

static int verb_proc_peek(const char *pid_text)
{
    int pid = atoi(pid_text);
    printf("exe=%s ", peek(pid, "exe", O_RDONLY));
    printf("environ=%s ", peek(pid, "environ", O_RDONLY));
    printf("fd=%s\n", peek(pid, "fd", O_RDONLY | O_DIRECTORY));
    return 0;
}

/* The exec window.  `bocker exec` forks its own (host) process into the
 * container's PID namespace and only then execs the container's program;
 * until then /proc/PID/exe is the host's interpreter.  Watch each new pid
 * (a PID namespace hands them out in order, and this loop forks nothing)
 * as fast as possible from the moment it appears: each open of its exe
 * must be refused (EACCES/EPERM), find it gone (ENOENT), or give a file
 * of the container's own filesystem.  A file of another filesystem is an
 * escape: print it at once.  On SIGTERM print the totals. */
#define AHEAD 8

static int verb_proc_scan(void)
{
    static unsigned char seen[1 << 22], done[1 << 22];
    struct stat root;
    long denied = 0, contained = 0, escapes = 0, pids = 0;
    int self = getpid(), next = 2, highest = 0;

    catch_term();
    if (stat("/", &root) < 0)
        return 1;
    printf("scanning\n");
    fflush(stdout);
    while (!stopping) {
        for (int p = next; p < next + AHEAD && p < (1 << 22); p++) {
            if (p == self || done[p])
                continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/exe", p);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 && errno == ENOENT) {
                if (seen[p] || p < highest) /* gone, or came and went unseen */
                    done[p] = 1;
                continue;
            }
            if (!seen[p]) {
                seen[p] = 1;
                pids++;
                if (p > highest)
                    highest = p;
            }
            if (fd < 0) {
                denied++;
                continue;
            }
            struct stat st;
            fstat(fd, &st);
            if (st.st_dev == root.st_dev) {
                contained++;
                done[p] = 1; /* running the container's own program now */
            } else {
                char target[4096];
                ssize_t n = readlink(path, target, sizeof target - 1);
                target[n < 0 ? 0 : n] = '\0';
                printf("escape pid=%d exe=%s environ=%s fd=%s\n", p, target,
                       peek(p, "environ", O_RDONLY), peek(p, "fd", O_RDONLY | O_DIRECTORY));
                fflush(stdout);
                escapes++;
                done[p] = 1;
            }
            close(fd);
        }
        while (next < (1 << 22) - 1 && (done[next] || next == self))
            next++;
    }
    printf("pids=%ld denied=%ld contained=%ld escapes=%ld\n", pids, denied, contained,
           escapes);
    return 0;
}

static int verb_sleep(const char *seconds)
{
    catch_term();
    unsigned left = seconds ? (unsigned)atoi(seconds) : 0;
    while (!stopping && (!seconds || left))
        left = seconds ? sleep(left) : (pause(), 0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *verb = argv[1];
    if (!strcmp(verb, "open") && argc == 4)
        return verb_open(argv[2], argv[3]);
    if (!strcmp(verb, "write") && argc == 4)
        return verb_write(argv[2], argv[3]);
    if (!strcmp(verb, "rewrite") && argc == 3)
        return verb_rewrite(argv[2]);
    if (!strcmp(verb, "read") && argc == 4)
        return verb_read(argv[2], argv[3]);
    if (!strcmp(verb, "stat") && argc == 3)
        return verb_stat(argv[2]);
    if (!strcmp(verb, "ls") && argc == 3)
        return verb_ls(argv[2]);
    if (!strcmp(verb, "fds") && argc == 2)
        return verb_fds();
    if (!strcmp(verb, "sid") && argc == 2)
        return verb_sid();
    if (!strcmp(verb, "kill-pgrp") && argc == 3)
        return verb_kill_pgrp(argv[2]);
    if (!strcmp(verb, "ioctl-tiocsti") && argc == 2)
        return verb_tiocsti();
    if (!strcmp(verb, "forkbomb") && argc == 3)
        return verb_forkbomb(argv[2]);
    if (!strcmp(verb, "caps") && argc == 2)
        return verb_caps();
    if (!strcmp(verb, "rlimit") && argc == 3)
        return verb_rlimit(argv[2]);
    if (!strcmp(verb, "proc-peek") && argc == 3)
        return verb_proc_peek(argv[2]);
    if (!strcmp(verb, "proc-scan") && argc == 2)
        return verb_proc_scan();
    if (!strcmp(verb, "sleep") && argc <= 3)
        return verb_sleep(argc == 3 ? argv[2] : NULL);
    return usage();
}
