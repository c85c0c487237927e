/* mounts.c - the container's filesystem view, made by its child.
 *
 * Read setup_filesystem() at the bottom: the rootfs and the volumes'
 * source trees are taken while the host is reachable, then pivot_root,
 * then fresh /proc, /dev and /sys and Docker's masked and read-only paths
 * (kernfs.c), the volumes attached and tmpfs mounted at targets resolved
 * inside the container, and the working directory made if missing.  Runs
 * in the child only; each step returns 0 or an errno, and a step over a
 * list sets c->index to the entry it works on, so its failure report
 * names it.
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
#include <unistd.h>

#include "internal.h"

/* Mount events must not propagate back to the host's namespace. */
int make_mounts_private(void)
{
    return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ? errno : 0;
}

/* pivot_root needs the new root to be a mount point.  nodev: a device
 * node that an image layer carries (or that anything created) cannot be
 * opened; the container's devices are the ones in its fresh /dev. */
int bind_rootfs(const char *rootfs, int nodev)
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
                        (req->privileged || req->mounts[i].device ? 0 : MOUNT_ATTR_NODEV);
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

int umount_old_root(void)
{
    if (umount2(".", MNT_DETACH) < 0)
        return errno;
    return chdir("/") < 0 ? errno : 0;
}

/* Attach a detached mount (open_tree, fsmount, the parent's idmapped
 * rootfs) at target, which is resolved where we are now: after
 * pivot_root, inside the container. */
int attach_tree(int fd, const char *target)
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

/* --read-only: the root mount (not /dev, /proc, volumes or tmpfs, which
 * are mounts of their own) becomes read-only. */
static int readonly_root(int nodev)
{
    return mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
                 (nodev ? MS_NODEV : 0), NULL) < 0 ? errno : 0;
}


/* Create a mount point inside the container (after pivot_root, so any
 * symlink on the way resolves inside the container). */
int make_target(const char *target, int is_file)
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
        STEP(c, STEP_MASK_PATHS,
             mask_paths(c, default_masked_paths, n_default_masked_paths));
        STEP(c, STEP_READONLY_PATHS,
             readonly_paths(c, default_readonly_paths, n_default_readonly_paths));
    }
    if (req->n_mounts) {
        STEP(c, STEP_MOVE_BINDS, move_binds(c));
        STEP(c, STEP_MOUNT_TMPFS, mount_tmpfses(c));
    }
    if (req->cwd && req->cwd[0] == '/' && req->cwd[1])
        STEP(c, STEP_MAKE_CWD, oci_make_cwd(req->cwd));
    if (req->readonly_rootfs)
        STEP(c, STEP_READONLY_ROOT, readonly_root(!req->privileged));
}
