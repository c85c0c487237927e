/* child.c - the container child, between clone and execve.
 *
 * Read child_main() top to bottom: that is a container start from the
 * inside.  This file holds its process steps (signals, session, stdio,
 * inherited fds, cgroups, namespaces, console, hostname) and, in OCI mode
 * (req->oci), the namespaces joined by fd, the preserved fds, the order of
 * the credential steps and the create-time "ready" report; the filesystem
 * steps are in mounts.c and kernfs.c (ocimounts.c in OCI mode),
 * credentials in creds.c (and ocicreds.c), the exec in exec.c.
 * Everything here runs in the child only: C, no malloc, no stdio, each
 * step returns 0 or an errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Step names, for messages and traces (Python reads them through
 * shim_step_name: it keeps no list of its own). */
static const char *const step_names[STEP_LAST] = {
    [STEP_CLONE] = "clone",
    [STEP_SIGNALS] = "reset signals",
    [STEP_SESSION] = "setsid",
    [STEP_CLOSE_FDS] = "close inherited fds",
    [STEP_CGROUP_JOIN] = "join cgroup",
    [STEP_CGROUP_NS] = "unshare cgroup namespace",
    [STEP_JOIN_CONTAINER] = "setns container",
    [STEP_LO_UP] = "loopback up",
    [STEP_MOUNT_PRIVATE] = "make mounts private",
    [STEP_BIND_ROOTFS] = "bind rootfs",
    [STEP_OPEN_BINDS] = "open_tree volumes",
    [STEP_PIVOT_ROOT] = "pivot_root",
    [STEP_UMOUNT_OLDROOT] = "umount old root",
    [STEP_MOUNT_PROC] = "mount /proc",
    [STEP_MOUNT_DEV] = "mount /dev",
    [STEP_MOUNT_DEVPTS] = "mount /dev/pts",
    [STEP_MOUNT_SHM] = "mount /dev/shm",
    [STEP_MOUNT_SYS] = "mount /sys",
    [STEP_SYSCTL] = "write sysctls",
    [STEP_MASK_PATHS] = "mask /proc and /sys paths",
    [STEP_READONLY_PATHS] = "read-only /proc paths",
    [STEP_READONLY_ROOT] = "read-only rootfs",
    [STEP_RLIMITS] = "setrlimit",
    [STEP_MOVE_BINDS] = "move_mount volumes",
    [STEP_MOUNT_TMPFS] = "mount tmpfs",
    [STEP_HOSTNAME] = "sethostname",
    [STEP_CONSOLE] = "console pty",
    [STEP_STDIO] = "dup2 stdio",
    [STEP_CHDIR] = "chdir",
    [STEP_SET_IDS] = "setuid/setgid",
    [STEP_CAPS] = "drop capabilities",
    [STEP_SET_CAPS] = "set capabilities",
    [STEP_NO_NEW_PRIVS] = "no_new_privs",
    [STEP_SECCOMP] = "seccomp filter",
    [STEP_WAIT_GO] = "wait for parent",
    [STEP_EXECVE] = "execve",
    [STEP_USERNS] = "wait for id maps",
    [STEP_OPEN_KERNFS] = "fsmount /proc and /sys",
    [STEP_OPEN_DEVICES] = "open_tree devices",
    [STEP_USERNS_ROOT] = "setresuid to user namespace root",
    [STEP_JOIN_NS] = "setns namespaces",
    [STEP_UNSHARE_NS] = "unshare namespaces",
    [STEP_OCI_OPEN_BINDS] = "open_tree bind mounts",
    [STEP_OCI_OPEN_FS] = "fsmount",
    [STEP_OCI_OPEN_DEVICES] = "open_tree device nodes",
    [STEP_NO_PIVOT] = "move rootfs onto / and chroot",
    [STEP_OCI_MOUNTS] = "mount",
    [STEP_OCI_DEVICES] = "mknod",
    [STEP_DEV_LINKS] = "/dev symlinks",
    [STEP_ROOTFS_PROPAGATION] = "rootfs propagation",
    [STEP_DOMAINNAME] = "setdomainname",
    [STEP_UMASK] = "umask",
    [STEP_AMBIENT_CAPS] = "raise ambient capabilities",
    [STEP_MAKE_CWD] = "mkdir cwd",
    [STEP_JOIN_NETNS] = "setns network",
};

