/* seccomp_probe - make one raw system call and print how it ended.
 *
 *   seccomp_probe NR [ARG...]     up to six arguments, each a number
 *                                 (strtoull, base 0) or "self" (getpid())
 *   seccomp_probe int80 NR        x86_64: call NR of the i386 ABI (int $0x80),
 *                                 which seccomp sees as AUDIT_ARCH_I386
 *
 * Prints "OK" when the call returned >= 0, else the errno's symbolic name
 * (EPERM, ENOSYS, ...) or "E<number>".  Always exits 0: the answer is the
 * output.  Built static by the test fixture, so it runs in any image.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct { int err; const char *name; } names[] = {
    { EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { ESRCH, "ESRCH" }, { EBADF, "EBADF" },
    { EFAULT, "EFAULT" }, { EINVAL, "EINVAL" }, { ENOSYS, "ENOSYS" },
    { EAFNOSUPPORT, "EAFNOSUPPORT" }, { EACCES, "EACCES" }, { ENOMEM, "ENOMEM" },
    { EOPNOTSUPP, "EOPNOTSUPP" }, { EPROTONOSUPPORT, "EPROTONOSUPPORT" },
};

static unsigned long parse_arg(const char *s)
{
    if (strcmp(s, "self") == 0)
        return (unsigned long)getpid();
    return strtoull(s, NULL, 0);
}

/* The i386 ABI from a 64-bit process: int $0x80 takes eax as the number
 * and returns -errno in eax. */
static long i386_call(long nr)
{
#if defined(__x86_64__)
    long rc = nr;
    __asm__ volatile("int $0x80" : "+a"(rc) : : "memory", "r8", "r9", "r10", "r11");
    if (rc < 0 && rc > -4096) {
        errno = (int)-rc;
        return -1;
    }
    return rc;
#else
    (void)nr;
    errno = ENOSYS;
    return -1;
#endif
}

static int print_result(long rc)
{
    if (rc >= 0) {
        puts("OK");
        return 0;
    }
    int err = errno;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].err == err) {
            puts(names[i].name);
            return 0;
        }
    printf("E%d\n", err);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long a[6] = { 0 };
    if (argc == 3 && strcmp(argv[1], "int80") == 0)
        return print_result(i386_call((long)parse_arg(argv[2])));
    if (argc < 2 || argc > 8) {
        fprintf(stderr, "usage: %s NR [ARG...]\n", argv[0]);
        return 2;
    }
    long nr = (long)parse_arg(argv[1]);
    for (int i = 2; i < argc; i++)
        a[i - 2] = parse_arg(argv[i]);
    return print_result(syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
}
