"""Truthful state after a crash, and prune / df: a container whose keeper
is gone is shown as it is and released once; prune removes exactly what
no live record owns; df's numbers add up."""
import os
import signal
import subprocess

from bocker.kernel import cgroups
from bocker.net import ipam
from bocker.runtime import containers

from conftest import BOCKER
from conftest import wait_for as _wait_for


def _status(bocker, cid):
    lines = bocker("ps", "-a", check=True).stdout.splitlines()
    row = next(line for line in lines if line.startswith(cid))
    return row


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _run_whose_keeper_is_killed(paths):
    """A container whose keeper, its bocker-monitor, is killed (SIGKILL)
    while it sleeps on (killing an attached `bocker run` is not enough: it
    is only a client of the monitor); returns the container's record."""
    cid = subprocess.run([BOCKER, "run", "-d", "busybox", "sh", "-c", "exec sleep 60"],
                         capture_output=True, text=True, check=True).stdout.strip()
    record = containers.load(paths, cid)
    os.kill(record["State"]["RunnerPid"], signal.SIGKILL)
    assert _wait_for(lambda: _gone(record["State"]["RunnerPid"]))
    return record


def test_killed_keeper_then_lost_container_is_exited_unknown_and_released(bocker, paths):
    record = _run_whose_keeper_is_killed(paths)
    cid, pid1 = record["Id"], record["State"]["Pid"]
    assert cid in ipam.leases(paths.leases).values()
    # its keeper is gone but the container is alive: it is running, untouched
    assert " Up " in _status(bocker, cid)
    assert not _gone(pid1)
    os.kill(pid1, signal.SIGKILL)  # the host loses it too
    assert _wait_for(lambda: _gone(pid1))
    assert "Exited (unknown)" in _status(bocker, cid)
    # that listing released what it held, once
    assert cid not in ipam.leases(paths.leases).values()
    cg = cgroups.driver()
    dirs = cg._dirs(cid) if cg.version == 1 else [cg._dir(cid)]
    assert not any(os.path.exists(d) for d in dirs)
    st = containers.load(paths, cid)["State"]
    assert (st["Running"], st["Status"], st["ExitCode"]) == (False, "exited", -1)
    assert bocker("wait", cid, check=True).stdout == "-1\n"
    bocker("rm", cid, check=True)


def _detach(bocker, *args):
    return bocker("run", "-d", *args, check=True).stdout.strip()


def test_prune_removes_exactly_stopped_containers_and_dangling_images(bocker, paths):
    running = _detach(bocker, "busybox", "sleep", "30")
    bocker("run", "--name", "pruned", "busybox", "true", check=True)
    stopped = containers.resolve(paths, "pruned")
    dangling = bocker("commit", stopped, check=True).stdout.split()[-1]
    named = bocker("commit", stopped, "--name", "prune-keep:v1", check=True).stdout.split()[-1]
    try:
        out = bocker("container", "prune", "-f", check=True).stdout
        assert out.startswith(f"Deleted Containers:\n{stopped}\n\nTotal reclaimed space: ")
        assert set(bocker("ps", "-aq", check=True).stdout.split()) == {running}
        out = bocker("image", "prune", "-f", check=True).stdout
        assert out.startswith(f"Deleted Images:\ndeleted: {dangling}\n\nTotal reclaimed space: ")
        listed = bocker("images", check=True).stdout
        assert named in listed and dangling not in listed
        # nothing left to prune: nothing printed but the total
        assert bocker("container", "prune", "-f", check=True).stdout == \
            "Total reclaimed space: 0B\n"
    finally:
        bocker("rm", "-f", running)
        bocker("rm", "-f", "pruned")
        bocker("rmi", named)


def test_system_prune_releases_leftovers_of_recordless_ids_only(bocker, paths):
    from bocker import ids, state

    running = _detach(bocker, "busybox", "sleep", "30")
    ghost = ids.new_id("ps")    # a container whose record a crash took
    subnet = state.read_json(paths.network)["subnet"]
    ip = ipam.lease(paths.leases, ghost, subnet)
    cg = cgroups.driver()
    cg.create(ghost, cgroups.Limits())
    try:
        out = bocker("system", "prune", "-f", check=True).stdout
        assert f"Released leftovers:\ncgroup {ghost}\nlease {ip} ({ghost})\n" in out
        assert ghost not in ipam.leases(paths.leases).values()
        assert ghost not in cg.children()
        # the running container keeps its record, lease and cgroup
        assert running in ipam.leases(paths.leases).values() and running in cg.children()
        assert " Up " in _status(bocker, running)
    finally:
        ipam.release(paths.leases, ghost)
        cg.destroy(ghost)
        bocker("rm", "-f", running)


def test_system_df_adds_up(bocker, paths):
    from bocker.runtime import prune

    running = _detach(bocker, "busybox", "sleep", "30")
    bocker("run", "--name", "df-stopped", "busybox", "sh", "-c", "head -c 300000 /dev/zero >/big",
           check=True)
    try:
        rows = {line.split()[0]: line.split()
                for line in bocker("system", "df", check=True).stdout.splitlines()}
        assert rows["TYPE"] == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        assert rows["Containers"][1:3] == ["2", "1"]
        usage = prune.disk_usage(paths)
        total, active, size, free = usage["Containers"]
        stopped = containers.resolve(paths, "df-stopped")
        assert free == prune.container_size(paths, stopped) >= 300000
        assert size == free + prune.container_size(paths, running)
        itotal, iactive, isize, ifree = usage["Images"]
        assert itotal >= 1 and iactive >= 1 and ifree <= isize
    finally:
        bocker("rm", "-f", running, "df-stopped")


def test_prune_without_force_or_terminal_refuses(bocker, paths):
    bocker("run", "--name", "not-pruned", "busybox", "true", check=True)
    try:
        for argv in (["system", "prune"], ["container", "prune"], ["image", "prune", "-a"]):
            proc = bocker(*argv)
            assert (proc.returncode, proc.stdout) == (1, "")
            assert proc.stderr == ("bocker: prune removes things for good: confirm on a "
                                   "terminal, or pass -f\n")
        assert containers.resolve(paths, "not-pruned")
    finally:
        bocker("rm", "not-pruned")


def test_prune_asks_on_a_terminal(bocker, paths):
    import pexpect

    bocker("run", "--name", "asked", "busybox", "true", check=True)
    cid = containers.resolve(paths, "asked")
    for answer, kept in (("n", True), ("y", False)):
        child = pexpect.spawn(BOCKER, ["container", "prune"], timeout=15, env=dict(os.environ))
        child.expect_exact("WARNING! This will remove all stopped containers.\r\n"
                           "Are you sure you want to continue? [y/N] ")
        child.sendline(answer)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert (cid in bocker("ps", "-aq", check=True).stdout) == kept


def test_a_named_run_while_an_orphan_waits_finishes_it_and_does_not_hang(bocker, paths):
    """create() lists the records under the root's lock to refuse a taken
    name; an orphan among them is finished under that same lock (held by
    the same process): it must not wait on itself."""
    record = _run_whose_keeper_is_killed(paths)
    cid, pid1 = record["Id"], record["State"]["Pid"]
    os.kill(pid1, signal.SIGKILL)
    assert _wait_for(lambda: _gone(pid1))
    proc = bocker("run", "--rm", "--name", "after-orphan", "busybox", "true", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert containers.load(paths, cid)["State"]["ExitCode"] == -1
    bocker("rm", cid, check=True)
