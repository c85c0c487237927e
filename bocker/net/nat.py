"""nftables for bocker: masquerade the bridge subnet, publish container
ports, keep containers off the host's loopback and off each other's
addresses.

Everything lives in two tables of bocker's own, both named
`bocker_<bridge>` (one per family), so teardown is two `delete table`s and
nothing else on the host is touched.

`table ip bocker_<bridge>`:

    chain postrouting  (nat, srcnat)  masquerade the subnet leaving the host;
                                      masquerade DNAT'ed traffic from 127/8 or
                                      from the subnet itself (hairpin) so the
                                      container's replies come back through
                                      the host and are un-NAT'ed
    chain prerouting   (nat, dstnat)  local destinations -> jump ports
    chain output       (nat, -100)    local destinations -> jump ports
                                      (the host's own 127.0.0.1:PORT)
    chain ports                       one DNAT rule per published port,
                                      commented with the container ID
    chain localnet     (filter, raw)  drop what arrives on the bridge to or
                                      from 127.0.0.0/8 (CVE-2020-8558: the
                                      bridge's route_localnet would deliver
                                      it to the host's loopback services)

`table bridge bocker_<bridge>` (anti-spoofing, on frames entering the
bridge from a container's host veth, before the bridge learns or forwards):

    set members   {ifname}                        the veths this bridge guards
    set ports     {ifname . ether_addr . ipv4}    each veth's own MAC and IP
                  (both `flags timeout`, so expel need not delete: see expel)
    chain prerouting (filter, -300)  iifname @members -> jump guard
    chain guard   IPv4 from the veth's own MAC and IP, ARP whose sender MAC
                  and IP are its own too: accept; everything else (other
                  addresses, IPv6, VLAN tags, other ethertypes): drop

Admitting a container is two element adds in one transaction (admit),
expelling it a timeout update of the same (expel); both go over nfnetlink
(bocker.nfnetlink), not through an nft process, since admit is on every
start path.  The kernel lacks `meta ibrname`
on some builds (CONFIG_NFT_BRIDGE_META), hence the members set: it scopes
the guard to this bridge's veths without naming the bridge.

The rest is written in nft's own language and fed to `nft -f -`, one
atomic transaction per call (~2 ms); `nft -j` lists rules with handles so
unpublish deletes exactly one container's rules.
"""
import ipaddress
import json
import re
import subprocess
from typing import NamedTuple, Optional

from bocker import patterns
from bocker.errors import BockerError, InvalidArgument, NotSetUp

NFT = "nft"


class Port(NamedTuple):
    """One -p mapping."""
    host_port: int
    container_port: int
    proto: str = "tcp"
    host_ip: Optional[str] = None

    def __str__(self):
        host = f"{self.host_ip}:" if self.host_ip else ""
        return f"{host}{self.host_port}:{self.container_port}/{self.proto}"


_PORT_RE = patterns.lazy(r"^(?:(?P<ip>[0-9.]+):)?(?P<host>\d+):(?P<ctr>\d+)(?:/(?P<proto>[a-z]+))?$")


def parse_port(spec):
    """Parse -p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp] into a Port.

    HOST_IP is an IPv4 address (0.0.0.0 means every address, as if omitted).
    Raises InvalidArgument with a one-line message on anything else.
    """
    m = _PORT_RE.match(spec.strip())
    if not m:
        raise InvalidArgument(f"invalid port mapping '{spec}': expected "
                              "[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]")
    proto = m["proto"] or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid protocol '{proto}' in '{spec}': tcp or udp")
    host_ip = m["ip"]
    if host_ip is not None:
        try:
            host_ip = str(ipaddress.IPv4Address(host_ip))
        except ValueError:
            raise InvalidArgument(f"invalid host address '{host_ip}' in '{spec}'") from None
        if host_ip == "0.0.0.0":
            host_ip = None
    ports = int(m["host"]), int(m["ctr"])
    for p in ports:
        if not 1 <= p <= 65535:
            raise InvalidArgument(f"invalid port {p} in '{spec}': 1-65535")
    return Port(ports[0], ports[1], proto, host_ip)


def table_for(bridge):
    """The nftables table (family ip) bocker keeps for a bridge."""
    return f"bocker_{bridge}"


def _check_name(name):
    # Names go into nft's language unquoted (tables) or quoted (ifnames,
    # comments); keep them to characters that need no escaping.
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise InvalidArgument(f"invalid name for nftables: '{name}'")
    return name


