"""Truthful state after a crash, and prune / df: a container whose keeper
is gone is shown as it is and released once; prune removes exactly what
no live record owns; df's numbers add up."""
import os
import signal
import subprocess
import time

from bocker.kernel import cgroups
from bocker.net import ipam
from bocker.runtime import containers

from conftest import BOCKER


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


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


def test_killed_client_then_lost_container_is_exited_unknown_and_released(bocker, paths):
    client = subprocess.Popen([BOCKER, "run", "busybox", "sh", "-c", "echo ready; exec sleep 60"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline() == "ready\n"
        record = next(r for r in containers.list_all(paths)
                      if r["State"].get("RunnerPid") == client.pid)
    finally:
        client.kill()   # SIGKILL: the client's own PID only
        client.wait()
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
