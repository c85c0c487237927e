"""What a container on the bridge cannot do: reach the host's loopback
services, take router advertisements, send from an address not its own.

A hostile container is a namespace the test attached to a bridge of its
own (network.attach, as bocker run does) that writes Ethernet frames by
hand.  Each blocking check has a control: the same frame gets through once
the rule that should stop it is deleted by handle (setup_host puts it
back), so none of these tests passes because the frame was malformed.
Traffic only between the host and namespaces these tests made.
"""
import json
import os
import socket
import struct
import subprocess
import time

import pytest

from bocker import hostsetup
from bocker.kernel import native
from bocker.net import nat, network
from bocker.state import Paths

from netfixtures import (ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, Rtnl, arp, ether, free_port,  # noqa: F401
                         host_net_fixture, ipv4, netleak, netns, packet_socket, ping, socket_in,
                         tcp_syn, udp, wait_for_frame)

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

# outside 10.200-249, where conftest.py puts the session bridge: the same
# subnet twice on the host would route the gateway to the wrong bridge
SUBNET = f"10.197.{os.getpid() % 250}.0/24"
BASE = SUBNET.rsplit(".", 1)[0]
GW = network.gateway(SUBNET)
HAS_IPV6 = os.path.isdir("/proc/sys/net/ipv6")


host_net = host_net_fixture(SUBNET)


@pytest.fixture
def attached(host_net, netleak):
    """attached(n) -> (netns fd, ip, mac) of a namespace on the test bridge
    as container n; all detached at the end."""
    bridge, subnet, table = host_net
    made = []

    def attach(n):
        cid, ip = netleak.new_container_id(), f"{BASE}.{n}"
        ns = native.new_netns()
        made.append((cid, ip, ns))
        network.attach(cid, ns, ip, subnet, bridge, table)
        return ns, ip, network.mac_for(ip)

    yield attach
    for cid, ip, ns in made:
        network.detach(cid, ip, table)
        os.close(ns)


def _rule_handles(family, table, chain, needle):
    """Handles of the rules in chain whose text contains needle."""
    out = subprocess.run(["nft", "-a", "list", "chain", family, table, chain],
                         capture_output=True, text=True, check=True).stdout
    return [int(line.rsplit("# handle ", 1)[1]) for line in out.splitlines()
            if needle in line and "# handle " in line]


def _delete_rules(family, table, chain, needle):
    handles = _rule_handles(family, table, chain, needle)
    assert handles, f"no rule with '{needle}' in {family} {table} {chain}"
    for h in handles:
        subprocess.run(["nft", "delete", "rule", family, table, chain, "handle", str(h)],
                       check=True)


def _listing(family, table):
    return subprocess.run(["nft", "list", "table", family, table], capture_output=True,
                          text=True, check=True).stdout


def _bridge_mac(bridge):
    with Rtnl() as nl:
        return nl.get_link(bridge)["mac"]


# ---------------------------------------------------- host loopback

def _syn_to_host_loopback(ns, ip, mac, gw_mac, port, sport):
    """Send a SYN for 127.0.0.1:port to the gateway's MAC, as a container
    that routes 127.0.0.1 via the gateway would; True if the host's
    service answered (a SYN-ACK from 127.0.0.1:port came back)."""
    with packet_socket(ns, "eth0") as s:
        s.send(ether(gw_mac, mac, ETH_P_IP,
                     ipv4(ip, "127.0.0.1", 6, tcp_syn(ip, "127.0.0.1", sport, port))))

        def synack(frame):
            if frame[12:14] != struct.pack("!H", ETH_P_IP) or frame[23] != 6:
                return False
            ihl = (frame[14] & 0x0F) * 4
            src = socket.inet_ntoa(frame[26:30])
            tsport, tdport = struct.unpack_from("!HH", frame, 14 + ihl)
            flags = frame[14 + ihl + 13]
            return (src, tsport, tdport, flags & 0x12) == ("127.0.0.1", port, sport, 0x12)

        return wait_for_frame(s, synack, timeout=1.0) is not None