def _run(args, stdin=None):
    try:
        proc = subprocess.run([NFT, *args], input=stdin, capture_output=True, text=True)
    except FileNotFoundError:
        raise BockerError("nft not found: install nftables") from None
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["failed"])[0]
        raise BockerError(f"nft: {first}")
    return proc.stdout


def nft(script):
    """Run an nft script as one atomic transaction (`nft -f -`).

    Raises BockerError with nft's first error line on failure.
    """
    _run(["-f", "-"], script)


def nft_json(*command):
    """Run one nft command (e.g. 'list', 'tables') with -j; return its items."""
    return json.loads(_run(["-j", *command]) or "{}").get("nftables", [])


def setup(table, bridge, subnet):
    """Create (or refresh) both tables: masquerade, the port-forward hooks,
    the loopback drop and the anti-spoofing guard.

    Re-running replaces the base chains' rules but keeps the ports chain
    and the guard's sets, so containers already running keep their
    published ports and their admission.
    """
    t, br = _check_name(table), _check_name(bridge)
    net = str(ipaddress.IPv4Network(subnet, strict=False))
    # localnet runs at priority raw, before conntrack and NAT: a legitimate
    # reply to the host's own 127.0.0.1:PORT connection still carries the
    # gateway as its destination there (it is un-NAT'ed to 127.0.0.1
    # later), so only packets sent to 127/8 on the wire are dropped.
    nft(f"""
add table ip {t}
add chain ip {t} postrouting {{ type nat hook postrouting priority srcnat; }}
add chain ip {t} prerouting {{ type nat hook prerouting priority dstnat; }}
add chain ip {t} output {{ type nat hook output priority -100; }}
add chain ip {t} ports
add chain ip {t} localnet {{ type filter hook prerouting priority raw; }}
flush chain ip {t} postrouting
flush chain ip {t} prerouting
flush chain ip {t} output
flush chain ip {t} localnet
add rule ip {t} postrouting ip saddr {net} oifname != "{br}" masquerade
add rule ip {t} postrouting oifname "{br}" ct status dnat ip saddr {{ 127.0.0.0/8, {net} }} masquerade
add rule ip {t} prerouting fib daddr type local jump ports
add rule ip {t} output fib daddr type local jump ports
add rule ip {t} localnet iifname "{br}" ip daddr 127.0.0.0/8 drop
add rule ip {t} localnet iifname "{br}" ip saddr 127.0.0.0/8 drop
{_guard_script(t)}""")


def _guard_script(t):
    # The guard runs before the bridge learns a source MAC or forwards,
    # so a dropped frame leaves no trace in the bridge's forwarding table.
    return f"""add table bridge {t}
add set bridge {t} members {{ type ifname; flags timeout; }}
add set bridge {t} ports {{ type ifname . ether_addr . ipv4_addr; flags timeout; }}
add chain bridge {t} prerouting {{ type filter hook prerouting priority -300; }}
add chain bridge {t} guard
flush chain bridge {t} prerouting
flush chain bridge {t} guard
add rule bridge {t} prerouting iifname @members jump guard
add rule bridge {t} guard ether type ip iifname . ether saddr . ip saddr @ports accept
add rule bridge {t} guard ether type arp iifname . ether saddr . arp saddr ip @ports iifname . arp saddr ether . arp saddr ip @ports accept
add rule bridge {t} guard drop
"""


def teardown(table):
    """Delete both tables and every rule in them; no-op if they are absent."""
    t = _check_name(table)
    # Adding first makes the delete succeed when a table is missing.
    nft(f"add table ip {t}\ndelete table ip {t}\nadd table bridge {t}\ndelete table bridge {t}\n")


def _elements(veth, mac, ip):
    """{set: [key]} of a veth's admission, as nf_tables keys."""
    from bocker.net import nfnetlink as nf

    if not re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac):
        raise InvalidArgument(f"invalid MAC address '{mac}'")
    name = nf.key_ifname(_check_name(veth))
    return {"ports": [nf.key_concat(name, nf.key_ether(mac), nf.key_ipv4(ip))],
            "members": [name]}


def admit(table, veth, mac, ip):
    """Let the bridge port veth send only from mac and ip (IPv4 and ARP);
    every other frame from it is dropped.

    Two element adds in one nfnetlink transaction (~0.15 ms), not an nft
    process (~3 ms): this is on every container's start path.
    """
    from bocker.net import nfnetlink as nf

    try:
        nf.set_elements(True, nf.NFPROTO_BRIDGE, _check_name(table), _elements(veth, mac, ip))
    except FileNotFoundError:
        raise NotSetUp(f"nftables table bridge {table} (the anti-spoofing guard) not found: "
                       "run 'bocker setup'") from None


