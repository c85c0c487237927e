"""Network slots made ahead (bocker/net/pool.py) against the real kernel:
a container started on a slot has the slot's eth0, reaches its bridge's
gateway as any container does, gives its lease and veth back with --rm;
a slot is handed out once; a drained pool leaves nothing; a slot of a
torn-down bridge is refused; the server's SCM_RIGHTS hand-over works
with a forked worker.  Traffic only to the session's own bridge.  The
autouse leak check (conftest.no_leaks) runs after every test."""
import os
import socket

import pytest

from bocker import ids
from bocker.net import ipam, pool
from bocker.net.rtnl import Rtnl
from bocker.runtime import containers, spec


def _run(paths, *argv, **kw):
    """containers.run in-process on the bridge, --rm; (exit code, output)."""
    req = spec.RunRequest("busybox", list(argv), network="bridge", remove=True, **kw)
    r, w = os.pipe()
    try:
        code = containers.run(paths, req, w, w)
        os.close(w)
        w = -1
        chunks = []
        while True:
            data = os.read(r, 65536)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    return code, b"".join(chunks).decode()


def _netns_inode(fd):
    return os.fstat(fd).st_ino


def _netns_held(ino):
    """True if any process here has a netns or an fd of inode ino."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == ino:
                return True
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link == f"net:[{ino}]":
                    return True
        except OSError:
            continue
    return False


@pytest.fixture
def netpool(paths):
    p = pool.NetPool(paths, 2)
    yield p
    p.drain()


def test_container_on_slot_has_its_address(paths, netpool, net):
    netpool.refill()
    slot = netpool.slots[0]
    ip, mac = slot.ip, slot.mac
    code, out = _run(paths, "sh", "-c",
                     "cat /sys/class/net/eth0/address; ip -4 addr show eth0; ip route;"
                     f"ping -c 1 -W 2 {ipam.gateway(net['subnet'])} && "
                     "ping -c 1 -W 2 127.0.0.1 >/dev/null && echo lo-ok")
    assert code == 0, out
    assert "lo-ok" in out
    assert mac in out and f"inet {ip}/" in out
    assert f"default via {ipam.gateway(net['subnet'])}" in out
    assert "1 packets received" in out
    assert len(netpool.slots) == 1      # the other is still there
    # --rm gave back the lease (no lease owned by a container) and the veth
    held = ipam.leases(paths.leases)
    assert ip not in held
    assert not [o for o in held.values() if ids.is_id(o, "ps")]


def test_container_without_slot_still_works(paths, netpool):
    # an empty pool: the start leases and wires as ever
    code, out = _run(paths, "ip", "-4", "addr", "show", "eth0")
    assert code == 0 and "inet " in out


def test_slot_veth_named_for_container(paths, netpool):
    netpool.refill()
    slot = pool.take_slot(paths, "ps_" + "a" * 12)
    try:
        assert slot is not None and slot.veth.startswith(pool.VETH_PREFIX)
        pool.activate(slot, "ps_" + "a" * 12)
        assert slot.veth == ipam.veth_name("ps_" + "a" * 12)
        assert ipam.leases(paths.leases)[slot.ip] == "ps_" + "a" * 12
        with Rtnl() as nl:
            link = nl.get_link(slot.veth)
        assert link["master"] == socket.if_nametoindex(slot.bridge)
    finally:
        from bocker.net import network

        network.detach("ps_" + "a" * 12, slot.ip, slot.table, mac=slot.mac)
        pool.destroy_slot(slot, paths.leases)


def test_slot_is_never_handed_out_twice(paths, netpool):
    netpool.refill()
    a = pool.take_slot(paths, "ps_" + "b" * 12)
    b = pool.take_slot(paths, "ps_" + "c" * 12)
    c = pool.take_slot(paths, "ps_" + "d" * 12)
    try:
        assert a is not None and b is not None and c is None
        assert a.ip != b.ip and a.fd != b.fd
        assert _netns_inode(a.fd) != _netns_inode(b.fd)
    finally:
        from bocker.net import network

        for cid, s in (("ps_" + "b" * 12, a), ("ps_" + "c" * 12, b)):
            if s is not None:
                network.detach(cid, s.ip, s.table, mac=s.mac)
                pool.destroy_slot(s, paths.leases)


def test_drained_pool_leaves_nothing(paths):
    p = pool.NetPool(paths, 2)
    p.refill()
    inodes = [_netns_inode(s.fd) for s in p.slots]
    veths = [s.veth for s in p.slots]
    assert all(os.path.exists(f"/sys/class/net/{v}") for v in veths)
    p.drain()
    assert not p.slots
    # none of ours (a live server's pool may hold leases of its own)
    assert not [o for o in ipam.leases(paths.leases).values()
                if o.startswith(f"pool-{os.getpid()}-")]
    assert not any(os.path.exists(f"/sys/class/net/{v}") for v in veths)
    assert not any(_netns_held(i) for i in inodes)
    # the leak check (links, leases) runs after this


def test_slot_of_replaced_bridge_is_refused(paths, netpool, net):
    netpool.refill()
    slot = netpool.slots[0]
    # the slot's recorded bridge is made to look like another one's: as
    # after a teardown and setup that made the bridge again (new ifindex)
    for s in netpool.slots:
        s.bridge_index += 1000
    assert pool.take_slot(paths, "ps_" + "e" * 12) is None
    assert not netpool.slots
    assert not os.path.exists(f"/sys/class/net/{slot.veth}")
    assert slot.ip not in ipam.leases(paths.leases)


def test_slot_of_torn_down_network_is_refused(paths, netpool):
    netpool.refill()
    # network.json gone (setup --teardown removes it with the bridge)
    saved = paths.network + ".away"
    os.rename(paths.network, saved)
    try:
        assert pool.take_slot(paths, "ps_" + "f" * 12) is None
    finally:
        os.rename(saved, paths.network)
    assert not netpool.slots


def test_prune_keeps_a_live_pool_lease(paths, netpool):
    netpool.refill()
    before = ipam.leases(paths.leases)
    assert ipam.prune(paths.leases, set()) == {}
    assert ipam.leases(paths.leases) == before


def test_server_hands_a_slot_to_a_forked_worker(paths, netpool):
    netpool.refill()
    ips = {s.ip for s in netpool.slots}
    server, worker = pool.server_pair()
    cid = "ps_" + "9" * 12
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # the worker: takes a slot through the server
        code = 1
        try:
            server.close()
            os.close(r)
            pool.use_server(worker.fileno())
            slot = pool.take_slot(paths, cid)
            if slot is not None:
                pool.activate(slot, cid)
                os.write(w, f"{slot.ip} {slot.veth} {_netns_inode(slot.fd)}".encode())
                os.close(slot.fd)
                code = 0
        finally:
            os._exit(code)
    worker.close()
    os.close(w)
    import select

    assert select.select([server], [], [], 10)[0]
    pool.serve_take(server)
    _, status = os.waitpid(pid, 0)
    out = os.read(r, 4096).decode()
    os.close(r)
    server.close()
    assert os.waitstatus_to_exitcode(status) == 0, out
    ip, veth, _ = out.split()
    try:
        assert ip in ips and veth == ipam.veth_name(cid)
        assert ipam.leases(paths.leases)[ip] == cid
        assert len(netpool.slots) == 1 and netpool.slots[0].ip != ip
    finally:
        from bocker.net import network

        network.detach(cid, ip, netpool.slots[0].table, mac=ipam.mac_for(ip))
        ipam.release(paths.leases, cid)


def test_server_without_slots_answers_none(paths, netpool):
    server, worker = pool.server_pair()
    with server, worker:
        assert netpool.slots == []
        pid = os.fork()
        if pid == 0:
            try:
                server.close()
                got = pool.request_slot(worker.fileno(), paths, timeout=10)
                os._exit(0 if got is None else 1)
            finally:
                os._exit(2)
        import select

        assert select.select([server], [], [], 10)[0]
        pool.serve_take(server)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
