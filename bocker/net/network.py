"""Container networking: the host bridge, address leases, a veth per container.

What the lead's `bocker setup` and `bocker run` call:

    setup_host(bridge, subnet) / teardown_host(bridge, subnet)   once per host
    check_ready(bridge)                                          before a run
    lease(lease_dir, cid, subnet) -> ip / release(lease_dir, cid)
    leases(lease_dir) -> {ip: cid} / prune(lease_dir, keep) -> {ip: cid}
    attach(cid, netns_fd, ip, subnet, bridge, table) -> settings
    detach(cid, ip, table)
    publish(cid, ip, ports, table) / unpublish(cid, table)       for -p
    resolv_conf(dns) / hosts_file(hostname, ip)                  file texts

Every kernel step is a netlink message (bocker.netlink), never `ip`; the
only program run is `nft`, for the firewall (bocker.nat).
"""
import errno
import ipaddress
import os
import socket

from bocker.errors import BockerError, InvalidArgument, NotSetUp

DEFAULT_BRIDGE = "bridge0"
DEFAULT_SUBNET = "10.0.0.0/24"
# Used when the host only knows stub resolvers on 127.0.0.0/8 (which a
# container cannot reach) and no --dns was given; Docker uses the same pair.
DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")
VETH_PREFIX = "bk"
IFNAMSIZ = 16                       # including the NUL: names up to 15 chars


class SubnetFull(BockerError):
    """Every usable address of the subnet is leased."""


# ------------------------------------------------------------- addresses

def _net(subnet):
    """subnet (text or IPv4Network) as an IPv4Network of at least 4 addresses."""
    if isinstance(subnet, ipaddress.IPv4Network):
        net = subnet
    else:
        try:
            net = ipaddress.IPv4Network(subnet, strict=False)
        except ValueError:
            raise InvalidArgument(f"invalid subnet '{subnet}': expected an IPv4 CIDR "
                                  "such as 10.0.0.0/24") from None
    if net.prefixlen > 30:
        raise InvalidArgument(f"subnet {subnet} is too small: it needs at least a /30")
    return net


def _check_ifname(name):
    # The kernel's limits (dev_valid_name), said in one line instead of ERANGE.
    if not name or len(name) >= IFNAMSIZ or name in (".", "..") or any(
            c in name for c in "/: \t\n"):
        raise InvalidArgument(f"invalid bridge name '{name}': 1-15 characters, "
                              "no '/', ':' or spaces")
    return name


def gateway(subnet):
    """The bridge's address: the subnet's first host (10.0.0.1 in 10.0.0.0/24)."""
    return str(_net(subnet).network_address + 1)


def candidates(subnet):
    """Addresses a container may get, in allocation order: every host of the
    subnet but the gateway (the network and broadcast addresses are not hosts)."""
    net = _net(subnet)
    first, last = int(net.network_address) + 2, int(net.broadcast_address) - 1
    return (str(ipaddress.IPv4Address(n)) for n in range(first, last + 1))


def choose(subnet, taken):
    """The first candidate address not in `taken`, or None when all are."""
    for ip in candidates(subnet):
        if ip not in taken:
            return ip
    return None


def mac_for(ip):
    """Docker's locally administered MAC for an address: 02:42 + its 4 bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def veth_name(container_id):
    """Host-side veth name: 'bk' + the ID's 12 hex digits (fits IFNAMSIZ)."""
    name = VETH_PREFIX + container_id.rsplit("_", 1)[-1][-12:]
    assert len(name) < IFNAMSIZ
    return name


# ----------------------------------------------------------------- leases

def lease(lease_dir, container_id, subnet):
    """Lease an address of `subnet` to container_id; return it.

    A lease is a symlink lease_dir/<ip> -> <container_id>: symlink(2)
    creates it atomically or fails with EEXIST, so concurrent processes
    never hold the same address and no lock file is needed.  A container
    that already holds a lease in the subnet gets the same address back.
    """
    os.makedirs(lease_dir, exist_ok=True)
    net = _net(subnet)
    held = leases(lease_dir)
    for ip, owner in held.items():
        if owner == container_id and ipaddress.IPv4Address(ip) in net:
            return ip
    taken = set(held)
    while True:
        ip = choose(net, taken)
        if ip is None:
            raise SubnetFull(f"no free address in {net}: all {net.num_addresses - 3} are leased "
                             f"(leases in {lease_dir})")
        try:
            os.symlink(container_id, os.path.join(lease_dir, ip))
            return ip
        except FileExistsError:
            taken.add(ip)        # another process won this one: try the next


def release(lease_dir, container_id):
    """Drop every lease container_id holds; no-op if it holds none."""
    for ip, owner in leases(lease_dir).items():
        if owner == container_id:
            try:
                os.unlink(os.path.join(lease_dir, ip))
            except FileNotFoundError:
                pass