const char *shim_step_name(int step)
{
    if (step <= 0 || step >= STEP_LAST || !step_names[step])
        return "unknown step";
    return step_names[step];
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Tell the parent how a step went.  Failures are always sent; successes
 * only when tracing, so an untraced start writes nothing. */
void child_report(struct child_ctx *c, int step, int err)
{
    int index = c->index;
    c->index = -1; /* the next step names its own object, if any */
    if (!err && !c->req->trace)
        return;
    struct shim_report r = { .step = step, .err = err, .index = err ? index : -1,
                             .ns = now_ns() };
    ssize_t n = write(c->status_fd, &r, sizeof r);
    (void)n;
}

/* Python ignores SIGPIPE and installs handlers; SIG_IGN survives execve,
 * so put every signal back to default and unblock them all. */
static int reset_signals(void)
{
    sigset_t all;
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL); /* EINVAL for SIGKILL/SIGSTOP/RT: harmless */
    sigemptyset(&all);
    return sigprocmask(SIG_SETMASK, &all, NULL) < 0 ? errno : 0;
}

/* Write "0" (meaning: this thread) to each cgroup file the parent opened
 * (v1 `tasks`: see cgroups.py for why not cgroup.procs), so the container
 * is limited before any of its code runs. */
static int join_cgroups(const struct shim_spawn *req)
{
    for (int i = 0; i < req->n_cgroup_fds; i++) {
        if (write(req->cgroup_fds[i], "0", 1) < 0)
            return errno;
        close(req->cgroup_fds[i]);
    }
    return 0;
}

/* A new network namespace starts with lo down; one ioctl brings it up
 * (the parent configures eth0, if any, over netlink). */
static int loopback_up(void)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int err = rc < 0 ? errno : 0;
    close(fd);
    return err;
}

/* clone() without clone3 cannot be born in a v2 cgroup: join it instead. */
static int join_cgroup_dir(int dir_fd)
{
    int fd = openat(dir_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int err = write(fd, "0", 1) < 0 ? errno : 0;
    close(fd);
    close(dir_fd); /* a host directory: never let it reach the container */
    return err;
}

/* A user namespace's first step after clone: wait for the parent to write
 * our uid_map and gid_map (EOF instead means it gave up) and take the
 * idmapped rootfs it sends. */
static int enter_userns(struct child_ctx *c, int sock)
{
    char byte;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    ssize_t n;
    do
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (n == 0 || !cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)))
        return ECANCELED;
    memcpy(&c->root_fd, CMSG_DATA(cm), sizeof(int));
    close(sock);
    return 0;
}

/* Enter every namespace of a running container (for exec).  The PID
 * namespace was entered by the parent before clone: setns(CLONE_NEWPID)
 * only applies to children. */
static int join_container(int pidfd, int userns)
{
    int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                CLONE_NEWCGROUP | (userns ? CLONE_NEWUSER : 0);
    if (setns(pidfd, flags) < 0)
        return errno;
    /* the host's root is unmapped in there: become the namespace's root */
    return userns ? become_userns_root() : 0;
}

/* --network container:NAME: enter that container's network namespace
 * (the parent opened it; we were cloned without CLONE_NEWNET).  Before
 * the filesystem, so /sys shows that namespace's devices; its lo is up
 * already. */
static int join_netns(int fd)
{
    if (setns(fd, CLONE_NEWNET) < 0)
        return errno;
    close(fd);
    return 0;
}

/* OCI create: the pty's slave is the container's /dev/console too (the
 * runtime spec's default devices), bound over a file made for it. */
