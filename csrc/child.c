/* child.c - the container child, between clone and execve.
 *
 * Read child_main() top to bottom: that is a container start from the
 * inside.  This file holds its process steps (signals, session, stdio,
 * inherited fds, cgroups, namespaces, console, hostname); the filesystem
 * steps are in mounts.c and kernfs.c, credentials in creds.c, the exec in
 * exec.c.
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
    if (ws.ws_row && ws.ws_col && ioctl(slave, TIOCSWINSZ, &ws) < 0) {
        err = errno;
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

/* Close every fd above 2 but the ones this start passes on purpose (the
 * status pipe, the go pipe's read end, cgroup and namespace handles, the
 * console and user namespace sockets): the go pipe's write end goes too,
 * else wait_go() would never see the parent die.
 * The caller of bocker may hold fds without CLOEXEC (`9</` in a shell:
 * the host's root directory); one left open is a path out of the
 * container through /proc/self/fd before execve, or after it.  Done
 * before anything the container controls is resolved. */
static int close_inherited_fds(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;
    int keep[6 + MAX_CGROUP_FDS], n = 0;
    if (req->n_cgroup_fds > MAX_CGROUP_FDS) /* shim_spawn refused it already */
        return E2BIG;
    keep[n++] = c->status_fd;
    keep[n++] = req->go_fd;
    keep[n++] = c->born_in_cgroup ? -1 : req->cgroup_dir_fd;
    keep[n++] = req->join_pidfd;
    keep[n++] = req->console_sock;
    keep[n++] = req->userns_sock;
    for (int i = 0; i < req->n_cgroup_fds; i++)
        keep[n++] = req->cgroup_fds[i];
    qsort(keep, (size_t)n, sizeof keep[0], cmp_int);
    unsigned int from = 3;
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

/* The container leads a session and process group of its own: the
 * caller's terminal is not its controlling terminal (/dev/tty gives
 * ENXIO) and `kill(0, sig)` inside reaches only the container. */
static int new_session(void)
{
    return setsid() < 0 ? errno : 0;
}

/* The container child, from clone to execve: each step in order, reported
 * to the parent; the first that fails ends the child (formats.h's exit
 * codes).  Never returns. */
void child_main(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;

    STEP(c, STEP_SIGNALS, reset_signals());
    STEP(c, STEP_SESSION, new_session());
    STEP(c, STEP_STDIO, setup_stdio(req));
    STEP(c, STEP_CLOSE_FDS, close_inherited_fds(c));
    if (!c->born_in_cgroup && req->cgroup_dir_fd >= 0)
        STEP(c, STEP_CGROUP_JOIN, join_cgroup_dir(req->cgroup_dir_fd));
    if (req->n_cgroup_fds)
        STEP(c, STEP_CGROUP_JOIN, join_cgroups(req));
    if (req->join_pidfd >= 0) {
        STEP(c, STEP_JOIN_CONTAINER,
             join_container(req->join_pidfd, req->clone_flags & CLONE_NEWUSER));
        close(req->join_pidfd);
    } else {
        if (req->clone_flags & CLONE_NEWCGROUP)
            STEP(c, STEP_CGROUP_NS, unshare(CLONE_NEWCGROUP) < 0 ? errno : 0);
        if (req->clone_flags & CLONE_NEWNET)
            STEP(c, STEP_LO_UP, loopback_up());
        if (req->userns_sock >= 0)
            STEP(c, STEP_USERNS, enter_userns(c, req->userns_sock));
        setup_filesystem(c);
        if (req->hostname)
            STEP(c, STEP_HOSTNAME, set_hostname(req->hostname));
    }
    if (req->console_sock >= 0)
        STEP(c, STEP_CONSOLE, setup_console(req));
    STEP(c, STEP_CHDIR, chdir(req->cwd && *req->cwd ? req->cwd : "/") < 0 ? errno : 0);
    if (req->n_rlimits)
        STEP(c, STEP_RLIMITS, set_rlimits(c));
    if (!req->privileged)
        STEP(c, STEP_CAPS, drop_bounding_caps(req->cap_keep));
    STEP(c, STEP_SET_IDS, set_ids(req->uid, req->gid));
    if (!req->privileged)
        STEP(c, STEP_SET_CAPS, set_caps(req->cap_keep, req->uid));
    STEP(c, STEP_NO_NEW_PRIVS, req->privileged ? 0 : set_no_new_privs());
    if (req->seccomp_filter)
        STEP(c, STEP_SECCOMP, install_seccomp(req));
    if (req->go_fd >= 0)
        STEP(c, STEP_WAIT_GO, wait_go(req->go_fd));
    /* From here a success is silent: the status pipe closes on execve. */
    child_report(c, STEP_EXECVE, 0);
    int err = exec_command(req);
    child_report(c, STEP_EXECVE, err);
    _exit(err == ENOENT ? SHIM_EXIT_NOT_FOUND : SHIM_EXIT_CANNOT_EXECUTE);
}
