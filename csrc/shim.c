/* shim.c - bocker's kernel operations, one small function per step.
 *
 * Read shim_spawn() and child_main() top to bottom: that is a container
 * start.  Everything else is a thin, errno-preserving wrapper that Python
 * calls through cffi (see bocker/native.py).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <linux/loop.h>
#include <linux/close_range.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <termios.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define MAX_BINDS 64

/* ------------------------------------------------------------------ */
/* Step names, for messages and traces.                                */
/* ------------------------------------------------------------------ */

static const char *const step_names[STEP_LAST] = {
    [STEP_CLONE] = "clone",
    [STEP_SIGNALS] = "reset signals",
    [STEP_SESSION] = "setsid",
    [STEP_CLOSE_FDS] = "close inherited fds",
    [STEP_CGROUP_JOIN] = "join cgroup",
    [STEP_CGROUP_NS] = "unshare cgroup namespace",
    [STEP_JOIN_CONTAINER] = "setns container",
    [STEP_NETNS_JOIN] = "setns network",
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

/* ------------------------------------------------------------------ */
/* Thin wrappers: the kernel call, and -errno on failure.              */
/* ------------------------------------------------------------------ */

static int neg_errno(long rc)
{
    return rc < 0 ? -errno : (int)rc;
}

int shim_mount(const char *source, const char *target, const char *fstype,
               unsigned long flags, const char *data)
{
    return neg_errno(mount(source, target, fstype, flags, data));
}

int shim_umount(const char *target, int flags)
{
    return neg_errno(umount2(target, flags));
}

int shim_setns(int fd, int nstype)
{
    return neg_errno(setns(fd, nstype));
}

int shim_unshare(int flags)
{
    return neg_errno(unshare(flags));
}

int shim_pidfd_open(int pid)
{
    return neg_errno(syscall(SYS_pidfd_open, pid, 0));
}

int shim_pidfd_send_signal(int pidfd, int sig)
{
    return neg_errno(syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0));
}

/* Open a socket that lives in another network namespace: sockets stay in
 * the namespace they were created in, so switch this thread there, create
 * it, and switch back.  This is how bocker configures a container's eth0
 * without moving links across namespaces. */
int shim_socket_in_netns(int netns_fd, int domain, int type, int protocol)
{
    int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0)
        return -errno;
    if (setns(netns_fd, CLONE_NEWNET) < 0) {
        int err = errno;
        close(self);
        return -err;
    }
    int sock = socket(domain, type | SOCK_CLOEXEC, protocol);
    int err = errno;
    if (setns(self, CLONE_NEWNET) < 0)
        err = errno, sock = (sock >= 0 ? (close(sock), -1) : sock);
    close(self);
    return sock >= 0 ? sock : -err;
}

/* openat2(2): open path below dirfd with RESOLVE_* rules, e.g.
 * RESOLVE_IN_ROOT so that "..", absolute symlinks and absolute paths all
 * stay inside a container's rootfs while the host reads a file of it. */
int shim_openat2(int dirfd, const char *path, int flags, int mode, uint64_t resolve)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(unsigned)flags;
    how.mode = (uint64_t)(unsigned)mode;
    how.resolve = resolve;
    return neg_errno(syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

/* ------------------------------------------------------------------ */
/* Loop devices, for `bocker setup` on a host whose /var is not btrfs.  */
/* ------------------------------------------------------------------ */

/* Attach FILE to a free loop device; return an open fd on the device and
 * store its number in *index.  With AUTOCLEAR the kernel detaches the
 * device when its last user goes, so keep the fd open until it is mounted. */
int shim_loop_attach(const char *file, int autoclear, int *index)
{
    int ctl, backing, dev = -1;
    char path[64];

    backing = open(file, O_RDWR | O_CLOEXEC);
    if (backing < 0)
        return -errno;
    ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0)
        goto out;
    for (int tries = 0; tries < 16; tries++) {
        *index = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (*index < 0)
            goto out;
        snprintf(path, sizeof path, "/dev/loop%d", *index);
        dev = open(path, O_RDWR | O_CLOEXEC);
        if (dev < 0)
            goto out;
        struct loop_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.fd = (unsigned)backing;
        cfg.info.lo_flags = autoclear ? LO_FLAGS_AUTOCLEAR : 0;
        snprintf((char *)cfg.info.lo_file_name, LO_NAME_SIZE, "%s", file);
        if (ioctl(dev, LOOP_CONFIGURE, &cfg) == 0)
            break;
        int busy = errno == EBUSY; /* another process took it first */
        close(dev);
        dev = -1;
        if (!busy)
            goto out;
        errno = EBUSY;
    }
out:;
    int err = errno;
    if (ctl >= 0)
        close(ctl);
    close(backing);
    return dev >= 0 ? dev : -err;
}

