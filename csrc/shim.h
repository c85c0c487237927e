/* shim.h - the C side of bocker: every kernel operation bocker makes.
 *
 * Conventions (learnt from crun and bubblewrap):
 *   - every function returns >= 0 on success and -errno on failure;
 *   - nothing here exits the calling process or prints;
 *   - the container child (between clone and execve) runs only this C code
 *     and reports each step over a CLOEXEC pipe as a struct shim_report.
 *
 * The text between CDEF-BEGIN and CDEF-END is also fed to cffi's cdef(), so
 * it must stay plain declarations: no macros, no #include.
 */
#ifndef BOCKER_SHIM_H
#define BOCKER_SHIM_H

#include <stdint.h>

#include "formats.h"

/* CDEF-BEGIN */

/* Steps of the container child, in the order it runs them. */
enum shim_step {
    STEP_CLONE = 1,
    STEP_SIGNALS,
    STEP_SESSION,
    STEP_STDIO,
    STEP_CLOSE_FDS,
    STEP_CGROUP_JOIN,
    STEP_CGROUP_NS,
    STEP_JOIN_CONTAINER,
    STEP_LO_UP,
    STEP_MOUNT_PRIVATE,
    STEP_BIND_ROOTFS,
    STEP_OPEN_BINDS,
    STEP_PIVOT_ROOT,
    STEP_UMOUNT_OLDROOT,
    STEP_MOUNT_PROC,
    STEP_MOUNT_DEV,
    STEP_MOUNT_DEVPTS,
    STEP_MOUNT_SHM,
    STEP_MOUNT_SYS,
    STEP_SYSCTL,
    STEP_MASK_PATHS,
    STEP_READONLY_PATHS,
    STEP_MOVE_BINDS,
    STEP_MOUNT_TMPFS,
    STEP_READONLY_ROOT,
    STEP_HOSTNAME,
    STEP_CONSOLE,
    STEP_CHDIR,
    STEP_RLIMITS,
    STEP_CAPS,
    STEP_SET_IDS,
    STEP_SET_CAPS,
    STEP_NO_NEW_PRIVS,
    STEP_SECCOMP,
    STEP_WAIT_GO,
    STEP_EXECVE,
    STEP_USERNS,
    STEP_OPEN_KERNFS,
    STEP_OPEN_DEVICES,
    STEP_USERNS_ROOT,
    /* OCI mode (struct shim_oci) */
    STEP_JOIN_NS,
    STEP_UNSHARE_NS,
    STEP_OCI_OPEN_BINDS,
    STEP_OCI_OPEN_FS,
    STEP_OCI_OPEN_DEVICES,
    STEP_NO_PIVOT,
    STEP_OCI_MOUNTS,
    STEP_OCI_DEVICES,
    STEP_DEV_LINKS,
    STEP_ROOTFS_PROPAGATION,
    STEP_DOMAINNAME,
    STEP_UMASK,
    STEP_AMBIENT_CAPS,
    STEP_MAKE_CWD,
    STEP_JOIN_NETNS,
    STEP_LAST
};

/* One record on the status pipe. err is 0 for a step that succeeded (sent
 * only when tracing) and a positive errno for the step that failed. */
struct shim_report {
    int32_t step;
    int32_t err;
    int32_t index;       /* what the step failed on: the index in
                            shim_spawn's mounts, sysctls or rlimits (which
                            one the step says), or -1 */
    int32_t reserved;    /* 0; keeps ns 8-aligned with no hidden padding */
    int64_t ns;          /* CLOCK_MONOTONIC when the step finished */
};

/* Most mounts (volumes, tmpfs, the /etc files) one start may make; more
 * is refused with E2BIG before clone. */
enum { SHIM_MAX_BINDS = 64 };

/* A mount the child makes inside the container.  A bind mount's source is a
 * host path, opened with open_tree() before pivot_root; its target is
 * resolved inside the container after pivot_root, so a symlink in the image
 * can never redirect it onto the host. */
struct shim_mount {
    const char *source;  /* host path for a bind; NULL for tmpfs */
    const char *target;  /* absolute path inside the container */
    const char *data;    /* tmpfs options, or NULL */
    int readonly;
    int is_file;         /* create the target as a file, not a directory */
    int device;          /* a --device node: bound without nodev (the devices
                            cgroup, v1, decides what may be opened) */
};

/* One --ulimit: setrlimit(resource, {soft, hard}) in the child. */
struct shim_rlimit {
    int resource;                /* RLIMIT_* */
    uint64_t soft;
    uint64_t hard;
};

