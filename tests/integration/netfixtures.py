"""Network test support: a leak-check fixture (import it into conftest.py),
namespaces, sockets inside them, ping.

    from netfixtures import netleak   # noqa: F401  (tests/integration is on sys.path)

A test asks for `netleak`, names what it makes through it (or uses its
unique names), and fails at teardown if any of these is still there: a
watched link (veth, bridge) by exact name or prefix, a watched nftables
table, or a network-namespace fd this process opened during the test.
Leftovers are removed after being reported, so one leaky test does not
break the next.  Only watched names are checked: other test runs on the
same machine may create and delete links of their own at the same time.
"""
import contextlib
import itertools
import os
import socket
import struct
import subprocess
import time

import pytest

from bocker.kernel import native
from bocker.net import network, rtnl
from bocker.net.netlink import (RT_TABLE_MAIN, RTM_GETADDR, RTM_GETLINK, RTM_GETROUTE, RTM_NEWADDR,
                                RTM_NEWLINK, RTM_NEWROUTE, ifaddrmsg, ifinfomsg, parse_addr,
                                parse_link, parse_route, rtmsg)


class Rtnl(rtnl.Rtnl):
    """bocker's Rtnl plus what only tests ask of the kernel: listings of
    links, addresses and routes, and link changes bocker never makes."""

    def set_master(self, link, master):
        """Enslave a link to a bridge (master ifindex; 0 releases it)."""
        self.set_link(link, master=master)

    def set_mac(self, link, mac):
        """Set a link's MAC address ('02:42:..')."""
        self.set_link(link, mac=mac)

    def set_name(self, link, name):
        """Rename a link (it must be down)."""
        self.set_link(link, name=name)

    def links(self):
        """Every link as a dict: name, index, kind, mac, master, flags."""
        return [parse_link(body) for mtype, body in
                self.dump(RTM_GETLINK, ifinfomsg(), "list links") if mtype == RTM_NEWLINK]

    def addresses(self, family=socket.AF_INET):
        """Every address of `family` as a dict: index, family, prefixlen, address."""
        return [parse_addr(body) for mtype, body in
                self.dump(RTM_GETADDR, ifaddrmsg(0, 0, family=family), "list addresses")
                if mtype == RTM_NEWADDR]

    def routes(self, family=socket.AF_INET):
        """Routes of the main table as dicts: dst, dst_len, gateway, oif."""
        return [r for r in (parse_route(body) for mtype, body in
                            self.dump(RTM_GETROUTE, rtmsg(family=family), "list routes")
                            if mtype == RTM_NEWROUTE) if r["table"] == RT_TABLE_MAIN]


def netns_fds():
    """{fd: 'net:[inode]'} for every fd of this process that holds a netns."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("net:["):
            out[int(name)] = target
    return out


def host_links():
    """{name: link dict} of the host's network namespace."""
    with Rtnl() as nl:
        return {link["name"]: link for link in nl.links()}


def nft_tables():
    """Names of the host's `ip` and `bridge` family nftables tables (bocker
    makes one of each per bridge, by the same name)."""
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[-1] for line in out.splitlines()
            if line.startswith(("table ip ", "table bridge "))}


class NetWatch:
    """What one test makes; names derived from the PID cannot collide with
    another test run on the same machine."""

    _counter = itertools.count(1)

    def __init__(self):
        pid = os.getpid()
        self.tag = f"bkn{pid % 100000}"                      # bridges, tables
        self._pid_hex = f"{pid:06x}"[-6:]
        self.links, self.prefixes, self.tables = set(), {f"bk{self._pid_hex}"}, set()

    def link(self, name):
        """Watch a link name; returns it."""
        self.links.add(name)
        return name

    def table(self, name):
        """Watch an nftables table (families ip and bridge); returns it."""
        self.tables.add(name)
        return name

    def container(self, container_id):
        """Watch the host veth of a container ID made elsewhere; returns the ID."""
        self.link(network.veth_name(container_id))
        return container_id

    def new_container_id(self):
        """A fresh ps_ ID whose host veth name is watched by prefix."""
        return f"ps_{self._pid_hex}{next(self._counter):06x}"

    def bridge(self, n=0):
        """A watched bridge name unique to this process (and n)."""
        return self.link(f"{self.tag}b{n}")

    def nft_table(self, n=0):
        """A watched nftables table name unique to this process (and n)."""
        return self.table(f"{self.tag}_t{n}")

    def leftovers(self, fds_before):
        """(links, tables, fds) still present that should not be."""
        links = [name for name in host_links()
                 if name in self.links or any(name.startswith(p) for p in self.prefixes)]
        tables = sorted(self.tables & nft_tables()) if self.tables else []
        fds = {fd: t for fd, t in netns_fds().items() if fds_before.get(fd) != t}
        return links, tables, fds


@pytest.fixture
def netleak():
    """Fail the test if a watched link or table, or a new netns fd, is left."""
    fds_before = netns_fds()
    watch = NetWatch()
    yield watch
    links, tables, fds = watch.leftovers(fds_before)
    # Clean up what leaked so the next test starts clean, then report it.
    with Rtnl() as nl:
        for name in links:
            try:
                nl.delete_link(name)
            except OSError:
                pass
    for t in tables:
        for family in ("ip", "bridge"):
            subprocess.run(["nft", "delete", "table", family, t], capture_output=True)
    for fd in fds:
        os.close(fd)
    if links or tables or fds:
        pytest.fail(f"network leak: links {links}, nft tables {tables}, "
                    f"netns fds {sorted(fds.values())}", pytrace=False)


