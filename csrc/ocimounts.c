/* ocimounts.c - OCI mode's filesystem (struct shim_oci), made by the
 * container child instead of bocker's fixed /proc, /dev and /sys.
 *
 * Read setup_oci_filesystem() at the bottom.  What lives on the host (the
 * sources of bind mounts; in a user namespace the host's device nodes) is
 * taken as detached mounts while the host is still reachable (in a user
 * namespace every new mount is made detached then too, see
 * needs_early_fs); then pivot_root (or, with --no-pivot, MS_MOVE and
 * chroot), and every mount is attached or made, in config order, at a
 * target resolved inside the container: a symlink in the image can point
 * only into the container, never onto the host.  Child only; each step
 * returns 0 or an errno, and a step over a list sets c->index to the entry
 * it works on, so its failure report names it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

/* mount(2)'s per-mount flags as mount_setattr() attributes: what a bind's
 * options can ask for on its detached tree.  The atime mode is one field:
 * setting one clears the others. */
static void bind_attrs(unsigned long flags, struct mount_attr *attr)
{
    memset(attr, 0, sizeof *attr);
    if (flags & MS_RDONLY)
        attr->attr_set |= MOUNT_ATTR_RDONLY;
    if (flags & MS_NOSUID)
        attr->attr_set |= MOUNT_ATTR_NOSUID;
    if (flags & MS_NODEV)
        attr->attr_set |= MOUNT_ATTR_NODEV;
    if (flags & MS_NOEXEC)
        attr->attr_set |= MOUNT_ATTR_NOEXEC;
    if (flags & MS_NODIRATIME)
        attr->attr_set |= MOUNT_ATTR_NODIRATIME;
    if (flags & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME)) {
        attr->attr_clr |= MOUNT_ATTR__ATIME;
        attr->attr_set |= (flags & MS_NOATIME) ? MOUNT_ATTR_NOATIME
                        : (flags & MS_STRICTATIME) ? MOUNT_ATTR_STRICTATIME
                        : MOUNT_ATTR_RELATIME;
    }
}

/* The kernel lets a user namespace mount proc or sysfs only while a full
 * instance of it is visible (mount_too_revealing), which pivot_root ends:
 * there every new mount is made before it, as a detached one, in config
 * order (so /proc/self/mountinfo, which lists mounts in the order they
 * were made, shows the config's order), and attached after it. */
static int needs_early_fs(const struct child_ctx *c, const struct shim_oci_mount *m)
{
    return c->oci_userns && m->fstype;
}

/* Clone the source tree of each bind mount as a detached mount while the
 * host's filesystem is reachable, and set its flags on it before anyone
 * inside can see it.  Attached by mount_oci_mounts() after pivot_root. */
static int open_oci_binds(struct child_ctx *c)
{
    const struct shim_oci *oci = c->req->oci;
    for (int i = 0; i < oci->n_mounts; i++) {
        const struct shim_oci_mount *m = &oci->mounts[i];
        if (m->fstype)
            continue;
        c->index = i;
        if (!m->source)
            return EINVAL;
        unsigned int rec = m->recursive ? AT_RECURSIVE : 0;
        int fd = (int)syscall(SYS_open_tree, AT_FDCWD, m->source,
                              OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
        if (fd < 0)
            return errno;
        c->oci_fds[i] = fd;
        struct mount_attr attr;
        bind_attrs(m->flags, &attr);
        if ((attr.attr_set || attr.attr_clr) &&
            syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | rec, &attr, sizeof attr) < 0)
            return errno;
    }
    return 0;
}

/* Hand fsconfig() a mount(2) data string, one comma-separated option at a
 * time ("key=value" or a flag). */
