"""Addresses for containers on a bridge subnet: the gateway, the candidate
addresses, a lease per container (a symlink under <root>/leases named by
the address, created atomically, so concurrent starts never share one),
its release and the pruning of stale leases; and the names derived from a
container: its MAC (02:42 + the address, as Docker) and its veth."""
import ipaddress

from bocker import claims
from bocker.errors import BockerError, InvalidArgument
from bocker.net import shown

VETH_PREFIX = "bk"
# a network slot's lease (net/pool.py): pool-<pid>-<starttime>-<n>, kept
# by prune while that process lives
POOL_OWNER_PREFIX = "pool-"
IFNAMSIZ = 16                       # including the NUL: names up to 15 chars


class SubnetFull(BockerError):
    """Every usable address of the subnet is leased: the run never
    started (Docker's 125)."""

    exit_code = 125


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

class AddressTaken(BockerError):
    """--ip (or --mac-address) names an address another container holds
    (Docker's 125)."""

    exit_code = 125


def check_fixed(subnet, ip):
    """--ip: an address of subnet a container may hold (not the network,
    broadcast or gateway address); returned normalized."""
    net = _net(subnet)
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError:
        raise InvalidArgument(f"invalid --ip '{shown(ip)}': not an IPv4 address") from None
    if addr not in net or str(addr) == gateway(net) or addr in (
            net.network_address, net.broadcast_address):
        first = ipaddress.IPv4Address(int(net.network_address) + 2)
        raise InvalidArgument(f"invalid --ip {addr}: not a container address of bocker's "
                              f"subnet {net} (from {first})")
    return str(addr)


def lease(lease_dir, container_id, subnet, want=None):
    """Lease an address of `subnet` to container_id; return it.

    A lease is a symlink lease_dir/<ip> -> <container_id>: symlink(2)
    creates it atomically or fails with EEXIST, so concurrent processes
    never hold the same address and no lock file is needed.  A container
    that already holds a lease in the subnet gets the same address back.
    want (--ip): that address or AddressTaken.
    """
    net = _net(subnet)
    held = leases(lease_dir)
    for ip, owner in held.items():
        if owner == container_id and ipaddress.IPv4Address(ip) in net and want in (None, ip):
            return ip
    if want is not None:
        want = check_fixed(net, want)
        if claims.claim_first(lease_dir, container_id, [want], taken=held) is None:
            owner = leases(lease_dir).get(want, "another container")
            raise AddressTaken(f"address {want} is already in use by {owner}")
        return want
    ip = claims.claim_first(lease_dir, container_id, candidates(subnet), taken=held)
    if ip is None:
        raise SubnetFull(f"no free address in {net}: the subnet is full, all "
                         f"{net.num_addresses - 3} addresses are leased (leases in {lease_dir})")
    return ip


def release(lease_dir, container_id):
    """Drop every lease container_id holds; no-op if it holds none."""
    claims.release(lease_dir, container_id)


def prune(lease_dir, keep):
    """Drop every lease whose container ID is not in `keep` (the containers
    that still exist), e.g. after a crash between lease and release.
    A network slot's lease is kept while its pool's process lives.
    Returns {ip: container_id} of the leases dropped."""
    keep = set(keep) | {owner for owner in claims.claims(lease_dir).values()
                        if pool_owner_alive(owner)}
    return claims.prune(lease_dir, keep)


def pool_owner_alive(owner):
    """True if owner names a network slot whose pool's process (pid and
    start time) still runs."""
    if not owner.startswith(POOL_OWNER_PREFIX):
        return False
    parts = owner[len(POOL_OWNER_PREFIX):].split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return False
    from bocker.kernel import procfs

    return str(procfs.start_time(int(parts[0]))) == parts[1]


def leases(lease_dir):
    """{ip: container_id} for every lease in lease_dir."""
    return claims.claims(lease_dir)


def check_mac(text):
    """--mac-address: six hex octets (':' or '-' between), unicast and not
    all zeros (the kernel refuses those on a veth); returned lowercase
    with ':'."""
    parts = text.replace("-", ":").split(":") if isinstance(text, str) else []
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise InvalidArgument(f"invalid --mac-address '{shown(text, 32)}': expected "
                              "six hex octets such as 02:42:ac:11:00:02")
    octets = [int(p, 16) for p in parts]
    if octets[0] & 1 or not any(octets):
        raise InvalidArgument(f"invalid --mac-address '{shown(text, 32)}': not a unicast address")
    return ":".join(f"{b:02x}" for b in octets)


def claim_mac(mac_dir, container_id, mac, subnet):
    """--mac-address: claim mac for container_id (a symlink mac_dir/<mac>
    -> <container_id>, as a lease), so no two containers on the bridge
    send from one MAC (the bridge would learn it on the second one's port
    and hand it the first one's traffic).  The 02:42 + address MACs of
    the subnet are bocker's own (mac_for): refused."""
    net = _net(subnet)
    if mac.startswith("02:42:"):
        derived = ipaddress.IPv4Address(bytes(int(b, 16) for b in mac.split(":")[2:]))
        if derived in net:
            raise InvalidArgument(f"invalid --mac-address {mac}: bocker gives it to the "
                                  f"container at {derived}")
    held = claims.claims(mac_dir)
    if held.get(mac) == container_id:
        return mac
    if claims.claim_first(mac_dir, container_id, [mac], taken=held) is None:
        owner = claims.claims(mac_dir).get(mac, "another container")
        raise AddressTaken(f"MAC address {mac} is already in use by {owner}")
    return mac
