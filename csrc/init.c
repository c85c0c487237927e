/*
 * bocker-init: `bocker run --init`'s PID 1.  It runs the container's
 * command as its one child, forwards every signal it gets to that child,
 * reaps whatever else ends up as its child (orphans are reparented to
 * PID 1), and exits with the child's code (SIGNAL_BASE + N for a signal
 * N, as a shell reports it; formats.h).  Built static (setup.py) and bind-mounted read-only
 * at /dev/init, so it runs in any image.
 *
 * Usage: bocker-init -- COMMAND [ARG...]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "formats.h"

/* The signals that stay ours (a stop of PID 1 itself, or the ones the
 * kernel sends about faults of our own). */
static int not_forwarded(int sig)
{
    return sig == SIGCHLD || sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV ||
           sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGABRT ||
           sig == SIGTTIN || sig == SIGTTOU || sig == SIGTSTP;
}

/* Block every forwarded signal (and SIGCHLD) so sigwaitinfo() takes them
 * one at a time; *old gets the mask the child restores. */
static int block_signals(sigset_t *set, sigset_t *old)
{
    sigfillset(set);
    for (int sig = 1; sig < NSIG; sig++)
        if (not_forwarded(sig) && sig != SIGCHLD)
            sigdelset(set, sig);
    return sigprocmask(SIG_SETMASK, set, old) < 0 ? errno : 0;
}

/* fork and exec argv with the signal mask we started with; returns the
 * child's pid, or -errno. */
static pid_t start_child(char **argv, const sigset_t *old)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, old, NULL);
        execvp(argv[0], argv);
        int err = errno;
        fprintf(stderr, "bocker-init: exec %s: %s\n", argv[0], strerror(err));
        _exit(err == ENOENT ? SHIM_EXIT_NOT_FOUND : SHIM_EXIT_CANNOT_EXECUTE);
    }
    return pid;
}

/* Reap every child that has ended; returns 1 once the main child has,
 * with its shell-style code in *code. */
static int reap(pid_t child, int *code)
{
    int done = 0, status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid != child)
            continue;
        done = 1;
        *code = WIFEXITED(status) ? WEXITSTATUS(status)
                                  : SHIM_EXIT_SIGNAL_BASE + WTERMSIG(status);
    }
    return done;
}

/* Wait for signals: forward each to the child, reap on SIGCHLD, until
 * the child has ended. */
static int supervise(pid_t child, const sigset_t *set)
{
    int code = 0;
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(set, &info);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (sig != SIGCHLD)
            kill(child, sig);
        else if (reap(child, &code))
            return code;
    }
}

int main(int argc, char **argv)
{
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0)
        first = 2;
    if (first >= argc) {
        fprintf(stderr, "usage: bocker-init -- COMMAND [ARG...]\n");
        return SHIM_EXIT_RUNTIME;
    }
    sigset_t set, old;
    int err = block_signals(&set, &old);
    if (err) {
        fprintf(stderr, "bocker-init: sigprocmask: %s\n", strerror(err));
        return SHIM_EXIT_RUNTIME;
    }
    pid_t child = start_child(argv + first, &old);
    if (child < 0) {
        fprintf(stderr, "bocker-init: fork: %s\n", strerror((int)-child));
        return SHIM_EXIT_RUNTIME;
    }
    return supervise(child, &set);
}