static int fs_config_data(int ctx, const char *data)
{
    char buf[4096], *save = NULL;
    if (!data || !*data)
        return 0;
    if (strlen(data) >= sizeof buf)
        return E2BIG;
    strcpy(buf, data);
    for (char *opt = strtok_r(buf, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(opt, '=');
        long rc;
        if (eq) {
            *eq = '\0';
            rc = syscall(SYS_fsconfig, ctx, FSCONFIG_SET_STRING, opt, eq + 1, 0);
        } else {
            rc = syscall(SYS_fsconfig, ctx, FSCONFIG_SET_FLAG, opt, NULL, 0);
        }
        if (rc < 0)
            return errno;
    }
    return 0;
}

/* The superblock flags of mount(2) as fsconfig() flags. */
static int fs_config_flags(int ctx, unsigned long flags)
{
    static const struct { unsigned long ms; const char *name; } sb[] = {
        { MS_RDONLY, "ro" }, { MS_SYNCHRONOUS, "sync" }, { MS_DIRSYNC, "dirsync" },
        { MS_LAZYTIME, "lazytime" }, { MS_MANDLOCK, "mand" },
    };
    for (size_t i = 0; i < sizeof sb / sizeof sb[0]; i++)
        if ((flags & sb[i].ms) &&
            syscall(SYS_fsconfig, ctx, FSCONFIG_SET_FLAG, sb[i].name, NULL, 0) < 0)
            return errno;
    return 0;
}

/* A detached new mount: what mount(m->source, target, m->fstype,
 * m->flags, m->data) would make, through fsopen/fsconfig/fsmount. */
static int fs_detached(const struct shim_oci_mount *m, int *out)
{
    int ctx = (int)syscall(SYS_fsopen, m->fstype, FSOPEN_CLOEXEC);
    if (ctx < 0)
        return errno;
    struct mount_attr attr;
    bind_attrs(m->flags, &attr);
    int err = 0, fd = -1;
    if (m->source && *m->source &&
        syscall(SYS_fsconfig, ctx, FSCONFIG_SET_STRING, "source", m->source, 0) < 0)
        err = errno;
    if (!err)
        err = fs_config_data(ctx, m->data);
    if (!err)
        err = fs_config_flags(ctx, m->flags);
    if (!err && syscall(SYS_fsconfig, ctx, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        err = errno;
    if (!err && (fd = (int)syscall(SYS_fsmount, ctx, FSMOUNT_CLOEXEC,
                                   (unsigned int)attr.attr_set)) < 0)
        err = errno;
    close(ctx);
    if (!err)
        *out = fd;
    return err;
}

/* A user namespace without a network namespace of its own may not mount
 * sysfs (it shows the network devices of the host's): as runc does, the
 * host's /sys is bound instead, recursively, with the mount's flags. */
static int sysfs_from_host(const struct shim_oci_mount *m, int *out)
{
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, "/sys",
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0)
        return errno;
    struct mount_attr attr;
    bind_attrs(m->flags, &attr);
    if ((attr.attr_set || attr.attr_clr) &&
        syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                sizeof attr) < 0) {
        int err = errno;
        close(fd);
        return err;
    }
    *out = fd;
    return 0;
}

/* In a user namespace, make each new mount as a detached one now, in
 * config order (see needs_early_fs). */
static int open_oci_fs(struct child_ctx *c)
{
    const struct shim_oci *oci = c->req->oci;
    for (int i = 0; i < oci->n_mounts; i++) {
        const struct shim_oci_mount *m = &oci->mounts[i];
        if (!needs_early_fs(c, m))
            continue;
        c->index = i;
        int err = fs_detached(m, &c->oci_fds[i]);
        if (err == EPERM && strcmp(m->fstype, "sysfs") == 0 &&
            !(c->req->clone_flags & CLONE_NEWNET))
            err = sysfs_from_host(m, &c->oci_fds[i]);
        if (err)
            return err;
    }
    return 0;
}

/* In a user namespace mknod is refused: clone the host's node at each
 * device's path, to bind it over an empty file in the container. */
static int open_oci_devices(struct child_ctx *c)
{
    const struct shim_oci *oci = c->req->oci;
    for (int i = 0; i < oci->n_devices; i++) {
        c->index = i;
        c->oci_dev_fds[i] = (int)syscall(SYS_open_tree, AT_FDCWD, oci->devices[i].path,
                                         OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (c->oci_dev_fds[i] < 0)
            return errno;
    }
    return 0;
}

/* --no-pivot (a rootfs on a ramfs, where pivot_root is refused): move the
 * rootfs mount onto / and chroot into it. */
static int move_root(void)
{
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
        return errno;
    return 0;
}

/* The rootfs as a mount point of its own (bind_rootfs), and our working
 * directory: from here on nothing is looked up by its host path, so
 * pivot_root needs no path lookup through host directories that the
 * user namespace's root may not search. */
static int enter_rootfs(const char *rootfs)
{
    int err = bind_rootfs(rootfs, 0);
    if (err)
        return err;
    return chdir(rootfs) < 0 ? errno : 0;
}

/* pivot_root(".", "."): see do_pivot_root() (mounts.c), here from inside
 * the rootfs already. */
static int pivot_here(void)
{
    return syscall(SYS_pivot_root, ".", ".") < 0 ? errno : 0;
}

/* openat2() following no magic link on the way: without a PID namespace
 * of its own the container's /proc/1/root is the host's root, and an
 * image's symlink into it would make a path inside reach the host.
 * Returns an fd or -errno. */
int oci_open(int dirfd, const char *path, int flags, mode_t mode)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_NO_MAGICLINKS;
    int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    return fd < 0 ? -errno : fd;
}

/* Split an absolute path into its directory (into dir) and its last
 * component (*name points into dir's buffer's tail; "" for "/"). */
static int split_path(const char *path, char *dir, size_t size, const char **name)
{
    size_t len = strlen(path);
    if (len >= size)
        return ENAMETOOLONG;
    if (path[0] != '/')
        return EINVAL;
    memcpy(dir, path, len + 1);
    while (len > 1 && dir[len - 1] == '/') /* "/a/b/" names b */
        dir[--len] = '\0';
    char *slash = strrchr(dir, '/');
    *name = slash + 1;
    if (slash == dir) {  /* "/x": its directory is "/", kept apart */
        memmove(dir + 2, dir + 1, len);
        dir[1] = '\0';
        *name = dir + 2;
    } else {
        *slash = '\0';
    }
    return 0;
}

/* An O_PATH fd on the directory path inside the container, each missing
 * component made (0755) on the way, one at a time below an fd that
 * followed no magic link.  Returns an fd or -errno. */
int oci_open_dir_made(const char *path)
{
    char buf[4096], *save = NULL;
    if (strlen(path) >= sizeof buf)
        return -ENAMETOOLONG;
    strcpy(buf, path);
    int fd = oci_open(AT_FDCWD, "/", O_PATH | O_DIRECTORY, 0);
    for (char *comp = strtok_r(buf, "/", &save); fd >= 0 && comp;
         comp = strtok_r(NULL, "/", &save)) {
        int next = oci_open(fd, comp, O_PATH | O_DIRECTORY, 0);
        if (next == -ENOENT) {
            if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST)
                next = -errno;
            else
                next = oci_open(fd, comp, O_PATH | O_DIRECTORY, 0);
        }
        close(fd);
        fd = next;
    }
    return fd;
}

