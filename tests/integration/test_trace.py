"""--trace: every kernel step of a command, in order, with timings."""
import json


def _steps(stderr):
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_json_trace_of_a_run_is_ordered(bocker):
    proc = bocker("--trace=json", "run", "--rm", "busybox", "true", check=True)
    recs = _steps(proc.stderr)
    names = [r["step"] for r in recs]
    for rec in recs:
        assert set(rec) == {"step", "args", "result", "errno", "start_us", "dur_us", "pid"}
        assert rec["dur_us"] >= 0 and rec["errno"] == 0
    # the rootfs: a snapshot made now, or one a pool made ahead (a warm
    # server's, or one left in the root) taken by rename
    rootfs_step = "btrfs snapshot" if "btrfs snapshot" in names else "pool take rootfs"
    order = [rootfs_step, "cgroup mkdir", "cgroup write", "clone", "join cgroup",
             "pivot_root", "umount old root", "mount /proc", "execve", "wait",
             "cgroup remove", "btrfs delete"]
    if "join cgroup" not in names:  # cgroup v2: born in its group by clone3
        order.remove("join cgroup")
    positions = [names.index(step) for step in order]
    assert positions == sorted(positions), names
    # the child's steps carry the child's PID, the parent's its own
    clone = recs[names.index("clone")]
    child_pid = int(clone["result"].split()[1])
    assert recs[names.index("pivot_root")]["pid"] == child_pid
    assert recs[names.index(rootfs_step)]["pid"] != child_pid
    snapshot = recs[names.index(rootfs_step)]
    assert snapshot["args"]["target"].endswith("/rootfs")
    if rootfs_step == "pool take rootfs":
        assert snapshot["result"], "neither a snapshot nor a pooled entry"
    # every child step happened after clone started, in time order
    child = [r for r in recs if r["pid"] == child_pid]
    starts = [r["start_us"] for r in child]
    assert starts == sorted(starts) and starts[0] >= clone["start_us"]


def test_text_trace_is_readable(bocker):
    proc = bocker("--trace", "run", "--rm", "busybox", "echo", "hi", check=True)
    assert proc.stdout == "hi\n"
    lines = proc.stderr.splitlines()
    assert any("btrfs snapshot" in ln and "source=" in ln for ln in lines) or any(
        "pool take rootfs" in ln and "target=" in ln and "-> " in ln for ln in lines)
    assert any("clone" in ln and "NEWPID" in ln and "-> pid" in ln for ln in lines)
    assert all(" ms " in ln for ln in lines)


def test_failing_step_shows_errno(bocker, tmp_path):
    proc = bocker("--trace=json", "run", "--rm", "busybox", "no-such-command")
    assert proc.returncode == 127
    failed = [r for r in _steps(proc.stderr) if r["errno"]]
    assert failed[-1]["step"] == "execve" and failed[-1]["errno"] == 2
    # -w below a read-only bind: the child cannot make it (EROFS)
    text = bocker("--trace", "run", "--rm", "-v", f"{tmp_path}:/data:ro", "-w", "/data/sub",
                  "busybox", "true")
    assert text.returncode == 125
    assert "cwd" in text.stderr and "errno 30" in text.stderr, text.stderr


def test_env_variable_turns_it_on_and_off_means_silent(bocker):
    on = bocker("run", "--rm", "busybox", "true", env={"BOCKER_TRACE": "json"})
    assert _steps(on.stderr)
    off = bocker("run", "--rm", "busybox", "true", env={"BOCKER_TRACE": ""})
    assert off.stderr == ""


def test_trace_for_exec_and_rm(bocker):
    cid = bocker("run", "-d", "busybox", "sleep", "30", check=True).stdout.strip()
    try:
        names = [r["step"] for r in _steps(bocker("--trace=json", "exec", cid, "true",
                                                  check=True).stderr)]
        assert names.index("setns container") < names.index("execve")
    finally:
        proc = bocker("--trace=json", "rm", "-f", cid, check=True)
    names = [r["step"] for r in _steps(proc.stderr)]
    assert "cgroup remove" in names and "btrfs delete" in names
