"""bocker-oci against the real kernel: a bundle made in tmp_path (a
busybox-static rootfs, `bocker-oci spec`'s config edited), driven
through runc's verbs as podman and containerd drive them; a private
--root per test; nothing left after delete (cgroup, state dir, process).
"""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile

import pytest

from conftest import wait_for

from bocker.oci.cgroup import OciCgroup

WORKTREE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPLETS = ("sh", "sleep", "cat", "echo", "ls", "true", "false", "id", "hostname", "ps")


def oci(root, *args, input=None, timeout=60):
    """Run bocker-oci --root ROOT ARGS; CompletedProcess with text output.
    Its stdout and stderr are files, not pipes: a container it creates
    keeps them as its own stdio (as runc's), so a pipe would not end."""
    env = {**os.environ, "PYTHONPATH": WORKTREE}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run([sys.executable, "-m", "bocker.oci.cli", "--root", str(root),
                               *args], input=input.encode() if input else None,
                              stdin=None if input else subprocess.DEVNULL, stdout=out,
                              stderr=err, timeout=timeout, env=env)
        out.seek(0)
        err.seek(0)
        proc.stdout, proc.stderr = out.read().decode(), err.read().decode()
    return proc


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    return proc


class Env:
    """One test's state root and bundle, with its own config.json."""

    def __init__(self, tmp_path):
        self.root = tmp_path / "state"
        self.bundle = tmp_path / "bundle"
        rootfs = self.bundle / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        for d in ("proc", "dev", "sys", "tmp", "etc"):
            (rootfs / d).mkdir()
        subprocess.run(["cp", "/bin/busybox", str(rootfs / "bin" / "busybox")], check=True)
        for applet in APPLETS:
            os.symlink("busybox", rootfs / "bin" / applet)
        ok(oci(self.root, "spec", "--bundle", str(self.bundle)))
        self.config = json.loads((self.bundle / "config.json").read_text())
        self.config["process"]["terminal"] = False
        self.config["root"]["readonly"] = False
        caps = self.config["process"]["capabilities"]
        # ambient caps too (raised only if also inheritable and permitted)
        caps["ambient"] = caps["inheritable"] = list(caps["permitted"])
        self.args(["sleep", "1000"])

    def args(self, argv, **process):
        """Set process.args (and other process fields), rewrite config.json."""
        self.config["process"]["args"] = argv
        self.config["process"].update(process)
        self.write()

    def write(self):
        (self.bundle / "config.json").write_text(json.dumps(self.config))

    def __call__(self, *args, **kw):
        return oci(self.root, *args, **kw)

    def create(self, cid, *extra):
        return ok(self("create", "--bundle", str(self.bundle), *extra, cid))

    def state(self, cid):
        return json.loads(ok(self("state", cid)).stdout)

    def status(self, cid):
        return self.state(cid)["status"]


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    if e.root.exists():  # whatever a failed test left
        for cid in os.listdir(e.root):
            e("delete", "--force", cid)
        assert os.listdir(e.root) == []


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def assert_gone(env, cid, pid):
    """delete left nothing: no state dir, no cgroup, no process."""
    assert not (env.root / cid).exists()
    assert not OciCgroup(None, cid).exists()
    assert wait_for(lambda: not alive(pid))
    assert "does not exist" in env("state", cid).stderr


# ------------------------------------------------------------- lifecycle

def test_create_start_kill_delete(env, tmp_path):
    pid_file = tmp_path / "init.pid"
    env.create("c1", "--pid-file", str(pid_file))
    st = env.state("c1")
    pid = int(pid_file.read_text())
    assert st["status"] == "created" and st["pid"] == pid and alive(pid)
    assert st["bundle"] == str(env.bundle) and st["ociVersion"]
    assert OciCgroup(None, "c1").exists() and pid in OciCgroup(None, "c1").pids()
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert b"sleep" not in f.read()     # waits at the gate, not exec'd yet
    ok(env("start", "c1"))
    assert env.status("c1") == "running"
    assert wait_for(lambda: open(f"/proc/{pid}/cmdline", "rb").read().startswith(b"sleep"))
    ok(env("kill", "c1", "KILL"))
    assert wait_for(lambda: env.status("c1") == "stopped")
    assert env.state("c1")["pid"] == 0
    ok(env("delete", "c1"))
    assert_gone(env, "c1", pid)


