"""An attached container's life after its start: bocker tees its output
to ours and to its log, forwards our signals to it, and reaps it."""
import contextlib
import os
import signal

from bocker import trace
from bocker.kernel import native
from bocker.runtime import records
from bocker.runtime.stdio import close_quietly


def attach_and_wait(paths, started, stdout_fd=1, stderr_fd=2, stdin_fd=0):
    """Copy the container's output to ours and to its log (tee), forward
    SIGINT/SIGTERM/SIGHUP to it, and return its exit status."""
    from bocker.runtime import attach

    def forward(sig, _frame):
        with contextlib.suppress(OSError):
            native.pidfd_send_signal(started.pidfd, sig)

    old = {}
    # With a tty, Ctrl-C is a byte the container's pty turns into its own
    # SIGINT; SIGTERM and SIGHUP (our terminal closing) are forwarded either
    # way, so that we stay to reap the container and release what it holds.
    forwarded = (signal.SIGTERM, signal.SIGHUP) + ((signal.SIGINT,) if started.master < 0 else ())
    with contextlib.suppress(ValueError):  # not the main thread: nothing to forward
        for sig in forwarded:
            old[sig] = signal.signal(sig, forward)
    log = attach.LogWriter(records.log_path(paths, started.id))
    try:
        if started.master >= 0:
            attach.pump_tty(started.master, log, stdin_fd, stdout_fd)
        else:
            attach.pump_pipes({started.out_fd: (stdout_fd, b"stdout"),
                               started.err_fd: (stderr_fd, b"stderr")}, log,
                              stdin=(stdin_fd, started.in_fd) if started.in_fd >= 0 else None)
        with trace.span("wait", pid=started.pid) as sp:
            _, status = os.waitpid(started.pid, 0)
            code = exit_code(status)
            sp.set(f"exit {code}")
    finally:
        log.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
        close_quietly(started.pidfd)
    return code


def exit_code(status):
    """A wait status as a shell shows it: the exit code, or 128+N for
    signal N (native.exit_code: the one rule bocker-monitor shares)."""
    from bocker.kernel import native

    return native.exit_code(status)
