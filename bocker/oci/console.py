"""The container's terminal (process.terminal): its init or exec'd
process allocates a pty in the container's devpts and sends the master
over a unix socket (SCM_RIGHTS).  Either the caller's --console-socket
(conmon, containerd's shim: they own the master), or, for a foreground
`run` / `exec` without one, a socket pair of ours: we receive the master
and relay it to our own stdin/stdout, as runc does."""
import os
import socket

from bocker.errors import BockerError


class ConsoleError(BockerError):
    """The console socket could not be reached."""


def connect(path):
    """A connected stream socket to the caller's --console-socket (an fd);
    a long path goes through its directory's fd, as sockaddr_un holds 108
    bytes."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if len(os.fsencode(path)) < 100:
            sock.connect(path)
        else:
            dfd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_CLOEXEC)
            try:
                sock.connect(f"/proc/self/fd/{dfd}/{os.path.basename(path)}")
            finally:
                os.close(dfd)
    except OSError as e:
        sock.close()
        raise ConsoleError(f"connect console socket {path}: {e.strerror}") from None
    return sock.detach()


def local_pair():
    """(ours, the child's): a socket pair the child sends its master over."""
    from bocker.kernel import native

    return native.unix_pair()


def receive_master(ours):
    """The pty master the child sent on ours (closed here)."""
    with socket.socket(fileno=ours) as sock:
        _, fds, _, _ = socket.recv_fds(sock, 1024, 1)
    if not fds:
        raise ConsoleError("the container sent no terminal")
    return fds[0]


def relay(master):
    """Our terminal (raw) <-> the pty until the container side closes it;
    closes master."""
    from bocker.runtime import attach

    log = attach.LogWriter(os.devnull)
    try:
        attach.pump_tty(master, log, 0, 1)
    finally:
        log.close()
