"""Restart policies (--restart) and `bocker restart`, on the real kernel:
the policy applied when a container exits, a user's stop never undone,
rm -f during the backoff, and a simulated reboot of a root of the test's
own brought back by `bocker setup`."""
import json
import os
import signal
import time

import pytest

from bocker import state
from bocker.runtime import containers
from bocker.state import Paths

from conftest import BOCKER, _processes, run_bocker, wait_for


def _inspect(bocker, ref):
    return json.loads(bocker("inspect", ref, check=True).stdout)[0]


def _restarters(paths, cid):
    """The restarter processes of cid still alive."""
    return [p for p in _processes(paths.root)[1] if "bocker.runtime.restarter" in p[1]
            and cid in p[1]]


def _record(paths, cid):
    return containers.load(paths, cid)


@pytest.mark.parametrize("value,message", [
    ("sometimes", "invalid restart policy: unknown policy 'sometimes'; use one of 'no', "
                  "'always', 'on-failure', or 'unless-stopped'"),
    ("always:3", "invalid restart policy: maximum retry count can only be used with "
                 "'on-failure'"),
    ("on-failure:-1", "invalid restart policy: maximum retry count cannot be negative"),
    ("on-failure:x", "invalid restart policy format: maximum retry count must be an integer"),
    (":2", "invalid restart policy format: no policy provided before colon"),
])
def test_bad_policy_is_refused_before_anything_is_made(bocker, paths, value, message):
    before = set(os.listdir(paths.containers))
    proc = bocker("run", "--restart", value, "busybox", "true")
    assert (proc.returncode, proc.stdout, proc.stderr) == (125, "", f"bocker: {message}\n")
    assert set(os.listdir(paths.containers)) == before


def test_restart_with_rm_conflicts(bocker, paths):
    before = set(os.listdir(paths.containers))
    proc = bocker("run", "--rm", "--restart", "always", "busybox", "true")
    assert (proc.returncode, proc.stderr) == (
        125, "bocker: Conflicting options: --restart and --rm\n")
    assert set(os.listdir(paths.containers)) == before
    # --restart no with --rm is no conflict, as in Docker
    assert bocker("run", "--rm", "--restart", "no", "busybox", "true").returncode == 0


def test_on_failure_restarts_exactly_n_times(bocker, paths, cleanup):
    cid = bocker("run", "-d", "--restart", "on-failure:2", "busybox", "sh", "-c",
                 "echo run; exit 3", check=True).stdout.strip()
    cleanup.append(cid)
    # the third exit is final: exited, not waiting for a restart, count 2
    assert wait_for(lambda: (_record(paths, cid)["RestartCount"] == 2
                             and _record(paths, cid)["State"]["Status"] == "exited"), 30)
    # the last restarter exits after its start, a moment after the run it started may
    assert wait_for(lambda: not _restarters(paths, cid), 10)
    info = _inspect(bocker, cid)
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert (info["RestartCount"], info["State"]["ExitCode"]) == (2, 3)
    assert (info["State"]["Running"], info["State"]["Restarting"]) == (False, False)
    assert bocker("logs", cid, check=True).stdout == "run\nrun\nrun\n"  # three runs


def test_on_failure_does_not_restart_exit_0(bocker, paths, cleanup):
    cid = bocker("run", "-d", "--restart", "on-failure", "busybox", "true",
                 check=True).stdout.strip()
    cleanup.append(cid)
    assert bocker("wait", cid, check=True).stdout == "0\n"
    assert wait_for(lambda: _record(paths, cid)["State"]["Status"] == "exited")
    assert _record(paths, cid)["RestartCount"] == 0 and not _restarters(paths, cid)


