"""A client of a container's monitor (the attach protocol, protocol.py):
an attached `run`, `start -a` and `attach` relay our stdin to the
container and its output to ours, forward our signals to it through its
pidfd, keep a pty's window size in step with our terminal, and return
its exit code, or None when the user detached (the detach keys).

Nothing here owns the container: killing this process at any moment
loses nothing (the monitor keeps the output flowing to the log, reaps the
container and cleans up)."""
import contextlib
import os
import select
import signal
import sys

from bocker import trace
from bocker.errors import BockerError
from bocker.kernel import native
from bocker.runtime import protocol
from bocker.runtime.attach import write_all


class MonitorGone(BockerError):
    """The monitor hung up without saying how the container ended."""

    exit_code = 125


def attach_and_wait(paths, started, stdout_fd=1, stderr_fd=2, stdin_fd=0, detach_keys=None,
                    sig_proxy=True):
    """Relay an attached start (Started, whose client is connected) until
    its container exits: returns its exit code, or None if the user
    detached.  Our stdin is relayed only for -i; SIGINT (without a pty:
    with one it is a byte the pty turns into the container's SIGINT),
    SIGTERM and SIGHUP are forwarded to it, unless sig_proxy is False
    (run --sig-proxy=false).  An fd of -1 is a stream not relayed (run -a:
    its output is dropped here; the log still has it)."""
    with trace.span("wait", pid=started.pid) as sp:
        code = relay(started.client, started.pidfd, tty=started.tty,
                     stdin_fd=stdin_fd if started.interactive else -1,
                     stdout_fd=stdout_fd, stderr_fd=stderr_fd, detach_keys=detach_keys,
                     sig_proxy=sig_proxy)
        sp.set("detached" if code is None else f"exit {code}")
    return code


def relay(sock, pidfd, *, tty, stdin_fd, stdout_fd, stderr_fd, detach_keys=None,
          sig_proxy=True):
    """Move bytes between us and the monitor on sock until it sends the
    exit code (returned), the user types the detach keys (None), or it
    hangs up (MonitorGone).  stdin_fd -1: no input."""
    # a pty we type into turns Ctrl-C into the container's own SIGINT
    raw = tty and stdin_fd >= 0
    forwarded = ((signal.SIGTERM, signal.SIGHUP) + (() if raw else (signal.SIGINT,))
                 if sig_proxy and pidfd >= 0 else ())
    keys = protocol.parse_detach_keys(detach_keys or protocol.DEFAULT_DETACH_KEYS)
    with _signals_forwarded(pidfd, forwarded), _terminal(sock, stdin_fd if raw else -1):
        return _pump(sock, stdin_fd, stdout_fd, stderr_fd, tty, protocol.DetachScanner(keys))


def _pump(sock, stdin_fd, stdout_fd, stderr_fd, tty, scanner):
    pending = []  # messages for the monitor not sent yet (it reads stdin at the container's pace)
    lost_told = False
    os.set_blocking(sock, False)
    while True:
        if pending is None:  # the monitor takes no more input
            pending, stdin_fd = [], -1
        rlist = [sock] + ([stdin_fd] if stdin_fd >= 0 and not pending else [])
        try:
            ready, writable, _ = select.select(rlist, [sock] if pending else [], [])
        except InterruptedError:
            continue
        if writable:
            pending = _send_pending(sock, pending)
        if stdin_fd in ready and pending is not None:
            data = os.read(stdin_fd, 4096)
            if not data:  # our EOF: a pty reader's is ^D, a pipe's is its end
                pending += ([protocol.STDIN + b"\x04"] if tty else []) + [protocol.STDIN_EOF]
                stdin_fd = -1
            else:
                data, detached = scanner.feed(data)
                pending += protocol.stdin_messages(data)
                if detached:
                    os.set_blocking(sock, True)
                    _send_pending(sock, pending + [protocol.DETACH])
                    return None
            pending = _send_pending(sock, pending)
        if sock in ready:
            try:
                msg = os.read(sock, protocol.MSG_MAX)
            except BlockingIOError:
                continue
            if not msg:
                raise MonitorGone("the container's monitor went away before it ended")
            kind, value = protocol.decode(msg)
            if kind == protocol.STDOUT and stdout_fd >= 0:
                write_all(stdout_fd, value)
            elif kind == protocol.STDERR and stderr_fd >= 0:
                write_all(stderr_fd, value)
            elif kind == protocol.EXIT:
                os.set_blocking(sock, True)
                return value
            elif kind == protocol.LOST and not lost_told:
                lost_told = True
                print(f"bocker: {value} bytes of output were dropped while this client read "
                      "too slowly (`bocker logs` has them)", file=sys.stderr)


