"""Addresses for containers on a bridge subnet: the gateway, the candidate
addresses, a lease per container (a symlink under <root>/leases named by
the address, created atomically, so concurrent starts never share one),
its release and the pruning of stale leases; and the names derived from a
container: its MAC (02:42 + the address, as Docker) and its veth."""
import ipaddress

from bocker import claims
from bocker.errors import BockerError, InvalidArgument

VETH_PREFIX = "bk"
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

def lease(lease_dir, container_id, subnet):
    """Lease an address of `subnet` to container_id; return it.

    A lease is a symlink lease_dir/<ip> -> <container_id>: symlink(2)
    creates it atomically or fails with EEXIST, so concurrent processes
    never hold the same address and no lock file is needed.  A container
    that already holds a lease in the subnet gets the same address back.
    """
    net = _net(subnet)
    held = leases(lease_dir)
    for ip, owner in held.items():
        if owner == container_id and ipaddress.IPv4Address(ip) in net:
            return ip
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
    Returns {ip: container_id} of the leases dropped."""
    return claims.prune(lease_dir, keep)


def leases(lease_dir):
    """{ip: container_id} for every lease in lease_dir."""
    return claims.claims(lease_dir)
