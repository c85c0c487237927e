"""bocker-oci's state machine without root: the status computed from a
state record (creator, init liveness, zombie, PID reuse, freezer, gate
FIFO), the transitions each verb allows, the verbs' refusals through
control.py over a fake cgroup, state.json on disk, the JSON log, hooks."""
import json
import os
import signal
import sys

import pytest
from hypothesis import given, strategies as st

from bocker.errors import InvalidArgument
from bocker.oci import control, hooks, log, state

ME = os.getpid()
MY_START = state.proc_stat(ME)[1]


class FakeCgroup:
    """What control.py asks of an OciCgroup, in memory."""

    def __init__(self, frozen=False, pids=()):
        self._frozen, self._pids = frozen, list(pids)
        self.destroyed, self.signals = False, []

    def exists(self):
        return True

    def frozen(self):
        return self._frozen

    def freeze(self):
        self._frozen = True

    def thaw(self):
        self._frozen = False

    def pids(self):
        return list(self._pids)

    def kill_all(self, sig):
        self.signals.append(sig)

    def destroy(self):
        self.destroyed = True


@pytest.fixture
def root(tmp_path):
    r = state.Root(str(tmp_path / "root"))
    r.ensure()
    return r


@pytest.fixture
def cgroup(monkeypatch):
    cg = FakeCgroup()
    monkeypatch.setattr(control, "cgroup_of", lambda record: cg)
    return cg


def make(root, cid="c1", status="created", pid=ME, pid_start=MY_START, fifo=True, **extra):
    """A state directory as create leaves it (the init played by us)."""
    cdir = root.dir(cid)
    os.mkdir(cdir, 0o700)
    record = {"id": cid, "status": status, "pid": pid, "pid_start": pid_start,
              "creator": [ME, MY_START], "bundle": "/b", "rootfs": "/b/rootfs",
              "created": state.now_iso(), "owner": "", "annotations": {"a": "b"},
              "hooks": {}, **extra}
    state.save(cdir, record)
    if fifo:
        os.mkfifo(os.path.join(cdir, state.FIFO), 0o600)
    return cdir, record


