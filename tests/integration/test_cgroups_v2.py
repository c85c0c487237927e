"""The cgroup v2 driver against the host's real cgroup2 mount.

On a hybrid host (v1 controllers, cgroup2 holding few or none) this runs a
real container in a v2 group without limits; on a pure v2 host the driver
is the default one and every run test exercises it with limits too.
"""
import os
import signal

from bocker.kernel import cgroups
from bocker.runtime import containers, protocol


def _kill_and_finish(paths, started):
    os.kill(started.pid, signal.SIGKILL)
    null = os.open(os.devnull, os.O_WRONLY)
    code = containers.wait_attached(paths, started, null, null)
    os.close(null)
    return code


def test_container_joins_v2_group_and_group_is_removed(paths, v2_driver):
    with open(os.path.join(v2_driver.mount, "cgroup.controllers")) as f:
        has_limits = {"memory", "pids", "cpu"} <= set(f.read().split())
    kwargs = {} if has_limits else {"memory": 0, "cpu_shares": 0, "pids_limit": -1}
    req = containers.RunRequest("busybox", ["sleep", "30"], remove=True, **kwargs)
    started = containers.create_and_start(paths, req)
    group = v2_driver._dir(started.id)
    try:
        assert os.path.isdir(group)
        with open(f"/proc/{started.pid}/cgroup") as f:
            line = [ln for ln in f.read().splitlines() if ln.startswith("0::")][0]
        assert line == f"0::/{cgroups.parent_name()}/{started.id}"
        with open(os.path.join(group, "cgroup.procs")) as f:
            assert f.read().split() == [str(started.pid)]
    finally:
        code = _kill_and_finish(paths, started)
    assert code == 137
    assert not os.path.exists(group)


def test_userns_container_is_born_in_its_v2_group(paths, v2_driver):
    """CLONE_INTO_CGROUP together with CLONE_NEWUSER: the parent's rights
    on the group decide, so the child starts there before its id maps."""
    req = containers.RunRequest("busybox", ["sh", "-c", "cat /proc/self/uid_map; exec sleep 30"],
                                remove=True, userns="auto", memory=0, cpu_shares=0, pids_limit=-1)
    started = containers.create_and_start(paths, req)
    try:
        with open(f"/proc/{started.pid}/cgroup") as f:
            line = [ln for ln in f.read().splitlines() if ln.startswith("0::")][0]
        assert line == f"0::/{cgroups.parent_name()}/{started.id}"
        # cat's line from its monitor, then it sleeps
        kind, line = protocol.decode(os.read(started.client, protocol.MSG_MAX))
        mapped = line.split()
        assert kind == protocol.STDOUT
        assert mapped[0] == b"0" and int(mapped[1]) >= 65536
    finally:
        code = _kill_and_finish(paths, started)
    assert code == 137


def test_pause_top_and_stats_on_a_v2_group(paths, v2_driver):
    """pause/unpause write cgroup.freeze and wait for cgroup.events; top
    and stats read the v2 group (what it lacks on a hybrid host reads 0)."""
    from bocker.kernel import freezer
    from bocker.runtime import pause, stats, top

    req = containers.RunRequest("busybox", ["sleep", "30"], remove=True, memory=0,
                                cpu_shares=0, pids_limit=-1)
    started = containers.create_and_start(paths, req)
    try:
        assert top.container_pids(v2_driver, started.id) == [started.pid]
        pause.pause(paths, started.id)
        assert freezer.frozen(started.id, v2_driver)
        with open(os.path.join(v2_driver._dir(started.id), "cgroup.freeze")) as f:
            assert f.read().strip() == "1"
        assert containers.load(paths, started.id)["State"]["Paused"] is True
        pause.unpause(paths, started.id)
        assert not freezer.frozen(started.id, v2_driver)
        s = stats.sample(containers.load(paths, started.id), v2_driver)
        assert s.cpu_ns > 0 and s.mem_limit > 0
    finally:
        code = _kill_and_finish(paths, started)
    assert code == 137