def prune(lease_dir, keep):
    """Drop every lease whose container ID is not in `keep` (the containers
    that still exist), e.g. after a crash between lease and release.
    Returns {ip: container_id} of the leases dropped."""
    dropped = {}
    for ip, owner in leases(lease_dir).items():
        if owner not in keep:
            try:
                os.unlink(os.path.join(lease_dir, ip))
                dropped[ip] = owner
            except FileNotFoundError:
                pass
    return dropped


def leases(lease_dir):
    """{ip: container_id} for every lease in lease_dir."""
    out = {}
    try:
        names = os.listdir(lease_dir)
    except FileNotFoundError:
        return out
    for name in names:
        try:
            out[name] = os.readlink(os.path.join(lease_dir, name))
        except (FileNotFoundError, OSError):
            pass         # released meanwhile, or not a lease
    return out


# ------------------------------------------------------------------- host

def _write_sysctl(path, value):
    # os.open/os.write: a tenth of the cost of open() in text mode, and
    # this is on the start path.
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def refuse_router_advertisements(ifname):
    """accept_ra=0 and autoconf=0 for ifname, in the calling thread's
    network namespace: no router advertisement from a container can give
    it a route or an address.  A no-op when the kernel has no IPv6 at all
    (ipv6.disable=1); disable_ipv6=1 still has the files and gets them too.
    """
    base = "/proc/sys/net/ipv6/conf"
    if not os.path.isdir(base):
        return
    for key in ("accept_ra", "autoconf"):
        _write_sysctl(f"{base}/{ifname}/{key}", "0")


def setup_host(bridge=DEFAULT_BRIDGE, subnet=DEFAULT_SUBNET, table=None):
    """Make the host ready for containers; safe to run again.

    The bridge (up, with the gateway address, refusing router
    advertisements), IPv4 forwarding, and the nftables tables `table`
    (default nat.table_for(bridge)) that masquerade the subnet, hold
    published ports, drop packets to 127/8 arriving on the bridge and keep
    each container to its own MAC and IP (see bocker.nat).

    route_localnet on the bridge lets 127.0.0.1:PORT on the host reach a
    published container port: the DNAT'ed packet keeps its 127.0.0.1
    source until postrouting masquerades it, and the kernel routes a
    loopback source out of a device only with route_localnet on it; the
    reply, un-NAT'ed back to 127.0.0.1, needs it on input too.  It would
    also let a container reach the host's 127.0.0.1 services by sending to
    127.0.0.1 through the gateway: the localnet chain drops exactly those
    packets.
    """
    from bocker.net import nat
    from bocker.net.netlink import Rtnl

    net = _net(subnet)
    _check_ifname(bridge)
    with Rtnl() as nl:
        try:
            nl.create_bridge(bridge, up=True)
        except FileExistsError:
            if nl.get_link(bridge)["kind"] != "bridge":
                raise BockerError(f"{bridge} exists and is not a bridge")
            nl.set_up(bridge)
        try:
            nl.add_address(bridge, gateway(net), net.prefixlen)
        except FileExistsError:
            pass
    _write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    refuse_router_advertisements(bridge)
    # The drop rule first, then route_localnet: never one without the other.
    nat.setup(table or nat.table_for(bridge), bridge, str(net))
    _write_sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1")


def teardown_host(bridge=DEFAULT_BRIDGE, subnet=DEFAULT_SUBNET, table=None):
    """Undo setup_host: delete the nftables tables and the bridge (which takes
    its address and sysctls with it).  IPv4 forwarding stays on: other
    software may rely on it, and setup_host cannot know who turned it on."""
    from bocker.net import nat
    from bocker.net.netlink import Rtnl

    _net(subnet)
    nat.teardown(table or nat.table_for(bridge))
    with Rtnl() as nl:
        try:
            nl.delete_link(bridge)
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise


def check_ready(bridge=DEFAULT_BRIDGE):
    """Raise NotSetUp unless the bridge exists; return its ifindex.

    One ioctl (if_nametoindex) in the caller's network namespace.
    """
    try:
        return socket.if_nametoindex(bridge)
    except OSError:
        raise NotSetUp(f"{bridge} not found: run 'bocker setup'") from None


# -------------------------------------------------------------- container

