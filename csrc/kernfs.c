/* kernfs.c - the kernel's filesystems in a container: /proc, /dev (its
 * few harmless devices, devpts, shm), /sys, the --sysctl writes, and
 * Docker's masked and read-only paths.  setup_filesystem() (mounts.c)
 * runs these after pivot_root; in a user namespace open_kernfs() and
 * open_devices() take their detached sources before it.  Child only;
 * each returns 0 or an errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
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
int open_kernfs(struct child_ctx *c)
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
int open_devices(struct child_ctx *c)
{
    for (size_t i = 0; i < N_DEVS; i++) {
        c->dev_fds[i] = (int)syscall(SYS_open_tree, AT_FDCWD, devs[i].name,
                                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (c->dev_fds[i] < 0)
            return errno;
    }
    return 0;
}

/* A fresh procfs: its own PID namespace's processes. */
int mount_proc(void)
{
    mkdir("/proc", 0555);
    return mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 NULL) < 0 ? errno : 0;
}

/* mknod one of devs, mode 0666. */
static int make_dev(size_t i)
{
    if (mknod(devs[i].name, S_IFCHR | 0666, makedev(devs[i].maj, devs[i].min)) < 0 ||
        chmod(devs[i].name, 0666) < 0) /* undo the umask */
        return errno;
    return 0;
}

/* A fresh /dev holding only the harmless devices: made with mknod, or
 * with dev_fds (a user namespace) the host's own bound onto empty files. */
int mount_dev(const int *dev_fds)
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
int mount_devpts(void)
{
    if (mkdir("/dev/pts", 0755) < 0)
        return errno;
    return mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                 "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0 ? errno : 0;
}

/* /dev/shm: a small tmpfs of the container's own. */
int mount_shm(void)
{
    if (mkdir("/dev/shm", 01777) < 0)
        return errno;
    return mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 "mode=1777,size=65536k") < 0 ? errno : 0;
}

/* sysfs, read-only. */
int mount_sys(void)
{
    mkdir("/sys", 0555);
    return mount("sysfs", "/sys", "sysfs",
                 MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ? errno : 0;
}

/* Write each "key=value" of --sysctl under /proc/sys, before /proc/sys
 * becomes read-only.  Python allows only keys the kernel namespaces
 * (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*), so these
 * writes change the container's namespaces, never the host. */
int write_sysctls(struct child_ctx *c)
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
        /* no symlink on the way: an OCI image's /proc could be one (into
         * another proc, with the host's PID namespace /proc/PID/root) */
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = O_WRONLY | O_CLOEXEC;
        how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
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
 * image, keyrings, timers, the scheduler's state, firmware).  bocker's
 * own containers get these; an OCI config names its own list. */
const char *const default_masked_paths[] = {
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
};
const int n_default_masked_paths =
    (int)(sizeof default_masked_paths / sizeof default_masked_paths[0]);

/* Docker's read-only paths: /proc/sys (host-wide sysctls such as
 * kernel.core_pattern, which makes the host kernel run a program as
 * root), sysrq-trigger, irq and bus settings, fs knobs. */
const char *const default_readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};
const int n_default_readonly_paths =
    (int)(sizeof default_readonly_paths / sizeof default_readonly_paths[0]);

/* Mask each of paths (inside the container): a file is covered by
 * /dev/null, a directory by an empty read-only tmpfs; a path this kernel
 * (or this container) lacks is skipped.  c->index names the one that
 * failed. */
int mask_paths(struct child_ctx *c, const char *const *paths, int n)
{
    for (int i = 0; i < n; i++) {
        struct stat st;
        c->index = i;
        if (lstat(paths[i], &st) < 0) {
            if (errno == ENOENT)
                continue;
            return errno;
        }
        int rc = S_ISDIR(st.st_mode)
            ? mount("tmpfs", paths[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    "size=0,mode=0555")
            : mount("/dev/null", paths[i], NULL, MS_BIND, NULL);
        if (rc < 0)
            return errno;
    }
    return 0;
}

/* Make each of paths read-only: bound onto itself and the bind made
 * read-only, nosuid, nodev and noexec; a missing path is skipped. */
int readonly_paths(struct child_ctx *c, const char *const *paths, int n)
{
    for (int i = 0; i < n; i++) {
        c->index = i;
        if (mount(paths[i], paths[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT)
                continue;
            return errno;
        }
        if (mount(NULL, paths[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID |
                  MS_NODEV | MS_NOEXEC, NULL) < 0)
            return errno;
    }
    return 0;
}