def test_run_waits_and_exits_with_the_status(env):
    env.args(["sh", "-c", "echo out; echo err >&2; exit 3"])
    proc = env("run", "--bundle", str(env.bundle), "r1")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "out\n" and "err\n" in proc.stderr
    assert not (env.root / "r1").exists() and not OciCgroup(None, "r1").exists()


def test_run_detached_exec_attached_and_detached(env, tmp_path):
    ok(env("run", "--detach", "--bundle", str(env.bundle), "x1"))
    assert env.status("x1") == "running"
    init = env.state("x1")["pid"]
    proc = env("exec", "x1", "sh", "-c", "echo in-$(hostname); exit 5")
    assert proc.returncode == 5 and proc.stdout.startswith("in-"), proc.stderr
    pid_file = tmp_path / "exec.pid"
    ok(env("exec", "--detach", "--pid-file", str(pid_file), "--env", "A=1", "x1",
           "sleep", "999"))
    exec_pid = int(pid_file.read_text())
    assert alive(exec_pid)
    pids = json.loads(ok(env("ps", "--format", "json", "x1")).stdout)
    assert init in pids and exec_pid in pids
    with open(f"/proc/{exec_pid}/environ", "rb") as f:
        assert b"A=1" in f.read().split(b"\0")
    table = ok(env("ps", "x1")).stdout.splitlines()
    assert "PID" in table[0] and len(table) == 3
    ok(env("delete", "--force", "x1"))
    assert_gone(env, "x1", init)
    assert not alive(exec_pid)


def test_exec_process_file(env, tmp_path):
    env.create("p1")
    ok(env("start", "p1"))
    process = {"args": ["sh", "-c", "id -u; id -g"], "cwd": "/tmp", "env": ["PATH=/bin"],
               "user": {"uid": 1000, "gid": 1001}}
    (tmp_path / "process.json").write_text(json.dumps(process))
    proc = ok(env("exec", "--process", str(tmp_path / "process.json"), "p1"))
    assert proc.stdout.split() == ["1000", "1001"]
    ok(env("delete", "--force", "p1"))


def test_user_namespace_oom_score_and_preserved_fds(env, tmp_path):
    env.config["linux"]["namespaces"].append({"type": "user"})
    env.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    env.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    env.args(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map /proc/self/oom_score_adj;"
              " echo through-3 >&3"], oomScoreAdj=123)
    extra = tmp_path / "fd3"
    proc = subprocess.run(   # fd 3 open without CLOEXEC, as conmon's extra fds are
        ["sh", "-c", 'exec 3>"$0"; exec "$@"', str(extra), sys.executable, "-m",
         "bocker.oci.cli", "--root", str(env.root), "run", "--preserve-fds", "1",
         "--bundle", str(env.bundle), "n1"],
        env={**os.environ, "PYTHONPATH": WORKTREE}, capture_output=True, text=True,
        timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "100000", "65536", "0", "200000", "65536", "123"]
    assert extra.read_text() == "through-3\n"


def test_namespace_joined_by_path(env):
    ok(env("run", "-d", "--bundle", str(env.bundle), "j1"))
    pid = env.state("j1")["pid"]
    for ns in env.config["linux"]["namespaces"]:
        if ns["type"] in ("network", "ipc"):
            ns["path"] = f"/proc/{pid}/ns/{'net' if ns['type'] == 'network' else 'ipc'}"
    env.args(["sh", "-c", "ls -l /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts"])
    proc = ok(env("run", "--bundle", str(env.bundle), "j2"))
    links = dict(line.split()[-3::2] for line in proc.stdout.splitlines())
    assert links["/proc/self/ns/net"] == os.readlink(f"/proc/{pid}/ns/net")
    assert links["/proc/self/ns/ipc"] == os.readlink(f"/proc/{pid}/ns/ipc")
    assert links["/proc/self/ns/uts"] != os.readlink(f"/proc/{pid}/ns/uts")
    ok(env("delete", "--force", "j1"))


# ------------------------------------------------------------- the state machine

def one_line_refusal(proc, *words):
    assert proc.returncode == 1, proc.stdout
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