def attach(container_id, netns_fd, ip, subnet, bridge=DEFAULT_BRIDGE, table=None):
    """Give the network namespace netns_fd an eth0 on the bridge.

    One request creates the veth pair with its peer born inside netns_fd
    as eth0 (MAC from the address) and the host end enslaved and up; the
    host end refuses router advertisements and is admitted to the guard
    of nftables table `table` (default nat.table_for(bridge)), which drops
    every frame from it not sent from that MAC and address.  Meanwhile, in
    a thread inside that namespace: eth0 refuses router advertisements
    too, lo and eth0 up, the address, the default route via the gateway.
    Returns dict(ip, prefixlen, mac, gateway, host_veth).  On failure the
    veth and its admission are removed again.
    """
    from bocker.kernel import native
    from bocker.net.netlink import Rtnl

    net = _net(subnet)
    gw, mac, host = gateway(net), mac_for(ip), veth_name(container_id)
    table = table or _table(bridge)
    master = check_ready(bridge)
    with Rtnl() as nl:
        nl.create_veth(host, "eth0", netns_fd, master=master, up=True, peer_mac=mac)
    inside = None
    try:
        # The inside runs in its own thread while this one does the host side.
        inside = native.start_in_netns(netns_fd,
                                       lambda: _configure_inside(ip, net.prefixlen, gw))
        refuse_router_advertisements(host)
        from bocker.net import nat

        nat.admit(table, host, mac, ip)
        inside.wait()
    except BaseException:
        if inside is not None:
            try:
                inside.wait()
            except BaseException:
                pass        # the first failure is the one to report
        detach(container_id, ip, table)
        raise
    return {"ip": ip, "prefixlen": net.prefixlen, "mac": mac, "gateway": gw, "host_veth": host}


def _table(bridge):
    from bocker.net import nat
    return nat.table_for(bridge)


def _configure_inside(ip, prefixlen, gw):
    """eth0 and lo of the calling thread's namespace, before eth0 is up:
    no router advertisement is ever taken, not even one in flight."""
    from bocker.net.netlink import Rtnl

    refuse_router_advertisements("eth0")
    with Rtnl() as inner:
        inner.set_up("lo")
        eth0 = inner.index("eth0")
        inner.set_up(eth0)
        inner.add_address(eth0, ip, prefixlen)
        inner.add_default_route(gw)


def detach(container_id, ip=None, table=None, bridge=DEFAULT_BRIDGE):
    """Delete the container's host veth (and so its eth0) if it still
    exists, and with ip given, its admission to the guard of `table`
    (default nat.table_for(bridge)).

    Destroying the container's netns removes the pair too, but the kernel
    does that asynchronously; this makes it certain.  Safe to call twice,
    and on a half-made attach.
    """
    from bocker.net.netlink import Rtnl

    with Rtnl() as nl:
        try:
            nl.delete_link(veth_name(container_id))
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise
    if ip is not None:
        unguard(container_id, ip, table or _table(bridge))


def unguard(container_id, ip, table):
    """Remove container_id's admission to the guard (see nat.expel): the
    nftables side of detach, for a container whose veth went with its
    namespace.  No-op if it holds none."""
    from bocker.net import nat
    nat.expel(table, veth_name(container_id), mac_for(ip), ip)


# ---------------------------------------------------------------- ports

def parse_port(spec):
    """-p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp] -> nat.Port."""
    from bocker.net import nat
    return nat.parse_port(spec)


def publish(container_id, ip, ports, table):
    """Forward each published port (nat.Port or -p spec) to ip; see nat.publish."""
    from bocker.net import nat
    return nat.publish(container_id, ip, ports, table)


def unpublish(container_id, table):
    """Remove container_id's port forwards; see nat.unpublish."""
    from bocker.net import nat
    return nat.unpublish(container_id, table)


# ---------------------------------------------------------------- files

def _is_stub(server):
    try:
        addr = ipaddress.ip_address(server.split("%", 1)[0])
    except ValueError:
        return False
    return addr.is_loopback


def filter_resolv(text, dns=None):
    """resolv.conf text for a container from the host's text.

    Nameservers on 127.0.0.0/8 or ::1 (stub resolvers such as
    systemd-resolved or dnsmasq) are unreachable from a container and are
    dropped.  `dns` (a list, from --dns) replaces all nameservers; if none
    is left, DEFAULT_DNS is used.  search/options lines are kept.
    """
    kept, servers = [], []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            if not _is_stub(words[1]):
                servers.append(words[1])
        else:
            kept.append(line)
    if dns:
        servers = list(dns)
    elif not servers:
        servers = list(DEFAULT_DNS)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept + [f"nameserver {s}" for s in servers]) + "\n"


def resolv_conf(dns=None, path="/etc/resolv.conf"):
    """The container's /etc/resolv.conf text (see filter_resolv).

    When the host's file lists only a stub resolver and systemd-resolved
    keeps the real upstream servers in /run/systemd/resolve/resolv.conf,
    that file is used instead, as Docker does.
    """
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    upstream = "/run/systemd/resolve/resolv.conf"
    if not dns and path == "/etc/resolv.conf" and os.path.exists(upstream):
        servers = [w[1] for w in (line.split() for line in text.splitlines())
                   if w[:1] == ["nameserver"] and len(w) > 1]
        if servers and all(_is_stub(s) for s in servers):
            with open(upstream) as f:
                text = f.read()
    return filter_resolv(text, dns)


def hosts_file(hostname, ip):
    """The container's /etc/hosts text: localhost and hostname -> ip."""
    lines = ["127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet",
             "ff00::0\tip6-mcastprefix",
             "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    if ip:
        lines.append(f"{ip}\t{hostname}")
    else:
        lines[0] += f" {hostname}"
    return "\n".join(lines) + "\n"
