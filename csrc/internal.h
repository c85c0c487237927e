/* internal.h - what the shim's C files share and Python never sees.
 *
 * shim.h is the public face (its CDEF block is what cffi reads); this
 * header holds the container child's context and the prototypes of the
 * steps one file defines and another runs.  The files:
 *   spawn.c    the parent side: clone3, shim_spawn, shim_spawn_monitored;
 *   child.c    child_main() and its process steps (signals, session,
 *              stdio, fds, cgroups, namespaces, console, hostname);
 *   mounts.c   the filesystem view: rootfs, pivot_root, volumes, tmpfs,
 *              --read-only, and setup_filesystem() running them all;
 *   kernfs.c   /proc, /dev, /sys, sysctls, masked and read-only paths;
 *   ocimounts.c OCI mode's filesystem: a config.json's mounts, devices,
 *              /dev links, propagation, --no-pivot;
 *   creds.c    rlimits, capabilities, ids, no_new_privs;
 *   ocicreds.c OCI mode's credentials: groups, the five capability sets,
 *              umask;
 *   exec.c     the wait for the parent's go, and execve along PATH;
 *   seccomp.c  compiling a profile (parent) and installing it (child);
 *   userns.c   the parent's half of a user namespace start;
 *   syscalls.c thin errno-preserving wrappers Python calls directly.
 */
#ifndef BOCKER_INTERNAL_H
#define BOCKER_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "formats.h"
#include "shim.h"

/* Devices in a container's /dev (the table is in kernfs.c). */
#define N_DEVS 6

/* Most v1 cgroup files a start may ask the child to join (one per
 * controller); more is refused with E2BIG before clone. */
#define MAX_CGROUP_FDS 16

/* Most arguments shim_spawn_monitored passes bocker-monitor (it adds the
 * container's PID and pidfd); more is refused with E2BIG before fork. */
#define MONITOR_MAX_ARGS 64

/* The container child's state between clone and execve.  It lives on the
 * child's stack: nothing here is shared with the parent or another start. */
struct child_ctx {
    const struct shim_spawn *req;
    int status_fd;
    int born_in_cgroup;          /* clone3 put us in req->cgroup_dir_fd's
                                    group already (CLONE_INTO_CGROUP) */
    int index;                   /* the mount, sysctl or rlimit the running
                                    step works on (its report says it), or
                                    -1 */
    int bind_fds[SHIM_MAX_BINDS]; /* open_tree() clones of the volumes */
    /* user namespace only (else -1): detached mounts made before
     * pivot_root, attached after it */
    int root_fd;                 /* the idmapped rootfs, from the parent */
    int proc_fd, sys_fd;         /* fsmount()ed /proc and /sys */
    int dev_fds[N_DEVS];         /* open_tree() clones of the host's devs */
    /* OCI mode only */
    int oci_userns;              /* in a user namespace of our own */
    int oci_fds[SHIM_OCI_MAX_MOUNTS];      /* mounts' detached trees, or -1 */
    int oci_dev_fds[SHIM_OCI_MAX_DEVICES]; /* user namespace: the host's
                                              nodes, cloned; or -1 */
};

/* child.c */
void child_main(struct child_ctx *c) __attribute__((noreturn));
void child_report(struct child_ctx *c, int step, int err);
int oci_joins_userns(const struct shim_spawn *req);

/* spawn.c */
int oci_parent_joins(const struct shim_spawn *req, int nstype);

/* Run one step: report it, and stop the child on failure with the
 * runtime's exit code (formats.h: an exec failure has codes of its own). */
#define STEP(c, step, expr)                                             \
    do {                                                                \
        int err_ = (expr);                                              \
        child_report((c), (step), err_);                                \
        if (err_)                                                       \
            _exit(SHIM_EXIT_RUNTIME);                                   \
    } while (0)

/* mounts.c */
void setup_filesystem(struct child_ctx *c);
int attach_tree(int fd, const char *target);
int make_mounts_private(void);
int bind_rootfs(const char *rootfs, int nodev);
int umount_old_root(void);
int make_target(const char *target, int is_file);

/* ocimounts.c */
void setup_oci_filesystem(struct child_ctx *c);
int oci_open(int dirfd, const char *path, int flags, mode_t mode);
int oci_open_dir_made(const char *path);
int oci_make_cwd(const char *cwd);

/* kernfs.c */
int open_kernfs(struct child_ctx *c);
int open_devices(struct child_ctx *c);
int mount_proc(void);
int mount_dev(const int *dev_fds);
int mount_devpts(void);
int mount_shm(void);
int mount_sys(void);
int write_sysctls(struct child_ctx *c);
int mask_paths(struct child_ctx *c, const char *const *paths, int n);
int readonly_paths(struct child_ctx *c, const char *const *paths, int n);
extern const char *const default_masked_paths[];
extern const int n_default_masked_paths;
extern const char *const default_readonly_paths[];
extern const int n_default_readonly_paths;

/* creds.c */
int become_userns_root(void);
int set_rlimits(struct child_ctx *c);
int drop_bounding_caps(uint64_t keep);
int set_ids(unsigned uid, unsigned gid, const unsigned *groups, int n_groups);
int set_caps(uint64_t keep, unsigned uid);
int set_no_new_privs(void);

/* ocicreds.c */
int oci_set_ids(const struct shim_spawn *req);
int oci_set_caps(const struct shim_oci *oci);
int oci_raise_ambient(uint64_t ambient);
int oci_umask(int mask);

/* exec.c */
int wait_go(int fd);
int exec_command(const struct shim_spawn *req);
int check_command(const struct shim_spawn *req);

/* seccomp.c */
int install_seccomp(const struct shim_spawn *req);

/* syscalls.c */
int send_fd(int sock, int fd);

#endif
