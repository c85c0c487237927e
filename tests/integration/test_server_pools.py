"""The warm server's pools seen from its processes: a network slot the
server holds is its own until it hands it to the one worker that takes
it; no other process of the server (the spare worker forked ahead, the
filler, a worker) may hold a copy of the slot's netns, or the namespace
of a container started on that slot outlives the container (its veth
stays on the bridge, and a `start` of the same container again cannot
name its veth: "File exists")."""
import os

import pytest

from bocker.server import address

from conftest import wait_for


def _netns_fds(pid):
    """The netns inodes pid holds open by fd (a set; empty if it is gone)."""
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("net:"):
            out.add(target)
    return out


def _children(pid):
    kids = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid):
            kids.append(int(entry))
    return kids


def test_no_other_server_process_holds_the_servers_slots(bocker, cli_path):
    if cli_path != "server":
        pytest.skip("the server path only")
    bocker("run", "--rm", "busybox", "true", check=True)  # the server knows the root
    sock = address.socket_path(address.bindir())
    with open(address.pid_path(sock)) as f:
        server = int(f.read())
    assert wait_for(lambda: _netns_fds(server), timeout=20), "the server holds no slot"
    # a command more: its worker and the spare forked after it are forks
    # of a server that holds slots
    bocker("run", "--rm", "--network", "none", "busybox", "true", check=True)
    assert wait_for(lambda: _netns_fds(server), timeout=20), "the server holds no slot"
    held = _netns_fds(server)
    copies = {kid: _netns_fds(kid) & held for kid in _children(server)}
    assert not {kid: sorted(ns) for kid, ns in copies.items() if ns}, \
        f"the server's slots ({sorted(held)}) are held by its children too"
