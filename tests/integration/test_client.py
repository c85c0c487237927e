"""The C client (csrc/client.c) against a fake server written here: what
it hands over (argv, env, umask, rlimits, the very same fds, its cwd),
how it ends (the worker's exit code, or death by its signal), the
signals it forwards, and every way it falls back to the Python CLI
($BIN/bocker-py): no server (spawning one), a refusal, a server gone
before 'S', BOCKER_NO_SERVER, not root.

Each test has its own bin directory (the client beside a fake bocker-py
that prints its argv, and a fake bocker-server that records how it was
started) and its own socket directory (BOCKER_SERVER_DIR)."""
import ast
import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import pytest

from bocker.server import address

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 20
HELD_FD = 200  # far above what the fake server's shell opens itself

FAKE_PY = """#!/bin/sh
echo FALLBACK
for a in "$@"; do echo "arg=$a"; done
exit 7
"""

# records argv, initial environment, stdio and session, then exits
FAKE_SERVER = """#!/bin/sh
stdio=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2)
fds=$(ls /proc/$$/fd)
d=$(dirname "$0")
echo $$ > "$d/server.pid.tmp"
printf '%s\\n' "$0" "$@" > "$d/server.argv"
cat /proc/$$/environ > "$d/server.env"
echo "$stdio" > "$d/server.stdio"
echo "$fds" > "$d/server.fds"
cut -d' ' -f6 /proc/$$/stat > "$d/server.sid"
mv "$d/server.pid.tmp" "$d/server.pid"
"""


def c_flags():
    """setup.py's C_FLAGS, read without running setup()."""
    with open(os.path.join(REPO, "setup.py")) as f:
        for node in ast.parse(f.read()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "C_FLAGS"
                                                    for t in node.targets):
                return ast.literal_eval(node.value)
    raise AssertionError("no C_FLAGS in setup.py")


@pytest.fixture(scope="module")
def client_binary():
    d = tempfile.mkdtemp(prefix="bocker-client-bin-")
    out = os.path.join(d, "bocker")
    subprocess.run(["gcc", *c_flags(), "-o", out, os.path.join(REPO, "csrc", "client.c")],
                   check=True)
    yield out
    shutil.rmtree(d)


