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

Every kernel step is a netlink message (bocker.net.netlink), never `ip`;
the only program run is `nft`, for the firewall (bocker.net.nat).  Leases
and names are in ipam.py, the /etc file texts in etcfiles.py; this module
re-exports them so callers have one face of the network.
"""
import contextlib
import errno
import os
import socket

from bocker.errors import BockerError, NotSetUp
# The address and file functions live in ipam.py and etcfiles.py; callers
# reach them through this module, the network's one face.
from bocker.net.etcfiles import DEFAULT_DNS, filter_resolv, hosts_file, resolv_conf
from bocker.net.ipam import (IFNAMSIZ, VETH_PREFIX, AddressTaken, SubnetFull, _check_ifname, _net,
                             candidates, check_fixed, check_mac, choose, claim_mac, gateway,
                             lease, leases, mac_for, prune, release, veth_name)

DEFAULT_BRIDGE = "bridge0"
DEFAULT_SUBNET = "10.0.0.0/24"


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
    from bocker.net.rtnl import Rtnl

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
    from bocker.net.rtnl import Rtnl

    _net(subnet)
    nat.teardown(table or nat.table_for(bridge))
    with Rtnl() as nl:
        # the host ends of network slots made ahead (net/pool.py) go with
        # the bridge: a bridge's deletion only frees its ports
        for port in _ports(bridge, POOL_VETH_PREFIX):
            with contextlib.suppress(OSError):
                nl.delete_link(port)
        try:
            nl.delete_link(bridge)
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise


POOL_VETH_PREFIX = "bp"  # net/pool.py's host veths (a container's are ipam's "bk")


def _ports(bridge, prefix):
    """Names of the links enslaved to bridge that start with prefix."""
    try:
        names = os.listdir(f"/sys/class/net/{bridge}/brif")
    except OSError:
        return []
    return [n for n in names if n.startswith(prefix)]


def check_ready(bridge=DEFAULT_BRIDGE):
    """Raise NotSetUp unless the bridge exists; return its ifindex.

    One ioctl (if_nametoindex) in the caller's network namespace.
    """
    try:
        return socket.if_nametoindex(bridge)
    except OSError:
        raise NotSetUp(f"{bridge} not found: run 'bocker setup'") from None


# -------------------------------------------------------------- container

def attach(container_id, netns_fd, ip, subnet, bridge=DEFAULT_BRIDGE, table=None, mac=None):
    """Give the network namespace netns_fd an eth0 on the bridge.

    One request creates the veth pair with its peer born inside netns_fd
    as eth0 (MAC from the address) and the host end enslaved and up; the
    host end refuses router advertisements and is admitted to the guard
    of nftables table `table` (default nat.table_for(bridge)), which drops
    every frame from it not sent from that MAC and address.  Meanwhile, in
    a thread inside that namespace: eth0 refuses router advertisements
    too, lo and eth0 up, the address, the default route via the gateway.
    Returns dict(ip, prefixlen, mac, gateway, host_veth).  On failure the
    veth and its admission are removed again.  mac (--mac-address)
    replaces the one derived from the address.
    """
    from bocker.kernel import native
    from bocker.net.rtnl import Rtnl

    net = _net(subnet)
    gw, mac, host = gateway(net), mac or mac_for(ip), veth_name(container_id)
    table = table or _table(bridge)
    master = check_ready(bridge)
    with Rtnl() as nl:
        nl.create_veth(host, "eth0", netns_fd, master=master, up=True, peer_mac=mac)
    inside = None
    try:
        # The inside runs in its own thread while this one does the host side.
        inside = native.start_in_netns(netns_fd,
                                       lambda: configure_inside(ip, net.prefixlen, gw))
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
        detach(container_id, ip, table, mac=mac)
        raise
    return {"ip": ip, "prefixlen": net.prefixlen, "mac": mac, "gateway": gw, "host_veth": host}


def _table(bridge):
    from bocker.net import nat
    return nat.table_for(bridge)


def configure_inside(ip, prefixlen, gw):
    """eth0 and lo of the calling thread's namespace, before eth0 is up:
    no router advertisement is ever taken, not even one in flight."""
    from bocker.net.rtnl import Rtnl

    refuse_router_advertisements("eth0")
    with Rtnl() as inner:
        inner.set_up("lo")
        eth0 = inner.index("eth0")
        inner.set_up(eth0)
        inner.add_address(eth0, ip, prefixlen)
        inner.add_default_route(gw)


def detach(container_id, ip=None, table=None, bridge=DEFAULT_BRIDGE, mac=None):
    """Delete the container's host veth (and so its eth0) if it still
    exists, and with ip given, its admission to the guard of `table`
    (default nat.table_for(bridge)).

    Destroying the container's netns removes the pair too, but the kernel
    does that asynchronously; this makes it certain.  Safe to call twice,
    and on a half-made attach.
    """
    delete_link(veth_name(container_id))
    if ip is not None:
        unguard(container_id, ip, table or _table(bridge), mac)


def delete_link(name):
    """Delete the host link name (a veth: its peer goes with it); one that
    is gone already is fine."""
    from bocker.net.rtnl import Rtnl

    with Rtnl() as nl:
        try:
            nl.delete_link(name)
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise


def unguard(container_id, ip, table, mac=None):
    """Remove container_id's admission to the guard (see nat.expel): the
    nftables side of detach, for a container whose veth went with its
    namespace.  No-op if it holds none.  mac: its --mac-address, if any."""
    from bocker.net import nat
    nat.expel(table, veth_name(container_id), mac or mac_for(ip), ip)


# ---------------------------------------------------------------- ports

def parse_port(spec):
    """-p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp] -> nat.Port."""
    from bocker.net import nat
    return nat.parse_port(spec)


def publish(container_id, ip, ports, table, existing=None):
    """Forward each published port (nat.Port or -p spec) to ip; see nat.publish."""
    from bocker.net import nat
    return nat.publish(container_id, ip, ports, table, existing)


def unpublish(container_id, table):
    """Remove container_id's port forwards; see nat.unpublish."""
    from bocker.net import nat
    return nat.unpublish(container_id, table)


__all__ = ["DEFAULT_BRIDGE", "DEFAULT_SUBNET", "DEFAULT_DNS", "IFNAMSIZ", "VETH_PREFIX",
           "SubnetFull", "AddressTaken", "check_fixed", "check_mac", "claim_mac", "candidates",
           "choose", "gateway", "mac_for", "veth_name", "lease", "release", "prune", "leases",
           "refuse_router_advertisements", "setup_host",
           "teardown_host", "check_ready", "attach", "detach", "unguard", "parse_port",
           "publish", "unpublish", "filter_resolv", "resolv_conf", "hosts_file"]
