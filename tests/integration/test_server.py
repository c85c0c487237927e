"""The warm server (bocker/server) against the real kernel: every command
through it exits, prints and reads as the direct Python CLI does; peers
that could not do the work themselves are refused; new code, idleness and
SIGTERM end it, leaving nothing behind.

The server runs from a copy of the package under /tmp (its inotify watch
then sees only that copy: touching it tests staleness without writing
into the worktree or the venv), and is spoken to by tests/integration/
pyclient.py, the protocol's Python twin of csrc/client.c.
"""
import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile

import pytest

from bocker.server import address

import pyclient
from conftest import run_bocker, wait_for

pytestmark = pytest.mark.root

PYCLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyclient.py")
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(address.__file__)))
REFUSED_STALE, REFUSED_PEER = 201, 202
PR_CAPBSET_DROP, CAP_SYS_ADMIN = 24, 21


def copy_package():
    """A copy of the bocker package (shim and programs included) under a
    /tmp/bocker-test-* dir: the PYTHONPATH of a server and its direct twin."""
    base = tempfile.mkdtemp(prefix="bocker-test-srvcode-")
    shutil.copytree(PACKAGE, os.path.join(base, "bocker"),
                    ignore=shutil.ignore_patterns("__pycache__"), symlinks=True)
    return base


@pytest.fixture(scope="module")
def code():
    base = copy_package()
    yield base
    shutil.rmtree(base)


class Server:
    """A bocker-server process on a socket of its own."""

    def __init__(self, code, idle=60):
        self.code = code
        self.dir = tempfile.mkdtemp(prefix="bocker-test-srv-")  # 0700
        self.sock = address.socket_path(address.bindir(), self.dir)
        self.proc = self.start(idle)
        assert wait_for(lambda: os.path.exists(address.pid_path(self.sock)), timeout=30), \
            "the server did not come up"

    def start(self, idle):
        # the environment a client gives the server it spawns: PATH only
        # (plus the copy to import and the test's socket dir)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "PYTHONPATH": self.code, "BOCKER_SERVER_DIR": self.dir,
               "BOCKER_SERVER_IDLE": str(idle)}
        return subprocess.Popen([sys.executable, "-m", "bocker.server.main", self.sock],
                                env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                cwd="/", start_new_session=True)

    def left(self):
        """What the server left in its dir (nothing, once it has exited)."""
        return sorted(os.listdir(self.dir))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        err = self.proc.communicate(timeout=30)[1]
        shutil.rmtree(self.dir, ignore_errors=True)
        return err


@pytest.fixture
def server(code, paths):
    s = Server(code)
    yield s
    alive = s.proc.poll() is None
    err = s.stop()  # first: its dir goes whatever the checks below say
    assert alive, "the server died during the test"
    assert s.proc.returncode == 0, err
    assert not err, err.decode(errors="replace")


def through_server(server, *args, env=None, cwd=None, input=None, timeout=60, **kw):
    """A command by pyclient through server: CompletedProcess."""
    return subprocess.run([sys.executable, PYCLIENT, server.sock, *args], input=input,
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})}, **kw)


