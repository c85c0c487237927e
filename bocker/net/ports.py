"""Docker's port flags: -p in all its forms, --expose, -P and the image's
ExposedPorts, turned into what nat.publish forwards; and host ports
picked from the ephemeral range.

A -p value is [IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTO] (Docker's
nat.ParsePortSpec): one Binding per container port, whose host side is a
fixed port, a range to pick one free port from, or none (any free port of
the ephemeral range).  allocate() makes each Binding a nat.Port: a picked
host port is a claim (bocker.claims: <root>/hostports/<proto>-<port> ->
container ID, made atomically), so two starts never pick the same one, and
is skipped while another container publishes it or a host socket holds it.
"""
import os
import random
import re
import socket
from typing import NamedTuple, Optional

from bocker import claims
from bocker.errors import BockerError, InvalidArgument
from bocker.net import shown

PROTOS = ("tcp", "udp", "sctp")
MAX_EXPOSED = 1024        # ports one container may expose (image + --expose)
EPHEMERAL = (32768, 60999)  # the kernel's default ip_local_port_range


class Binding(NamedTuple):
    """One container port of a -p value and where on the host it goes:
    host_lo..host_hi (a fixed port when equal), or None for any free port."""
    container_port: int
    proto: str = "tcp"
    host_ip: Optional[str] = None
    host_lo: Optional[int] = None
    host_hi: Optional[int] = None

    @property
    def key(self):
        """Docker's port key: '80/tcp'."""
        return f"{self.container_port}/{self.proto}"

    def host_text(self):
        """HostPort as Docker's PortBindings show it: '', '8080', '8000-8010'."""
        if self.host_lo is None:
            return ""
        if self.host_lo == self.host_hi:
            return str(self.host_lo)
        return f"{self.host_lo}-{self.host_hi}"


def _range(text, what, spec):
    """'80' or '8000-8010' -> (lo, hi), each 1-65535, lo <= hi."""
    m = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", text)
    if not m:
        raise InvalidArgument(f"invalid port mapping '{shown(spec)}': "
                              f"invalid {what} '{shown(text)}'")
    lo, hi = int(m[1]), int(m[2] or m[1])
    for p in (lo, hi):
        if not 1 <= p <= 65535:
            raise InvalidArgument(f"invalid port {p} in '{shown(spec)}': 1-65535")
    if hi < lo:
        raise InvalidArgument(f"invalid port mapping '{shown(spec)}': "
                              f"invalid range '{shown(text)}'")
    return lo, hi


def _proto(text, spec):
    proto = text.lower()
    if proto not in PROTOS:
        raise InvalidArgument(f"invalid protocol '{shown(text)}' in '{shown(spec)}': "
                              "tcp, udp or sctp")
    return proto


def _split_proto(spec, kind):
    """spec's ports part and its protocol (tcp without a /PROTO); kind
    ('port mapping', '--expose') names the flag in a refusal."""
    text, slash, proto = spec.strip().partition("/")
    if slash and not proto:
        raise InvalidArgument(f"invalid {kind} '{shown(spec)}': no protocol after '/'")
    return text, (_proto(proto, spec) if proto else "tcp")


def _bounded_range(text, what, spec, kind):
    """_range, refused if it names more than MAX_EXPOSED ports (each is a
    rule and a record entry)."""
    lo, hi = _range(text, what, spec)
    if hi - lo >= MAX_EXPOSED:
        raise InvalidArgument(f"invalid {kind} '{shown(spec)}': more than {MAX_EXPOSED} ports")
    return lo, hi


def _host_ip(text, spec):
    parts = text.split(".")
    if not (len(parts) == 4 and all(p.isdigit() and p == str(int(p)) and int(p) < 256
                                    for p in parts)):
        raise InvalidArgument(f"invalid host address '{shown(text)}' in '{shown(spec)}': "
                              "an IPv4 address")
    return None if text == "0.0.0.0" else text