int shim_loop_detach(int index)
{
    char path[64];
    snprintf(path, sizeof path, "/dev/loop%d", index);
    int dev = open(path, O_RDWR | O_CLOEXEC);
    if (dev < 0)
        return -errno;
    int rc = neg_errno(ioctl(dev, LOOP_CLR_FD, 0));
    close(dev);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The container child.  Runs after clone, before execve: C only, no   */
/* malloc, no stdio.  Each step returns 0 or an errno.                 */
/* ------------------------------------------------------------------ */

/* Set by clone_child() just before clone, so the child's copy says whether
 * clone3 put it in its v2 cgroup already. */
static int born_in_cgroup;

/* The devices of a container's /dev: made with mknod, or in a user
 * namespace (where mknod is refused) bind-mounted from the host's. */
static const struct { const char *name; unsigned maj, min; } devs[] = {
    { "/dev/null", 1, 3 },    { "/dev/zero", 1, 5 },
    { "/dev/full", 1, 7 },    { "/dev/random", 1, 8 },
    { "/dev/urandom", 1, 9 }, { "/dev/tty", 5, 0 },
};
#define N_DEVS (sizeof devs / sizeof devs[0])

struct child_ctx {
    const struct shim_spawn *req;
    int status_fd;
    int bind_fds[MAX_BINDS];     /* open_tree() clones of the volumes */
    /* user namespace only (else -1): detached mounts made before
     * pivot_root, attached after it */
    int root_fd;                 /* the idmapped rootfs, from the parent */
    int proc_fd, sys_fd;         /* fsmount()ed /proc and /sys */
    int dev_fds[N_DEVS];         /* open_tree() clones of the host's devs */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Tell the parent how a step went.  Failures are always sent; successes
 * only when tracing, so an untraced start writes nothing. */
static void report(struct child_ctx *c, int step, int err)
{
    if (!err && !c->req->trace)
        return;
    struct shim_report r = { .step = step, .err = err, .ns = now_ns() };
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

/* Mount events must not propagate back to the host's namespace. */
static int make_mounts_private(void)
{
    return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ? errno : 0;
}

/* pivot_root needs the new root to be a mount point.  nodev: a device
 * node that an image layer carries (or that anything created) cannot be
 * opened; the container's devices are the ones in its fresh /dev. */
static int bind_rootfs(const char *rootfs, int nodev)
{
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        return errno;
    if (nodev && mount(NULL, rootfs, NULL, MS_REMOUNT | MS_BIND | MS_NODEV, NULL) < 0)
        return errno;
    return 0;
}

/* Clone each volume's source tree as a detached mount while the host's
 * filesystem is still reachable; it is attached after pivot_root. */
static int open_binds(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;
    for (int i = 0; i < req->n_mounts && i < MAX_BINDS; i++) {
        c->bind_fds[i] = -1;
        if (!req->mounts[i].source)
            continue;
        int fd = syscall(SYS_open_tree, AT_FDCWD, req->mounts[i].source,
                         OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (fd < 0)
            return errno;
        c->bind_fds[i] = fd;
        /* read-only and nodev for the whole detached tree, before anyone
         * inside can see it */
        struct mount_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.attr_set = (req->mounts[i].readonly ? MOUNT_ATTR_RDONLY : 0) |
                        (req->privileged ? 0 : MOUNT_ATTR_NODEV);
        if (attr.attr_set &&
            syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                    sizeof attr) < 0)
            return errno;
    }
    return 0;
}

/* pivot_root(".", ".") stacks the old root on top of the new one; the
 * umount that follows takes it away (the runc trick: no put_old dir). */
static int do_pivot_root(const char *rootfs)
{
    if (chdir(rootfs) < 0)
        return errno;
    return syscall(SYS_pivot_root, ".", ".") < 0 ? errno : 0;
}

static int umount_old_root(void)
{
    if (umount2(".", MNT_DETACH) < 0)
        return errno;
    return chdir("/") < 0 ? errno : 0;
}

/* Attach a detached mount (open_tree, fsmount, the parent's idmapped
 * rootfs) at target, which is resolved where we are now: after
 * pivot_root, inside the container. */
static int attach_tree(int fd, const char *target)
{
    if (syscall(SYS_move_mount, fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return errno;
    close(fd);
    return 0;
}

/* attach_tree() at a directory, made if the image has none. */
static int attach_dir(int fd, const char *dir)
{
    mkdir(dir, 0555); /* EEXIST is fine; any other error shows in the move */
    return attach_tree(fd, dir);
}

/* Bind one of the host's devices (cloned by open_devices) onto an empty
 * file in the container's /dev. */
static int bind_dev(int fd, const char *name)
{
    int file = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (file < 0)
        return errno;
    close(file);
    return attach_tree(fd, name);
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

/* Become the user namespace's root, once past the host's directories:
 * until now our ids were still the host's root, which owns them (and
 * bocker's 0700 container directory) but which the namespace does not
 * map, so a file we created would fail with EOVERFLOW; from now on
 * capabilities reach only what the namespace's ids own. */
static int become_userns_root(void)
{
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
        return errno;
    return 0;
}

/* In a user namespace the kernel refuses a new proc or sysfs once no full
 * instance of it is visible (mount_too_revealing): make both as detached
 * mounts while the host's still are, before pivot_root. */
static int open_kernfs(struct child_ctx *c)
{
    static const struct { const char *type; uint64_t attrs; } fs[2] = {
        { "proc", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC },
        { "sysfs", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                   MOUNT_ATTR_NOEXEC },
    };
    int *out[2] = { &c->proc_fd, &c->sys_fd };
    for (int i = 0; i < 2; i++) {
        int ctx = (int)syscall(SYS_fsopen, fs[i].type, FSOPEN_CLOEXEC);
        if (ctx < 0)
            return errno;
        int fd = -1;
        if (syscall(SYS_fsconfig, ctx, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
            fd = (int)syscall(SYS_fsmount, ctx, FSMOUNT_CLOEXEC, fs[i].attrs);
        int err = errno;
        close(ctx);
        if (fd < 0)
            return err;
        *out[i] = fd;
    }
    return 0;
}

/* mknod is refused in a user namespace: clone the host's device nodes, to
 * bind them into the container's /dev (as rootless runc and crun do). */
static int open_devices(struct child_ctx *c)
{
    for (size_t i = 0; i < N_DEVS; i++) {
        c->dev_fds[i] = (int)syscall(SYS_open_tree, AT_FDCWD, devs[i].name,
                                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (c->dev_fds[i] < 0)
            return errno;
    }
    return 0;
}

static int mount_proc(void)
{
    mkdir("/proc", 0555);
    return mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 NULL) < 0 ? errno : 0;
}

static int make_dev(size_t i)
{
    if (mknod(devs[i].name, S_IFCHR | 0666, makedev(devs[i].maj, devs[i].min)) < 0 ||
        chmod(devs[i].name, 0666) < 0) /* undo the umask */
        return errno;
    return 0;
}

/* A fresh /dev holding only the harmless devices: made with mknod, or
 * with dev_fds (a user namespace) the host's own bound onto empty files. */
static int mount_dev(const int *dev_fds)
{
    static const char *const links[][2] = {
        { "/proc/self/fd", "/dev/fd" },       { "/proc/self/fd/0", "/dev/stdin" },
        { "/proc/self/fd/1", "/dev/stdout" }, { "/proc/self/fd/2", "/dev/stderr" },
        { "pts/ptmx", "/dev/ptmx" },
    };
    mkdir("/dev", 0755);
    if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
              "mode=755,size=65536k") < 0)
        return errno;
    for (size_t i = 0; i < N_DEVS; i++) {
        int err = dev_fds ? bind_dev(dev_fds[i], devs[i].name) : make_dev(i);
        if (err)
            return err;
    }
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlink(links[i][0], links[i][1]) < 0)
            return errno;
    return 0;
}

/* A private devpts instance: the container sees only its own ptys. */
static int mount_devpts(void)
{
    if (mkdir("/dev/pts", 0755) < 0)
        return errno;
    return mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                 "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0 ? errno : 0;
}

static int mount_shm(void)
{
    if (mkdir("/dev/shm", 01777) < 0)
        return errno;
    return mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 "mode=1777,size=65536k") < 0 ? errno : 0;
}

static int mount_sys(void)
{
    mkdir("/sys", 0555);
    return mount("sysfs", "/sys", "sysfs",
                 MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ? errno : 0;
}

/* Write each "key=value" of --sysctl under /proc/sys, before /proc/sys
 * becomes read-only.  Python allows only keys the kernel namespaces
 * (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*), so these
 * writes change the container's namespaces, never the host. */
static int write_sysctls(const char *const *sysctls)
{
    for (; sysctls && *sysctls; sysctls++) {
        char path[512] = "/proc/sys/";
        const char *eq = strchr(*sysctls, '=');
        size_t klen = eq ? (size_t)(eq - *sysctls) : 0;
        if (!eq || klen == 0 || klen + 11 > sizeof path)
            return EINVAL;
        for (size_t i = 0; i < klen; i++)
            path[10 + i] = (*sysctls)[i] == '.' ? '/' : (*sysctls)[i];
        path[10 + klen] = '\0';
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return errno;
        size_t vlen = strlen(eq + 1);
        int err = write(fd, eq + 1, vlen) != (ssize_t)vlen ? (errno ? errno : EIO) : 0;
        close(fd);
        if (err)
            return err;
    }
    return 0;
}

/* Docker's masked paths: files that expose the host kernel (its memory
 * image, keyrings, timers, the scheduler's state, firmware).  A file is
 * covered by /dev/null, a directory by an empty read-only tmpfs; a path
 * this kernel lacks is skipped. */
static int mask_paths(void)
{
    static const char *const masked[] = {
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
        "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap",
    };
    for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
        struct stat st;
        if (lstat(masked[i], &st) < 0) {
            if (errno == ENOENT)
                continue;
            return errno;
        }
        int rc = S_ISDIR(st.st_mode)
            ? mount("tmpfs", masked[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    "size=0,mode=0555")
            : mount("/dev/null", masked[i], NULL, MS_BIND, NULL);
        if (rc < 0)
            return errno;
    }
    return 0;
}

/* Docker's read-only paths: /proc/sys (host-wide sysctls such as
 * kernel.core_pattern, which makes the host kernel run a program as
 * root), sysrq-trigger, irq and bus settings, fs knobs.  Each is bound
 * onto itself and the bind made read-only. */
static int readonly_paths(void)
{
    static const char *const ro[] = {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    };
    for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
        if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT)
                continue;
            return errno;
        }
        if (mount(NULL, ro[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID |
                  MS_NODEV | MS_NOEXEC, NULL) < 0)
            return errno;
    }
    return 0;
}

/* --read-only: the root mount (not /dev, /proc, volumes or tmpfs, which
 * are mounts of their own) becomes read-only. */
static int readonly_root(int nodev)
{
    return mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
                 (nodev ? MS_NODEV : 0), NULL) < 0 ? errno : 0;
}

/* --ulimit values, set while the child still has CAP_SYS_RESOURCE (a hard
 * limit above the current one needs it). */
static int set_rlimits(const struct shim_spawn *req)
{
    for (int i = 0; i < req->n_rlimits; i++) {
        struct rlimit rl = { .rlim_cur = req->rlimits[i].soft,
                             .rlim_max = req->rlimits[i].hard };
        if (setrlimit(req->rlimits[i].resource, &rl) < 0)
            return errno;
    }
    return 0;
}

/* Create a mount point inside the container (after pivot_root, so any
 * symlink on the way resolves inside the container). */
static int make_target(const char *target, int is_file)
{
    char path[4096];
    size_t len = strlen(target);
    if (len >= sizeof path)
        return ENAMETOOLONG;
    memcpy(path, target, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return errno;
        *p = '/';
    }
    if (is_file) {
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return errno;
        close(fd);
        return 0;
    }
    return mkdir(path, 0755) < 0 && errno != EEXIST ? errno : 0;
}

/* Attach the volumes cloned by open_binds() at their targets. */
static int move_binds(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;
    for (int i = 0; i < req->n_mounts && i < MAX_BINDS; i++) {
        const struct shim_mount *m = &req->mounts[i];
        if (!m->source)
            continue;
        int err = make_target(m->target, m->is_file);
        if (err)
            return err;
        if (syscall(SYS_move_mount, c->bind_fds[i], "", AT_FDCWD, m->target,
                    MOVE_MOUNT_F_EMPTY_PATH) < 0)
            return errno;
        close(c->bind_fds[i]);
    }
    return 0;
}

static int mount_tmpfses(const struct shim_spawn *req)
{
    for (int i = 0; i < req->n_mounts; i++) {
        const struct shim_mount *m = &req->mounts[i];
        if (m->source)
            continue;
        int err = make_target(m->target, 0);
        if (err)
            return err;
        unsigned long flags = MS_NOSUID | MS_NODEV | (m->readonly ? MS_RDONLY : 0);
        if (mount("tmpfs", m->target, "tmpfs", flags, m->data) < 0)
            return errno;
    }
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

/* Send one fd over a unix socket (SCM_RIGHTS). */
static int send_fd(int sock, int fd)
{
    char byte = 'p';
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? errno : 0;
}

/* send_fd() for Python (the parent's half of a user namespace start). */
int shim_send_fd(int sock, int fd)
{
    return -send_fd(sock, fd);
}

/* A pty from the container's own devpts: open its ptmx, get the slave
 * with TIOCGPTPEER (no path lookup), hand the master to the parent, and
 * make the slave our controlling terminal and stdio. */
static int setup_console(int sock)
{
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
 * status and go pipes, cgroup and namespace handles, the console socket).
 * The caller of bocker may hold fds without CLOEXEC (`9</` in a shell:
 * the host's root directory); one left open is a path out of the
 * container through /proc/self/fd before execve, or after it.  Done
 * before anything the container controls is resolved. */
static int close_inherited_fds(const struct shim_spawn *req, int status_fd)
{
    int keep[8 + MAX_BINDS], n = 0;
    keep[n++] = status_fd;
    keep[n++] = req->go_fd;
    keep[n++] = born_in_cgroup ? -1 : req->cgroup_dir_fd;
    keep[n++] = req->netns_fd;
    keep[n++] = req->join_pidfd;
    keep[n++] = req->console_sock;
    keep[n++] = req->userns_sock;
    for (int i = 0; i < req->n_cgroup_fds && n < (int)(sizeof keep / sizeof keep[0]); i++)
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

static int set_ids(unsigned uid, unsigned gid)
{
    if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
        return errno;
    return 0;
}

/* Drop every capability not in keep (bit N = capability N: Docker's
 * default set less CAP_MKNOD unless --cap-add/--cap-drop changed it, see
 * capabilities.py) from the bounding set, and empty the ambient set.
 * Runs before set_ids(): the bounding set needs CAP_SETPCAP, and setuid()
 * to a non-root user clears what is left. */
static int drop_bounding_caps(uint64_t keep)
{
    /* up to 63, not CAP_LAST_CAP: a kernel newer than our headers may know
     * more capabilities; past its last one prctl says EINVAL */
    for (int cap = 0; cap < 64; cap++)
        if (!(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break;
            return errno;
        }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return errno;
    return 0;
}

/* After set_ids(): root keeps exactly keep as its effective and permitted
 * sets; any other user keeps none (as Docker does: they stay only in the
 * bounding set, for a file capability to use).  The inheritable set is
 * emptied either way, so no capability is handed through execve beyond
 * what the rules for root give. */
static int set_caps(uint64_t keep, unsigned uid)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    for (int i = 0; uid == 0 && i < 2; i++) {
        uint32_t part = (uint32_t)(keep >> (32 * i));
        data[i].effective = data[i].permitted = part;
    }
    return syscall(SYS_capset, &hdr, data) < 0 ? errno : 0;
}

static int set_no_new_privs(void)
{
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? errno : 0;
}

/* Block until the parent has finished the container's network (it writes
 * one byte).  EOF means the parent gave up: never exec then. */
static int wait_go(int fd)
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

/* execvpe() searches the *caller's* PATH; a container must search its own.
 * Returns the errno that best explains the failure: EACCES if some
 * candidate existed but could not run, else ENOENT. */
static int exec_command(const struct shim_spawn *req)
{
    const char *cmd = req->argv[0];
    char *const *argv = (char *const *)req->argv;
    char *const *envp = (char *const *)req->envp;
    if (strchr(cmd, '/')) {
        execve(cmd, argv, envp);
        return errno;
    }
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
            execve(dlen ? buf : cmd, argv, envp);
            if (errno != ENOENT && errno != ENOTDIR)
                best = errno;
        }
        p = *end ? end + 1 : end;
    }
    return best;
}

/* Run one step: report it, and stop the child on failure with the exit
 * code Docker uses (127 not found, 126 cannot execute, 125 the runtime). */
#define STEP(c, step, expr)                                             \
    do {                                                                \
        int err_ = (expr);                                              \
        report((c), (step), err_);                                      \
        if (err_)                                                       \
            _exit(125);                                                 \
    } while (0)

/* Make the container's filesystem view: a new root with fresh /proc,
 * /dev and /sys, and the volumes. */
static void setup_filesystem(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;
    int userns = c->root_fd >= 0;

    STEP(c, STEP_MOUNT_PRIVATE, make_mounts_private());
    STEP(c, STEP_BIND_ROOTFS, userns ? attach_tree(c->root_fd, req->rootfs)
                                     : bind_rootfs(req->rootfs, !req->privileged));
    if (req->n_mounts)
        STEP(c, STEP_OPEN_BINDS, open_binds(c));
    if (userns) {
        STEP(c, STEP_OPEN_KERNFS, open_kernfs(c));
        STEP(c, STEP_OPEN_DEVICES, open_devices(c));
    }
    STEP(c, STEP_PIVOT_ROOT, do_pivot_root(req->rootfs));
    if (userns)
        STEP(c, STEP_USERNS_ROOT, become_userns_root());
    STEP(c, STEP_UMOUNT_OLDROOT, umount_old_root());
    STEP(c, STEP_MOUNT_PROC, userns ? attach_dir(c->proc_fd, "/proc") : mount_proc());
    STEP(c, STEP_MOUNT_DEV, mount_dev(userns ? c->dev_fds : NULL));
    STEP(c, STEP_MOUNT_DEVPTS, mount_devpts());
    STEP(c, STEP_MOUNT_SHM, mount_shm());
    STEP(c, STEP_MOUNT_SYS, userns ? attach_dir(c->sys_fd, "/sys") : mount_sys());
    if (req->sysctls)
        STEP(c, STEP_SYSCTL, write_sysctls(req->sysctls));
    if (!req->privileged) {
        STEP(c, STEP_MASK_PATHS, mask_paths());
        STEP(c, STEP_READONLY_PATHS, readonly_paths());
    }
    if (req->n_mounts) {
        STEP(c, STEP_MOVE_BINDS, move_binds(c));
        STEP(c, STEP_MOUNT_TMPFS, mount_tmpfses(req));
    }
    if (req->readonly_rootfs)
        STEP(c, STEP_READONLY_ROOT, readonly_root(!req->privileged));
    if (req->hostname)
        STEP(c, STEP_HOSTNAME, set_hostname(req->hostname));
}

static void child_main(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;

    STEP(c, STEP_SIGNALS, reset_signals());
    STEP(c, STEP_SESSION, new_session());
    STEP(c, STEP_STDIO, setup_stdio(req));
    STEP(c, STEP_CLOSE_FDS, close_inherited_fds(req, c->status_fd));
    /* (the go pipe's write end went with the rest: else wait_go() would
     * never see the parent die) */
    if (!born_in_cgroup && req->cgroup_dir_fd >= 0)
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
        if (req->netns_fd >= 0) {
            STEP(c, STEP_NETNS_JOIN, setns(req->netns_fd, CLONE_NEWNET) < 0 ? errno : 0);
            close(req->netns_fd);
        }
        if (req->clone_flags & CLONE_NEWNET)
            STEP(c, STEP_LO_UP, loopback_up());
        if (req->userns_sock >= 0)
            STEP(c, STEP_USERNS, enter_userns(c, req->userns_sock));
        setup_filesystem(c);
    }
    if (req->console_sock >= 0)
        STEP(c, STEP_CONSOLE, setup_console(req->console_sock));
    STEP(c, STEP_CHDIR, chdir(req->cwd && *req->cwd ? req->cwd : "/") < 0 ? errno : 0);
    if (req->n_rlimits)
        STEP(c, STEP_RLIMITS, set_rlimits(req));
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
    report(c, STEP_EXECVE, 0);
    int err = exec_command(req);
    report(c, STEP_EXECVE, err);
    _exit(err == ENOENT ? 127 : 126);
}

/* ------------------------------------------------------------------ */
/* The parent side.                                                     */
/* ------------------------------------------------------------------ */

/* clone3() gives us a pidfd atomically and, on cgroup v2, births the
 * child inside its cgroup (CLONE_INTO_CGROUP): no migration afterwards,
 * which on v1 costs an RCU grace period (5-20 ms).  Fall back to clone()
 * where the kernel predates clone3 (< 5.3). */
static pid_t clone_child(int flags, int cgroup_fd, int *pidfd)
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
    born_in_cgroup = cgroup_fd >= 0;
    pid_t pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0 && errno == ENOSYS) {
        *pidfd = -1;
        born_in_cgroup = 0;
        pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
    }
    return pid;
}

