"""Netlink and container networking against the real kernel (root).

Traffic only flows between the host and namespaces these tests make.
"""
import errno
import json
import os
import socket
import subprocess

import pytest

from bocker.errors import BockerError, NotSetUp
from bocker.net import nat, network
from bocker.net.netlink import IFF_UP

from netfixtures import (Rtnl, free_port, host_links, host_net_fixture, netleak,  # noqa: F401
                         netns, ping, rtnl_in, socket_in, tcp_roundtrip)

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

# outside 10.200-249, where conftest.py puts the session bridge: the same
# subnet twice on the host would route the gateway to the wrong bridge
SUBNET = f"10.196.{os.getpid() % 250}.0/24"


host_net = host_net_fixture(SUBNET)


# ------------------------------------------------------------ netlink

def test_link_operations_inside_a_private_namespace(netleak):
    """Every link operation, done where it touches nothing of the host's."""
    with netns() as ns, rtnl_in(ns) as nl:
        nl.create_bridge("br0")
        nl.create_veth("va", "vb")
        br = nl.index("br0")
        nl.set_master("va", br)
        nl.set_mac("va", "02:42:01:02:03:04")
        nl.set_name("vb", "vc")
        nl.set_up("va")
        links = {link["name"]: link for link in nl.links()}
        assert links["br0"]["kind"] == "bridge"
        assert links["va"]["kind"] == links["vc"]["kind"] == "veth"
        assert links["va"]["master"] == br and links["va"]["mac"] == "02:42:01:02:03:04"
        assert links["va"]["flags"] & IFF_UP and "vb" not in links
        nl.set_master("va", 0)
        nl.set_up("va", False)
        assert nl.get_link("va")["master"] is None
        assert not nl.get_link("va")["flags"] & IFF_UP
        nl.set_up("br0")
        nl.add_address("br0", "10.213.250.1", 24)
        assert {"index": br, "family": socket.AF_INET, "prefixlen": 24,
                "address": "10.213.250.1"} in nl.addresses()
        nl.delete_link("vc")                       # takes its peer va with it
        assert set(link["name"] for link in nl.links()) == {"lo", "br0"}


def test_kernel_errors_become_oserror_naming_the_operation(netleak):
    with netns() as ns, rtnl_in(ns) as nl:
        with pytest.raises(OSError) as e:
            nl.delete_link("nosuch0")
        assert e.value.errno == errno.ENODEV
        assert e.value.strerror == "delete link nosuch0: No such device"
        nl.create_bridge("br0")
        with pytest.raises(FileExistsError, match="create bridge br0: File exists"):
            nl.create_bridge("br0")
        with pytest.raises(OSError, match="set link nosuch0") as e:
            nl.set_up("nosuch0")
        with pytest.raises(OSError) as e:
            nl.add_default_route("10.9.9.9")       # no route to the gateway
        assert e.value.errno == errno.ENETUNREACH
        assert "add default route via 10.9.9.9" in str(e.value)


def test_veth_peer_is_born_inside_the_other_namespace(netleak):
    with netns() as a, netns() as b, rtnl_in(a) as nl_a, rtnl_in(b) as nl_b:
        nl_a.create_veth("outside", "inside", b, peer_mac="02:42:0a:00:00:09")
        assert "inside" not in {link["name"] for link in nl_a.links()}
        inside = nl_b.get_link("inside")
        assert inside["kind"] == "veth" and inside["mac"] == "02:42:0a:00:00:09"


# ------------------------------------------------------------- host

def test_setup_host_is_idempotent_and_teardown_removes_it(netleak):
    bridge, table = netleak.bridge(), netleak.nft_table()
    try:
        for _ in range(2):
            network.setup_host(bridge, SUBNET, table)
        with Rtnl() as nl:
            link = nl.get_link(bridge)
            addrs = [a for a in nl.addresses() if a["index"] == link["index"]]
        assert link["kind"] == "bridge" and link["flags"] & IFF_UP
        assert [(a["address"], a["prefixlen"]) for a in addrs] == [(network.gateway(SUBNET), 24)]
        assert open("/proc/sys/net/ipv4/ip_forward").read().strip() == "1"
        assert open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").read().strip() == "1"
        ruleset = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True,
                                 text=True, check=True).stdout
        assert ruleset.count("masquerade") == 2     # not doubled by the second setup
        assert f"ip saddr {SUBNET}" in ruleset
        assert network.check_ready(bridge) == link["index"]
    finally:
        network.teardown_host(bridge, SUBNET, table)
        network.teardown_host(bridge, SUBNET, table)
    assert not os.path.exists(f"/sys/class/net/{bridge}")
    assert not nat.exists(table)