/* The working directory (process.cwd; run's -w), made if the image lacks
 * it, as runc does, after everything is mounted: one below a volume's
 * target is made in the volume.  Resolved from the container's own root
 * (after pivot_root) by oci_open_dir_made, so no link leads out of it; a
 * read-only mount refuses it (EROFS).  Returns 0 or an errno. */
int oci_make_cwd(const char *cwd)
{
    int fd = oci_open_dir_made(cwd);
    if (fd < 0)
        return -fd;
    close(fd);
    return 0;
}

/* Make target inside the container if it is missing (a directory, or an
 * empty file if is_file) and return an O_PATH fd on it (or -errno),
 * following no magic link on the way. */
static int open_target(const char *target, int is_file)
{
    char dir[4096 + 2];
    const char *name;
    int err = split_path(target, dir, sizeof dir, &name);
    if (err)
        return -err;
    int dfd = oci_open_dir_made(dir);
    if (dfd < 0 || !*name)
        return dfd;
    int fd = oci_open(dfd, name, O_PATH, 0);
    if (fd == -ENOENT) {
        int err = 0;
        if (is_file) {
            int file = oci_open(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
            if (file >= 0)
                close(file);
            else if (file != -EEXIST)
                err = -file;
        } else if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST) {
            err = errno;
        }
        /* what is there now (EEXIST: a dangling symlink, which fails here) */
        fd = err ? -err : oci_open(dfd, name, O_PATH, 0);
    }
    close(dfd);
    return fd;
}

