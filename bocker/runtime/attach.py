"""Moving bytes between the user and a container: the tee of an attached
run (terminal and log at once), a terminal in raw mode for -t, and reading
or following the log."""
import collections
import contextlib
import fcntl
import os
import select
import signal
import sys
import time

from bocker.runtime import records


def log_stamp():
    """RFC 3339 UTC time with nanoseconds, as bytes (the monitor's format)."""
    return records.now_iso().encode()


def write_all(fd, data):
    """Write everything, ignoring a reader that went away."""
    try:
        while data:
            data = data[os.write(fd, data):]
    except (BrokenPipeError, OSError):
        pass


# A log record holds at most this many bytes of output (its newline
# included): a longer line is split into several records, as Docker splits
# at 16 KiB.  csrc/monitor.c's LINE_MAX_BYTES is the same number (a unit
# test reads it there), so an attached and a detached run log alike.
LINE_MAX_BYTES = 16384


def split_records(buf):
    """(records, rest): the log records complete in buf, and what is left.

    A record runs to the first newline if that is among its first
    LINE_MAX_BYTES bytes, else it is those bytes: monitor.c's rule, so the
    split does not depend on how the output arrived in chunks.
    """
    records, start, n = [], 0, len(buf)
    while True:
        nl = buf.find(b"\n", start, start + LINE_MAX_BYTES)
        if nl >= 0:
            records.append(buf[start:nl])
            start = nl + 1
        elif n - start >= LINE_MAX_BYTES:
            records.append(buf[start:start + LINE_MAX_BYTES])
            start += LINE_MAX_BYTES
        else:
            return records, buf[start:]


class LogWriter:
    """Output to the log as '<time> <stream> <text>' records (see
    split_records); a partial line waits for its end, EOF or the cap, so
    at most LINE_MAX_BYTES of it is ever held."""

    def __init__(self, path):
        self.f = open(path, "ab")
        self.partial = {}

    def feed(self, stream, chunk):
        records, self.partial[stream] = split_records(self.partial.get(stream, b"") + chunk)
        if records:
            stamp = log_stamp()
            self.f.write(b"".join(b"%s %s %s\n" % (stamp, stream, r) for r in records))
            self.f.flush()

    def close(self):
        for stream, rest in self.partial.items():
            if rest:
                self.f.write(b"%s %s %s\n" % (log_stamp(), stream, rest))
        self.f.close()


def pump_pipes(streams, log, stdin=None, scanner=None):
    """Until every output stream reaches EOF, pass each chunk through at
    once and feed it to the log.  streams maps a read fd to (dest fd,
    b'stdout').  stdin, for -i, is (our fd, the container's stdin pipe):
    our input is relayed through that pipe, never handed over itself (a
    host file passed as fd 0 could be reopened read-write through
    /proc/self/fd/0 inside the container).  scanner (exec --detach-keys, a
    protocol.DetachScanner) watches our input: once the user types the
    keys, returns True (the streams still open go to drain_detached);
    else None at the end."""
    open_fds = list(streams)
    src, sink = stdin if stdin else (-1, -1)
    pending = b""
    if sink >= 0:
        os.set_blocking(sink, False)  # a container not reading must not stall its output
    while open_fds:
        rlist = open_fds + ([src] if src >= 0 and not pending else [])
        wlist = [sink] if pending else []
        try:
            ready, writable, _ = select.select(rlist, wlist, [])
        except InterruptedError:
            continue
        if writable or src in ready:
            if src in ready:
                pending = os.read(src, 65536)
                if pending and scanner is not None:
                    pending, detached = scanner.feed(pending)
                    if detached:
                        _write_quietly(sink, pending)
                        os.close(sink)
                        drain_detached(open_fds)
                        return True
                elif not pending:  # our EOF is the container's
                    src = -1
                    os.close(sink)
                    sink = -1
            if pending:
                try:
                    pending = pending[os.write(sink, pending):]
                except BlockingIOError:
                    pass
                except OSError:  # the container closed its stdin
                    pending, src = b"", -1
                    os.close(sink)
                    sink = -1
        for fd in ready:
            if fd not in streams:
                continue
            chunk = os.read(fd, 65536)
            dest, name = streams[fd]
            if not chunk:
                open_fds.remove(fd)
                os.close(fd)
                continue
            write_all(dest, chunk)
            log.feed(name, chunk)
    if sink >= 0:
        os.close(sink)


