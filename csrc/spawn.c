/* spawn.c - the parent's side of a container start.
 *
 * shim_spawn() clones the child (which runs child_main(), child.c) and
 * hands back its pid, pidfd and status pipe (bocker exec's children);
 * shim_spawn_monitored() does the same from a double-forked process that
 * then execs bocker-monitor, the keeper of every container.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/* clone3() gives us a pidfd atomically and, on cgroup v2, births the
 * child inside its cgroup (CLONE_INTO_CGROUP): no migration afterwards,
 * which on v1 costs an RCU grace period (5-20 ms).  Fall back to clone()
 * where the kernel predates clone3 (< 5.3).  *born says, in the child's
 * copy of memory, whether it was born in the cgroup: it is set before
 * each call, since the child sees what the memory held at clone. */
static pid_t clone_child(int flags, int cgroup_fd, int *pidfd, int *born)
{
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = (uint64_t)flags | CLONE_PIDFD;
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    args.exit_signal = SIGCHLD;
    if (cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_fd;
    }
    *born = cgroup_fd >= 0;
    pid_t pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0 && errno == ENOSYS) {
        *pidfd = -1;
        *born = 0;
        pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
    }
    return pid;
}

/* Enter a PID namespace (a running container's pidfd, for exec, or an
 * OCI config's namespace fd) for our next child only; *saved gets our
 * own back.  setns(CLONE_NEWPID) changes where children are born, never
 * the caller itself. */
static int enter_pidns(int fd, int *saved)
{
    *saved = open("/proc/thread-self/ns/pid_for_children", O_RDONLY | O_CLOEXEC);
    if (*saved < 0)
        return -errno;
    if (setns(fd, CLONE_NEWPID) < 0) {
        int err = errno;
        close(*saved);
        *saved = -1;
        return -err;
    }
    return 0;
}

/* Per-thread namespaces the parent's cloning thread can enter (setns of
 * a mount, user or time namespace needs a single-threaded caller). */
#define PARENT_JOINABLE (CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP)

/* Does the parent join this OCI namespace for the child?  A child born
 * in a new user namespace has no capability over namespaces the host's
 * owns, so setns there would be EPERM: with CLONE_NEWUSER the parent's
 * thread enters the network, IPC, UTS and cgroup namespaces to join
 * before the clone, and the child is born in them (as in pidns_fd). */
int oci_parent_joins(const struct shim_spawn *req, int nstype)
{
    return req->oci && (req->clone_flags & CLONE_NEWUSER) && req->join_pidfd < 0 &&
           (nstype & PARENT_JOINABLE) && !(nstype & ~PARENT_JOINABLE);
}

static const char *ns_file(int nstype)
{
    switch (nstype) {
    case CLONE_NEWNET: return "/proc/thread-self/ns/net";
    case CLONE_NEWIPC: return "/proc/thread-self/ns/ipc";
    case CLONE_NEWUTS: return "/proc/thread-self/ns/uts";
    default: return "/proc/thread-self/ns/cgroup";
    }
}

/* Enter the namespaces oci_parent_joins() gives the parent, keeping our
 * own in saved[] (-1: not entered) for leave_joined(). */
static int enter_joined(const struct shim_spawn *req, int *saved)
{
    const struct shim_oci *oci = req->oci;
    for (int i = 0; oci && i < oci->n_join_ns; i++) {
        saved[i] = -1;
        if (!oci_parent_joins(req, oci->join_ns[i].nstype))
            continue;
        saved[i] = open(ns_file(oci->join_ns[i].nstype), O_RDONLY | O_CLOEXEC);
        if (saved[i] < 0)
            return -errno;
        if (setns(oci->join_ns[i].fd, oci->join_ns[i].nstype) < 0) {
            int err = errno;
            close(saved[i]);
            saved[i] = -1;
            return -err;
        }
    }
    return 0;
}

/* Back to our own namespaces, in reverse order. */
static void leave_joined(const struct shim_spawn *req, int *saved)
{
    for (int i = req->oci ? req->oci->n_join_ns - 1 : -1; i >= 0; i--)
        if (saved[i] >= 0) {
            setns(saved[i], req->oci->join_ns[i].nstype);
            close(saved[i]);
            saved[i] = -1;
        }
}