static int bind_console(int master)
{
    unsigned int n;
    char digits[12], path[32] = "/dev/pts/";
    if (ioctl(master, TIOCGPTN, &n) < 0)
        return errno;
    int len = 0; /* no stdio between clone and execve: by hand */
    do
        digits[len++] = (char)('0' + n % 10);
    while ((n /= 10) && len < 11);
    for (int i = 0; i < len; i++)
        path[9 + i] = digits[len - 1 - i];
    path[9 + len] = '\0';
    int dev = oci_open(AT_FDCWD, "/dev", O_PATH | O_DIRECTORY, 0); /* no magic link */
    if (dev < 0)
        return -dev;
    int fd = oci_open(dev, "console", O_PATH | O_NOFOLLOW, 0);
    if (fd == -ENOENT)
        fd = oci_open(dev, "console", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    close(dev);
    if (fd < 0)
        return -fd;
    close(fd);
    return mount(path, "/dev/console", NULL, MS_BIND, NULL) < 0 ? errno : 0;
}

/* A pty from the container's own devpts: open its ptmx, get the slave
 * with TIOCGPTPEER (no path lookup), give it the caller's window size,
 * hand the master to the monitor, and make the slave our controlling
 * terminal and stdio. */
static int setup_console(const struct shim_spawn *req)
{
    int sock = req->console_sock;
    int unlock = 0;
    int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        return errno;
    int slave = -1, err = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0 ||
        (slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY)) < 0) {
        err = errno;
        close(master);
        return err;
    }
    struct winsize ws = { .ws_row = req->console_rows, .ws_col = req->console_cols };
    if (ws.ws_row && ws.ws_col && ioctl(slave, TIOCSWINSZ, &ws) < 0)
        err = errno;
    else if (req->oci && req->join_pidfd < 0) /* never an exec's: the container's is made */
        err = bind_console(master);
    if (err) {
        close(master);
        close(slave);
        return err;
    }
    err = send_fd(sock, master);
    close(master);
    close(sock);
    if (err)
        return err;
    if (ioctl(slave, TIOCSCTTY, 0) < 0) /* we lead a session of our own already */
        return errno;
    for (int i = 0; i < 3; i++)
        if (dup2(slave, i) < 0)
            return errno;
    if (slave > 2)
        close(slave);
    return 0;
}

static int set_hostname(const char *name)
{
    return sethostname(name, strlen(name)) < 0 ? errno : 0;
}

/* Move the fds meant for the container to 0, 1, 2 first thing, so no
 * caller's stdio survives to be reached through /proc/self/fd; a -1
 * becomes /dev/null (the host's, the same device as the container's). */