def test_always_restarts_after_exit_0_and_rm_f_ends_it(bocker, paths):
    cid = bocker("run", "-d", "--restart", "always", "busybox", "true",
                 check=True).stdout.strip()
    try:
        assert wait_for(lambda: _record(paths, cid)["RestartCount"] >= 2, 30)
        assert _inspect(bocker, cid)["HostConfig"]["RestartPolicy"] == {
            "Name": "always", "MaximumRetryCount": 0}
    finally:
        assert bocker("rm", "-f", cid, check=True).stdout == f"Removed: {cid}\n"
    assert not _restarters(paths, cid)
    time.sleep(0.5)  # past the next backoff: nothing comes back
    assert cid not in os.listdir(paths.containers)


def test_attached_run_returns_its_code_and_restarts_after(bocker, paths, cleanup):
    proc = bocker("run", "--name", "attached-restart", "--restart", "on-failure:1", "busybox",
                  "sh", "-c", "echo run; exit 4")
    cleanup.append("attached-restart")
    assert (proc.returncode, proc.stdout) == (4, "run\n")
    cid = containers.resolve(paths, "attached-restart")
    assert wait_for(lambda: (_record(paths, cid)["RestartCount"] == 1
                             and _record(paths, cid)["State"]["Status"] == "exited"), 30)
    assert bocker("logs", cid, check=True).stdout == "run\nrun\n"


def _backing_off(paths, cid, count=3):
    """Wait until cid waits for its count-th restart (by then the backoff
    is 400 ms or more, long enough to act on)."""
    return wait_for(lambda: (_record(paths, cid)["State"]["Status"] == "restarting"
                             and _record(paths, cid)["RestartCount"] >= count), 30)


def test_stop_during_the_backoff_is_never_undone(bocker, paths, cleanup):
    cid = bocker("run", "-d", "--restart", "always", "busybox", "sh", "-c", "exit 1",
                 check=True).stdout.strip()
    cleanup.append(cid)
    assert _backing_off(paths, cid)
    assert wait_for(lambda: _restarters(paths, cid), 30)  # what the leak check would see
    # ps lists it without -a (it is restarting again each time after its ~20 ms runs)
    assert wait_for(lambda: "Restarting (1)" in bocker("ps", check=True).stdout, 30)
    assert bocker("stop", cid, check=True).stdout == f"{cid}\n"
    assert not _restarters(paths, cid)
    count = _record(paths, cid)["RestartCount"]
    time.sleep(2)  # past several backoff periods
    rec = _record(paths, cid)
    assert (rec["State"]["Status"], rec["State"]["Restarting"], rec["RestartCount"]) == (
        "exited", False, count)
    assert "Exited (1)" in bocker("ps", "-a", check=True).stdout


@pytest.mark.parametrize("verb", [("stop", "-t", "1"), ("kill",)])
def test_stop_or_kill_of_a_running_container_is_never_undone(bocker, paths, cleanup, verb):
    cid = bocker("run", "-d", "--restart", "always", "busybox", "sleep", "60",
                 check=True).stdout.strip()
    cleanup.append(cid)
    assert bocker(*verb, cid, check=True).stdout == f"{cid}\n"
    # (sleep as PID 1 has no handler for SIGTERM: stop's SIGKILL ends it too)
    assert bocker("wait", cid, check=True).stdout == "137\n"
    time.sleep(1)  # past several backoff periods
    rec = _record(paths, cid)
    assert (rec["State"]["Status"], rec["RestartCount"]) == ("exited", 0)
    assert not _restarters(paths, cid)
    # a start by the user is a new beginning: the policy applies again
    assert bocker("start", cid, check=True).stdout == f"{cid}\n"
    assert _record(paths, cid)["State"]["Running"]


