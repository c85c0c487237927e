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
    """The container's stdin/stdout/stderr for one start.

    attached: output through pipes that bocker tees; -i relays our stdin
    through a pipe.  No fd of the caller's is ever handed to the container.
    detached: output through pipes that the monitor logs.
    -t: a pty from the container's own devpts, its master sent back over
    a socket pair.
    """

    def __init__(self, detach, tty, interactive, fds):
        self.interactive = interactive and not detach
        self.fds = fds
        self.out_r = self.out_w = self.err_r = self.err_w = self.in_r = self.in_w = -1
        self.console_parent = self.console_child = -1
        if tty and not detach:
            import socket

            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.console_parent, self.console_child = fds.add(a.detach(), b.detach())
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
    return [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in cg.procs_paths(cid)], -1


def close_quietly(*fds):
    """Close fds that may be closed already or -1 (a pidfd's last use)."""
    for fd in fds:
        if fd is not None and fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