static int setup_stdio(const struct shim_spawn *req)
{
    int fds[3] = { req->stdin_fd, req->stdout_fd, req->stderr_fd };
    for (int i = 0; i < 3; i++) {
        int fd = fds[i];
        if (fd < 0 && (fd = open("/dev/null", i ? O_WRONLY : O_RDONLY)) < 0)
            return errno;
        if (fd == i) { /* dup2 to itself would keep CLOEXEC */
            int fl = fcntl(fd, F_GETFD);
            if (fl < 0 || fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
                return errno;
            continue;
        }
        if (dup2(fd, i) < 0)
            return errno;
        if (fds[i] < 0)
            close(fd);
    }
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* Is fd one this start hands the child for its own use (never the
 * command's)? */
static int internal_fd(const struct child_ctx *c, int fd)
{
    const struct shim_spawn *req = c->req;
    if (fd == c->status_fd || fd == req->go_fd || fd == req->cgroup_dir_fd ||
        fd == req->join_pidfd || fd == req->console_sock || fd == req->userns_sock ||
        fd == req->netns_fd)
        return 1;
    for (int i = 0; i < req->n_cgroup_fds; i++)
        if (fd == req->cgroup_fds[i])
            return 1;
    if (req->oci && fd == req->oci->pidns_fd)
        return 1;
    for (int i = 0; req->oci && i < req->oci->n_join_ns; i++)
        if (fd == req->oci->join_ns[i].fd)
            return 1;
    return 0;
}

/* --preserve-fds N: fds 3 .. 3+N-1 are the command's.  They stay open
 * and lose CLOEXEC; an fd of the start's own in that range gets CLOEXEC
 * instead, so that it never reaches the command. */
static int preserve_fds(const struct child_ctx *c, int n)
{
    for (int fd = 3; fd < 3 + n; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0) {
            if (errno == EBADF) /* not open: nothing to keep */
                continue;
            return errno;
        }
        int want = internal_fd(c, fd) ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
        if (want != fl && fcntl(fd, F_SETFD, want) < 0)
            return errno;
    }
    return 0;
}

/* Close every fd above 2 but the ones this start passes on purpose (the
 * status pipe, the go pipe's read end, cgroup and namespace handles, the
 * console and user namespace sockets, and with --preserve-fds the
 * caller's 3 .. 3+N-1): the go pipe's write end goes too, else wait_go()
 * would never see the parent die.
 * The caller of bocker may hold fds without CLOEXEC (`9</` in a shell:
 * the host's root directory); one left open is a path out of the
 * container through /proc/self/fd before execve, or after it.  Done
 * before anything the container controls is resolved. */
static int close_inherited_fds(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;
    const struct shim_oci *oci = req->oci;
    int keep[7 + MAX_CGROUP_FDS + SHIM_OCI_MAX_JOIN_NS], n = 0;
    int n_join = oci ? oci->n_join_ns : 0, n_preserve = oci ? oci->preserve_fds : 0;
    /* shim_spawn refused these already */
    if (req->n_cgroup_fds > MAX_CGROUP_FDS || n_join > SHIM_OCI_MAX_JOIN_NS ||
        n_preserve < 0 || n_preserve > 65536)
        return E2BIG;
    keep[n++] = c->status_fd;
    keep[n++] = req->go_fd;
    keep[n++] = c->born_in_cgroup ? -1 : req->cgroup_dir_fd;
    keep[n++] = req->join_pidfd;
    keep[n++] = req->console_sock;
    keep[n++] = req->userns_sock;
    keep[n++] = req->netns_fd;
    for (int i = 0; i < req->n_cgroup_fds; i++)
        keep[n++] = req->cgroup_fds[i];
    for (int i = 0; i < n_join; i++)
        keep[n++] = oci->join_ns[i].fd;
    if (n_preserve) {
        int err = preserve_fds(c, n_preserve);
        if (err)
            return err;
    }
    qsort(keep, (size_t)n, sizeof keep[0], cmp_int);
    unsigned int from = 3 + (unsigned)n_preserve;
    for (int i = 0; i < n; i++) {
        if (keep[i] < (int)from)
            continue;
        if ((unsigned)keep[i] > from &&
            syscall(SYS_close_range, from, (unsigned)keep[i] - 1, 0) < 0)
            return errno;
        from = (unsigned)keep[i] + 1;
    }
    return syscall(SYS_close_range, from, ~0U, 0) < 0 ? errno : 0;
}

/* OCI linux.namespaces with a path: setns into each (the parent opened
 * them; with a new user namespace it joined some for us, see
 * oci_parent_joins), the user namespace first, so the others are joined
 * with the capabilities it gives.  We become its root after pivot_root (see
 * setup_oci_filesystem). */
static int join_namespaces(struct child_ctx *c)
{
    const struct shim_oci *oci = c->req->oci;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < oci->n_join_ns; i++) {
            const struct shim_oci_ns *ns = &oci->join_ns[i];
            if ((ns->nstype == CLONE_NEWUSER) != (pass == 0))
                continue;
            if (oci_parent_joins(c->req, ns->nstype)) { /* born in it */
                close(ns->fd);
                continue;
            }
            c->index = i;
            if (setns(ns->fd, ns->nstype) < 0)
                return errno;
            close(ns->fd);
        }
    }
    return 0;
}