def expel(table, veth, mac, ip):
    """Undo admit; no-op if it was never admitted or the table is gone.

    The elements are given a 1 ms timeout rather than deleted: a delete
    makes the kernel wait for an RCU grace period (10-16 ms, on every
    container's exit path), a timeout update does not.  An expired element
    matches nothing and is not listed; the kernel's set GC frees it within
    a second.  A kernel that cannot update a timeout (before 6.10) leaves
    the element permanent: a GETSETELEM sees that, and the elements are
    deleted after all.  A missing element is added with the short timeout
    (so gone at once), a missing table or set (ENOENT) cannot hold one.
    """
    from bocker.net import nfnetlink as nf

    sets, t = _elements(veth, mac, ip), _check_name(table)
    try:
        nf.set_elements(True, nf.NFPROTO_BRIDGE, t, sets, timeout_ms=1)
        if None in nf.get_timeouts(nf.NFPROTO_BRIDGE, t, "ports", sets["ports"]):
            nf.set_elements(None, nf.NFPROTO_BRIDGE, t, sets)
    except FileNotFoundError:
        pass    # no table or set; or the element expired already


def guarded(table):
    """{veth: (mac, ip)} admitted to the guard (not counting the expelled
    ones still expiring); None if the table is absent."""
    t = _check_name(table)
    try:
        items = nft_json("list", "set", "bridge", t, "ports")
    except BockerError:
        return None
    out = {}
    for item in items:
        for elem in item.get("set", {}).get("elem", ()):
            if "elem" in elem:      # one with a timeout: expelled, expiring
                continue
            veth, mac, ip = elem["concat"]
            out[veth] = (mac, ip)
    return out


def exists(table):
    """True if the table exists."""
    return any(item.get("table", {}).get("name") == table
               for item in nft_json("list", "tables", "ip"))


def publish(container_id, ip, ports, table, existing=None):
    """Forward each port (a Port or a -p spec) to ip, tagged with container_id.

    Raises BockerError if another container already publishes the same
    host port and protocol on an overlapping host address (existing: the
    table's published() as the caller just listed it, else listed here).
    """
    t, cid = _check_name(table), _check_name(container_id)
    ip = str(ipaddress.IPv4Address(ip))
    ports = [p if isinstance(p, Port) else parse_port(p) for p in ports]
    if not ports:
        return
    for other, owner in (_published(t) if existing is None else existing):
        for p in ports:
            if (p.host_port, p.proto) == (other.host_port, other.proto) and (
                    None in (p.host_ip, other.host_ip) or p.host_ip == other.host_ip):
                raise BockerError(f"port {p.host_port}/{p.proto} is already published by {owner}")
    lines = []
    for p in ports:
        match = f"ip daddr {p.host_ip} " if p.host_ip else ""
        lines.append(f'add rule ip {t} ports {match}{p.proto} dport {p.host_port} '
                     f'dnat to {ip}:{p.container_port} comment "{cid}"')
    nft("\n".join(lines) + "\n")


def unpublish(container_id, table):
    """Delete exactly container_id's rules; no-op if it has none (or no table)."""
    t = _check_name(table)
    handles = [r["handle"] for r in _rules(t) if r.get("comment") == container_id]
    if handles:
        nft("".join(f"delete rule ip {t} ports handle {h}\n" for h in handles))


def _rules(table):
    """The ports chain's rules as nft JSON dicts; [] if the table is absent."""
    try:
        items = nft_json("list", "chain", "ip", table, "ports")
    except BockerError:
        return []
    return [item["rule"] for item in items if "rule" in item]


def published(table):
    """[(Port, container_id)] for every published port in the table."""
    return _published(_check_name(table))


def _published(table):
    result = []
    for rule in _rules(table):
        host_ip = dport = proto = None
        dnat = {}
        for expr in rule["expr"]:
            if "match" in expr:
                left, right = expr["match"]["left"], expr["match"]["right"]
                field = left.get("payload", {})
                if field.get("field") == "daddr":
                    host_ip = right
                elif field.get("field") == "dport":
                    proto, dport = field.get("protocol"), right
            elif "dnat" in expr:
                dnat = expr["dnat"]
        if dport is not None and "port" in dnat:
            result.append((Port(dport, dnat["port"], proto, host_ip), rule.get("comment")))
    return result