def test_a_container_cannot_reach_a_service_on_host_loopback(host_net, attached):
    bridge, subnet, table = host_net
    ns, ip, mac = attached(30)
    gw_mac = _bridge_mac(bridge)
    assert ping(ns, GW)             # its own traffic flows (and the host knows its MAC)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        assert not _syn_to_host_loopback(ns, ip, mac, gw_mac, port, 40001)
        # Control: without the localnet rule the very same packet is
        # answered by the service (route_localnet is on the bridge).
        _delete_rules("ip", table, "localnet", "ip daddr 127.0.0.0/8 drop")
        try:
            assert _syn_to_host_loopback(ns, ip, mac, gw_mac, port, 40002)
        finally:
            network.setup_host(bridge, subnet, table)
        assert not _syn_to_host_loopback(ns, ip, mac, gw_mac, port, 40003)


def test_published_port_on_host_loopback_still_answers(host_net, attached):
    """-p 127.0.0.1:PORT:80 from the host itself, with the localnet drop in
    place: its replies reach the rule still addressed to the gateway."""
    bridge, subnet, table = host_net
    ns, ip, _ = attached(31)
    cid = "ps_" + "c0ffee" + f"{os.getpid():06x}"[-6:]
    port = free_port()
    network.publish(cid, ip, [f"127.0.0.1:{port}:80"], table)
    try:
        with socket_in(ns) as srv:
            srv.bind((ip, 80))
            srv.listen(1)
            srv.settimeout(3)
            with socket.create_connection(("127.0.0.1", port), timeout=3) as cli:
                conn, peer = srv.accept()
                with conn:
                    conn.sendall(b"published")
                assert cli.recv(100) == b"published" and peer[0] == GW
    finally:
        network.unpublish(cid, table)


# ------------------------------------------------ router advertisements

def _ipv6_conf(ifname, key):
    with open(f"/proc/sys/net/ipv6/conf/{ifname}/{key}") as f:
        return f.read().strip()


@pytest.mark.skipif(not HAS_IPV6, reason="kernel without IPv6")
def test_no_router_advertisements_on_bridge_veth_and_eth0(host_net, attached, netleak):
    bridge, _, _ = host_net
    ns, ip, _ = attached(32)
    veth = [name for name in os.listdir("/sys/class/net")
            if name.startswith(f"bk{netleak._pid_hex}")]
    assert len(veth) == 1
    for ifname in (bridge, veth[0]):
        assert (_ipv6_conf(ifname, "accept_ra"), _ipv6_conf(ifname, "autoconf")) == ("0", "0")
    inside = native.run_in_netns(ns, lambda: [_ipv6_conf("eth0", k)
                                              for k in ("accept_ra", "autoconf")])
    assert inside == ["0", "0"]
    # the host's own default is untouched: only bocker's links are set
    assert os.path.exists("/proc/sys/net/ipv6/conf/default/accept_ra")


# ---------------------------------------------------------- spoofing

def _sent_and_received(a, b, frames):
    """a (netns, ip, mac) sends each of frames {name: frame} to b, which
    listens on UDP port 5353 and at its link; returns the names that
    arrived."""
    ns_b, ip_b, _ = b
    with socket_in(ns_b, socket.SOCK_DGRAM) as rx, packet_socket(ns_b, "eth0") as link, \
            packet_socket(a[0], "eth0") as tx:
        rx.bind((ip_b, 5353))
        rx.settimeout(0.5)
        for frame in frames.values():
            tx.send(frame)
        got = set()
        while True:     # UDP payloads name themselves
            try:
                got.add(rx.recv(100).decode())
            except socket.timeout:
                break
        # ARP and IPv6 frames are looked for at the link in b
        not_ipv4 = lambda f: f[12:14] != struct.pack("!H", ETH_P_IP)  # noqa: E731
        while (frame := wait_for_frame(link, not_ipv4, timeout=0.3)) is not None:
            got.update(name for name, sent in frames.items() if frame[:len(sent)] == sent)
    return got