/* Does this OCI start join an existing user namespace?  Then spawn.c
 * clones it with no new namespace but PID, and the new ones are made
 * here once inside (unshare_namespaces), so that it owns them. */
int oci_joins_userns(const struct shim_spawn *req)
{
    for (int i = 0; req->oci && i < req->oci->n_join_ns; i++)
        if (req->oci->join_ns[i].nstype == CLONE_NEWUSER)
            return 1;
    return 0;
}

/* The namespaces to create that clone did not (see oci_joins_userns). */
static int unshare_namespaces(int flags)
{
    return unshare(flags) < 0 ? errno : 0;
}

static int set_domainname(const char *name)
{
    return setdomainname(name, strlen(name)) < 0 ? errno : 0;
}

/* OCI mode's credentials, in runc's order: umask; a seccomp filter goes
 * first unless no_new_privs is asked (without it, installing a filter
 * needs CAP_SYS_ADMIN, which the capabilities below may drop); the
 * bounding set; groups and ids (keepcaps); the effective, permitted and
 * inheritable sets; the ambient ones; no_new_privs and the filter. */
static void oci_credentials(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;
    const struct shim_oci *oci = req->oci;
    if (oci->umask >= 0)
        STEP(c, STEP_UMASK, oci_umask(oci->umask));
    if (req->seccomp_filter && !oci->no_new_privs)
        STEP(c, STEP_SECCOMP, install_seccomp(req));
    STEP(c, STEP_CAPS, drop_bounding_caps(oci->cap_bounding));
    STEP(c, STEP_SET_IDS, oci_set_ids(req));
    STEP(c, STEP_SET_CAPS, oci_set_caps(oci));
    if (oci->cap_ambient)
        STEP(c, STEP_AMBIENT_CAPS, oci_raise_ambient(oci->cap_ambient));
    if (oci->no_new_privs)
        STEP(c, STEP_NO_NEW_PRIVS, set_no_new_privs());
    if (req->seccomp_filter && oci->no_new_privs)
        STEP(c, STEP_SECCOMP, install_seccomp(req));
}

/* OCI create's end: every step before the gate went well, and argv[0]
 * resolves (else fail now as the exec would: runc refuses at create).
 * Say so even untraced ("wait for parent", 0) and close the status pipe:
 * the caller reads to EOF and knows the container is created.  What
 * comes after (the gate, execve) reports nothing. */
static void report_ready(struct child_ctx *c)
{
    int err = check_command(c->req);
    if (err) {
        child_report(c, STEP_EXECVE, err);
        _exit(err == ENOENT ? SHIM_EXIT_NOT_FOUND : SHIM_EXIT_CANNOT_EXECUTE);
    }
    struct shim_report r = { .step = STEP_WAIT_GO, .err = 0, .index = -1, .ns = now_ns() };
    ssize_t n = write(c->status_fd, &r, sizeof r);
    (void)n;
    close(c->status_fd);
    c->status_fd = -1;
}

/* The container leads a session and process group of its own: the
 * caller's terminal is not its controlling terminal (/dev/tty gives
 * ENXIO) and `kill(0, sig)` inside reaches only the container. */
static int new_session(void)
{
    return setsid() < 0 ? errno : 0;
}

/* bocker's own containers' credentials: Docker's capabilities (the
 * bounding set, then ids, then root's sets), no_new_privs always, then
 * the seccomp filter. */
static void bocker_credentials(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;
    if (!req->privileged)
        STEP(c, STEP_CAPS, drop_bounding_caps(req->cap_keep));
    STEP(c, STEP_SET_IDS, set_ids(req->uid, req->gid, req->groups, req->n_groups));
    if (!req->privileged)
        STEP(c, STEP_SET_CAPS, set_caps(req->cap_keep, req->uid));
    STEP(c, STEP_NO_NEW_PRIVS, req->privileged ? 0 : set_no_new_privs());
    if (req->seccomp_filter)
        STEP(c, STEP_SECCOMP, install_seccomp(req));
}