def parse_publish(spec):
    """A -p value as a list of Bindings, one per container port.

    Docker's rules: `80`, `:80` and `IP::80` take any free host port; `8080:80`,
    `IP:8080:80` a fixed one; `8000-8002:80-82` pairs the ranges (their
    sizes must match); `8000-8010:80` takes one free port of the host
    range.  PROTO is tcp (default), udp or sctp; IP is IPv4 (0.0.0.0: every
    address, as if omitted).  One line of InvalidArgument on anything else.
    """
    if not isinstance(spec, str) or len(spec) > 64:
        raise InvalidArgument(f"invalid port mapping '{shown(spec)}'")
    text, proto = _split_proto(spec, "port mapping")
    parts = text.split(":")
    if len(parts) > 3:
        raise InvalidArgument(f"invalid port mapping '{shown(spec)}': expected "
                              "[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO] (IPv4 only)")
    ip = _host_ip(parts[0], spec) if len(parts) == 3 else None
    host = parts[-2] if len(parts) >= 2 else ""     # '' (as in ':80'): any free port
    lo, hi = _bounded_range(parts[-1], "container port", spec, "port mapping")
    if not host:
        return [Binding(p, proto, ip) for p in range(lo, hi + 1)]
    hlo, hhi = _range(host, "host port", spec)
    if hi != lo and hhi - hlo != hi - lo:
        raise InvalidArgument(f"invalid ranges specified for container and host ports: "
                              f"{shown(parts[-1])} and {shown(host)}")
    if hi == lo:
        return [Binding(lo, proto, ip, hlo, hhi)]
    return [Binding(lo + i, proto, ip, hlo + i, hlo + i) for i in range(hi - lo + 1)]


def parse_expose(spec):
    """An --expose value (PORT[-END][/PROTO]) as its port keys: ['80/tcp']."""
    if not isinstance(spec, str) or len(spec) > 32:
        raise InvalidArgument(f"invalid --expose '{shown(spec, 32)}'")
    text, proto = _split_proto(spec, "--expose")
    lo, hi = _bounded_range(text, "port", spec, "--expose")
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]


def image_exposed(config):
    """The image config's ExposedPorts (hostile input) as a list of port
    keys: a dict of at most MAX_EXPOSED keys 'N', 'N/tcp', 'N/udp' or
    'N/sctp' (values ignored: Docker's are {}); anything else is refused."""
    value = config.get("ExposedPorts") if isinstance(config, dict) else None
    if value is None:
        return []
    if not isinstance(value, dict) or len(value) > MAX_EXPOSED:
        raise BockerError(f"the image's ExposedPorts is not a map of at most "
                          f"{MAX_EXPOSED} ports")
    out = []
    for key in value:
        m = isinstance(key, str) and re.fullmatch(r"(\d{1,5})(?:/(tcp|udp|sctp))?", key)
        if not m or not 1 <= int(m[1]) <= 65535:
            raise BockerError(f"the image's ExposedPorts has an invalid port "
                              f"{str(key)[:32]!r}")
        out.append(f"{int(m[1])}/{m[2] or 'tcp'}")
    return out


def exposed(req, image_config):
    """Config.ExposedPorts of a container: the image's, --expose's and each
    -p container port, as Docker's {"80/tcp": {}}."""
    keys = image_exposed(image_config)
    for spec in req.expose:
        keys += parse_expose(spec)
    for spec in req.ports:
        keys += [b.key for b in parse_publish(spec)]
    if len(set(keys)) > MAX_EXPOSED:
        raise InvalidArgument(f"more than {MAX_EXPOSED} exposed ports")
    return {k: {} for k in sorted(set(keys), key=_key_order)}


def _key_order(key):
    port, proto = key.split("/")
    return int(port), proto


def bindings(req, exposed_ports=None):
    """Every Binding a start publishes: -p's, then with -P each exposed
    port (exposed_ports: Config.ExposedPorts) that -p does not bind, on
    any free host port."""
    out = [b for spec in req.ports for b in parse_publish(spec)]
    if req.publish_all and exposed_ports:
        bound = {b.key for b in out}
        for key in exposed_ports:
            port, proto = key.split("/")
            if key not in bound:
                out.append(Binding(int(port), proto))
    return out


def port_bindings(req):
    """Docker's HostConfig.PortBindings: {"80/tcp": [{"HostIp", "HostPort"}]}
    as asked (HostPort '' for any free port)."""
    out = {}
    for spec in req.ports:
        for b in parse_publish(spec):
            out.setdefault(b.key, []).append({"HostIp": b.host_ip or "",
                                              "HostPort": b.host_text()})
    return out


