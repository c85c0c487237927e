/* mounts.c - the container's filesystem view, made by its child.
 *
 * Read setup_filesystem() at the bottom: the rootfs and the volumes'
 * source trees are taken while the host is reachable, then pivot_root,
 * then fresh /proc, /dev and /sys, Docker's masked and read-only paths,
 * the volumes attached and tmpfs mounted at targets resolved inside the
 * container.  Runs in the child only; each step returns 0 or an errno,
 * and a step over a list sets c->index to the entry it works on, so its
 * failure report names it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stddef.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

/* The devices of a container's /dev: made with mknod, or in a user
 * namespace (where mknod is refused) bind-mounted from the host's. */
static const struct { const char *name; unsigned maj, min; } devs[N_DEVS] = {
    { "/dev/null", 1, 3 },    { "/dev/zero", 1, 5 },
    { "/dev/full", 1, 7 },    { "/dev/random", 1, 8 },
    { "/dev/urandom", 1, 9 }, { "/dev/tty", 5, 0 },
};

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
    if (req->n_mounts > SHIM_MAX_BINDS) /* shim_spawn refused it already */
        return E2BIG;
    for (int i = 0; i < req->n_mounts; i++) {
        c->bind_fds[i] = -1;
        if (!req->mounts[i].source)
            continue;
        c->index = i;
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
static int write_sysctls(struct child_ctx *c)
{
    const char *const *sysctls = c->req->sysctls;
    for (c->index = 0; sysctls && *sysctls; sysctls++, c->index++) {
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
    for (int i = 0; i < req->n_mounts; i++) {
        const struct shim_mount *m = &req->mounts[i];
        if (!m->source)
            continue;
        c->index = i;
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

/* --tmpfs: a fresh tmpfs at each target, nosuid and nodev. */
static int mount_tmpfses(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;
    for (int i = 0; i < req->n_mounts; i++) {
        const struct shim_mount *m = &req->mounts[i];
        if (m->source)
            continue;
        c->index = i;
        int err = make_target(m->target, 0);
        if (err)
            return err;
        unsigned long flags = MS_NOSUID | MS_NODEV | (m->readonly ? MS_RDONLY : 0);
        if (mount("tmpfs", m->target, "tmpfs", flags, m->data) < 0)
            return errno;
    }
    return 0;
}


/* Make the container's filesystem view: a new root with fresh /proc,
 * /dev and /sys, and the volumes.  A step that fails ends the child. */
void setup_filesystem(struct child_ctx *c)
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
        STEP(c, STEP_SYSCTL, write_sysctls(c));
    if (!req->privileged) {
        STEP(c, STEP_MASK_PATHS, mask_paths());
        STEP(c, STEP_READONLY_PATHS, readonly_paths());
    }
    if (req->n_mounts) {
        STEP(c, STEP_MOVE_BINDS, move_binds(c));
        STEP(c, STEP_MOUNT_TMPFS, mount_tmpfses(c));
    }
    if (req->readonly_rootfs)
        STEP(c, STEP_READONLY_ROOT, readonly_root(!req->privileged));
}