def _send_pending(sock, pending):
    """Send what the monitor takes now; the rest stays pending.  None: it
    takes nothing more (the container has ended: its last messages are
    still ours to read)."""
    while pending:
        try:
            os.write(sock, pending[0])
        except BlockingIOError:
            break
        except (BrokenPipeError, ConnectionResetError):
            return None
        pending = pending[1:]
    return pending


@contextlib.contextmanager
def _signals_forwarded(pidfd, signals):
    """Our signals in signals go to the container while we relay."""
    def forward(sig, _frame):
        with contextlib.suppress(OSError):
            native.pidfd_send_signal(pidfd, sig)

    old = {}
    with contextlib.suppress(ValueError):  # not the main thread: nothing to forward
        for sig in signals:
            old[sig] = signal.signal(sig, forward)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _terminal(sock, term_fd):
    """-t with our input a terminal: raw mode (keys go to the container's
    pty as they are typed) and its window size sent now and on SIGWINCH."""
    if term_fd < 0 or not os.isatty(term_fd):
        yield
        return
    import termios
    import tty

    def send_size(*_):
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(term_fd)
            os.write(sock, protocol.resize(size.lines, size.columns))

    saved = termios.tcgetattr(term_fd)
    send_size()
    old_winch = None
    with contextlib.suppress(ValueError):
        old_winch = signal.signal(signal.SIGWINCH, send_size)
    tty.setraw(term_fd)
    try:
        yield
    finally:
        termios.tcsetattr(term_fd, termios.TCSADRAIN, saved)
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)


def attach(paths, ref, stdin=True, sig_proxy=True, detach_keys=None, stdin_fd=0, stdout_fd=1,
           stderr_fd=2):
    """`bocker attach`: relay a running container's stdio (stdin only if
    it was started with -i and stdin is true) until it exits (its exit
    code) or the user detaches (None)."""
    import socket

    from bocker.runtime import records, signals

    cid = records.resolve(paths, ref)
    record = records.load(paths, cid)
    stopped = BockerError("You cannot attach to a stopped container, start it first")
    if not record["State"].get("Running"):
        raise stopped
    config = record["Config"]
    protocol.parse_detach_keys(detach_keys or protocol.DEFAULT_DETACH_KEYS)  # refused first
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dir_fd = os.open(paths.container(cid), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{dir_fd}/{protocol.SOCKET_NAME}")
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise stopped from None
    finally:
        os.close(dir_fd)
    pidfd = signals.pidfd_of(record) if sig_proxy else -1
    try:
        code = relay(sock.fileno(), pidfd, tty=bool(config.get("Tty")),
                     stdin_fd=stdin_fd if stdin and config.get("OpenStdin") else -1,
                     stdout_fd=stdout_fd, stderr_fd=stderr_fd, detach_keys=detach_keys,
                     sig_proxy=sig_proxy)
    except MonitorGone:  # it missed our exit message (we read too slowly): the record has it
        code = signals.wait(paths, cid)
    finally:
        sock.close()
        if pidfd >= 0:
            os.close(pidfd)
    return code
