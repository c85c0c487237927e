/* ocicreds.c - OCI mode's credentials (struct shim_oci): the process's
 * additional groups, ids, its five capability sets and its umask, as a
 * config.json's "process" gives them.  child_main runs them in order:
 * the bounding set (creds.c's drop_bounding_caps), oci_set_ids,
 * oci_set_caps, oci_raise_ambient.  Child only; each returns 0 or an
 * errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* Keep the permitted set across setuid() to a non-root user (keepcaps;
 * oci_set_caps sets the sets and clears it), then the additional groups,
 * the gid and the uid.  In a user namespace whose setgroups is "deny"
 * (the caller's choice), an empty group list cannot be set and is not
 * needed: the namespace's processes have none of the host's groups. */
int oci_set_ids(const struct shim_spawn *req)
{
    const struct shim_oci *oci = req->oci;
    if (oci->n_gids > SHIM_OCI_MAX_GIDS) /* shim_spawn refused it already */
        return E2BIG;
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return errno;
    gid_t gids[SHIM_OCI_MAX_GIDS];
    for (int i = 0; i < oci->n_gids; i++)
        gids[i] = oci->gids[i];
    if (setgroups((size_t)oci->n_gids, gids) < 0 &&
        !(errno == EPERM && oci->n_gids == 0 && (req->clone_flags & CLONE_NEWUSER)))
        return errno;
    if (setgid(req->gid) < 0 || setuid(req->uid) < 0)
        return errno;
    return 0;
}

/* The effective, permitted and inheritable sets exactly as the config
 * says (the bounding set was dropped before the ids changed), whatever
 * the uid; then keepcaps off again. */
int oci_set_caps(const struct shim_oci *oci)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    for (int i = 0; i < 2; i++) {
        data[i].effective = (uint32_t)(oci->cap_effective >> (32 * i));
        data[i].permitted = (uint32_t)(oci->cap_permitted >> (32 * i));
        data[i].inheritable = (uint32_t)(oci->cap_inheritable >> (32 * i));
    }
    if (syscall(SYS_capset, &hdr, data) < 0)
        return errno;
    return prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0 ? errno : 0;
}

/* Raise each ambient capability (each must be permitted and inheritable
 * already: the kernel says EPERM otherwise), after the ambient set was
 * emptied with the bounding set. */
int oci_raise_ambient(uint64_t ambient)
{
    for (int cap = 0; cap < 64; cap++)
        if ((ambient & (1ULL << cap)) &&
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
            return errno;
    return 0;
}

/* process.user.umask; cannot fail. */
int oci_umask(int mask)
{
    umask((mode_t)(mask & 0777));
    return 0;
}