def _spoof_frames(a, b):
    (_, ip_a, mac_a), (_, ip_b, mac_b) = a, b
    other_ip, other_mac = f"{BASE}.99", "02:42:de:ad:be:ef"

    def u(name, src_mac, src_ip):
        return ether(mac_b, src_mac, ETH_P_IP,
                     ipv4(src_ip, ip_b, 17, udp(4000, 5353, name.encode())))
    return {
        "own": u("own", mac_a, ip_a),
        "ip-spoof": u("ip-spoof", mac_a, other_ip),
        "mac-spoof": u("mac-spoof", other_mac, ip_a),
        "arp-own": ether(mac_b, mac_a, ETH_P_ARP, arp(2, mac_a, ip_a, mac_b, ip_b)),
        # "the gateway is at my MAC": the ARP poisoning every L2 MITM starts with
        "arp-ip-spoof": ether(mac_b, mac_a, ETH_P_ARP, arp(2, mac_a, GW, mac_b, ip_b)),
        "arp-mac-spoof": ether(mac_b, mac_a, ETH_P_ARP, arp(2, other_mac, ip_a, mac_b, ip_b)),
        # any IPv6 (a router advertisement would be one): bocker's network is IPv4
        "ipv6": ether(mac_b, mac_a, ETH_P_IPV6, struct.pack("!IHBB", 6 << 28, 0, 59, 255)
                      + socket.inet_pton(socket.AF_INET6, "fe80::1")
                      + socket.inet_pton(socket.AF_INET6, "ff02::1")),
    }


def test_a_container_sends_only_from_its_own_mac_and_address(host_net, attached):
    bridge, subnet, table = host_net
    a, b = attached(40), attached(41)
    frames = _spoof_frames(a, b)
    assert _sent_and_received(a, b, frames) == {"own", "arp-own"}
    assert ping(a[0], GW) and ping(a[0], b[1])        # its own traffic still flows
    # Control: without the guard every one of those frames arrives.
    _delete_rules("bridge", table, "prerouting", "jump guard")
    try:
        assert _sent_and_received(a, b, frames) == set(frames)
    finally:
        network.setup_host(bridge, subnet, table)
    assert _sent_and_received(a, b, frames) == {"own", "arp-own"}


def test_guard_admission_follows_attach_and_detach(host_net, netleak):
    bridge, subnet, table = host_net
    cid, ip = netleak.new_container_id(), f"{BASE}.50"
    with netns() as ns:
        network.attach(cid, ns, ip, subnet, bridge, table)
        assert nat.guarded(table) == {network.veth_name(cid): (network.mac_for(ip), ip)}
        network.setup_host(bridge, subnet, table)         # a re-run keeps admissions
        assert network.veth_name(cid) in nat.guarded(table)
        network.detach(cid, ip, table)
        network.detach(cid, ip, table)
        assert nat.guarded(table) == {}
    # members is empty too, once the expelled elements' 1 ms timeout ran out
    deadline = time.monotonic() + 2
    while "elements" in _listing("bridge", table) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "elements" not in _listing("bridge", table)
    network.teardown_host(bridge, subnet, table)
    network.unguard(cid, ip, table)                       # no table: a no-op
    assert nat.guarded(table) is None


# ------------------------------------------------- real containers

def _inspect(bocker, cid):
    return json.loads(bocker("inspect", cid, check=True).stdout)[0]


def _spoofing_container(bocker, gw, other):
    """What a container with NET_ADMIN gets through when it sends from its
    own address and then from `other` it puts on its eth0."""
    script = (f"ping -c 1 -W 2 {gw} >/dev/null && echo own-ok; "
              f"ip addr add {other}/32 dev eth0 && echo added; "
              f"ping -c 1 -W 1 -I {other} {gw} >/dev/null && echo spoof-ok; echo done")
    return bocker("run", "--rm", "--cap-add", "NET_ADMIN", "busybox", "sh", "-c", script,
                  check=True).stdout.split()


def test_container_cannot_send_from_another_address(bocker, net):
    """With NET_ADMIN a container can put any address on its eth0: the
    guard drops what it sends from there, and its own traffic still flows.
    (A changed MAC is covered by the hand-made frames above.)"""
    gw = network.gateway(net["subnet"])
    other = list(network.candidates(net["subnet"]))[-1]   # the subnet's last host
    assert _spoofing_container(bocker, gw, other) == ["own-ok", "added", "done"]
    _delete_rules("bridge", net["table"], "prerouting", "jump guard")
    try:                                                   # control: no guard, it works
        assert _spoofing_container(bocker, gw, other) == ["own-ok", "added", "spoof-ok", "done"]
    finally:
        network.setup_host(net["bridge"], net["subnet"], net["table"])