/* An OCI request's lists must fit the child's tables, and a PID
 * namespace is joined through pidns_fd only (setns(CLONE_NEWPID) in the
 * child would not move the child itself). */
static int check_oci(const struct shim_oci *oci)
{
    if (!oci)
        return 0;
    if (oci->n_mounts < 0 || oci->n_mounts > SHIM_OCI_MAX_MOUNTS ||
        oci->n_devices < 0 || oci->n_devices > SHIM_OCI_MAX_DEVICES ||
        oci->n_masked < 0 || oci->n_masked > SHIM_OCI_MAX_PATHS ||
        oci->n_readonly < 0 || oci->n_readonly > SHIM_OCI_MAX_PATHS ||
        oci->n_gids < 0 || oci->n_gids > SHIM_OCI_MAX_GIDS ||
        oci->n_join_ns < 0 || oci->n_join_ns > SHIM_OCI_MAX_JOIN_NS ||
        oci->preserve_fds < 0 || oci->preserve_fds > 65536)
        return -E2BIG;
    for (int i = 0; i < oci->n_join_ns; i++)
        if (oci->join_ns[i].nstype == CLONE_NEWPID)
            return -EINVAL;
    return 0;
}

/* Start a container.  On success out->pid runs child_main() and
 * out->status_fd yields shim_report records until execve (EOF) or a
 * failed step.  Signals are blocked around clone so no Python handler
 * ever runs in the child. */
int shim_spawn(const struct shim_spawn *req, struct shim_child *out)
{
    int pipefd[2] = { -1, req->status_fd }, saved_pidns = -1, rc;
    int own_pipe = req->status_fd < 0;
    sigset_t all, old;

    /* the child's fixed-size tables: refuse, never truncate */
    if (req->n_mounts > SHIM_MAX_BINDS || req->n_cgroup_fds > MAX_CGROUP_FDS)
        return -E2BIG;
    if ((rc = check_oci(req->oci)) < 0)
        return rc;
    /* a network namespace is joined or made, never both; a child born in
     * a user namespace of its own could not join one the host's owns */
    if (req->netns_fd >= 0 && (req->clone_flags & (CLONE_NEWNET | CLONE_NEWUSER)))
        return -EINVAL;
    int pidns = req->join_pidfd >= 0 ? req->join_pidfd
              : req->oci ? req->oci->pidns_fd : -1;
    int saved_ns[SHIM_OCI_MAX_JOIN_NS];
    for (int i = 0; i < SHIM_OCI_MAX_JOIN_NS; i++)
        saved_ns[i] = -1;
    if (own_pipe && pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    if ((rc = enter_joined(req, saved_ns)) < 0 ||
        (pidns >= 0 && (rc = enter_pidns(pidns, &saved_pidns)) < 0)) {
        leave_joined(req, saved_ns);
        if (own_pipe) {
            close(pipefd[0]);
            close(pipefd[1]);
        }
        return rc;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    /* The child is a copy of this process (for exec, the host's Python)
     * until execve, and for exec it is born inside the container's PID
     * namespace.  Non-dumpable from birth, its /proc/PID/exe, fd/, environ
     * and mem need CAP_SYS_PTRACE, which containers lack: no window for
     * CVE-2019-5736.  execve makes the container's own program dumpable
     * again (as runc's nsenter and crun do). */
    int was_dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    int pidfd = -1, born_in_cgroup = 0;
    int nsflags = req->join_pidfd >= 0 ? 0 : req->clone_flags & ~CLONE_NEWCGROUP;
    if (oci_joins_userns(req)) /* the child makes the others once inside */
        nsflags &= CLONE_NEWPID;
    pid_t pid = clone_child(nsflags, req->cgroup_dir_fd, &pidfd, &born_in_cgroup);
    if (pid == 0) {
        struct child_ctx c = { .req = req, .status_fd = pipefd[1],
                               .born_in_cgroup = born_in_cgroup, .index = -1,
                               .root_fd = -1 };
        if (own_pipe)
            close(pipefd[0]);
        child_report(&c, STEP_CLONE, 0);
        child_main(&c);
    }
    int err = errno;
    if (was_dumpable > 0)
        prctl(PR_SET_DUMPABLE, was_dumpable, 0, 0, 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (saved_pidns >= 0) {
        setns(saved_pidns, CLONE_NEWPID);
        close(saved_pidns);
    }
    leave_joined(req, saved_ns);
    if (own_pipe)
        close(pipefd[1]);
    if (pid < 0) {
        if (own_pipe)
            close(pipefd[0]);
        return -err;
    }
    out->pid = pid;
    out->pidfd = pidfd;
    out->status_fd = pipefd[0];
    return 0;
}

/* The monitor keeps none of its caller's fds: stdio becomes /dev/null
 * (a `$(bocker run -d ...)` in a shell must not wait for the container's
 * end) and every other fd closes at exec, but pass_fds. */
static void monitor_stdio_and_fds(const int *pass_fds, int n_pass_fds)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int i = 0; null >= 0 && i < 3; i++)
        dup2(null, i);
    syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int i = 0; i < n_pass_fds; i++)
        fcntl(pass_fds[i], F_SETFD, 0);
}

