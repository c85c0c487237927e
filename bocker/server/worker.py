"""The forked child that becomes one `bocker-py` command for a client.

After fork() the child holds the server's warm modules but the server's
process state: its fds, signal dispositions, cwd, umask, limits,
environment and stdio.  become() replaces each with the client's, and
resets what bocker's modules read from the environment or cached once
per process, so the command runs as a fresh `bocker-py` started by the
client would (tests/integration/test_server.py compares the two).
"""
import array
import io
import os
import pickle
import resource
import signal
import socket
import struct
import sys
import time

# Python's own start-up dispositions: SIGINT raises KeyboardInterrupt,
# SIGPIPE and SIGXFSZ are ignored (so a write fails with EPIPE/EFBIG
# instead of killing); every other signal is the kernel's default
_PYTHON_IGNORES = (signal.SIGPIPE, signal.SIGXFSZ)


def reset_signals():
    """Signal dispositions and mask as a freshly started Python has them."""
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:  # not the main thread: cannot happen in a fork child
        pass
    for signo in range(1, signal.NSIG):
        if signo in (signal.SIGKILL, signal.SIGSTOP):
            continue
        if signo == signal.SIGINT:
            handler = signal.default_int_handler
        elif signo in _PYTHON_IGNORES:
            handler = signal.SIG_IGN
        else:
            handler = signal.SIG_DFL
        try:
            # only those the server changed: a sigaction each is 0.4 ms of
            # a fork's path, and Python knows every disposition it set
            if signal.getsignal(signo) != handler:
                signal.signal(signo, handler)
        except (OSError, ValueError):  # the real-time signals glibc keeps
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def install_fds(fds, mask):
    """dup2 the client's fds (sent in order 0, 1, 2, cwd as mask says) onto
    0, 1, 2; close a standard fd the client did not send (it had none);
    fchdir to the cwd fd.  The received fds are closed afterwards."""
    received = iter(fds)
    placed = {}
    for target in (0, 1, 2, 3):
        if mask & (1 << target):
            placed[target] = next(received)
    for target in (0, 1, 2):
        if target in placed:
            os.dup2(placed[target], target)  # dup2 clears O_CLOEXEC: inherited, as a shell's
        else:
            try:
                os.close(target)
            except OSError:
                pass
    os.fchdir(placed[3])
    for fd in set(placed.values()):
        if fd > 2:
            os.close(fd)


def apply_limits(umask, rlimits):
    """The client's umask and resource limits (a limit the kernel refuses
    is left as the server has it: the worker then has at most the server's)."""
    if umask is not None:
        os.umask(umask)
    for number, (soft, hard) in rlimits.items():
        try:
            resource.setrlimit(number, (soft, hard))
        except (OSError, ValueError):
            pass


def _stream(fd, write, model):
    # Python's create_stdio(): a missing fd is None; a tty is line-buffered
    # (stderr always is); the encoding is what this interpreter chose at
    # start, which the server's stdio objects still show
    try:
        os.fstat(fd)
    except OSError:
        return None
    raw = io.FileIO(fd, "wb" if write else "rb", closefd=False)
    tty = raw.isatty()
    buffered = io.BufferedWriter(raw) if write else io.BufferedReader(raw)
    encoding = getattr(model, "encoding", None) or "utf-8"
    errors = getattr(model, "errors", None) or "strict"
    line = tty or fd == 2
    return io.TextIOWrapper(buffered, encoding=encoding, errors=errors,
                            line_buffering=line, write_through=fd == 2)


def install_stdio():
    """New sys.stdin/stdout/stderr on fds 0, 1, 2 (the __std*__ ones too)."""
    models = (sys.__stdin__, sys.__stdout__, sys.__stderr__)
    streams = [_stream(fd, fd != 0, model) for fd, model in enumerate(models)]
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams


def install_env(env, argv):
    """os.environ (and so the C environ children inherit) and sys.argv as
    the client's."""
    os.environ.clear()
    os.environ.update(env)
    sys.argv = list(argv)