def test_state_machine_refusals(env):
    env.create("s1")
    pid = env.state("s1")["pid"]
    one_line_refusal(env("delete", "s1"), "created, not stopped")
    one_line_refusal(env("create", "--bundle", str(env.bundle), "s1"), "already exists")
    one_line_refusal(env("resume", "s1"), "not paused")
    ok(env("start", "s1"))
    one_line_refusal(env("start", "s1"), "not created")
    one_line_refusal(env("delete", "s1"), "running, not stopped")
    ok(env("kill", "s1", "9"))
    assert wait_for(lambda: env.status("s1") == "stopped")
    one_line_refusal(env("kill", "s1", "KILL"), "container not running")
    one_line_refusal(env("start", "s1"), "not created")
    one_line_refusal(env("exec", "s1", "true"), "not running")
    one_line_refusal(env("pause", "s1"), "not running")
    ok(env("delete", "s1"))
    assert_gone(env, "s1", pid)
    one_line_refusal(env("kill", "s1"), "does not exist")
    ok(env("delete", "--force", "s1"))   # runc: forcing away nothing is fine


def test_kill_created_and_delete_force(env):
    env.create("k1")
    pid = env.state("k1")["pid"]
    ok(env("kill", "k1", "SIGKILL"))
    assert wait_for(lambda: env.status("k1") == "stopped")
    ok(env("delete", "k1"))
    assert_gone(env, "k1", pid)
    env.create("k2")
    pid = env.state("k2")["pid"]
    ok(env("delete", "--force", "k2"))
    assert_gone(env, "k2", pid)


def test_failed_create_leaves_nothing_and_logs_json(env, tmp_path):
    env.args(["no-such-program"])
    log_file = tmp_path / "log.json"
    proc = env("--log", str(log_file), "--log-format", "json", "create", "--bundle",
               str(env.bundle), "f1")
    one_line_refusal(proc, "executable file not found", "no-such-program")
    last = json.loads(log_file.read_text().splitlines()[-1])
    assert last["level"] == "error" and "executable file not found" in last["msg"]
    assert last["time"]
    assert not (env.root / "f1").exists() and not OciCgroup(None, "f1").exists()
    (env.bundle / "config.json").write_text('{"ociVersion": 3}')
    one_line_refusal(env("create", "--bundle", str(env.bundle), "f2"), "ociVersion")
    assert not (env.root / "f2").exists()


# ------------------------------------------------------------- console socket

def test_console_socket_sends_the_pty_master(env, tmp_path):
    env.args(["sh"], terminal=True)
    path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    creating = subprocess.Popen(
        [sys.executable, "-m", "bocker.oci.cli", "--root", str(env.root), "create",
         "--bundle", str(env.bundle), "--console-socket", path, "t1"],
        env={**os.environ, "PYTHONPATH": WORKTREE}, stderr=subprocess.PIPE, text=True)
    try:
        assert select.select([listener], [], [], 30)[0], "create never connected"
        conn, _ = listener.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        assert creating.wait(60) == 0, creating.stderr.read()
    finally:
        listener.close()
        if creating.poll() is None:
            creating.kill()
        creating.wait()
    master = fds[0]
    try:
        ok(env("start", "t1"))
        os.write(master, b"echo $((6*7))-$(tty)\n")
        seen = b""
        while b"42-/dev/pts/0" not in seen:
            assert select.select([master], [], [], 30)[0], seen
            seen += os.read(master, 4096)
        os.write(master, b"exit\n")
        assert wait_for(lambda: env.status("t1") == "stopped")
    finally:
        os.close(master)
    ok(env("delete", "t1"))


def test_run_and_exec_relay_a_terminal_without_console_socket(env):
    env.args(["sh"], terminal=True)
    proc = env("run", "--bundle", str(env.bundle), "t2", input="echo $((6*7))-$(tty)\nexit 4\n")
    assert proc.returncode == 4, proc.stderr
    assert "42-/dev/pts/0" in proc.stdout
    env.args(["sleep", "1000"], terminal=False)
    ok(env("run", "-d", "--bundle", str(env.bundle), "t3"))
    proc = env("exec", "-t", "t3", "sh", "-c", "tty; exit 6")
    assert proc.returncode == 6 and "/dev/pts/" in proc.stdout, proc.stderr
    ok(env("delete", "--force", "t3"))


# ------------------------------------------------------------- hooks