/* "123" into buf (at least 12 bytes): no stdio between fork and exec. */
static const char *decimal(char *buf, int value)
{
    char tmp[12];
    int n = 0, neg = value < 0;
    unsigned v = neg ? 0u - (unsigned)value : (unsigned)value;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < 11);
    char *p = buf;
    if (neg)
        *p++ = '-';
    while (n)
        *p++ = tmp[--n];
    *p = '\0';
    return buf;
}

/* Every start.  Fork (twice, so init adopts it) a monitor process that
 * spawns the container (so it is the container's parent and can reap
 * it), tells us the container's PID, and execs monitor_argv with the
 * container's PID and pidfd put after its argv[0]: a small C program
 * (bocker-monitor) whose memory is its own, not a copy of this Python
 * process.  The fds in pass_fds (the container's output pipes, stdin,
 * console and attach sockets) stay open across that exec.  The container
 * reports its steps on req->status_fd, which the caller made. */
int shim_spawn_monitored(const struct shim_spawn *req,
                         const char *const *monitor_argv,
                         const int *pass_fds, int n_pass_fds,
                         int *container_pid)
{
    int info[2];
    sigset_t all, old;

    if (req->status_fd < 0)
        return -EINVAL;
    int n_argv = 0;
    while (monitor_argv[n_argv])
        n_argv++;
    if (n_argv < 1 || n_argv > MONITOR_MAX_ARGS)
        return -E2BIG;
    if (pipe2(info, O_CLOEXEC) < 0)
        return -errno;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    /* The intermediate shares our memory (vfork: we wait until it exits,
     * and no copy of this process's page tables is made for it); it only
     * makes a session and forks the monitor, with a raw clone (libc's
     * fork would run atfork handlers in our shared memory). */
    pid_t mid = vfork();
    if (mid == 0) {
        setsid(); /* no terminal's signals reach the monitor */
        if (syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0) != 0)
            _exit(0); /* the intermediate: its exit hands the monitor to init */
        struct shim_child child;
        close(info[0]);
        int rc = shim_spawn(req, &child);
        int32_t msg[2] = { rc < 0 ? rc : child.pid, getpid() };
        if (write(info[1], msg, sizeof msg) != sizeof msg || rc < 0)
            _exit(SHIM_EXIT_RUNTIME);
        monitor_stdio_and_fds(pass_fds, n_pass_fds);
        if (child.pidfd >= 0)
            fcntl(child.pidfd, F_SETFD, 0);
        char pid_s[12], pidfd_s[12];
        const char *argv[MONITOR_MAX_ARGS + 3];
        argv[0] = monitor_argv[0];
        argv[1] = decimal(pid_s, child.pid);
        argv[2] = decimal(pidfd_s, child.pidfd);
        for (int i = 1; i <= n_argv; i++) /* its NULL too */
            argv[i + 2] = monitor_argv[i];
        for (int sig = 1; sig < NSIG; sig++)
            signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(argv[0], (char *const *)argv);
        _exit(SHIM_EXIT_RUNTIME); /* the container, orphaned, is reaped by init */
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(info[1]);
    if (mid < 0) {
        close(info[0]);
        return -err;
    }
    waitpid(mid, NULL, 0);
    int32_t msg[2] = { -EPIPE, 0 };
    ssize_t n = read(info[0], msg, sizeof msg);
    close(info[0]);
    if (n != sizeof msg)
        return -EPIPE;
    if (msg[0] < 0)
        return msg[0];
    *container_pid = msg[0];
    return msg[1];
}