def test_unless_stopped_restarts_a_crash(bocker, paths, cleanup):
    cid = bocker("run", "-d", "--restart", "unless-stopped", "busybox", "sh", "-c",
                 "echo up; sleep 60", check=True).stdout.strip()
    cleanup.append(cid)
    assert wait_for(lambda: bocker("logs", cid).stdout == "up\n")
    first = _record(paths, cid)["State"]["Pid"]
    os.kill(first, signal.SIGKILL)  # not a user's kill: a crash, as far as bocker knows
    # one read of the record per look: two reads could see "Running" in
    # the old run's record and a changed Pid in the ended one (its end
    # recorded, its restart not yet), whose RestartCount is still 0
    assert wait_for(lambda: _running_again(_record(paths, cid), first), 30)
    assert _record(paths, cid)["RestartCount"] == 1


def _running_again(record, first_pid):
    """The record of a run after the first: running, another PID."""
    return record["State"]["Running"] and record["State"]["Pid"] != first_pid


def test_rm_without_force_of_a_restarting_container_is_refused(bocker, paths, cleanup):
    cid = bocker("run", "-d", "--restart", "always", "busybox", "sh", "-c", "exit 2",
                 check=True).stdout.strip()
    cleanup.append(cid)
    assert _backing_off(paths, cid)
    proc = bocker("rm", cid)
    if proc.returncode:  # (it may have restarted meanwhile: then it was running)
        assert proc.stderr in (f"bocker: container '{cid}' is restarting: stop it first or "
                               "use -f\n",
                               f"bocker: container '{cid}' is running: stop it first or "
                               "use -f\n")
    assert bocker("rm", "-f", cid, check=True).returncode == 0
    assert not _restarters(paths, cid)


def test_restart_verb(bocker, paths, cleanup):
    cid = bocker("run", "-d", "busybox", "sh", "-c", "echo up; sleep 60",
                 check=True).stdout.strip()
    cleanup.append(cid)
    before = _record(paths, cid)["State"]
    assert bocker("restart", "-t", "1", cid, check=True).stdout == f"{cid}\n"
    after = _record(paths, cid)["State"]
    assert after["Running"] and after["Pid"] != before["Pid"]
    assert after["StartedAt"] > before["StartedAt"]
    # a stopped container is started
    assert bocker("stop", "-t", "0", cid, check=True).returncode == 0
    assert bocker("restart", cid, check=True).stdout == f"{cid}\n"
    assert _record(paths, cid)["State"]["Running"]
    assert wait_for(lambda: bocker("logs", cid).stdout == "up\nup\nup\n")
    proc = bocker("restart", "ps_000000000000")
    assert (proc.returncode, proc.stderr) == (
        1, "bocker: No container named 'ps_000000000000' exists\n")


def test_restart_resets_the_count(bocker, paths, cleanup):
    cid = bocker("run", "-d", "--restart", "always", "busybox", "sh", "-c", "exit 5",
                 check=True).stdout.strip()
    cleanup.append(cid)
    assert _backing_off(paths, cid, 2)
    assert bocker("restart", cid, check=True).returncode == 0
    # the user's start counts from 0 again (it may have exited and restarted since)
    assert _record(paths, cid)["RestartCount"] <= 1
    assert bocker("rm", "-f", cid, check=True).returncode == 0
    assert not _restarters(paths, cid)


def test_a_dead_restarter_leaves_a_truthful_record(bocker, paths, cleanup):
    from bocker.runtime import records

    cid = bocker("run", "-d", "--restart", "always", "busybox", "sh", "-c", "exit 6",
                 check=True).stdout.strip()
    cleanup.append(cid)
    assert _backing_off(paths, cid)

    def kill_its_restarter():
        with state.locked(paths.lock):  # so it is between two restarts, not inside one
            st = records.read_stored(paths, cid)["State"]
            if st["Status"] != "restarting":
                return False
            os.kill(st["RunnerPid"], signal.SIGKILL)
            assert wait_for(lambda: not records.alive(st["RunnerPid"], st["RunnerStartTime"]))
            return True

    assert wait_for(kill_its_restarter, 30)
    st = _record(paths, cid)["State"]  # its keeper gone: finished by the first to look
    assert (st["Status"], st["Restarting"], st["Running"], st["ExitCode"]) == (
        "exited", False, False, 6)
    assert not _restarters(paths, cid)


