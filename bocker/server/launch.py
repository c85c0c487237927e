"""Starting a server from Python (`bocker setup`), as the C client does
on first use: in the background, detached, with a clean environment."""
import os
import socket

from bocker.server import address

# the environment the client gives the server: nothing of the caller's
SERVER_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def is_c_client(path):
    """Whether path is an ELF file (the C client, not the Python script)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def running(sock_path):
    """Whether a server answers on sock_path (a connect succeeds)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(sock_path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def spawn(server, sock_path, env=None):
    """Run `server sock_path` detached: a session of its own, stdio on
    /dev/null, reparented to init (the middle process exits, reaped here)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.execve(server, ["bocker-server", sock_path], env or SERVER_ENV)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def ensure_running(bin_dir=None):
    """Start this installation's server if its `bocker` is the C client and
    none answers; True if one was started.  Never raises: a server is only
    a speed-up, and the client starts one on first use anyway."""
    try:
        bin_dir = address.bindir() if bin_dir is None else bin_dir
        server = os.path.join(bin_dir, "bocker-server")
        sock = address.socket_path(bin_dir)
        if not is_c_client(os.path.join(bin_dir, "bocker")) or not os.access(server, os.X_OK):
            return False
        if running(sock):
            return False
        env = dict(SERVER_ENV)
        if os.environ.get("BOCKER_SERVER_DIR"):
            env["BOCKER_SERVER_DIR"] = os.environ["BOCKER_SERVER_DIR"]
        spawn(server, sock, env)
        return True
    except Exception:
        return False
