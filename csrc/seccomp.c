/* seccomp.c - compile a seccomp profile to BPF (parent side, libseccomp)
 * and install the compiled program (container child side).
 *
 * The parent: bocker/confine/seccomp.py has already parsed and validated the
 * Docker/OCI JSON and evaluated its includes/excludes against the
 * container's capabilities, so what arrives here is a flat list of rules
 * (syscall name, kernel action word, argument conditions).  libseccomp turns
 * names into numbers for every architecture and builds the program; we add
 * one prologue of our own (see enosys_prologue) and hand the bytes back.
 *
 * The child: install exactly the bytes it was given, nothing else, and run
 * no libseccomp code between clone and execve.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "internal.h"

/* x32 system calls are x86_64's numbers with this bit set. */
#define X32_SYSCALL_BIT 0x40000000u

/* ------------------------------------------------------------------ */
/* Parent side: compile.                                                */
/* ------------------------------------------------------------------ */

/* Add the profile's architectures besides the native one, which
 * seccomp_init() already put in.  A name libseccomp does not know is an
 * error: the caller validated the names, so it means a libseccomp without
 * that architecture. */
static int add_arches(scmp_filter_ctx ctx, const char *const *arches)
{
    for (; arches && *arches; arches++) {
        uint32_t token = seccomp_arch_resolve_name(*arches);
        if (token == 0)
            return -EINVAL;
        if (token == seccomp_arch_native())
            continue;
        int rc = seccomp_arch_add(ctx, token);
        if (rc < 0 && rc != -EEXIST)
            return rc;
    }
    return 0;
}

/* Add one rule.  A name libseccomp does not know (a syscall newer than the
 * library, or of another architecture only) is skipped, as Docker skips it;
 * a rule whose action is the default action adds nothing and is skipped
 * too.  On failure *bad names the rule. */
static int add_rule(scmp_filter_ctx ctx, uint32_t default_action,
                    const struct shim_seccomp_rule *rule)
{
    struct scmp_arg_cmp cmp[6];
    int nr = seccomp_syscall_resolve_name(rule->name);

    if (nr == __NR_SCMP_ERROR || rule->action == default_action)
        return 0;
    if (rule->n_args < 0 || rule->n_args > 6)
        return -EINVAL;
    for (int i = 0; i < rule->n_args; i++) {
        cmp[i].arg = rule->args[i].index;
        cmp[i].op = (enum scmp_compare)rule->args[i].op;
        cmp[i].datum_a = rule->args[i].value;
        cmp[i].datum_b = rule->args[i].value_two;
    }
    return seccomp_rule_add_array(ctx, rule->action, nr, (unsigned)rule->n_args, cmp);
}

/* The highest native system call number among names, or -1: the profile's
 * view of how new the kernel is. */
static int highest_known(const char *const *names)
{
    int max = -1;
    for (; names && *names; names++) {
        int nr = seccomp_syscall_resolve_name_arch(seccomp_arch_native(), *names);
        if (nr > max)
            max = nr;
    }
    return max;
}

/* Write the program libseccomp built into out (a memfd: 2.5 can only export
 * to an fd) and return its size in bytes. */
static int export_program(scmp_filter_ctx ctx, void *out, int out_size)
{
    int fd = memfd_create("bocker-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = seccomp_export_bpf(ctx, fd);
    off_t size = rc < 0 ? 0 : lseek(fd, 0, SEEK_CUR);
    if (rc >= 0 && size < 0)
        rc = -errno;
    else if (rc >= 0 && size > out_size)
        rc = -E2BIG;
    else if (rc >= 0 && pread(fd, out, (size_t)size, 0) != size)
        rc = -EIO;
    close(fd);
    return rc < 0 ? rc : (int)size;
}

/* The prologue: a native system call numbered above max (newer than the
 * profile, so nobody has judged it) answers ENOSYS, as a kernel without
 * it would, instead of the default EPERM: programs then fall back to the
 * older call they know.  x32 numbers are left to the main program, which
 * refuses them as a foreign architecture.  It is prepended, not a second
 * filter, so the child installs one program; cBPF jumps are relative, so
 * the program after it is unchanged.  Returns its length in instructions. */
static int enosys_prologue(struct sock_filter *p, int max)
{
    uint32_t native = seccomp_arch_native();
    int n = 0;
    int x32 = native == AUDIT_ARCH_X86_64;

    p[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, arch));
    p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, native, 0, x32 ? 4 : 3);
    p[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, nr));
    if (x32)
        p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 2, 0);
    p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)max, 0, 1);
    p[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
    return n;
}

