/* syscalls.c - thin wrappers Python calls through cffi (see
 * bocker/kernel/native.py): the kernel call, and -errno on failure.
 * Parent side only: the container child never calls these.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

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

/* Send one fd over a unix socket (SCM_RIGHTS); 0 or an errno (the child's
 * console step uses it too). */
int send_fd(int sock, int fd)
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

/* A start's attach sockets (the protocol is in formats.h), made here
 * rather than with Python's socket module, whose import costs more than
 * this whole step: fds[0] listens on NAME in the directory dir_fd (mode
 * 0600), bound through /proc/self/fd so that a long path still fits
 * sockaddr_un, and never abstract (a --network host container shares the
 * host's abstract namespace); fds[1] and fds[2] are a connected pair, the
 * starter's end and the monitor's.  All SOCK_SEQPACKET and CLOEXEC.  A
 * socket left by the container's previous run is replaced. */
int shim_attach_sockets(int dir_fd, const char *name, int *fds)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int n = snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dir_fd, name);
    if (n < 0 || (size_t)n >= sizeof addr.sun_path)
        return -ENAMETOOLONG;
    if (unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT)
        return -errno;
    int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        return -errno;
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        fchmodat(dir_fd, name, 0600, 0) < 0 || listen(lfd, 16) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds + 1) < 0) {
        int err = errno;
        close(lfd);
        unlinkat(dir_fd, name, 0);
        return -err;
    }
    fds[0] = lfd;
    return 0;
}
