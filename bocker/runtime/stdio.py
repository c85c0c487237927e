"""The fds a start hands its child, shared by run and exec: the
bookkeeping that closes each exactly once (Fds), the container's
stdin/stdout/stderr (Stdio) and its cgroup handles."""
import contextlib
import os


class Fds:
    """The fds a start opened: each is closed once, by close() as soon as
    it is not needed, or by close_all() if the start fails; release()
    hands one to a new owner, who closes it."""

    def __init__(self, close=os.close):
        self.open = set()
        self._close = close  # the seam the unit tests count closes through

    def add(self, *items):
        """Track fds (ints, or lists of ints); returns items unchanged."""
        for item in items:
            self.open.update(item if isinstance(item, list) else [item])
        self.open.discard(-1)
        return items

    def close(self, *fds):
        """Close those of fds still tracked (others are ignored)."""
        for fd in fds:
            if fd in self.open:
                self.open.discard(fd)
                self._close(fd)

    def release(self, fd):
        """Stop tracking fd: its new owner closes it."""
        self.open.discard(fd)
        return fd

    def close_all(self):
        """Close every fd still tracked (the undo of a failed start)."""
        self.close(*sorted(self.open))


class Stdio:
    """The container's stdin/stdout/stderr for one start or exec.

    Output goes through pipes, read by the container's monitor (a start)
    or by bocker exec; -i: stdin through a pipe whose write end the reader
    holds.  No fd of the caller's is ever handed to the container.
    -t: a pty from the container's own devpts, its master sent over a
    socket pair (to the monitor, or to bocker exec: receive_master).
    """

    def __init__(self, tty, interactive, fds):
        self.interactive = interactive
        self.fds = fds
        self.out_r = self.out_w = self.err_r = self.err_w = self.in_r = self.in_w = -1
        self.console_parent = self.console_child = -1
        if tty:
            from bocker.kernel import native

            self.console_parent, self.console_child = fds.add(*native.unix_pair())
        else:
            self.out_r, self.out_w = fds.add(*os.pipe2(os.O_CLOEXEC))
            self.err_r, self.err_w = fds.add(*os.pipe2(os.O_CLOEXEC))
            if self.interactive:
                self.in_r, self.in_w = fds.add(*os.pipe2(os.O_CLOEXEC))

    def child_stdio(self):
        """(stdin, stdout, stderr) for the shim; -1: the child's own pty."""
        return (self.in_r, self.out_w, self.err_w)

    def child_ends(self):
        """The ends only the child uses, for the parent to close."""
        return [fd for fd in (self.in_r, self.out_w, self.err_w, self.console_child) if fd >= 0]

    def reader_ends(self):
        """(stdout, stderr, console, stdin): the ends the reader of the
        container's stdio holds (its monitor for a start), -1 if unused."""
        return (self.out_r, self.err_r, self.console_parent, self.in_w)

    def receive_master(self):
        """The pty master the child sent, for -t; else -1."""
        if self.console_parent < 0:
            return -1
        import socket

        with socket.socket(fileno=self.fds.release(self.console_parent)) as sock:
            _, fds, _, _ = socket.recv_fds(sock, 1, 1)
        return fds[0]


def cgroup_handles(cg, cid):
    """(v1 `tasks` fds the child writes itself into, group dir fd to
    clone into): v2 births the child in its group, v1 makes it join."""
    group = cg.clone_into(cid)
    if group:
        return [], os.open(group, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fds = []
    try:
        for path in cg.procs_paths(cid):
            fds.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
    except OSError:
        # one open failed (EMFILE at a low fd limit): the others must not
        # stay open, the undo that follows needs fds of its own
        close_quietly(*fds)
        raise
    return fds, -1


def attach_sockets(nat, cdir):
    """(listening, ours, the monitor's): the container's attach socket in
    its directory cdir, and a connected pair for the starter (the shim
    makes them: see native.attach_sockets)."""
    from bocker.runtime.protocol import SOCKET_NAME

    dir_fd = os.open(cdir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return nat.attach_sockets(dir_fd, SOCKET_NAME)
    finally:
        os.close(dir_fd)


def close_quietly(*fds):
    """Close fds that may be closed already or -1 (a pidfd's last use)."""
    for fd in fds:
        if fd is not None and fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