/* The container child, from clone to execve: each step in order, reported
 * to the parent; the first that fails ends the child (formats.h's exit
 * codes).  Never returns. */
void child_main(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;
    const struct shim_oci *oci = req->oci;

    /* mknod and late proc/sysfs mounts are refused in a user namespace */
    c->oci_userns = oci && ((req->clone_flags & CLONE_NEWUSER) || oci_joins_userns(req));
    STEP(c, STEP_SIGNALS, reset_signals());
    STEP(c, STEP_SESSION, new_session());
    STEP(c, STEP_STDIO, setup_stdio(req));
    STEP(c, STEP_CLOSE_FDS, close_inherited_fds(c));
    if (!c->born_in_cgroup && req->cgroup_dir_fd >= 0)
        STEP(c, STEP_CGROUP_JOIN, join_cgroup_dir(req->cgroup_dir_fd));
    if (req->n_cgroup_fds)
        STEP(c, STEP_CGROUP_JOIN, join_cgroups(req));
    int late_ns = req->clone_flags & ~(CLONE_NEWPID | CLONE_NEWCGROUP | CLONE_NEWUSER);
    if (oci && oci->n_join_ns && req->join_pidfd < 0)
        STEP(c, STEP_JOIN_NS, join_namespaces(c));
    if (oci_joins_userns(req) && req->join_pidfd < 0 && late_ns)
        STEP(c, STEP_UNSHARE_NS, unshare_namespaces(late_ns));
    if (req->join_pidfd >= 0) {
        STEP(c, STEP_JOIN_CONTAINER,
             join_container(req->join_pidfd, req->clone_flags & CLONE_NEWUSER));
        close(req->join_pidfd);
    } else {
        if (req->clone_flags & CLONE_NEWCGROUP)
            STEP(c, STEP_CGROUP_NS, unshare(CLONE_NEWCGROUP) < 0 ? errno : 0);
        if (req->netns_fd >= 0)
            STEP(c, STEP_JOIN_NETNS, join_netns(req->netns_fd));
        else if (req->clone_flags & CLONE_NEWNET)
            STEP(c, STEP_LO_UP, loopback_up());
        if (req->userns_sock >= 0)
            /* OCI mode: the parent writes our id maps, then one byte
             * with no fd (the rootfs is used as it is), as a go byte;
             * we become the namespace's root after pivot_root (see
             * setup_oci_filesystem) */
            STEP(c, STEP_USERNS, oci ? wait_go(req->userns_sock)
                                     : enter_userns(c, req->userns_sock));
        if (oci)
            setup_oci_filesystem(c);
        else
            setup_filesystem(c);
        if (req->hostname)
            STEP(c, STEP_HOSTNAME, set_hostname(req->hostname));
        if (oci && oci->domainname)
            STEP(c, STEP_DOMAINNAME, set_domainname(oci->domainname));
        else if (!oci && req->domainname)
            STEP(c, STEP_DOMAINNAME, set_domainname(req->domainname));
    }
    if (req->console_sock >= 0)
        STEP(c, STEP_CONSOLE, setup_console(req));
    STEP(c, STEP_CHDIR, chdir(req->cwd && *req->cwd ? req->cwd : "/") < 0 ? errno : 0);
    if (req->n_rlimits)
        STEP(c, STEP_RLIMITS, set_rlimits(c));
    if (oci)
        oci_credentials(c);
    else
        bocker_credentials(c);
    if (oci && oci->ready)
        report_ready(c);
    if (req->go_fd >= 0)
        STEP(c, STEP_WAIT_GO, wait_go(req->go_fd));
    /* From here a success is silent: the status pipe closes on execve. */
    child_report(c, STEP_EXECVE, 0);
    int err = exec_command(req);
    child_report(c, STEP_EXECVE, err);
    _exit(err == ENOENT ? SHIM_EXIT_NOT_FOUND : SHIM_EXIT_CANNOT_EXECUTE);
}