/* OCI mode (bocker-oci): the container's filesystem, devices and
 * credentials come from a config.json instead of bocker's fixed ones.
 * Most entries of each list; more is refused with E2BIG before clone. */
enum {
    SHIM_OCI_MAX_MOUNTS = 256,
    SHIM_OCI_MAX_DEVICES = 256,
    SHIM_OCI_MAX_PATHS = 64,     /* masked, and read-only, paths each */
    SHIM_OCI_MAX_GIDS = 64,
    SHIM_OCI_MAX_JOIN_NS = 8
};

/* One config.json mount, applied in list order after pivot_root at its
 * target resolved inside the container (made first: a directory, or a
 * file for a bind of a non-directory). */
struct shim_oci_mount {
    const char *source;          /* bind: a host path, opened with
                                    open_tree() before pivot_root; else the
                                    mount(2) source, or NULL */
    const char *target;          /* absolute path inside the container */
    const char *fstype;          /* NULL: a bind of source */
    const char *data;            /* mount(2) data, or NULL */
    unsigned long flags;         /* MS_*: a bind takes RDONLY, NOSUID,
                                    NODEV, NOEXEC and the atime ones */
    unsigned long propagation;   /* 0, or MS_SHARED/SLAVE/PRIVATE/
                                    UNBINDABLE (| MS_REC), set after */
    int recursive;               /* a bind: the whole tree (rbind) */
    int is_file;                 /* a bind: make the target a file */
};

/* One device node, made after the mounts (an existing path is replaced);
 * in a user namespace the host's node at path is bound instead. */
struct shim_oci_device {
    const char *path;            /* absolute path inside the container */
    int kind;                    /* 'c', 'b' or 'p' */
    unsigned int major;
    unsigned int minor;
    unsigned int mode;           /* permission bits */
    unsigned int uid;
    unsigned int gid;
};

/* A namespace to join: setns(fd, nstype) in the child. */
struct shim_oci_ns {
    int fd;
    int nstype;                  /* CLONE_NEW*, never CLONE_NEWPID (see
                                    pidns_fd) */
};

struct shim_oci {
    const struct shim_oci_mount *mounts;
    int n_mounts;
    const struct shim_oci_device *devices;
    int n_devices;
    int default_links;           /* /dev/fd, stdin, stdout, stderr, ptmx */
    const char *const *masked;   /* paths inside the container */
    int n_masked;
    const char *const *readonly;
    int n_readonly;
    uint64_t cap_bounding;       /* bit N = capability N */
    uint64_t cap_effective;
    uint64_t cap_permitted;
    uint64_t cap_inheritable;
    uint64_t cap_ambient;
    const unsigned int *gids;    /* additional gids: setgroups() */
    int n_gids;
    int umask;                   /* -1: leave it */
    int no_new_privs;
    unsigned long rootfs_propagation; /* MS_* for "/" at the end, or 0 */
    const char *domainname;      /* NULL: keep */
    const struct shim_oci_ns *join_ns;
    int n_join_ns;
    int pidns_fd;                /* a PID namespace to be born in (the
                                    parent enters it for the clone), or -1 */
    int ready;                   /* check argv[0], report "wait for
                                    parent" ok, close the status pipe, then
                                    wait on go_fd */
    int preserve_fds;            /* fds 3 .. 3+N-1 survive for the command */
    int no_pivot;                /* MS_MOVE the rootfs onto / and chroot */
};