def test_hooks_run_at_their_points_with_the_state(env, tmp_path):
    out = tmp_path / "hooks"
    out.mkdir()

    def hook(kind):
        return {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}/{kind}"], "timeout": 10}

    kinds = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    env.config["hooks"] = {kind: [hook(kind)] for kind in kinds}
    # startContainer runs inside the container: its path and output are the container's
    env.config["hooks"]["startContainer"] = [{
        "path": "/bin/sh", "args": ["sh", "-c", "cat > /startContainer; hostname >> /startContainer"],
        "timeout": 10}]
    env.write()
    env.create("h1")
    pid = env.state("h1")["pid"]
    assert sorted(os.listdir(out)) == ["createContainer", "createRuntime"]
    got = json.loads((out / "createRuntime").read_text())
    assert got["id"] == "h1" and got["pid"] == pid and got["bundle"] == str(env.bundle)
    assert got["status"] == "created"
    ok(env("start", "h1"))
    assert json.loads((out / "prestart").read_text())["status"] == "created"
    got, hostname = (env.bundle / "rootfs" / "startContainer").read_text().rsplit("}", 1)
    assert json.loads(got + "}")["status"] == "created"
    assert hostname.strip() == env.config["hostname"]     # in the container's UTS namespace
    assert json.loads((out / "poststart").read_text())["status"] == "running"
    ok(env("kill", "h1", "KILL"))
    assert wait_for(lambda: env.status("h1") == "stopped")
    assert not (out / "poststop").exists()
    ok(env("delete", "h1"))
    assert json.loads((out / "poststop").read_text())["status"] == "stopped"
    assert_gone(env, "h1", pid)


def test_failing_create_hook_undoes_the_create(env):
    env.config["hooks"] = {"createRuntime": [{"path": "/bin/sh",
                                              "args": ["sh", "-c", "echo no >&2; exit 7"]}]}
    env.write()
    proc = env("create", "--bundle", str(env.bundle), "h2")
    one_line_refusal(proc, "createRuntime hook 0", "exit status 7")
    assert not (env.root / "h2").exists() and not OciCgroup(None, "h2").exists()


def test_create_killed_midway_is_stopped_and_delete_cleans_up(env):
    # the hook SIGKILLs create itself while its init waits at the gate
    env.config["hooks"] = {"createRuntime": [{"path": "/bin/sh",
                                              "args": ["sh", "-c", "kill -9 $PPID"]}]}
    env.write()
    proc = env("create", "--bundle", str(env.bundle), "m1")
    assert proc.returncode == -signal.SIGKILL
    st = env.state("m1")
    assert st["status"] == "stopped"     # its creator is gone: it never became created
    pid = json.loads((env.root / "m1" / "state.json").read_text())["pid"]
    assert alive(pid) and pid in OciCgroup(None, "m1").pids()
    one_line_refusal(env("start", "m1"), "not created")
    ok(env("delete", "m1"))
    assert_gone(env, "m1", pid)


def test_failing_prestart_hook_stops_and_deletes(env, tmp_path):
    env.config["hooks"] = {"prestart": [{"path": "/bin/false"}],
                           "poststop": [{"path": "/bin/sh",
                                         "args": ["sh", "-c", f"cat > {tmp_path}/poststop"]}]}
    env.write()
    env.create("h4")
    pid = env.state("h4")["pid"]
    one_line_refusal(env("start", "h4"), "prestart hook 0", "exit status 1")
    assert_gone(env, "h4", pid)
    assert json.loads((tmp_path / "poststop").read_text())["id"] == "h4"


def test_start_container_hook_path_resolves_inside(env):
    # a host program the busybox rootfs does not have: not found in there
    env.config["hooks"] = {"startContainer": [{"path": sys.executable}]}
    env.write()
    env.create("h5")
    pid = env.state("h5")["pid"]
    one_line_refusal(env("start", "h5"), "startContainer hook 0", "executable file not found")
    assert_gone(env, "h5", pid)


def test_failing_poststart_hook_is_a_warning(env, tmp_path):
    env.config["hooks"] = {"poststart": [{"path": "/bin/false"}, {
        "path": "/bin/sh", "args": ["sh", "-c", f"echo ran > {tmp_path}/second"]}]}
    env.write()
    env.create("h3")
    proc = ok(env("start", "h3"))
    assert "warning" in proc.stderr and "poststart hook 0" in proc.stderr
    assert (tmp_path / "second").read_text() == "ran\n"   # the rest still run
    assert env.status("h3") == "running"
    ok(env("delete", "--force", "h3"))