/* Attach the detached tree fd at the target fd (both held). */
static int attach_at(int fd, int target_fd)
{
    if (syscall(SYS_move_mount, fd, "", target_fd, "",
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return errno;
    return 0;
}

/* A fresh clone of a detached tree, made now: since Linux 6.8
 * /proc/self/mountinfo lists a namespace's mounts in the order they were
 * created, so a bind cloned before pivot_root would be listed ahead of the
 * /proc, /dev, ... the config puts before it (runtime-tools checks the
 * order).  The clone keeps the flags mount_setattr set.  Where a detached
 * mount cannot be cloned again (older kernels, which list by attach order
 * anyway) the original is used.  Returns the fd to attach (the original
 * is closed if a clone replaced it). */
static int reclone_now(int fd)
{
    /* recursive: the tree is exactly what was cloned or made before (a
     * plain bind has no submounts; the host's /sys for sysfs has) */
    int again = (int)syscall(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
                             AT_EMPTY_PATH | AT_RECURSIVE);
    if (again < 0)
        return fd;
    close(fd);
    return again;
}

/* One mount of the config, at its target resolved in here: a detached
 * tree attached, or a new mount(2); then its propagation. */
static int mount_one(struct child_ctx *c, int i)
{
    const struct shim_oci_mount *m = &c->req->oci->mounts[i];
    int is_file = 0;
    if (c->oci_fds[i] >= 0 && !m->fstype) {
        struct stat st;
        if (fstat(c->oci_fds[i], &st) < 0)
            return errno;
        is_file = m->is_file || !S_ISDIR(st.st_mode);
    }
    int tfd = open_target(m->target, is_file);
    if (tfd < 0)
        return -tfd;
    int err = 0;
    if (c->oci_fds[i] >= 0) {
        c->oci_fds[i] = reclone_now(c->oci_fds[i]);
        err = attach_at(c->oci_fds[i], tfd);
        close(c->oci_fds[i]);
        c->oci_fds[i] = -1;
    } else if (mount(m->source, m->target, m->fstype, m->flags, m->data) < 0) {
        err = errno;
    }
    close(tfd);
    if (!err && m->propagation && mount(NULL, m->target, NULL, m->propagation, NULL) < 0)
        err = errno;
    return err;
}

/* Every mount of the config, in its order (a later one may sit on an
 * earlier one: /dev, then /dev/pts). */
static int mount_oci_mounts(struct child_ctx *c)
{
    for (int i = 0; i < c->req->oci->n_mounts; i++) {
        c->index = i;
        int err = mount_one(c, i);
        if (err)
            return err;
    }
    return 0;
}

/* One device node at its path: whatever is there (not a directory) goes
 * first, as runc does; mknod, then its mode without our umask, then its
 * owner.  In a user namespace the host's node (fd) is bound over an empty
 * file instead.  All below a directory fd reached with no magic link. */
static int make_device(const struct shim_oci_device *d, int fd)
{
    mode_t kind = d->kind == 'b' ? S_IFBLK : d->kind == 'p' ? S_IFIFO : S_IFCHR;
    if (d->kind != 'b' && d->kind != 'c' && d->kind != 'p')
        return EINVAL;
    char dir[4096 + 2];
    const char *name;
    int err = split_path(d->path, dir, sizeof dir, &name);
    if (err)
        return err;
    if (!*name)
        return EISDIR;
    int dfd = oci_open_dir_made(dir);
    if (dfd < 0)
        return -dfd;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode))
            err = EISDIR;
        else if (unlinkat(dfd, name, 0) < 0)
            err = errno;
    } else if (errno != ENOENT) {
        err = errno;
    }
    if (!err && fd >= 0) {
        int file = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (file < 0)
            err = errno;
        else if (close(file), syscall(SYS_move_mount, fd, "", dfd, name,
                                       MOVE_MOUNT_F_EMPTY_PATH) < 0)
            err = errno;
        close(fd);
    } else if (!err) {
        mode_t perm = d->mode & 07777;
        if (mknodat(dfd, name, kind | perm, makedev(d->major, d->minor)) < 0 ||
            fchmodat(dfd, name, perm, 0) < 0 ||
            fchownat(dfd, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
            err = errno;
    }
    close(dfd);
    return err;
}

/* The config's devices, after the mounts (so on the /dev tmpfs it made). */
static int make_oci_devices(struct child_ctx *c)
{
    const struct shim_oci *oci = c->req->oci;
    for (int i = 0; i < oci->n_devices; i++) {
        c->index = i;
        int err = make_device(&oci->devices[i], c->oci_dev_fds[i]);
        c->oci_dev_fds[i] = -1;
        if (err)
            return err;
    }
    return 0;
}

/* The links every OCI container has in /dev (the runtime spec's
 * "default devices" section); one the image or a mount put there already
 * is kept, and a container without /dev gets none. */
static int make_dev_links(void)
{
    static const char *const links[][2] = {
        { "/proc/self/fd", "fd" },       { "/proc/self/fd/0", "stdin" },
        { "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
        { "pts/ptmx", "ptmx" },
    };
    int dfd = oci_open(AT_FDCWD, "/dev", O_PATH | O_DIRECTORY, 0);
    if (dfd == -ENOENT)
        return 0;
    if (dfd < 0)
        return -dfd;
    int err = 0;
    for (size_t i = 0; !err && i < sizeof links / sizeof links[0]; i++)
        if (symlinkat(links[i][0], dfd, links[i][1]) < 0 && errno != EEXIST)
            err = errno;
    close(dfd);
    return err;
}

/* root.readonly: remount the container's / read-only, keeping the
 * per-mount flags its bind took from the host's mount (nosuid, nodev,
 * noexec, the atime mode): a remount without them would clear them (and
 * in a user namespace, where they are locked, fail). */
static int readonly_oci_root(void)
{
    static const struct { unsigned long st, ms; } keep[] = {
        { ST_NOSUID, MS_NOSUID }, { ST_NODEV, MS_NODEV }, { ST_NOEXEC, MS_NOEXEC },
        { ST_NOATIME, MS_NOATIME }, { ST_NODIRATIME, MS_NODIRATIME },
        { ST_RELATIME, MS_RELATIME },
    };
    struct statvfs sv;
    if (statvfs("/", &sv) < 0)
        return errno;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (sv.f_flag & keep[i].st)
            flags |= keep[i].ms;
    return mount(NULL, "/", NULL, flags, NULL) < 0 ? errno : 0;
}

/* linux.rootfsPropagation: the container's / becomes shared, slave, ...
 * once everything is mounted (until then it is private, so nothing of the
 * setup reaches the host). */
static int rootfs_propagation(unsigned long flags)
{
    return mount(NULL, "/", NULL, flags, NULL) < 0 ? errno : 0;
}

/* Close the detached trees a failed or skipped step left (never
 * reached by the container: they are CLOEXEC, but close early anyway). */
static void close_leftovers(struct child_ctx *c)
{
    const struct shim_oci *oci = c->req->oci;
    for (int i = 0; i < oci->n_mounts; i++)
        if (c->oci_fds[i] >= 0)
            close(c->oci_fds[i]);
    for (int i = 0; i < oci->n_devices; i++)
        if (c->oci_dev_fds[i] >= 0)
            close(c->oci_dev_fds[i]);
}

/* Make an OCI container's filesystem view.  A step that fails ends the
 * child. */
void setup_oci_filesystem(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;
    const struct shim_oci *oci = req->oci;

    for (int i = 0; i < SHIM_OCI_MAX_MOUNTS; i++)
        c->oci_fds[i] = -1;
    for (int i = 0; i < SHIM_OCI_MAX_DEVICES; i++)
        c->oci_dev_fds[i] = -1;
    if (oci->n_mounts > SHIM_OCI_MAX_MOUNTS || oci->n_devices > SHIM_OCI_MAX_DEVICES)
        STEP(c, STEP_OCI_OPEN_BINDS, E2BIG); /* shim_spawn refused it already */

    STEP(c, STEP_MOUNT_PRIVATE, make_mounts_private());
    STEP(c, STEP_BIND_ROOTFS, enter_rootfs(req->rootfs));
    if (oci->n_mounts)
        STEP(c, STEP_OCI_OPEN_BINDS, open_oci_binds(c));
    if (c->oci_userns && oci->n_devices)
        STEP(c, STEP_OCI_OPEN_DEVICES, open_oci_devices(c));
    /* Until here our ids were the host's root, unmapped in the namespace
     * but the owner of the host directories on the way to the rootfs and
     * the bind sources (0700 ones too); from now on what we make (a
     * tmpfs's root directory too) must be owned by ids the namespace
     * maps. */
    if (c->oci_userns)
        STEP(c, STEP_USERNS_ROOT, become_userns_root());
    if (c->oci_userns && oci->n_mounts)
        STEP(c, STEP_OCI_OPEN_FS, open_oci_fs(c));
    if (oci->no_pivot)
        STEP(c, STEP_NO_PIVOT, move_root());
    else
        STEP(c, STEP_PIVOT_ROOT, pivot_here());
    if (!oci->no_pivot)
        STEP(c, STEP_UMOUNT_OLDROOT, umount_old_root());
    if (oci->n_mounts)
        STEP(c, STEP_OCI_MOUNTS, mount_oci_mounts(c));
    if (oci->n_devices)
        STEP(c, STEP_OCI_DEVICES, make_oci_devices(c));
    if (oci->default_links)
        STEP(c, STEP_DEV_LINKS, make_dev_links());
    if (req->sysctls)
        STEP(c, STEP_SYSCTL, write_sysctls(c));
    if (oci->n_masked)
        STEP(c, STEP_MASK_PATHS, mask_paths(c, oci->masked, oci->n_masked));
    if (oci->n_readonly)
        STEP(c, STEP_READONLY_PATHS, readonly_paths(c, oci->readonly, oci->n_readonly));
    if (req->cwd && req->cwd[0] == '/' && req->cwd[1])
        STEP(c, STEP_MAKE_CWD, oci_make_cwd(req->cwd));
    if (oci->rootfs_propagation)
        STEP(c, STEP_ROOTFS_PROPAGATION, rootfs_propagation(oci->rootfs_propagation));
    if (req->readonly_rootfs)
        STEP(c, STEP_READONLY_ROOT, readonly_oci_root());
    close_leftovers(c);
}