class Setup:
    """A bin dir (client, fake bocker-py and bocker-server), a socket dir."""

    def __init__(self, base, client):
        self.base = base
        self.bin = os.path.join(base, "bin")
        self.run = os.path.join(base, "run")
        os.mkdir(self.bin)
        os.mkdir(self.run, 0o700)
        self.client = os.path.join(self.bin, "bocker")
        shutil.copy2(client, self.client)
        for name, text in (("bocker-py", FAKE_PY), ("bocker-server", FAKE_SERVER)):
            with open(os.path.join(self.bin, name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(self.bin, name), 0o755)
        self.socket = address.socket_path(os.path.realpath(self.bin), self.run)

    def env(self, **extra):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BOCKER_SERVER_DIR": self.run,
               "HOME": "/root"}
        env.update(extra)
        return env

    def start(self, *args, env=None, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen([self.client, *args], env=env or self.env(), **kw)

    def listen(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.socket)
        s.listen(4)
        s.settimeout(TIMEOUT)
        return s


@pytest.fixture
def setup(client_binary):
    base = tempfile.mkdtemp(prefix="bocker-client-test-")
    os.chmod(base, 0o755)  # the not-root test runs the client as nobody
    s = Setup(base, client_binary)
    procs = []
    s.procs = procs
    yield s
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(base)


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def read_request(conn):
    """The client's request: (header fields, records by tag, fds)."""
    data, fds, flags, _ = socket.recv_fds(conn, 16, 8)
    assert not flags & socket.MSG_CTRUNC
    data += recv_exact(conn, 16 - len(data))
    magic, proto, length, mask = struct.unpack("<4sIII", data)
    payload = recv_exact(conn, length)
    assert payload.endswith(b"\0")
    records = {}
    for rec in payload[:-1].split(b"\0"):
        records.setdefault(chr(rec[0]), []).append(rec[1:].decode("utf-8", "surrogateescape"))
    return (magic, proto, mask), records, fds


def reply(conn, kind, value):
    conn.sendall(struct.pack("<B3xi", ord(kind), value))


def read_kill(conn):
    kind, signo = struct.unpack("<B3xi", recv_exact(conn, 8))
    assert chr(kind) == "K"
    return signo


def serve(s, *args, **kw):
    """Listen, start the client with ARGS, accept it: (proc, conn, request)."""
    listener = s.listen()
    try:
        proc = s.start(*args, **kw)
        s.procs.append(proc)
        conn, _ = listener.accept()
    finally:
        listener.close()
    conn.settimeout(TIMEOUT)
    return proc, conn, read_request(conn)


def wait_catching(pid, signo):
    """Until PID has a handler for SIGNO (SigCgt): the client catches its
    signals only once the worker runs."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status") as f:
            caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
        if caught & (1 << (signo - 1)):
            return
        time.sleep(0.01)
    raise AssertionError(f"the client never caught signal {signo}")


def wait_state(pid, letter):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == letter:
                return
        time.sleep(0.01)
    raise AssertionError(f"client {pid} never reached state {letter}")


# --------------------------------------------------------------- requests

def test_the_request_carries_the_whole_process_state(setup):
    work = os.path.join(setup.base, "work")
    os.mkdir(work)
    files = [open(os.path.join(setup.base, n), "w+b") for n in ("in", "out", "err")]
    big = {f"BIG{i}": "x" * 100_000 for i in range(8)}  # past one sendmsg's worth
    env = setup.env(FOO="bar=baz", EMPTY="", **big)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    fds = []

    def child_state():
        os.umask(0o027)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1000, hard), hard))

    try:
        proc, conn, ((magic, proto, mask), rec, fds) = serve(
            setup, "run", "--rm", "a b", "", env=env, cwd=work, stdin=files[0],
            stdout=files[1], stderr=files[2], preexec_fn=child_state)
        with conn:
            assert (magic, proto, mask) == (b"BKR1", 1, 0b1111)
            assert rec["A"] == [setup.client, "run", "--rm", "a b", ""]
            assert dict(e.split("=", 1) for e in rec["E"]) == env
            assert rec["U"] == ["27"]
            limits = {int(r): (s, h) for r, s, h in (x.split(":") for x in rec["L"])}
            assert sorted(limits) == list(range(16))
            for r, (s, h) in limits.items():
                want = resource.getrlimit(r) if r != resource.RLIMIT_NOFILE else \
                    (min(1000, hard), hard)
                assert (int(s), int(h)) == tuple(-1 if v == resource.RLIM_INFINITY else v
                                                  for v in want)
            assert len(fds) == 4
            for fd, f in zip(fds, files):
                got, want = os.fstat(fd), os.fstat(f.fileno())
                assert (got.st_dev, got.st_ino) == (want.st_dev, want.st_ino)
            cwd = os.fstat(fds[3])
            assert (cwd.st_dev, cwd.st_ino) == (os.stat(work).st_dev, os.stat(work).st_ino)
            reply(conn, "S", 4242)
            reply(conn, "X", 3)
            assert proc.wait(TIMEOUT) == 3
    finally:
        for f in files:
            f.close()
        for fd in fds:
            os.close(fd)


def test_a_closed_stdin_is_left_out_of_the_mask(setup):
    proc, conn, ((_, _, mask), rec, fds) = serve(setup, "ps", stdin=None,
                                                 preexec_fn=lambda: os.close(0))
    with conn:
        assert mask == 0b1110 and len(fds) == 3
        for fd in fds:
            os.close(fd)
        reply(conn, "S", 1)
        reply(conn, "X", 0)
        assert proc.wait(TIMEOUT) == 0


# ------------------------------------------------------------------ ends

@pytest.mark.parametrize("code", [0, 1, 125, 255])
def test_the_exit_code_passes_through(setup, code):
    proc, conn, (_, _, fds) = serve(setup, "ps")
    with conn:
        for fd in fds:
            os.close(fd)
        reply(conn, "S", 99)
        reply(conn, "X", code)
        out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == code
    assert b"FALLBACK" not in out and err == b""


@pytest.mark.parametrize("signo", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT,
                                   signal.SIGSEGV])
def test_death_by_the_workers_signal(setup, signo):
    proc, conn, (_, _, fds) = serve(setup, "ps")
    with conn:
        for fd in fds:
            os.close(fd)
        reply(conn, "S", 99)
        reply(conn, "Q", signo)
        assert proc.wait(TIMEOUT) == -signo


def test_the_server_going_away_after_start_is_125(setup):
    proc, conn, (_, _, fds) = serve(setup, "ps")
    for fd in fds:
        os.close(fd)
    reply(conn, "S", 99)
    conn.close()
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 125
    assert err == b"bocker: the bocker server went away\n" and b"FALLBACK" not in out


# --------------------------------------------------------------- signals

def test_signals_are_forwarded_as_K(setup):
    proc, conn, (_, _, fds) = serve(setup, "run", "-it", "x")
    with conn:
        for fd in fds:
            os.close(fd)
        reply(conn, "S", 99)
        for signo in (signal.SIGINT, signal.SIGTERM, signal.SIGWINCH, signal.SIGHUP,
                      signal.SIGUSR1):
            wait_catching(proc.pid, signo)
            proc.send_signal(signo)
            assert read_kill(conn) == signo
        assert proc.poll() is None  # forwarded, not obeyed
        reply(conn, "X", 0)
        assert proc.wait(TIMEOUT) == 0


def test_sigtstp_stops_the_worker_then_the_client(setup):
    proc, conn, (_, _, fds) = serve(setup, "ps")
    with conn:
        for fd in fds:
            os.close(fd)
        reply(conn, "S", 99)
        wait_catching(proc.pid, signal.SIGTSTP)
        proc.send_signal(signal.SIGTSTP)
        assert read_kill(conn) == signal.SIGSTOP
        wait_state(proc.pid, "T")
        proc.send_signal(signal.SIGCONT)
        assert read_kill(conn) == signal.SIGCONT
        reply(conn, "X", 0)
        assert proc.wait(TIMEOUT) == 0


# -------------------------------------------------------------- fallback

def assert_fell_back(proc, *args):
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 7, err  # the fake bocker-py's
    assert out.decode().splitlines() == ["FALLBACK", *(f"arg={a}" for a in args)]


def test_a_refusal_runs_the_python_cli(setup):
    proc, conn, (_, _, fds) = serve(setup, "ps", "-a", "with space")
    with conn:
        for fd in fds:
            os.close(fd)
        reply(conn, "R", 1)
        assert_fell_back(proc, "ps", "-a", "with space")


def test_eof_before_start_runs_the_python_cli(setup):
    proc, conn, (_, _, fds) = serve(setup, "images")
    for fd in fds:
        os.close(fd)
    conn.close()
    assert_fell_back(proc, "images")


def test_no_server_env_never_connects(setup):
    listener = setup.listen()
    with listener:
        proc = setup.start("ps", env=setup.env(BOCKER_NO_SERVER="1"))
        setup.procs.append(proc)
        assert_fell_back(proc, "ps")
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_not_root_never_connects(setup):
    listener = setup.listen()
    with listener:
        proc = setup.start("ps", preexec_fn=lambda: os.setresuid(65534, 65534, 65534))
        setup.procs.append(proc)
        assert_fell_back(proc, "ps")
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()


def wait_for_spawned_server(s):
    """The fake server's records, once it has written them and exited."""
    pidfile = os.path.join(s.bin, "server.pid")
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(pidfile):
        assert time.monotonic() < deadline, "the client spawned no server"
        time.sleep(0.01)
    with open(pidfile) as f:
        pid = int(f.read())
    while os.path.exists(f"/proc/{pid}"):
        assert time.monotonic() < deadline, "the fake server never exited"
        time.sleep(0.01)

    def read(name):
        with open(os.path.join(s.bin, name), "rb") as f:
            return f.read()
    return pid, read


@pytest.mark.parametrize("how", ["no socket", "refused"])
def test_no_server_spawns_one_and_runs_the_python_cli(setup, how):
    if how == "refused":  # a socket file nobody listens on
        setup.listen().close()
    with open(os.path.join(setup.base, "held"), "w") as held:
        # an fd of ours the client inherits must not reach the server
        os.dup2(held.fileno(), HELD_FD)
        try:
            proc = setup.start("version", pass_fds=(HELD_FD,))
            setup.procs.append(proc)
            assert_fell_back(proc, "version")
        finally:
            os.close(HELD_FD)
    pid, read = wait_for_spawned_server(setup)
    assert read("server.argv").decode().splitlines() == [
        os.path.join(setup.bin, "bocker-server"), setup.socket]
    assert read("server.env") == (b"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                  b"/usr/bin:/sbin:/bin\0")
    assert read("server.stdio").decode().splitlines() == ["/dev/null"] * 3
    assert str(HELD_FD) not in read("server.fds").decode().split()
    sid = int(read("server.sid"))
    assert sid not in (os.getsid(0), pid)  # its own session, not its leader


def test_an_untrusted_listener_is_not_used(setup):
    """A socket whose server is not our euid: fall back, send nothing."""
    os.chmod(setup.run, 0o777)  # so that nobody can bind there
    helper = subprocess.Popen(
        [sys.executable, "-c", (
            "import os, socket, sys\n"
            "os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)\n"
            "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)\n"
            "print('ready', flush=True)\n"
            "c, _ = s.accept(); c.settimeout(20)\n"
            "print(len(c.recv(16)), flush=True)\n"),
         setup.socket], stdout=subprocess.PIPE)
    setup.procs.append(helper)
    try:
        assert helper.stdout.readline() == b"ready\n"
        proc = setup.start("ps")
        setup.procs.append(proc)
        assert_fell_back(proc, "ps")
        assert helper.stdout.readline() == b"0\n"  # connected, then nothing sent
        assert helper.wait(TIMEOUT) == 0
    finally:
        helper.stdout.close()


# ----------------------------------------------------------------- trace

def test_trace_json_lines(setup):
    proc, conn, (_, rec, fds) = serve(setup, "ps", env=setup.env(BOCKER_TRACE="json"))
    with conn:
        for fd in fds:
            os.close(fd)
        assert "BOCKER_TRACE=json" in rec["E"]
        reply(conn, "S", 99)
        reply(conn, "X", 0)
        _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0
    lines = [json.loads(line) for line in err.decode().splitlines()]
    assert [r["step"] for r in lines] == ["client start", "client connect", "client request",
                                          "client wait"]
    for r in lines:
        assert set(r) == {"step", "args", "result", "errno", "start_us", "dur_us", "pid"}
        assert r["pid"] == proc.pid and r["dur_us"] >= 0 and r["errno"] == 0
    start, connect, request, wait = lines
    assert start["args"] == {"bindir": os.path.realpath(setup.bin)}
    assert connect["args"] == {"path": setup.socket}
    assert start["start_us"] + start["dur_us"] == connect["start_us"]
    assert request["start_us"] >= connect["start_us"] + connect["dur_us"]
    assert wait["start_us"] == request["start_us"] + request["dur_us"]


def test_trace_of_a_missing_server_names_its_errno(setup):
    proc = setup.start("ps", env=setup.env(BOCKER_TRACE="json"))
    setup.procs.append(proc)
    out, err = proc.communicate(timeout=TIMEOUT)
    connect = [json.loads(line) for line in err.decode().splitlines()][1]
    assert connect["step"] == "client connect"
    assert connect["errno"] == 2 and connect["result"] is None
    wait_for_spawned_server(setup)