# ------------------------------------------------------------ a reboot

@pytest.fixture
def own_root(tmp_path, paths):
    """A small root of this test's own, set up by `bocker setup` with a
    bridge and nftables table of its own; torn down at the end, and
    checked to leave nothing: no mount, loop device, bridge, table,
    keeper process or setup record (the session's leak check sees the
    cgroups and our children)."""
    from bocker.net import nat, network

    root = str(tmp_path / "root")
    tag = os.getpid() % 100000
    bridge, subnet = f"bkr{tag}", f"10.195.{tag % 250}.0/24"
    env = {"BOCKER_ROOT": root, "BOCKER_SYSTEMD_UNIT_DIR": str(tmp_path / "units")}

    def bocker(*args, check=False):
        return run_bocker(*args, env=env, check=check)

    bocker("setup", "--size", "1G", "--bridge", bridge, "--subnet", subnet, check=True)
    own = Own(root, bridge, subnet, nat.table_for(bridge), bocker, env)
    try:
        yield own
    finally:
        made = bocker("ps", "-aq").stdout.split()
        for cid in made:
            bocker("rm", "-f", cid)
        if os.path.exists(root + ".setup.json"):
            bocker("setup", "--teardown", check=True)
        veths = {network.veth_name(cid) for cid in made}
        assert wait_for(lambda: not veths & set(os.listdir("/sys/class/net")), 20)
        with open("/proc/self/mountinfo") as f:
            assert f" {root} " not in f.read()
        assert not [d for d in os.listdir("/sys/block") if _backed_by(d, root + ".btrfs")]
        assert bridge not in os.listdir("/sys/class/net")
        assert not nat.exists(own.table)
        assert _processes(root)[1] == set()
        assert not os.path.exists(root + ".setup.json") and not os.path.exists(root)


class Own:
    def __init__(self, root, bridge, subnet, table, bocker, env):
        self.root, self.bridge, self.subnet, self.table = root, bridge, subnet, table
        self.bocker, self.env = bocker, env
        self.paths = Paths(root)


def _backed_by(dev, path):
    try:
        with open(f"/sys/block/{dev}/loop/backing_file") as f:
            return f.read().strip() == path
    except OSError:
        return False


def _simulate_reboot(own):
    """What a reboot does to a root: every process gone (the monitors
    first, so that none sees its container end), the cgroups emptied and
    the network namespaces gone with them, the bridge and nftables table
    gone, the root unmounted; and a new boot ID, which the setup record
    stands for here."""
    from bocker.kernel import cgroups, native
    from bocker.net import network
    from bocker.runtime import records

    ours = own.bocker("ps", "-aq", check=True).stdout.split()
    live = [st for st in (containers.load(own.paths, cid)["State"] for cid in ours)
            if st["Running"]]
    for st in live:
        os.kill(st["RunnerPid"], signal.SIGKILL)
    for st in live:
        os.kill(st["Pid"], signal.SIGKILL)
    assert wait_for(lambda: not any(records.alive(st["Pid"], st["PidStartTime"])
                                    or records.alive(st["RunnerPid"], st["RunnerStartTime"])
                                    for st in live))
    cg = cgroups.driver()  # a new boot has none of the old cgroups, not even their parent
    for cid in ours:
        cg.destroy(cid)
    cg.remove_parent()  # (the session's: empty now, made again by the first start)
    network.teardown_host(own.bridge, own.subnet, own.table)
    native.umount(own.root)
    record = state.read_json(own.root + ".setup.json")
    record["boot_id"] = "the-boot-before-this-one"
    state.write_json(own.root + ".setup.json", record)