# ------------------------------------------------------------ helpers


def free_port():
    """A TCP port nothing on the host listens on now, chosen by the kernel
    (bind to port 0 on 127.0.0.1 and read it back).  Tests never use a
    fixed port: published-port rules hook the host's output path, so a
    port someone else uses, or another test session publishes at the
    same time, must never be borrowed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def host_net_fixture(subnet):
    """A `host_net` fixture for a test module: a bridge, subnet and nft
    tables of the test's own (names from netleak), torn down after."""
    from bocker.net import network

    @pytest.fixture
    def host_net(netleak):
        bridge, table = netleak.bridge(), netleak.nft_table()
        network.setup_host(bridge, subnet, table)
        try:
            yield bridge, subnet, table
        finally:
            network.teardown_host(bridge, subnet, table)

    return host_net


@contextlib.contextmanager
def netns():
    """A fresh, empty network namespace (an fd), gone when the block ends."""
    fd = native.new_netns()
    try:
        yield fd
    finally:
        os.close(fd)


def rtnl_in(netns_fd):
    """An Rtnl talking to the namespace netns_fd."""
    return Rtnl(fd=native.socket_in_netns(netns_fd, socket.AF_NETLINK, socket.SOCK_RAW,
                                          socket.NETLINK_ROUTE))


def socket_in(netns_fd, type_=socket.SOCK_STREAM, proto=0):
    """An AF_INET socket living in the namespace netns_fd (None: the host's)."""
    if netns_fd is None:
        return socket.socket(socket.AF_INET, type_, proto)
    return socket.socket(fileno=native.socket_in_netns(netns_fd, socket.AF_INET, type_, proto))


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(netns_fd, dst, timeout=2.0):
    """Send one ICMP echo request to dst from netns_fd (None: the host);
    True when the matching echo reply arrives within timeout."""
    ident, seq = os.getpid() & 0xFFFF, int(time.monotonic() * 1000) & 0xFFFF
    with socket_in(netns_fd, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        payload = b"bocker-ping"
        packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload
        s.sendto(packet, (dst, 0))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                data, (src, _) = s.recvfrom(2048)
            except socket.timeout:
                return False
            ihl = (data[0] & 0x0F) * 4
            type_, _code, _sum, rid, rseq = struct.unpack_from("!BBHHH", data, ihl)
            if src == dst and type_ == 0 and (rid, rseq) == (ident, seq):
                return True
        return False


def tcp_roundtrip(server_ns, server_ip, client_ns, connect_to=None, port=0):
    """Listen on server_ip in server_ns, connect from client_ns (to connect_to,
    default the listener's address); return (bytes received, peer address
    the server saw)."""
    with socket_in(server_ns) as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((server_ip, port))
        srv.listen(1)
        srv.settimeout(3)
        target = connect_to or srv.getsockname()
        with socket_in(client_ns) as cli:
            cli.settimeout(3)
            cli.connect(target)
            conn, peer = srv.accept()
            with conn:
                conn.sendall(b"hello from " + server_ip.encode())
            return cli.recv(100), peer[0]


# ------------------------------------------------- hand-made frames
#
# A hostile container is emulated by a namespace the test attached to a
# bridge: from there it sends Ethernet frames it built itself (AF_PACKET),
# with any source MAC and IP, as a container with NET_RAW could.

ETH_P_ALL, ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0003, 0x0800, 0x0806, 0x86DD


def mac_bytes(mac):
    return bytes(int(b, 16) for b in mac.split(":"))


def ether(dst, src, ethertype, payload):
    """An Ethernet frame (MACs as text)."""
    return mac_bytes(dst) + mac_bytes(src) + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, ttl=64):
    """An IPv4 packet with its header checksum."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, ttl, proto, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + payload


def udp(sport, dport, data):
    """A UDP datagram without checksum (0: none, allowed over IPv4)."""
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def tcp_syn(src, dst, sport, dport, seq=1):
    """A TCP SYN segment with its checksum (over the IPv4 pseudo header)."""
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 65535, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(header))
    return header[:16] + struct.pack("!H", _checksum(pseudo + header)) + header[18:]


def arp(op, sender_mac, sender_ip, target_mac, target_ip):
    """An ARP packet for Ethernet/IPv4 (op 1 request, 2 reply)."""
    return (struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, op) + mac_bytes(sender_mac)
            + socket.inet_aton(sender_ip) + mac_bytes(target_mac) + socket.inet_aton(target_ip))


def packet_socket(netns_fd, ifname):
    """An AF_PACKET socket on ifname inside netns_fd that sends frames as
    given and receives every frame the interface sees."""
    fd = native.socket_in_netns(netns_fd, socket.AF_PACKET, socket.SOCK_RAW,
                                socket.htons(ETH_P_ALL))
    s = socket.socket(fileno=fd)
    s.bind((ifname, 0))        # the name is looked up in the socket's namespace
    return s


def wait_for_frame(sock, match, timeout=1.0):
    """The first frame sock receives within timeout that match(frame)
    accepts, or None."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            frame, (_, _, pkttype, *_) = sock.recvfrom(65535)
        except socket.timeout:
            return None
        if pkttype != socket.PACKET_OUTGOING and match(frame):
            return frame
    return None