@pytest.mark.skipif(not HAS_IPV6, reason="kernel without IPv6")
def test_container_eth0_and_host_veth_refuse_router_advertisements(bocker, net):
    cid = bocker("run", "-d", "busybox", "sleep", "30", check=True).stdout.strip()
    try:
        veth = _inspect(bocker, cid)["NetworkSettings"]["HostVeth"]
        for ifname in (net["bridge"], veth):
            assert _ipv6_conf(ifname, "accept_ra") == "0"
        out = bocker("exec", cid, "cat", "/proc/sys/net/ipv6/conf/eth0/accept_ra",
                     "/proc/sys/net/ipv6/conf/eth0/autoconf", check=True).stdout.split()
        assert out == ["0", "0"]
    finally:
        bocker("rm", "-f", cid, check=True)


def test_admission_goes_when_the_container_exits_and_with_rm(bocker, net, paths):
    table = net["table"]
    cid = bocker("run", "-d", "busybox", "sleep", "30", check=True).stdout.strip()
    try:
        info = _inspect(bocker, cid)["NetworkSettings"]
        assert info["Guarded"] is True
        assert nat.guarded(table)[info["HostVeth"]] == (info["MacAddress"], info["IPAddress"])
    finally:
        bocker("rm", "-f", cid, check=True)
    assert info["HostVeth"] not in nat.guarded(table)
    # an exit of its own (the monitor releases it) rather than rm
    cid = bocker("run", "-d", "busybox", "true", check=True).stdout.strip()
    try:
        deadline = time.monotonic() + 10
        while _inspect(bocker, cid)["NetworkSettings"]["Guarded"] and time.monotonic() < deadline:
            time.sleep(0.05)
        info = _inspect(bocker, cid)["NetworkSettings"]
        assert info["Guarded"] is False
        assert info["HostVeth"] not in nat.guarded(table)
    finally:
        bocker("rm", cid, check=True)


def test_setup_teardown_leaves_no_table(tmp_path, netleak):
    bridge = netleak.bridge(3)
    table = netleak.table(nat.table_for(bridge))
    p = Paths(str(tmp_path / "root"))
    hostsetup.setup(p, size="256M", default_image=False, log=lambda *_: None, bridge=bridge,
                    subnet=f"10.198.{os.getpid() % 250}.0/24")
    assert nat.guarded(table) == {}
    hostsetup.teardown(p, [], log=lambda *_: None)
    listing = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                             check=True).stdout.split("\n")
    assert f"table ip {table}" not in listing and f"table bridge {table}" not in listing
    assert nat.guarded(table) is None


def _container_to_host_loopback(bocker, gw):
    """A container with NET_ADMIN routes 127.0.0.1 via the gateway, as an
    attacker would, and connects to a listener on the host's 127.0.0.1;
    returns (its output, whether the listener got the connection)."""
    import threading

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        srv.settimeout(5)
        got = []

        def serve():        # accept and close at once, so nc sees EOF
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            got.append(conn.recv(10))
            conn.close()

        server = threading.Thread(target=serve)
        server.start()
        # 127.0.0.1 leaves lo (else the reply from it would be a martian
        # source in here) and is routed via the gateway instead.
        script = ("ip addr del 127.0.0.1/8 dev lo && "
                  f"ip route add 127.0.0.1/32 via {gw} dev eth0 && echo routed; "
                  f"echo hi | nc -w 1 127.0.0.1 {srv.getsockname()[1]}; echo done")
        try:
            out = bocker("run", "--rm", "--cap-add", "NET_ADMIN",
                         "--sysctl", "net.ipv4.conf.all.route_localnet=1",
                         "busybox", "sh", "-c", script, timeout=20, check=True).stdout.split()
        finally:
            srv.shutdown(socket.SHUT_RDWR)  # ends a pending accept
            server.join()
    return out, got == [b"hi\n"]


def test_container_cannot_reach_host_loopback_even_routing_to_it(bocker, net):
    gw = network.gateway(net["subnet"])
    assert _container_to_host_loopback(bocker, gw) == (["routed", "done"], False)
    _delete_rules("ip", net["table"], "localnet", "ip daddr 127.0.0.0/8 drop")
    try:                                    # control: without the rule it gets in
        assert _container_to_host_loopback(bocker, gw) == (["routed", "done"], True)
    finally:
        network.setup_host(net["bridge"], net["subnet"], net["table"])