struct shim_spawn {
    const char *rootfs;          /* absolute host path of the container root */
    const char *const *argv;     /* NULL-terminated */
    const char *const *envp;     /* NULL-terminated; its PATH is searched */
    const char *cwd;
    const char *hostname;        /* NULL: keep the namespace's */
    const char *domainname;      /* NULL: keep the namespace's (run
                                    --domainname; OCI mode: oci's) */
    unsigned int uid;
    unsigned int gid;
    int clone_flags;             /* CLONE_NEW* namespaces to create; with
                                    join_pidfd, CLONE_NEWUSER joins the
                                    container's user namespace too */
    const int *cgroup_fds;       /* open cgroup.procs files to join (v1) */
    int n_cgroup_fds;
    int cgroup_dir_fd;           /* v2: clone straight into this group
                                    (CLONE_INTO_CGROUP), or -1 */
    int stdin_fd;                /* -1: /dev/null */
    int stdout_fd;
    int stderr_fd;
    const struct shim_mount *mounts;
    int n_mounts;
    int privileged;              /* keep every capability */
    int trace;                   /* report every step, not only a failure */
    int go_fd;                   /* read end: child waits for a byte, or -1.
                                    The child closes every other inherited
                                    fd, the write end too, so the parent's
                                    death is EOF */
    int join_pidfd;              /* exec: enter this container's namespaces
                                    instead of creating new ones, or -1 */
    int status_fd;               /* write end for the child's reports, or -1
                                    to make a pipe (see shim_child) */
    int console_sock;            /* a unix socket: allocate a pty in the
                                    container's devpts, send its master
                                    here and use the pty as stdio; or -1 */
    unsigned short console_rows; /* the pty's first window size (0: none), */
    unsigned short console_cols; /* set before the command can ask it */
    uint64_t cap_keep;           /* capabilities kept (bit N = CAP number N)
                                    unless privileged */
    const void *seccomp_filter;  /* compiled filter, or NULL: none.  A
                                    plain array of struct sock_filter, one
                                    program, as shim_seccomp_compile()
                                    writes it: an ENOSYS prologue for
                                    syscalls newer than the profile, then
                                    libseccomp's program */
    int seccomp_len;             /* its size in bytes (8 per instruction) */
    const char *const *sysctls;  /* NULL-terminated "key=value" list (key
                                    with dots), written under /proc/sys */
    const struct shim_rlimit *rlimits;
    int n_rlimits;
    int readonly_rootfs;         /* remount the container's / read-only */
    int userns_sock;             /* with CLONE_NEWUSER: a unix socket on
                                    which the parent sends the idmapped
                                    rootfs tree once it has written the id
                                    maps (see userns.c); or -1.  With
                                    oci: one byte, no fd, and the rootfs
                                    is used as it is */
    const struct shim_oci *oci;  /* NULL: bocker's own container; else
                                    OCI mode (see struct shim_oci) */
    int netns_fd;                /* --network container:NAME: a network
                                    namespace the child joins (setns)
                                    instead of making one, or -1 */
    const unsigned int *groups;  /* --group-add: supplementary gids set
                                    with the uid and gid (bocker mode) */
    int n_groups;
};

struct shim_child {
    int pid;
    int pidfd;                   /* from clone3(CLONE_PIDFD), or -1 */
    int status_fd;               /* read end of the status pipe */
};

int shim_spawn(const struct shim_spawn *req, struct shim_child *out);
int shim_spawn_monitored(const struct shim_spawn *req,
                         const char *const *monitor_argv,
                         const int *pass_fds, int n_pass_fds,
                         int *container_pid);
const char *shim_step_name(int step);

int shim_mount(const char *source, const char *target, const char *fstype,
               unsigned long flags, const char *data);
int shim_umount(const char *target, int flags);
int shim_loop_attach(const char *file, int autoclear, int *index);
int shim_setns(int fd, int nstype);
int shim_unshare(int flags);
int shim_pidfd_open(int pid);
int shim_pidfd_send_signal(int pidfd, int sig);
int shim_socket_in_netns(int netns_fd, int domain, int type, int protocol);
int shim_openat2(int dirfd, const char *path, int flags, int mode, uint64_t resolve);
int shim_idmapped_tree(const char *path, int userns_fd, uint64_t attr_set);
int shim_send_fd(int sock, int fd);
int shim_unix_pair(int *fds);
int shim_attach_sockets(int dir_fd, const char *name, int *fds);

/* seccomp.c: a profile's rules, already filtered by bocker/confine/seccomp.py. */
struct shim_seccomp_arg {
    unsigned int index;          /* system call argument 0-5 */
    int op;                      /* enum scmp_compare: 1 NE ... 7 MASKED_EQ */
    uint64_t value;              /* MASKED_EQ: the mask */
    uint64_t value_two;          /* MASKED_EQ: the value after masking */
};

struct shim_seccomp_rule {
    const char *name;            /* system call name */
    uint32_t action;             /* SECCOMP_RET_* word, errno in the low bits */
    const struct shim_seccomp_arg *args;
    int n_args;                  /* all must hold (AND) */
};

int shim_seccomp_compile(uint32_t default_action, const char *const *arches,
                         const struct shim_seccomp_rule *rules, int n_rules,
                         const char *const *known, void *out, int out_size,
                         int *bad_rule);
int shim_seccomp_resolve(const char *name);
int shim_seccomp_lib_version(void);

/* CDEF-END */

#endif