def zombie():
    """A child of ours that exited and is not reaped (the caller reaps it)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    # until it has exited, leaving it unreaped (a zombie)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    return pid


# ------------------------------------------------------------- status

def test_status_follows_init_and_gate(root):
    cdir, record = make(root)
    assert state.status(record, cdir) == "created"
    assert state.status(record, cdir, frozen=lambda: True) == "paused"
    os.unlink(os.path.join(cdir, state.FIFO))
    assert state.status(record, cdir) == "running"
    assert state.status(record, cdir, frozen=lambda: False) == "running"


def test_status_creating_while_its_creator_lives(root):
    cdir, record = make(root, status="creating", pid=0, pid_start=None)
    assert state.status(record, cdir) == "creating"
    record["creator"] = [ME, MY_START + 1]   # the creator's PID now someone else's
    assert state.status(record, cdir) == "stopped"


def test_status_stopped_for_zombie_and_reused_pid(root):
    pid = zombie()
    try:
        cdir, record = make(root, pid=pid, pid_start=state.proc_stat(pid)[1])
        assert state.proc_stat(pid)[0] == "Z"
        assert state.status(record, cdir) == "stopped"
    finally:
        os.waitpid(pid, 0)
    assert state.status(record, cdir) == "stopped"   # reaped: gone from /proc
    record.update(pid=ME, pid_start=MY_START - 1)     # our PID, another start time
    assert state.status(record, cdir) == "stopped"


def test_spec_state_has_no_pid_once_stopped(root):
    _, record = make(root)
    assert state.spec_state(record, "created")["pid"] == ME
    out = state.spec_state(record, "stopped")
    assert out["pid"] == 0 and out["status"] == "stopped" and out["annotations"] == {"a": "b"}
    assert set(out) >= {"ociVersion", "id", "status", "pid", "bundle"}


# ------------------------------------------------------------- transitions

EXPECTED = {  # verb -> statuses it acts in (delete without --force)
    "start": {"created"},
    "kill": {"created", "running", "paused"},
    "delete": {"stopped"},
    "pause": {"running"},
    "resume": {"paused"},
    "exec": {"created", "running"},
}


@pytest.mark.parametrize("verb", sorted(EXPECTED))
@pytest.mark.parametrize("status", state.STATUSES)
def test_transitions(verb, status):
    if status in EXPECTED[verb]:
        state.check_transition(verb, "c", status)
    else:
        with pytest.raises(state.WrongState) as e:
            state.check_transition(verb, "c", status)
        assert "\n" not in str(e.value) and "c" in str(e.value)
    state.check_transition("delete", "c", status, force=True)   # --force: any


def test_kill_refusal_says_not_running():
    # containerd's shim treats "container not running" as already gone
    with pytest.raises(state.WrongState, match="container not running"):
        state.check_transition("kill", "c", "stopped")


@given(st.text(max_size=40))
def test_ids_never_leave_the_root(text):
    r = state.Root("/run/x")
    try:
        path = r.dir(text)
    except InvalidArgument:
        return
    assert os.path.dirname(path) == "/run/x" and os.path.basename(path) == text


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a\0b", "x" * 1025, "é", " a"])
def test_bad_ids_refused(bad):
    with pytest.raises(InvalidArgument):
        state.check_id(bad)


# ------------------------------------------------------------- the verbs

def test_start_opens_the_gate(root, cgroup, monkeypatch):
    monkeypatch.setattr(control, "EXEC_WAIT", 0.05)   # our "init" never execs
    cdir, _ = make(root)
    reader = os.open(os.path.join(cdir, state.FIFO), os.O_RDWR | os.O_NONBLOCK)  # the "init"
    try:
        control.start(root, "c1")
        assert os.read(reader, 1) == b"0"
    finally:
        os.close(reader)
    assert not os.path.exists(os.path.join(cdir, state.FIFO))
    assert control.spec_state(root, "c1")["status"] == "running"
    with pytest.raises(state.WrongState, match="not created"):
        control.start(root, "c1")


def test_start_without_a_waiting_init_is_refused(root, cgroup):
    make(root)   # the FIFO exists but nobody reads it: ENXIO
    with pytest.raises(state.WrongState, match="not waiting"):
        control.start(root, "c1")


def test_delete_refuses_created_and_running(root, cgroup):
    cdir, _ = make(root)
    with pytest.raises(state.WrongState, match="created, not stopped"):
        control.delete(root, "c1")
    os.unlink(os.path.join(cdir, state.FIFO))
    with pytest.raises(state.WrongState, match="running, not stopped"):
        control.delete(root, "c1")
    assert os.path.isdir(cdir) and not cgroup.destroyed


def test_delete_of_stopped_removes_everything(root, cgroup):
    cdir, _ = make(root, pid_start=MY_START + 1)
    control.delete(root, "c1")
    assert not os.path.exists(cdir) and cgroup.destroyed
    with pytest.raises(state.ContainerNotFound, match="does not exist"):
        control.delete(root, "c1")
    control.delete(root, "c1", force=True)    # runc: --force of nothing is fine


def test_delete_force_removes_a_corrupt_record(root, cgroup):
    cdir = root.dir("c2")
    os.mkdir(cdir)
    with open(os.path.join(cdir, state.STATE_FILE), "w") as f:
        f.write("{half")
    with pytest.raises(state.CorruptState):
        control.delete(root, "c2")
    control.delete(root, "c2", force=True)
    assert not os.path.exists(cdir)


def test_kill_pause_resume_follow_the_machine(root, cgroup):
    make(root, pid_start=MY_START + 1)
    with pytest.raises(state.WrongState, match="container not running"):
        control.kill(root, "c1", signal.SIGKILL)
    with pytest.raises(state.WrongState):
        control.pause(root, "c1")
    control.kill(root, "c1", signal.SIGKILL, all_processes=True)   # what outlived the init
    assert cgroup.signals == [signal.SIGKILL]
    cgroup.signals.clear()
    cdir, _ = make(root, cid="c3", fifo=False)
    control.kill(root, "c3", 0, all_processes=True)
    assert cgroup.signals == [0]
    control.pause(root, "c3")
    assert control.spec_state(root, "c3")["status"] == "paused"
    control.resume(root, "c3")
    with pytest.raises(state.WrongState, match="not paused"):
        control.resume(root, "c3")
    assert control.spec_state(root, "c3")["status"] == "running"


def test_listing_and_state_file(root, cgroup):
    cdir, _ = make(root)
    make(root, cid="c2", pid_start=MY_START + 1)
    assert [(i["id"], i["status"]) for i in control.listing(root)] == [
        ("c1", "created"), ("c2", "stopped")]
    assert os.stat(os.path.join(cdir, state.STATE_FILE)).st_mode & 0o777 == 0o600
    assert os.stat(cdir).st_mode & 0o777 == 0o700
    with pytest.raises(state.ContainerNotFound):
        state.load(root, "nope")


# ------------------------------------------------------------- log, hooks

def test_json_log_lines(tmp_path, capsys):
    path = tmp_path / "log.json"
    log.configure(str(path), "json")
    try:
        log.error("create c1: mount /proc: Permission denied")
        log.warning("something not applied")
    finally:
        log.configure()
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["level"] for e in entries] == ["error", "warning"]
    assert entries[0]["msg"] == "create c1: mount /proc: Permission denied" and entries[0]["time"]
    assert "mount /proc" in capsys.readouterr().err


def test_hooks_get_the_state_and_fail_in_one_line(tmp_path):
    out = tmp_path / "got"
    ok = {"path": "/bin/sh", "args": ["sh", "-c", f'cat > {out}; echo "$X" >> {out}'],
          "env": ["X=from-env"], "timeout": 5}
    hooks.run("prestart", {"prestart": [ok]}, {"id": "c1", "status": "creating"})
    got, env_line = out.read_text().rsplit("}", 1)
    assert json.loads(got + "}") == {"id": "c1", "status": "creating"}
    assert env_line.strip() == "from-env"
    bad = {"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"], "env": []}
    with pytest.raises(hooks.HookFailed, match=r"prestart hook 0 \(/bin/sh\): exit status 3: nope"):
        hooks.run("prestart", {"prestart": [bad]}, {})
    slow = {"path": "/bin/sh", "args": ["sh", "-c", "sleep 30"], "env": [], "timeout": 1}
    with pytest.raises(hooks.HookFailed, match="timed out after 1s"):
        hooks.run("createRuntime", {"createRuntime": [slow]}, {})
    missing = {"path": str(tmp_path / "none"), "args": [], "env": []}
    warned = []
    hooks.run_warning("poststop", {"poststop": [missing]}, {}, warned.append)
    assert len(warned) == 1 and "No such file" in warned[0]


def test_cli_refusals_are_one_line_exit_1(tmp_path):
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))}
    root = str(tmp_path / "r")
    for args in (["state", "nope"], ["start", "nope"], ["kill", "x", "NOSUCHSIG"],
                 ["bogus"], ["delete"], ["state", "../etc"], ["--systemd-cgroup", "list"]):
        proc = subprocess.run([sys.executable, "-m", "bocker.oci.cli", "--root", root, *args],
                              capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


# ------------------------------------------------------------- exec's process

def test_exec_process_from_the_config_and_the_command_line():
    from bocker.oci import execute

    record = {"config": {"process": {"args": ["sleep", "1"], "env": ["PATH=/bin"], "cwd": "/",
                                     "user": {"uid": 5, "gid": 6}, "terminal": True,
                                     "consoleSize": {"height": 1, "width": 2},
                                     "capabilities": {"bounding": ["CAP_KILL"]}}}}
    req = execute.ExecRequest(args=["sh", "-c", "x"], cwd="/tmp", env=["A=1"], user="7:8",
                              additional_gids=["9"], caps=["CAP_CHOWN", "CAP_KILL"])
    got = execute.process_object(record, req)
    assert got["args"] == ["sh", "-c", "x"] and got["cwd"] == "/tmp"
    assert got["env"] == ["PATH=/bin", "A=1"] and got["terminal"] is False
    assert got["user"] == {"uid": 7, "gid": 8, "additionalGids": [9]}
    assert got["capabilities"]["bounding"] == ["CAP_KILL", "CAP_CHOWN"]
    assert got["capabilities"]["ambient"] == ["CAP_CHOWN", "CAP_KILL"]
    assert "consoleSize" not in got
    assert record["config"]["process"]["args"] == ["sleep", "1"]   # the stored one unchanged


@pytest.mark.parametrize("user", ["x", "1:y", "-1", "4294967296", ":"])
def test_exec_bad_user_refused(user):
    from bocker.oci import execute

    with pytest.raises(InvalidArgument):
        execute.process_object({"config": {}}, execute.ExecRequest(args=["true"], user=user))


def test_exec_process_file_is_bounded_json_object(tmp_path):
    from bocker.oci import execute

    for text in ("[1]", "{", ""):
        (tmp_path / "p.json").write_text(text)
        with pytest.raises(InvalidArgument):
            execute.read_process_file(str(tmp_path / "p.json"))
    with pytest.raises(InvalidArgument, match="No such file"):
        execute.read_process_file(str(tmp_path / "none.json"))
    with pytest.raises(InvalidArgument, match="a command is required"):
        execute.process_object({"config": {}}, execute.ExecRequest())