def direct(code, *args, env=None, cwd=None, input=None, timeout=60):
    """The same command by the Python CLI itself, from the same code."""
    return subprocess.run([sys.executable, "-m", "bocker.cli", *args], input=input,
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": code, **(env or {})})


def outcome(proc):
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("args, code_wanted", [
    (["version"], 0),
    (["ps"], 0),
    (["images"], 0),
    (["--bogus"], 125),
    (["ps", "--bogus"], 125),
    (["inspect", "no-such-container"], 1),
    (["run", "--rm", "busybox", "true"], 0),
    (["run", "--rm", "busybox", "sh", "-c", "exit 7"], 7),
    (["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2"], 0),
])
def test_a_command_through_the_server_is_the_direct_cli(server, code, args, code_wanted):
    served = through_server(server, *args)
    assert served.returncode == code_wanted, served.stderr
    assert outcome(served) == outcome(direct(code, *args))


def test_stdin_reaches_the_container(server, code):
    args = ("run", "--rm", "-i", "busybox", "cat")
    served = through_server(server, *args, input="hello\nworld\n")
    assert outcome(served) == (0, "hello\nworld\n", "")
    assert outcome(served) == outcome(direct(code, *args, input="hello\nworld\n"))


def test_the_clients_environment_is_the_commands(server, code):
    # -e NAME takes the value from the CLI's environment; BOCKER_TRACE is
    # read by the CLI itself (module state a worker must read again)
    args = ("run", "--rm", "-e", "SRVTEST", "busybox", "sh", "-c", 'echo "[$SRVTEST]"')
    served = through_server(server, *args, env={"SRVTEST": "from the client"})
    assert outcome(served) == (0, "[from the client]\n", "")
    assert outcome(served) == outcome(direct(code, *args, env={"SRVTEST": "from the client"}))
    traced = through_server(server, "ps", env={"BOCKER_TRACE": "json"})
    assert traced.returncode == 0
    steps = [line for line in traced.stderr.splitlines() if '"server fork"' in line]
    assert steps, traced.stderr
    assert "server fork" not in through_server(server, "ps").stderr


def test_relative_paths_are_the_clients_cwd(server, code, tmp_path):
    made = run_bocker("create", "busybox", check=True).stdout.strip()
    try:
        (tmp_path / "s").mkdir()
        (tmp_path / "d").mkdir()
        served = through_server(server, "export", "-o", "rel.tar", made, cwd=tmp_path / "s")
        plain = direct(code, "export", "-o", "rel.tar", made, cwd=tmp_path / "d")
        assert outcome(served) == outcome(plain) == (0, "", "")
        assert (tmp_path / "s" / "rel.tar").stat().st_size == (
            tmp_path / "d" / "rel.tar").stat().st_size > 0
        # and the umask is the client's: the file's mode says so
        served = through_server(server, "export", "-o", "masked.tar", made, cwd=tmp_path / "s",
                                preexec_fn=lambda: os.umask(0o077))
        assert served.returncode == 0, served.stderr
        assert (tmp_path / "s" / "masked.tar").stat().st_mode & 0o077 == 0
    finally:
        run_bocker("rm", "-f", made)


def _running(name):
    proc = run_bocker("ps", "--filter", f"name={name}", "--format", "{{.Names}}")
    return name in proc.stdout.split()


def _sigterm_run(cmd, name, code):
    # the container's sh traps TERM (as PID 1 it ignores what it does not
    # handle), so a forwarded SIGTERM ends it with 143
    proc = subprocess.Popen([*cmd, "run", "--rm", "--name", name, "busybox", "sh", "-c",
                             "trap 'exit 143' TERM; sleep 30 & wait"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": code})
    try:
        assert wait_for(lambda: _running(name), timeout=20), proc.stderr
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=25)  # well before the sleep's 30 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        run_bocker("rm", "-f", name)
    return proc.returncode, out, err


def test_sigterm_to_the_client_ends_the_run_as_the_direct_cli(server, code):
    tag = os.getpid()
    served = _sigterm_run([sys.executable, PYCLIENT, server.sock], f"srvterm-a{tag}", code)
    plain = _sigterm_run([sys.executable, "-m", "bocker.cli"], f"srvterm-b{tag}", code)
    assert served == plain
    assert served[0] != 0


def test_a_client_that_dies_takes_its_workers_group_with_it(server, code):
    name = f"srvkill{os.getpid()}"
    proc = subprocess.Popen([sys.executable, PYCLIENT, server.sock, "run", "--rm", "--name",
                             name, "busybox", "sleep", "30"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYCLIENT_SAY_PID": "1"})
    try:
        assert wait_for(lambda: _running(name), timeout=20)
        proc.kill()
        proc.wait()
        worker = int(proc.stderr.readline().split()[-1])
        assert wait_for(lambda: not os.path.exists(f"/proc/{worker}"), timeout=10)
    finally:
        run_bocker("rm", "-f", name)


def _drop_sys_admin():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl")


def test_a_peer_with_fewer_capabilities_is_refused(server):
    # dropped from the bounding set, CAP_SYS_ADMIN is not in the exec'd
    # client's effective set: it could not run bocker itself
    proc = through_server(server, "ps", preexec_fn=_drop_sys_admin)
    assert proc.returncode == REFUSED_PEER, proc.stderr
    assert through_server(server, "ps").returncode == 0  # and the server serves on


def test_a_peer_in_another_mount_namespace_is_refused(server):
    proc = subprocess.run(["unshare", "-m", sys.executable, PYCLIENT, server.sock, "ps"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == REFUSED_PEER, proc.stderr


def test_new_code_makes_the_server_refuse_and_exit(paths):
    code = copy_package()
    s = Server(code)
    try:
        assert through_server(s, "version").returncode == 0
        # connected before the change and asking after it: whether the
        # server notices by its watch or at the request, this client is
        # refused as stale (a later one finds no server and falls back)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(s.sock)
            os.utime(os.path.join(code, "bocker", "cli", "app.py"))
            data, fds = pyclient.request(["bocker", "version"], dict(os.environ))
            try:
                sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                       struct.pack(f"{len(fds)}i", *fds))])
            except BrokenPipeError:
                pass  # refused from the backlog already: the reply is waiting
            finally:
                os.close(fds[-1])
            assert pyclient.read_message(sock) == (ord("R"), 1)
        finally:
            sock.close()
        assert s.proc.wait(timeout=30) == 0
        assert through_server(s, "version").returncode == pyclient.NO_SERVER
        assert s.left() == []
    finally:
        s.stop()
        shutil.rmtree(code)


def test_a_byte_code_write_is_not_new_code(server):
    pycache = os.path.join(server.code, "bocker", "cli", "__pycache__")
    os.makedirs(pycache, exist_ok=True)
    with open(os.path.join(pycache, "srvtest.cpython-311.pyc"), "wb"):
        pass
    try:
        assert through_server(server, "version").returncode == 0
    finally:
        os.unlink(os.path.join(pycache, "srvtest.cpython-311.pyc"))


def test_an_idle_server_exits_and_leaves_nothing(code, paths):
    s = Server(code, idle=1)
    try:
        assert through_server(s, "ps").returncode == 0
        assert s.proc.wait(timeout=30) == 0
        assert s.left() == []
    finally:
        s.stop()


def test_one_server_per_socket(server):
    second = server.start(idle=60)
    assert second.wait(timeout=30) == 0  # saw the lock, left
    assert through_server(server, "ps").returncode == 0
    assert sorted(server.left()) == sorted(
        os.path.basename(p) for p in (server.sock, address.pid_path(server.sock),
                                      address.lock_path(server.sock)))


def test_sigterm_stops_the_server_and_leaves_nothing(code, paths):
    s = Server(code)
    try:
        assert through_server(s, "ps").returncode == 0
        s.proc.terminate()
        assert s.proc.wait(timeout=30) == 0
        assert s.left() == []
        assert through_server(s, "ps").returncode == 199  # no server: the client falls back
    finally:
        s.stop()


def test_a_bad_request_is_refused(server):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(server.sock)
        cwd = os.open("/", os.O_PATH | os.O_DIRECTORY)
        body = b"Zbogus\0"
        sock.sendmsg([struct.pack("<4sIII", b"BKR1", 1, len(body), 8) + body],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", cwd))])
        os.close(cwd)
        assert sock.recv(8) == b"R\0\0\0" + struct.pack("<i", 3)
    finally:
        sock.close()
    assert through_server(server, "ps").returncode == 0  # served on


def test_setup_starts_a_server_only_for_the_c_client(code, paths, tmp_path, monkeypatch):
    from bocker.server import launch

    sdir = tempfile.mkdtemp(prefix="bocker-test-srv-")
    monkeypatch.setenv("BOCKER_SERVER_DIR", sdir)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "bocker").write_text("#!/bin/sh\n")  # the Python script's kind: no server
    (bin_dir / "bocker-server").write_text(
        f"#!/bin/sh\nPYTHONPATH={code} exec {sys.executable} -m bocker.server.main \"$1\"\n")
    os.chmod(bin_dir / "bocker-server", 0o755)
    sock = address.socket_path(str(bin_dir))
    try:
        assert not launch.ensure_running(str(bin_dir))
        shutil.copy("/bin/true", bin_dir / "bocker")  # an ELF: the C client
        assert launch.ensure_running(str(bin_dir))
        assert wait_for(lambda: launch.running(sock), timeout=30)
        assert not launch.ensure_running(str(bin_dir))  # one runs: no second
        assert subprocess.run([sys.executable, PYCLIENT, sock, "ps"]).returncode == 0
    finally:
        if os.path.exists(address.pid_path(sock)):
            with open(address.pid_path(sock)) as f:
                pid = int(f.read())
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=30)
        assert os.listdir(sdir) == []
        os.rmdir(sdir)