/* Enter the PID namespace of a running container for our next child
 * only; *saved gets our own back.  setns(CLONE_NEWPID) changes where
 * children are born, never the caller itself. */
static int enter_pidns(int pidfd, int *saved)
{
    *saved = open("/proc/thread-self/ns/pid_for_children", O_RDONLY | O_CLOEXEC);
    if (*saved < 0)
        return -errno;
    if (setns(pidfd, CLONE_NEWPID) < 0) {
        int err = errno;
        close(*saved);
        *saved = -1;
        return -err;
    }
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

    if (own_pipe && pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    if (req->join_pidfd >= 0 && (rc = enter_pidns(req->join_pidfd, &saved_pidns)) < 0) {
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

    int pidfd = -1;
    int nsflags = req->join_pidfd >= 0 ? 0 : req->clone_flags & ~CLONE_NEWCGROUP;
    pid_t pid = clone_child(nsflags, req->cgroup_dir_fd, &pidfd);
    if (pid == 0) {
        struct child_ctx c = { .req = req, .status_fd = pipefd[1], .root_fd = -1 };
        if (own_pipe)
            close(pipefd[0]);
        report(&c, STEP_CLONE, 0);
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

/* A detached start.  Fork (twice, so init adopts it) a monitor process
 * that spawns the container (so it is the container's parent and can reap
 * it), tells us the container's PID, and execs monitor_argv: a small C
 * program whose memory is its own, not a copy of this Python process.  The fds in pass_fds
 * (the container's output pipes) stay open across that exec.  The
 * container reports its steps on req->status_fd, which the caller made. */
int shim_spawn_monitored(const struct shim_spawn *req,
                         const char *const *monitor_argv,
                         const int *pass_fds, int n_pass_fds,
                         int *container_pid)
{
    int info[2];
    sigset_t all, old;

    if (req->status_fd < 0)
        return -EINVAL;
    if (pipe2(info, O_CLOEXEC) < 0)
        return -errno;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t mid = fork();
    if (mid == 0) {
        struct shim_child child;
        close(info[0]);
        setsid(); /* no terminal's signals reach the monitor */
        if (fork() != 0)
            _exit(0); /* the intermediate: its exit hands the monitor to init */
        int rc = shim_spawn(req, &child);
        int32_t msg[2] = { rc < 0 ? rc : child.pid, getpid() };
        if (write(info[1], msg, sizeof msg) != sizeof msg || rc < 0)
            _exit(125);
        if (child.pidfd >= 0)
            close(child.pidfd);
        monitor_stdio_and_fds(pass_fds, n_pass_fds);
        for (int sig = 1; sig < NSIG; sig++)
            signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(monitor_argv[0], (char *const *)monitor_argv);
        _exit(125); /* the container, orphaned, is reaped by init */
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