# ------------------------------------------------------------ host ports

def ephemeral_range(path="/proc/sys/net/ipv4/ip_local_port_range"):
    """The host's ephemeral port range (lo, hi), as Docker takes it."""
    try:
        with open(path) as f:
            lo, hi = (int(w) for w in f.read(64).split()[:2])
        if 1 <= lo <= hi <= 65535:
            return lo, hi
    except (OSError, ValueError):
        pass
    return EPHEMERAL


def claim_name(proto, port):
    """A host port claim's name: 'tcp-32768'."""
    return f"{proto}-{port}"


def host_port_free(proto, port, host_ip=None):
    """Whether a socket of the host could bind host_ip:port now (TCP's
    TIME_WAIT leftovers do not count: SO_REUSEADDR); an unknown protocol
    (no SCTP in this kernel) counts as free, nothing can listen on it."""
    kind, number = {"tcp": (socket.SOCK_STREAM, 0), "udp": (socket.SOCK_DGRAM, 0),
                    "sctp": (socket.SOCK_STREAM, socket.IPPROTO_SCTP)}[proto]
    try:
        sock = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC, number)
    except OSError:
        return True
    with sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host_ip or "0.0.0.0", port))
        except OSError:
            return False
    return True


def _overlaps(ip, other_ip):
    return None in (ip, other_ip) or ip == other_ip


def allocate(claim_dir, owner, wanted, published, free=host_port_free, span=None, rng=None):
    """The nat.Ports for wanted (Bindings): a fixed host port as it is; a
    range or none: the first port (of the range in order, or of the
    ephemeral span from a random offset) that no claim in claim_dir holds,
    that no other container publishes on an overlapping address
    (published: [(nat.Port, owner)]) and that free() says a host socket
    does not hold.  Each picked port is claimed for owner; the caller
    releases them (claims.release) when the ports are unpublished.
    Raises BockerError when a range has no such port left."""
    from bocker.net.nat import Port

    out, mine = [], []
    for b in wanted:
        if b.host_lo is not None and b.host_lo == b.host_hi:
            out.append(Port(b.host_lo, b.container_port, b.proto, b.host_ip))
            continue
        if b.host_lo is None:
            lo, hi = span or ephemeral_range()
            start = (rng or random).randrange(lo, hi + 1)
            order = [*range(start, hi + 1), *range(lo, start)]
        else:
            order = range(b.host_lo, b.host_hi + 1)
        busy = {p.host_port for p, _ in published
                if p.proto == b.proto and _overlaps(p.host_ip, b.host_ip)}
        busy |= {p.host_port for p in out if p.proto == b.proto}
        port = _claim_first(claim_dir, owner, b, order, busy, free)
        if port is None:
            if mine:
                claims.release(claim_dir, owner)
            raise BockerError(f"no free host port for {b.key} in "
                              f"{order[0] if b.host_lo is not None else lo}-"
                              f"{b.host_hi if b.host_lo is not None else hi}")
        mine.append(port)
        out.append(Port(port, b.container_port, b.proto, b.host_ip))
    return out


def _claim_first(claim_dir, owner, b, order, busy, free):
    os.makedirs(claim_dir, exist_ok=True)
    for port in order:
        if port in busy:
            continue
        name = os.path.join(claim_dir, claim_name(b.proto, port))
        try:
            os.symlink(owner, name)
        except FileExistsError:
            continue        # another container's (or a start racing ours)
        if free(b.proto, port, b.host_ip):
            return port
        os.unlink(name)     # a host process holds it: try the next
    return None


def release(claim_dir, owner):
    """Drop every host port owner claimed; no-op if it holds none."""
    claims.release(claim_dir, owner)


def prune(claim_dir, containers_dir):
    """Drop the claims of containers that no longer exist (a crash between
    claim and release).  The claims are read before the containers, so a
    container made meanwhile is never taken for a gone one."""
    held = claims.claims(claim_dir)
    if not held:
        return {}
    try:
        existing = set(os.listdir(containers_dir))
    except FileNotFoundError:
        existing = set()
    return {name: owner for name, owner in held.items()
            if owner not in existing and claims.drop(claim_dir, name)}