def test_check_ready_says_to_run_setup(netleak):
    with pytest.raises(NotSetUp, match=r"^bkn\w+ not found: run 'bocker setup'$"):
        network.check_ready(netleak.bridge(7))


# --------------------------------------------------------- containers

def test_attach_gives_the_namespace_a_configured_eth0(host_net, netleak):
    bridge, subnet, table = host_net
    cid = netleak.new_container_id()
    with netns() as ns:
        settings = network.attach(cid, ns, SUBNET.rsplit(".", 1)[0] + ".7", subnet, bridge,
                                  table)
        ip, gw = settings["ip"], network.gateway(subnet)
        assert settings == {"ip": ip, "prefixlen": 24, "mac": network.mac_for(ip),
                            "gateway": gw, "host_veth": network.veth_name(cid)}
        with rtnl_in(ns) as inner:
            links = {link["name"]: link for link in inner.links()}
            assert set(links) == {"lo", "eth0"}
            eth0 = links["eth0"]
            assert eth0["mac"] == settings["mac"] and eth0["flags"] & IFF_UP
            assert links["lo"]["flags"] & IFF_UP
            addrs = {(a["index"], a["address"], a["prefixlen"]) for a in inner.addresses()}
            assert (eth0["index"], ip, 24) in addrs
            assert any(r["dst_len"] == 0 and r["gateway"] == gw for r in inner.routes())
        with Rtnl() as nl:
            host = nl.get_link(settings["host_veth"])
            assert host["master"] == nl.index(bridge) and host["flags"] & IFF_UP
        # The namespace reaches the host (gateway) and the host reaches it.
        assert ping(ns, gw)
        assert ping(None, ip)
        assert tcp_roundtrip(None, gw, ns) == (f"hello from {gw}".encode(), ip)
        assert tcp_roundtrip(ns, ip, None) == (f"hello from {ip}".encode(), gw)
        assert nat.guarded(table) == {settings["host_veth"]: (settings["mac"], ip)}
        network.detach(cid, ip, table)
        network.detach(cid, ip, table)
        with Rtnl() as nl:
            assert settings["host_veth"] not in {link["name"] for link in nl.links()}
        assert nat.guarded(table) == {}


def test_two_namespaces_reach_each_other(host_net, netleak):
    bridge, subnet, table = host_net
    a, b = netleak.new_container_id(), netleak.new_container_id()
    base = SUBNET.rsplit(".", 1)[0]
    with netns() as ns_a, netns() as ns_b:
        try:
            network.attach(a, ns_a, f"{base}.2", subnet, bridge, table)
            network.attach(b, ns_b, f"{base}.3", subnet, bridge, table)
            assert ping(ns_a, f"{base}.3")
            data, peer = tcp_roundtrip(ns_b, f"{base}.3", ns_a)
            assert data == f"hello from {base}.3".encode() and peer == f"{base}.2"
        finally:
            network.detach(a, f"{base}.2", table)
            network.detach(b, f"{base}.3", table)


def test_failed_attach_leaves_no_veth(host_net, netleak):
    bridge, subnet, table = host_net
    cid = netleak.new_container_id()
    base = SUBNET.rsplit(".", 1)[0]
    with netns() as ns:
        with rtnl_in(ns) as inner:
            inner.create_bridge("eth0")            # the peer's name is taken in there
        with pytest.raises(FileExistsError, match=f"create veth {network.veth_name(cid)}"):
            network.attach(cid, ns, f"{base}.9", subnet, bridge, table)
        # A failure inside (a default route already there) removes the veth too.
        with rtnl_in(ns) as inner:
            inner.delete_link("eth0")
            inner.create_bridge("br1", up=True)
            inner.add_address("br1", "192.168.77.1", 24)
            inner.add_default_route("192.168.77.2")
        with pytest.raises(FileExistsError, match=f"add default route via {network.gateway(subnet)}"):
            network.attach(cid, ns, f"{base}.9", subnet, bridge, table)
    with pytest.raises(NotSetUp):
        with netns() as ns:
            network.attach(cid, ns, f"{base}.9", subnet, netleak.bridge(9))
    assert nat.guarded(table) == {}              # the failed attaches left no admission


