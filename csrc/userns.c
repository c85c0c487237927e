/* userns.c - the parent's half of a container in its own user namespace.
 *
 * The child (child.c, STEP_USERNS) is cloned with CLONE_NEWUSER and waits.
 * Meanwhile its parent, still root in the initial user namespace, writes
 * the child's uid_map and gid_map (from Python) and makes the idmapped
 * rootfs here: only a process privileged over the filesystem's own user
 * namespace (btrfs: the initial one) may create an idmapped mount, so the
 * child could not make it itself.  The tree goes to the child over a unix
 * socket, and the child attaches it as its root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* The socket pair over which the parent sends the tree (CLOEXEC both):
 * here rather than Python's socket module, whose import costs more than
 * the whole of the parent's part. */
int shim_unix_pair(int *fds)
{
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 ? -errno : 0;
}

/* A detached, recursive clone of path whose ids are shifted through
 * userns_fd's mappings (MOUNT_ATTR_IDMAP), with attr_set's other
 * MOUNT_ATTR_* flags (nodev, ...) set on every mount of the tree.  A file
 * that is owned by 0 on disk is then owned by the container's root inside,
 * and a file the container's root creates is owned by 0 on disk: the
 * snapshot keeps the image's ownership, so commit needs no chown back.
 * Returns the tree's fd (O_CLOEXEC) or -errno. */
int shim_idmapped_tree(const char *path, int userns_fd, uint64_t attr_set)
{
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0)
        return -errno;
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = attr_set | MOUNT_ATTR_IDMAP;
    attr.userns_fd = (uint64_t)userns_fd;
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                sizeof attr) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}