def set_winsize(master, from_fd):
    """Copy the window size of from_fd's terminal to the pty."""
    import termios

    try:
        size = fcntl.ioctl(from_fd, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _write_quietly(fd, data):
    with contextlib.suppress(OSError):
        if data:
            os.write(fd, data)


def drain_detached(fds):
    """After exec's detach keys: a child of ours, in its own session, reads
    fds (the exec's pty master or output pipes) to their end and drops
    what they carry, so that the exec runs on as Docker's (no SIGHUP from a
    closed master, no SIGPIPE from a closed pipe) while we return."""
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        return pid
    try:  # the child: only os calls, then _exit
        os.setsid()
        watch = list(fds)
        while watch:
            ready, _, _ = select.select(watch, [], [])
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    watch.remove(fd)
    finally:
        os._exit(0)


def pump_tty(master, log, stdin_fd=0, stdout_fd=1, scanner=None):
    """-t: our terminal in raw mode, keystrokes to the pty (Ctrl-C becomes
    the container's SIGINT), its output to ours and to the log; window
    size kept in sync.  Returns when the container side closes (None), or
    True once scanner (exec --detach-keys) sees the detach keys: the
    master is then handed to drain_detached, not closed."""
    import termios
    import tty

    is_tty = os.isatty(stdin_fd)
    saved = termios.tcgetattr(stdin_fd) if is_tty else None
    old_winch = None
    if is_tty:
        set_winsize(master, stdin_fd)
        try:
            old_winch = signal.signal(signal.SIGWINCH,
                                      lambda *_: set_winsize(master, stdin_fd))
        except ValueError:
            pass
        tty.setraw(stdin_fd)
    watch = [master, stdin_fd]
    try:
        while True:
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every slave fd is closed
                    chunk = b""
                if not chunk:
                    break
                write_all(stdout_fd, chunk)
                log.feed(b"stdout", chunk.replace(b"\r\n", b"\n"))
            if stdin_fd in ready:
                data = os.read(stdin_fd, 4096)
                if not data:
                    watch.remove(stdin_fd)
                    write_all(master, b"\x04")  # EOF for a canonical-mode reader
                else:
                    if scanner is not None:
                        data, detached = scanner.feed(data)
                        if detached:
                            _write_quietly(master, data)
                            drain_detached([os.dup(master)])
                            return True
                    write_all(master, data)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)
        os.close(master)


def parse_log_line(line):
    """b'<time> <stream> <text>' -> (time, stream, text) or None."""
    parts = line.split(b" ", 2)
    if len(parts) != 3 or parts[1] not in (b"stdout", b"stderr"):
        return None
    return parts[0].decode(), parts[1].decode(), parts[2]


def print_log(paths, cid, follow=False, tail=None, timestamps=False,
              stdout=None, stderr=None, running=None, since=None, until=None):
    """`bocker logs`: stdout lines to stdout, stderr lines to stderr.

    follow keeps reading as lines are appended until running() turns
    false and nothing more is there.  since/until (epoch seconds): only
    the lines logged in that window (tail counts among those); a follow
    ends once a line past until comes.
    """
    stdout = stdout or sys.stdout.buffer
    stderr = stderr or sys.stderr.buffer
    path = records.log_path(paths, cid)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        if not follow:
            return
        open(path, "ab").close()
        f = open(path, "rb")

    def emit(lines):
        for line in lines:
            parsed = parse_log_line(line)
            if not parsed:
                continue
            stamp, stream, text = parsed
            if len(text) == LINE_MAX_BYTES + 1:
                # A full-size record is a piece of a longer line (a real
                # line that long would not fit with its newline): the
                # newline is the log's, not the container's.
                text = text[:-1]
            out = stderr if stream == "stderr" else stdout
            out.write((stamp.encode() + b" " if timestamps else b"") + text)
            out.flush()

    window = _Window(since, until)
    with f:
        # Line by line (records are bounded, the log is not): only the
        # last `tail` lines are ever held.
        keep = tail + 1 if tail is not None and tail >= 0 else None
        source = window.lines(f) if window else f
        lines = collections.deque(source, maxlen=keep) if keep else source
        rest = b""
        complete = []
        for line in lines:
            if not line.endswith(b"\n"):
                rest = line  # being written right now: the rest comes later
                break
            if keep:
                complete.append(line)
            else:
                emit([line])
        if keep:
            emit(complete[max(len(complete) - tail, 0):])
        while follow and not window.ended:
            chunk = f.read(1 << 20)
            if chunk:
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                whole = (line + b"\n" for line in lines)
                emit(window.lines(whole) if window else whole)
                if window.ended:
                    break
                continue
            if not running():
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                continue
            if window.past():
                break  # --until has come: nothing later may print
            time.sleep(0.05)


class _Window:
    """logs --since/--until over the log's lines.  Stamps are fixed-width
    RFC 3339 UTC (log_stamp), so a bound made the same way compares as
    bytes; lines are in time order, so the first one past until ends it."""

    def __init__(self, since, until):
        self.since = _stamp(since) if since is not None else None
        self.until = _stamp(until) if until is not None else None
        self.until_seconds = until
        self.ended = False

    def past(self):
        """True once --until's time has come (a follow ends there)."""
        return self.until_seconds is not None and time.time() >= self.until_seconds

    def __bool__(self):
        return self.since is not None or self.until is not None

    def lines(self, lines):
        """The lines inside the window (a partial last line passes: its
        caller keeps it for later)."""
        for line in lines:
            stamp = line.split(b" ", 1)[0]
            if not line.endswith(b"\n"):
                yield line
                return
            if self.until is not None and stamp >= self.until:
                self.ended = True
                return
            if self.since is None or stamp >= self.since:
                yield line


def _stamp(seconds):
    ns = max(0, int(round(seconds * 1e9)))
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9))
            + f".{ns % 10**9:09d}Z").encode()