def reset_module_state():
    """What bocker's modules read from the environment at import, or cache
    once per process, read again as a fresh process would.

    Found by grepping bocker/ for os.environ, module globals, _driver,
    _default, lru_cache: trace's mode (BOCKER_TRACE), faults' BOCKER_FAULT
    (parsed at import), cgroups' driver and its --cgroup-parent table.
    The rest read os.environ when called (state.Paths' BOCKER_ROOT,
    cgroups.parent_name, userns.mode, credentials, bootunit, transport) or
    cache what only the package's own files decide (seccomp's default
    profile and compiled filters), which a worker may share.
    """
    import random

    random.seed()  # the server's generator state must not repeat across workers

    from bocker import faults, trace

    trace.configure_from_env()
    faults._FAULT = faults._parse(os.environ.get("BOCKER_FAULT"))
    faults._STEP = faults._FAULT[0] if faults._FAULT else None
    if "bocker.kernel.cgroups" in sys.modules:
        cgroups = sys.modules["bocker.kernel.cgroups"]
        cgroups._driver = None
        cgroups._placed = {}


def _exit_code(code):
    # SystemExit's code as the interpreter turns it into an exit status
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(str(code) + "\n")
    except Exception:
        pass
    return 1


def _flush():
    # Python's exit flushes stdout; a failure there (EPIPE) is exit 120
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except Exception:
            if stream is sys.stdout:
                return False
    return True


def prepare(close_fds):
    """What a worker does before it knows its request: its own process
    group (the parent signals the whole command by it), Python's signal
    dispositions, and none of the server's fds (close_fds: the listening
    socket, the client connections, inotify, the pools' channels)."""
    os.setpgid(0, 0)
    reset_signals()
    for fd in close_fds:
        try:
            os.close(fd)
        except OSError:
            pass


# a spare's hand-over: accepted_ns, fd mask, length of the pickled request
_HAND_OVER = struct.Struct("<QII")
_MAX_HAND_OVER = 8 << 20


def hand_over(channel, request, fds, mask, accepted_ns):
    """Server side: give a spare (worker.spare) its request and fds."""
    data = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
    channel.setblocking(True)
    channel.sendmsg([_HAND_OVER.pack(accepted_ns, mask, len(data))],
                    [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    channel.sendall(data)


def spare(channel, close_fds):
    """A worker forked ahead of its request: prepared, it waits on channel
    (its end of a socketpair with the server) for the request the server
    read and checked, then becomes it.  The server's end closing (stale
    code, idle exit) ends it.  Never returns."""
    try:
        prepare(close_fds)
        head, anc, _, _ = channel.recvmsg(_HAND_OVER.size, socket.CMSG_SPACE(8 * 4))
        if len(head) != _HAND_OVER.size:
            os._exit(0)  # the server let us go
        fds = array.array("i")
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
        accepted_ns, mask, length = _HAND_OVER.unpack(head)
        if length > _MAX_HAND_OVER:
            os._exit(1)
        data = bytearray()
        while len(data) < length:
            chunk = channel.recv(length - len(data))
            if not chunk:
                os._exit(1)
            data += chunk
        channel.close()
        # pickle from our own parent only: the server made this socketpair
        request = pickle.loads(bytes(data))
    except BaseException:  # noqa: BLE001 - the server sees the worker end, the client falls back
        os._exit(1)
    become(request, list(fds), mask, None, accepted_ns)


def become(request, fds, mask, close_fds, accepted_ns):
    """Run request in this (forked) process and never return: os._exit with
    the command's exit status.  close_fds: the server's fds to drop (None:
    a spare, prepared already)."""
    code = 1
    try:
        if close_fds is not None:
            prepare(close_fds)
        setup_start = time.monotonic_ns()
        install_fds(fds, mask)
        apply_limits(request.umask, request.rlimits)
        install_env(request.env, request.argv)
        install_stdio()
        reset_module_state()
        from bocker import trace

        now = time.monotonic_ns()
        trace.emit("server fork", {}, accepted_ns, setup_start - accepted_ns)
        trace.emit("server setup", {}, setup_start, now - setup_start)
        code = run_cli()
    except SystemExit as e:
        code = _exit_code(e.code)
    except BaseException:  # a bug in the setup above: say it, as Python would
        try:
            sys.excepthook(*sys.exc_info())
        except BaseException:
            pass
        code = 1
    if not _flush() and code == 0:
        code = 120
    os._exit(code)


def run_cli():
    """bocker.cli.app.main() as `bocker-py` runs it: its exit status."""
    from bocker.cli import app

    try:
        app.main()
    except SystemExit as e:
        return _exit_code(e.code)
    except KeyboardInterrupt:
        # uncaught, Python exits by SIGINT itself (what a shell then sees)
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException:
        sys.excepthook(*sys.exc_info())
        return 1
    return 0