def test_simulated_reboot_starts_exactly_the_right_containers(own_root):
    from bocker.net import nat

    b = own_root.bocker

    def detach(name, *args):
        b("run", "-d", "--name", name, *args, "busybox", "sleep", "600", check=True)

    detach("no-policy")
    detach("always", "--restart", "always")
    detach("always-stopped", "--restart", "always")
    detach("unless", "--restart", "unless-stopped")
    detach("unless-stopped", "--restart", "unless-stopped")
    detach("onfail", "--restart", "on-failure:3")
    detach("onfail-stopped", "--restart", "on-failure")
    assert b("run", "--name", "onfail-done", "--restart", "on-failure", "busybox",
             "true").returncode == 0
    b("stop", "-t", "0", "always-stopped", "unless-stopped", "onfail-stopped", check=True)

    _simulate_reboot(own_root)
    assert not os.path.ismount(own_root.root)
    out = b("setup", check=True).stdout

    assert os.path.ismount(own_root.root)
    assert own_root.bridge in os.listdir("/sys/class/net") and nat.exists(own_root.table)
    names = {containers.resolve(own_root.paths, n): n for n in (
        "no-policy", "always", "always-stopped", "unless", "unless-stopped", "onfail",
        "onfail-stopped", "onfail-done")}
    started = {names[line.split()[1]] for line in out.splitlines()
               if line.startswith("Started: ")}
    # always: even the stopped one; unless-stopped: not the stopped one;
    # on-failure: a non-zero last exit (the reboot's unknown one, a stop's
    # 137: moby's rule), not an exit 0
    expected = {"always", "always-stopped", "unless", "onfail", "onfail-stopped"}
    assert started == expected
    for cid, name in names.items():
        rec = containers.load(own_root.paths, cid)
        assert rec["State"]["Running"] is (name in expected), name
        assert rec["RestartCount"] == 0
    assert containers.load(own_root.paths, containers.resolve(
        own_root.paths, "no-policy"))["State"]["ExitCode"] == -1  # its end went unseen
    # the network is back: a restarted container reaches its gateway
    gateway = str(next(iter(__import__("ipaddress").ip_network(own_root.subnet).hosts())))
    assert b("exec", "always", "ping", "-c", "1", "-W", "5", gateway).returncode == 0
    # a second setup in the same boot starts nothing, and undoes no stop
    b("stop", "-t", "0", "always", check=True)
    assert "Started:" not in b("setup", check=True).stdout
    assert not containers.load(own_root.paths, containers.resolve(
        own_root.paths, "always"))["State"]["Running"]


def test_systemd_unit_is_installed_enabled_and_removed(own_root, tmp_path):
    import shutil
    import subprocess

    out = own_root.bocker("setup", "--systemd", check=True).stdout
    units = tmp_path / "units"
    (unit,) = [p for p in units.iterdir() if p.suffix == ".service"]
    assert f"Installed {unit} " in out
    link = units / "multi-user.target.wants" / unit.name
    assert os.readlink(link) == str(unit)
    text = unit.read_text()
    for line in ("Type=oneshot", "RemainAfterExit=yes", "After=local-fs.target network.target",
                 "WantedBy=multi-user.target"):
        assert line in text.splitlines()
    # the interpreter of the bocker that wrote it (the Python CLI's own,
    # bocker-py: $BIN/bocker is the C client), with its package
    with open(os.path.join(os.path.dirname(BOCKER), "bocker-py")) as f:
        python = f.readline()[2:].strip()
    assert f"ExecStart={python} -m bocker.cli --root {own_root.root} setup" in text
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(containers.__file__)))
    assert f"Environment=PYTHONPATH={os.path.dirname(package_dir)}" in text
    if shutil.which("systemd-analyze"):
        proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
    # again: the same unit, still enabled
    own_root.bocker("setup", "--systemd", check=True)
    assert sorted(p.name for p in units.iterdir()) == sorted([unit.name,
                                                              "multi-user.target.wants"])
    own_root.bocker("setup", "--teardown", check=True)
    assert not unit.exists() and not os.path.lexists(link)
