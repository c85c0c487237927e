/* creds.c - the child's credentials: rlimits, capabilities, ids,
 * no_new_privs (child_main runs them in that order, after the filesystem
 * is made), and becoming a user namespace's root.  Child only; each
 * returns 0 or an errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* Become the user namespace's root, once past the host's directories:
 * until now our ids were still the host's root, which owns them (and
 * bocker's 0700 container directory) but which the namespace does not
 * map, so a file we created would fail with EOVERFLOW; from now on
 * capabilities reach only what the namespace's ids own. */
int become_userns_root(void)
{
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
        return errno;
    return 0;
}

/* --ulimit values, set while the child still has CAP_SYS_RESOURCE (a hard
 * limit above the current one needs it). */
int set_rlimits(struct child_ctx *c)
{
    const struct shim_spawn *req = c->req;
    for (int i = 0; i < req->n_rlimits; i++) {
        c->index = i;
        struct rlimit rl = { .rlim_cur = req->rlimits[i].soft,
                             .rlim_max = req->rlimits[i].hard };
        if (setrlimit(req->rlimits[i].resource, &rl) < 0)
            return errno;
    }
    return 0;
}

/* The supplementary groups (--group-add's, else none), then the
 * container's gid and uid. */
int set_ids(unsigned uid, unsigned gid, const unsigned *groups, int n_groups)
{
    if (setgroups((size_t)n_groups, (const gid_t *)groups) < 0 || setgid(gid) < 0 ||
        setuid(uid) < 0)
        return errno;
    return 0;
}

/* Drop every capability not in keep (bit N = capability N: Docker's
 * default set less CAP_MKNOD unless --cap-add/--cap-drop changed it, see
 * capabilities.py) from the bounding set, and empty the ambient set.
 * Runs before set_ids(): the bounding set needs CAP_SETPCAP, and setuid()
 * to a non-root user clears what is left. */
int drop_bounding_caps(uint64_t keep)
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
int set_caps(uint64_t keep, unsigned uid)
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

/* No execve can gain privileges again (setuid bits, file caps). */
int set_no_new_privs(void)
{
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? errno : 0;
}