#define PROLOGUE_MAX 6

/* Build the filter: default action, architectures (a foreign one answers
 * ENOSYS, like a kernel without that ABI), the rules, then export it
 * behind the ENOSYS prologue.  known lists every name the profile mentions
 * (included or not) for the prologue's bound.  *bad_rule gets the index of
 * a rule libseccomp refused, else -1.  Returns the size in bytes. */
int shim_seccomp_compile(uint32_t default_action, const char *const *arches,
                         const struct shim_seccomp_rule *rules, int n_rules,
                         const char *const *known, void *out, int out_size,
                         int *bad_rule)
{
    struct sock_filter prologue[PROLOGUE_MAX];
    int rc, n_pro = 0, max = highest_known(known);

    *bad_rule = -1;
    if (max >= 0)
        n_pro = enosys_prologue(prologue, max);
    int pro_bytes = n_pro * (int)sizeof(struct sock_filter);
    if (out_size < pro_bytes)
        return -E2BIG;

    scmp_filter_ctx ctx = seccomp_init(default_action);
    if (!ctx)
        return -EINVAL;
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS));
    /* The same rules as a binary tree of syscall numbers, not one long
     * chain: the kernel walks the program once per syscall number when it
     * is loaded (its constant-action cache) and at every syscall the cache
     * does not answer, so a chain of ~350 instructions costs ~0.4 ms per
     * start.  libseccomp 2.5+; an older one refuses it and keeps the chain. */
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 5)
    if (rc >= 0 && seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0)
        rc = 0;
#endif
    if (rc >= 0)
        rc = add_arches(ctx, arches);
    for (int i = 0; rc >= 0 && i < n_rules; i++)
        if ((rc = add_rule(ctx, default_action, &rules[i])) < 0)
            *bad_rule = i;
    if (rc >= 0)
        rc = export_program(ctx, (char *)out + pro_bytes, out_size - pro_bytes);
    seccomp_release(ctx);
    if (rc < 0)
        return rc;
    memcpy(out, prologue, (size_t)pro_bytes);
    return pro_bytes + rc;
}

/* The native number of a system call name, or -ENOENT: for tests and for
 * reporting the profile's bound. */
int shim_seccomp_resolve(const char *name)
{
    int nr = seccomp_syscall_resolve_name_arch(seccomp_arch_native(), name);
    return nr == __NR_SCMP_ERROR ? -ENOENT : nr;
}

/* The version of the libseccomp we run with, as major*10000+minor*100+micro:
 * a newer one may know more system calls and so compile differently. */
int shim_seccomp_lib_version(void)
{
    const struct scmp_version *v = seccomp_version();
    return v ? (int)(v->major * 10000 + v->minor * 100 + v->micro) : 0;
}

/* ------------------------------------------------------------------ */
/* Child side: install.                                                 */
/* ------------------------------------------------------------------ */

/* Install the compiled program the parent put in req (a plain array of
 * struct sock_filter, see shim.h).  Runs after set_ids() and
 * no_new_privs, as the last step before execve: whatever the filter
 * refuses is then refused to the container's own program only.  Returns
 * 0 or a positive errno. */
int install_seccomp(const struct shim_spawn *req)
{
    int len = req->seccomp_len;
    if (len <= 0 || len % (int)sizeof(struct sock_filter) ||
        len / (int)sizeof(struct sock_filter) > BPF_MAXINSNS)
        return EINVAL;
    struct sock_fprog prog = {
        .len = (unsigned short)(len / sizeof(struct sock_filter)),
        .filter = (struct sock_filter *)req->seccomp_filter,
    };
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0 ? errno : 0;
}