def keyring_script(dest):
    """Python that writes its session keyring's serial number to dest
    (keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) on x86-64)."""
    return ("import ctypes\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "libc.syscall.restype = ctypes.c_long\n"
            f"open({dest!r}, 'w').write(str(libc.syscall(250, 0, -3, 0)))\n")


@pytest.mark.parametrize("flag", [[], ["--no-new-keyring"]])
def test_session_keyring(env, tmp_path, flag):
    # the createRuntime hook is a child of create after the keyring was
    # joined, as the container is: it shows which one the container got
    hook, ours = tmp_path / "hook-keyring", tmp_path / "our-keyring"
    env.config["hooks"] = {"createRuntime": [{
        "path": sys.executable, "args": ["python", "-c", keyring_script(str(hook))]}]}
    env.write()
    env.create("k1", *flag)
    subprocess.run([sys.executable, "-c", keyring_script(str(ours))], check=True)
    assert int(ours.read_text()) > 0 and int(hook.read_text()) > 0
    assert (hook.read_text() == ours.read_text()) == bool(flag)
    ok(env("delete", "--force", "k1"))


# ------------------------------------------------------------- cgroup verbs

def test_pause_resume_update(env):
    ok(env("run", "-d", "--bundle", str(env.bundle), "u1"))
    ok(env("pause", "u1"))
    assert env.status("u1") == "paused"
    one_line_refusal(env("pause", "u1"), "paused")
    ok(env("resume", "u1"))
    assert env.status("u1") == "running"
    ok(env("update", "--pids-limit", "42", "u1"))
    pids_dir = OciCgroup(None, "u1").controller_dirs()["pids"]
    with open(os.path.join(pids_dir, "pids.max")) as f:
        assert f.read().strip() == "42"
    ok(env("update", "--resources", "-", "u1", input=json.dumps({"pids": {"limit": 17}})))
    with open(os.path.join(pids_dir, "pids.max")) as f:
        assert f.read().strip() == "17"
    one_line_refusal(env("update", "--resources", "-", "u1", input="[1]"), "JSON object")
    pid = env.state("u1")["pid"]
    ok(env("pause", "u1"))
    one_line_refusal(env("exec", "u1", "true"), "paused")
    one_line_refusal(env("delete", "u1"), "paused, not stopped")
    ok(env("delete", "--force", "u1"))     # a frozen init takes its SIGKILL once thawed
    assert_gone(env, "u1", pid)


# ------------------------------------------------------------- reads

def test_features_list_and_version(env):
    doc = json.loads(ok(env("features")).stdout)
    assert doc["ociVersionMax"].startswith("1.") and "poststop" in doc["hooks"]
    assert "pid" in doc["linux"]["namespaces"] and doc["linux"]["cgroup"]["systemd"] is False
    env.create("l1")
    listed = json.loads(ok(env("list", "-f", "json")).stdout)
    assert [(c["id"], c["status"]) for c in listed] == [("l1", "created")]
    assert ok(env("list", "-q")).stdout == "l1\n"
    assert "l1" in ok(env("list")).stdout.splitlines()[1]
    lines = ok(env("--version")).stdout.splitlines()
    assert lines[0].startswith("bocker-oci version") and lines[1].startswith("spec: 1.")
    ok(env("delete", "--force", "l1"))


def test_signals_are_forwarded_by_run(env):
    env.args(["sh", "-c", "trap 'exit 9' TERM; while :; do sleep 0.1; done"])
    running = subprocess.Popen(
        [sys.executable, "-m", "bocker.oci.cli", "--root", str(env.root), "run", "--bundle",
         str(env.bundle), "g1"], env={**os.environ, "PYTHONPATH": WORKTREE})
    try:
        assert wait_for(lambda: (env.root / "g1").exists() and env.status("g1") == "running",
                        30)
        running.send_signal(signal.SIGTERM)
        assert running.wait(60) == 9
    finally:
        if running.poll() is None:
            running.kill()
            running.wait()
    assert not (env.root / "g1").exists()