def test_detach_of_an_unknown_container_is_a_no_op(host_net, netleak):
    _, _, table = host_net
    base = SUBNET.rsplit(".", 1)[0]
    known, unknown = netleak.new_container_id(), netleak.new_container_id()
    admitted = {network.veth_name(known): (network.mac_for(f"{base}.7"), f"{base}.7")}
    nat.admit(table, network.veth_name(known), *admitted[network.veth_name(known)])
    try:
        links = set(host_links())
        assert network.detach(unknown) is None
        assert network.detach(unknown, f"{base}.8", table) is None     # and twice
        assert network.detach(unknown, f"{base}.8", table) is None
        # nothing of another container's went with it
        assert nat.guarded(table) == admitted
        assert network.veth_name(unknown) not in links
    finally:
        network.unguard(known, f"{base}.7", table)
    assert nat.guarded(table) == {}


# -------------------------------------------------------------- ports

def test_publish_and_unpublish_exactly_one_containers_rules(host_net, netleak):
    _, _, table = host_net
    a, b = netleak.new_container_id(), netleak.new_container_id()
    base = SUBNET.rsplit(".", 1)[0]
    p1, p2, p3 = free_port(), free_port(), free_port()
    network.publish(a, f"{base}.2", [f"{p1}:80", f"127.0.0.1:{p2}:81/udp"], table)
    network.publish(b, f"{base}.3", [nat.Port(p3, 80)], table)
    got = sorted(nat.published(table))
    assert got == sorted([(nat.Port(p1, 80, "tcp"), a),
                          (nat.Port(p2, 81, "udp", "127.0.0.1"), a),
                          (nat.Port(p3, 80, "tcp"), b)])
    with pytest.raises(BockerError, match=f"port {p1}/tcp is already published by {a}"):
        network.publish(b, f"{base}.3", [f"{p1}:8080"], table)
    network.unpublish(a, table)
    network.unpublish(a, table)
    assert nat.published(table) == [(nat.Port(p3, 80, "tcp"), b)]
    network.unpublish(b, table)
    assert nat.published(table) == []
    network.unpublish(b, netleak.nft_table(5))      # no such table: a no-op


def test_published_port_answers_on_host_loopback_and_from_another_namespace(host_net, netleak):
    """The socket-level version of `-p PORT:80` + wget: a listener inside a
    namespace answers on 127.0.0.1:PORT on the host (output-chain DNAT,
    route_localnet, masquerade) and on the gateway address from another
    namespace on the bridge (prerouting DNAT + hairpin masquerade)."""
    bridge, subnet, table = host_net
    server, client = netleak.new_container_id(), netleak.new_container_id()
    base = SUBNET.rsplit(".", 1)[0]
    gw, port = network.gateway(subnet), free_port()
    with netns() as ns_s, netns() as ns_c:
        try:
            network.attach(server, ns_s, f"{base}.20", subnet, bridge, table)
            network.attach(client, ns_c, f"{base}.21", subnet, bridge, table)
            network.publish(server, f"{base}.20", [f"{port}:80"], table)
            data, peer = tcp_roundtrip(ns_s, f"{base}.20", None, ("127.0.0.1", port), port=80)
            assert data == f"hello from {base}.20".encode() and peer == gw
            data, peer = tcp_roundtrip(ns_s, f"{base}.20", ns_c, (gw, port), port=80)
            assert data == f"hello from {base}.20".encode() and peer == gw
            network.unpublish(server, table)
            with pytest.raises(OSError):
                tcp_roundtrip(ns_s, f"{base}.20", None, ("127.0.0.1", port), port=80)
        finally:
            network.unpublish(server, table)
            network.detach(server, f"{base}.20", table)
            network.detach(client, f"{base}.21", table)


def test_table_json_lists_the_masquerade(host_net):
    _, _, table = host_net
    out = subprocess.run(["nft", "-j", "list", "table", "ip", table], capture_output=True,
                         text=True, check=True).stdout
    chains = {item["chain"]["name"] for item in json.loads(out)["nftables"] if "chain" in item}
    assert chains == {"postrouting", "prerouting", "output", "ports", "localnet"}
