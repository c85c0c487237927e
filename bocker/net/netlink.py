"""rtnetlink in pure Python: links, addresses and routes without `ip`.

The wire format is built and parsed by pure functions (unit-tested without
root); `Rtnl` sends each request with NLM_F_ACK over an AF_NETLINK socket
and reads the kernel's answer, turning NLMSG_ERROR into OSError with that
errno and a message naming the operation and the link.

A socket in another network namespace (a container's) comes from
native.socket_in_netns(); pass its fd to Rtnl(fd=...).  Links are never
moved between namespaces: a veth peer is created where it will live
(IFLA_NET_NS_FD), which spares the kernel's synchronize_net() on a move.
"""
import errno
import os
import socket
import struct

# netlink message types and flags (linux/netlink.h, linux/rtnetlink.h)
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLM_F_ACK_TLVS = 0x200          # in an NLMSG_ERROR: extended ack attributes follow
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK = 270
NETLINK_CAP_ACK, NETLINK_EXT_ACK = 10, 11

# link attributes (linux/if_link.h)
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK = 1, 3, 4, 5
IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFF_UP = 0x1
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

# address and route attributes (linux/if_addr.h, linux/rtnetlink.h)
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

NLMSGHDR = struct.Struct("=IHHII")      # len, type, flags, seq, pid
IFINFOMSG = struct.Struct("=BxHiII")    # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBi")     # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")     # family, dst_len, src_len, tos, table,
                                        # protocol, scope, type, flags
RTATTR = struct.Struct("=HH")           # len, type
NLMSGERR = struct.Struct("=i")          # error, then the offending header


def align(n):
    """Round n up to netlink's 4-byte alignment (NLMSG_ALIGN / RTA_ALIGN)."""
    return (n + 3) & ~3


# ---------------------------------------------------------------- encoding

def attr(type_, payload=b""):
    """One rtattr: header, payload, zero padding to 4 bytes."""
    length = RTATTR.size + len(payload)
    return RTATTR.pack(length, type_) + payload + b"\0" * (align(length) - length)


def attr_u32(type_, value):
    """An rtattr holding a native-endian u32 (ifindex, fd, mtu)."""
    return attr(type_, struct.pack("=I", value))


def attr_str(type_, text):
    """An rtattr holding a NUL-terminated string (interface names, kinds)."""
    return attr(type_, text.encode() + b"\0")


def nested(type_, *attrs):
    """An rtattr whose payload is other rtattrs (IFLA_LINKINFO and friends)."""
    return attr(type_ | NLA_F_NESTED, b"".join(attrs))


def message(type_, flags, seq, body):
    """A whole netlink message: nlmsghdr + body, padded to 4 bytes."""
    length = NLMSGHDR.size + len(body)
    return NLMSGHDR.pack(length, type_, flags, seq, 0) + body + b"\0" * (align(length) - length)


def ifinfomsg(index=0, flags=0, change=0, family=socket.AF_UNSPEC, type_=0):
    """struct ifinfomsg: which link (index, or 0 with IFLA_IFNAME) and flags."""
    return IFINFOMSG.pack(family, type_, index, flags, change)


def ifaddrmsg(index, prefixlen, family=socket.AF_INET, flags=0, scope=RT_SCOPE_UNIVERSE):
    """struct ifaddrmsg for an address on link `index`."""
    return IFADDRMSG.pack(family, prefixlen, flags, scope, index)


def rtmsg(dst_len=0, family=socket.AF_INET, table=RT_TABLE_MAIN, protocol=RTPROT_BOOT,
          scope=RT_SCOPE_UNIVERSE, type_=RTN_UNICAST):
    """struct rtmsg for a unicast route in the main table."""
    return RTMSG.pack(family, dst_len, 0, 0, table, protocol, scope, type_, 0)


# ----------------------------------------------------------------- parsing

def parse_attrs(buf):
    """Split a run of rtattrs into [(type, payload)], flags masked off.

    Raises ValueError on a truncated or malformed attribute.
    """
    out, off = [], 0
    while off + RTATTR.size <= len(buf):
        length, type_ = RTATTR.unpack_from(buf, off)
        if length < RTATTR.size or off + length > len(buf):
            raise ValueError(f"bad rtattr length {length} at offset {off}")
        out.append((type_ & NLA_TYPE_MASK, bytes(buf[off + RTATTR.size:off + length])))
        off += align(length)
    return out


def parse_messages(buf):
    """Split a datagram into [(type, flags, seq, body)].

    Raises ValueError on a truncated or malformed message.
    """
    out, off = [], 0
    while off + NLMSGHDR.size <= len(buf):
        length, type_, flags, seq, _pid = NLMSGHDR.unpack_from(buf, off)
        if length < NLMSGHDR.size or off + length > len(buf):
            raise ValueError(f"bad nlmsghdr length {length} at offset {off}")
        out.append((type_, flags, seq, bytes(buf[off + NLMSGHDR.size:off + length])))
        off += align(length)
    return out


def parse_error(flags, body):
    """(errno, kernel message or None) from an NLMSG_ERROR body; errno 0 is an ack."""
    (error,) = NLMSGERR.unpack_from(body)
    text = None
    if flags & NLM_F_ACK_TLVS and len(body) >= NLMSGERR.size + NLMSGHDR.size:
        # With NETLINK_CAP_ACK only the offending header is echoed; the
        # extended-ack attributes follow it.
        for type_, payload in parse_attrs(body[NLMSGERR.size + NLMSGHDR.size:]):
            if type_ == NLMSGERR_ATTR_MSG:
                text = payload.rstrip(b"\0").decode(errors="replace")
    return -error, text


def _cstr(payload):
    return payload.split(b"\0", 1)[0].decode(errors="replace")


def parse_link(body):
    """A RTM_NEWLINK body as a dict: name, index, kind, mac, master, flags."""
    _family, _type, index, flags, _change = IFINFOMSG.unpack_from(body)
    link = {"index": index, "flags": flags, "name": None, "kind": None,
            "mac": None, "master": None}
    for type_, payload in parse_attrs(body[IFINFOMSG.size:]):
        if type_ == IFLA_IFNAME:
            link["name"] = _cstr(payload)
        elif type_ == IFLA_ADDRESS:
            link["mac"] = ":".join(f"{b:02x}" for b in payload)
        elif type_ == IFLA_MASTER:
            (link["master"],) = struct.unpack("=I", payload[:4])
        elif type_ == IFLA_LINKINFO:
            for sub, value in parse_attrs(payload):
                if sub == IFLA_INFO_KIND:
                    link["kind"] = _cstr(value)
    return link


def parse_addr(body):
    """A RTM_NEWADDR body as a dict: index, family, prefixlen, address."""
    family, prefixlen, _flags, _scope, index = IFADDRMSG.unpack_from(body)
    out = {"index": index, "family": family, "prefixlen": prefixlen, "address": None}
    for type_, payload in parse_attrs(body[IFADDRMSG.size:]):
        # IFA_LOCAL is the link's own address; IFA_ADDRESS is the peer on
        # point-to-point links and the same as IFA_LOCAL elsewhere.
        if type_ == IFA_LOCAL or (type_ == IFA_ADDRESS and out["address"] is None):
            out["address"] = socket.inet_ntop(family, payload)
    return out


def parse_route(body):
    """A RTM_NEWROUTE body as a dict: table, dst, dst_len, gateway, oif."""
    family, dst_len, _s, _t, table, _p, _sc, _ty, _f = RTMSG.unpack_from(body)
    out = {"family": family, "table": table, "dst_len": dst_len, "dst": None,
           "gateway": None, "oif": None}
    for type_, payload in parse_attrs(body[RTMSG.size:]):
        if type_ == RTA_DST:
            out["dst"] = socket.inet_ntop(family, payload)
        elif type_ == RTA_GATEWAY:
            out["gateway"] = socket.inet_ntop(family, payload)
        elif type_ == RTA_OIF:
            (out["oif"],) = struct.unpack("=I", payload[:4])
    return out


def mac_bytes(mac):
    """'02:42:0a:00:00:02' -> 6 bytes."""
    return bytes(int(part, 16) for part in mac.split(":"))


# ------------------------------------------------------------ the socket

class NetlinkSocket:
    """A netlink socket of one protocol (rtnetlink, nfnetlink) with acks
    that echo only the offending header, plus the kernel's own text."""

    def __init__(self, protocol, fd=None):
        if fd is None:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                      protocol)
        else:
            self.sock = socket.socket(fileno=fd)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self):
        """Close the socket."""
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def until_ack(self, seq, what):
        """[(type, body)] of the answers to request seq before its ack; an
        error ack raises OSError(errno, "<what>: <strerror>[ (<kernel text>)]")."""
        replies = []
        while True:
            for mtype, mflags, mseq, mbody in parse_messages(self.sock.recv(65536)):
                if mseq != seq:
                    continue        # a stray answer to an earlier, abandoned request
                if mtype == NLMSG_ERROR:
                    err, text = parse_error(mflags, mbody)
                    if err:
                        detail = f" ({text})" if text else ""
                        raise OSError(err, f"{what}: {os.strerror(err)}{detail}")
                    return replies
                replies.append((mtype, mbody))


class Rtnl(NetlinkSocket):
    """An rtnetlink socket: one request at a time, each acknowledged.

    Rtnl() talks to the caller's network namespace; Rtnl(fd=...) adopts a
    socket made by native.socket_in_netns() and talks to that namespace.
    """

    def __init__(self, fd=None):
        super().__init__(socket.NETLINK_ROUTE, fd)

    def _send(self, type_, flags, body):
        self.seq += 1
        self.sock.sendto(message(type_, NLM_F_REQUEST | flags, self.seq, body), (0, 0))
        return self.seq

    def request(self, type_, body, what, flags=0):
        """Send one request with NLM_F_ACK and wait for its ack.

        Returns the messages the kernel sent before the ack (for NLM_F_ECHO
        or a GET of one object).  An error ack raises OSError(errno,
        "<what>: <strerror>[ (<kernel message>)]").
        """
        return self.until_ack(self._send(type_, flags | NLM_F_ACK, body), what)

    def dump(self, type_, body, what):
        """Send a NLM_F_DUMP request; return [(type, body)] until NLMSG_DONE."""
        seq = self._send(type_, NLM_F_DUMP, body)
        out = []
        while True:
            for mtype, mflags, mseq, mbody in parse_messages(self.sock.recv(65536)):
                if mseq != seq:
                    continue
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    err, text = parse_error(mflags, mbody)
                    detail = f" ({text})" if text else ""
                    raise OSError(err, f"{what}: {os.strerror(err)}{detail}")
                out.append((mtype, mbody))

    # --------------------------------------------------------- links

    @staticmethod
    def _link(name_or_index):
        """ifinfomsg + IFLA_IFNAME selecting a link by name or index."""
        if isinstance(name_or_index, int):
            return ifinfomsg(index=name_or_index), b""
        return ifinfomsg(), attr_str(IFLA_IFNAME, name_or_index)

    def create_bridge(self, name, up=False):
        """Create a bridge named `name` (EEXIST if a link has that name)."""
        body = (ifinfomsg(flags=IFF_UP if up else 0, change=IFF_UP if up else 0)
                + attr_str(IFLA_IFNAME, name)
                + nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "bridge")))
        self.request(RTM_NEWLINK, body, f"create bridge {name}", NLM_F_CREATE | NLM_F_EXCL)

    def create_veth(self, name, peer, peer_netns_fd=None, *, master=None, up=False,
                    peer_mac=None, mtu=None):
        """Create a veth pair `name` <-> `peer` in one request.

        The peer is born inside peer_netns_fd when given (never moved),
        with peer_mac if given; the local end gets `master` (an ifindex)
        and up if asked, so the host side of a container is one message.
        The peer cannot be brought up here: the kernel opens it before its
        other end exists, and veth_open fails with ENOTCONN.
        """
        peer_attrs = attr_str(IFLA_IFNAME, peer)
        if peer_netns_fd is not None:
            peer_attrs += attr_u32(IFLA_NET_NS_FD, peer_netns_fd)
        if peer_mac:
            peer_attrs += attr(IFLA_ADDRESS, mac_bytes(peer_mac))
        if mtu:
            peer_attrs += attr_u32(IFLA_MTU, mtu)
        # VETH_INFO_PEER's payload is a whole ifinfomsg followed by its attrs.
        info = nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "veth"),
                      nested(IFLA_INFO_DATA,
                             nested(VETH_INFO_PEER, ifinfomsg() + peer_attrs)))
        flag = IFF_UP if up else 0
        body = ifinfomsg(flags=flag, change=flag) + attr_str(IFLA_IFNAME, name) + info
        if master is not None:
            body += attr_u32(IFLA_MASTER, master)
        if mtu:
            body += attr_u32(IFLA_MTU, mtu)
        self.request(RTM_NEWLINK, body, f"create veth {name}", NLM_F_CREATE | NLM_F_EXCL)

    def set_link(self, link, *, up=None, master=None, mac=None, name=None):
        """Change a link (by name or index): up/down, master ifindex
        (0 to release), MAC address, new name (the link must be down)."""
        changes = [f"{k} {v}" for k, v in (("up", up), ("master", master), ("mac", mac),
                                             ("name", name)) if v is not None]
        what = f"set link {link} " + ", ".join(changes)
        if name is not None and isinstance(link, str):
            link = self.index(link)     # IFLA_IFNAME now carries the new name
        head, sel = self._link(link)
        if up is not None:
            head = ifinfomsg(index=link if isinstance(link, int) else 0,
                             flags=IFF_UP if up else 0, change=IFF_UP)
        body = head + sel
        if master is not None:
            body += attr_u32(IFLA_MASTER, master)
        if mac is not None:
            body += attr(IFLA_ADDRESS, mac_bytes(mac))
        if name is not None:
            body += attr_str(IFLA_IFNAME, name)
        self.request(RTM_SETLINK, body, what)

    def set_up(self, link, up=True):
        """Bring a link up (or down)."""
        self.set_link(link, up=up)

    def set_master(self, link, master):
        """Enslave a link to a bridge (master ifindex; 0 releases it)."""
        self.set_link(link, master=master)

    def set_mac(self, link, mac):
        """Set a link's MAC address ('02:42:..')."""
        self.set_link(link, mac=mac)

    def set_name(self, link, name):
        """Rename a link (it must be down)."""
        self.set_link(link, name=name)

    def delete_link(self, link):
        """Delete a link by name or index (ENODEV if it does not exist)."""
        head, sel = self._link(link)
        self.request(RTM_DELLINK, head + sel, f"delete link {link}")

    def get_link(self, link):
        """One link's dict (see parse_link); ENODEV if it does not exist."""
        head, sel = self._link(link)
        for mtype, body in self.request(RTM_GETLINK, head + sel, f"get link {link}"):
            if mtype == RTM_NEWLINK:
                return parse_link(body)
        raise OSError(errno.ENODEV, f"get link {link}: {os.strerror(errno.ENODEV)}")

    def index(self, name):
        """The ifindex of a link named `name` in this socket's namespace."""
        return self.get_link(name)["index"]

    def links(self):
        """Every link as a dict: name, index, kind, mac, master, flags."""
        return [parse_link(body) for mtype, body in
                self.dump(RTM_GETLINK, ifinfomsg(), "list links") if mtype == RTM_NEWLINK]

    # ------------------------------------------------ addresses, routes

    def add_address(self, link, address, prefixlen):
        """Add an IPv4 address to a link (by name or index)."""
        index = link if isinstance(link, int) else self.index(link)
        packed = socket.inet_aton(address)
        body = ifaddrmsg(index, prefixlen) + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
        if prefixlen < 31:
            host = int.from_bytes(packed, "big") | ((1 << (32 - prefixlen)) - 1)
            body += attr(IFA_BROADCAST, host.to_bytes(4, "big"))
        self.request(RTM_NEWADDR, body, f"add address {address}/{prefixlen} to {link}",
                     NLM_F_CREATE | NLM_F_EXCL)

    def addresses(self, family=socket.AF_INET):
        """Every address of `family` as a dict: index, family, prefixlen, address."""
        return [parse_addr(body) for mtype, body in
                self.dump(RTM_GETADDR, ifaddrmsg(0, 0, family=family), "list addresses")
                if mtype == RTM_NEWADDR]

    def add_default_route(self, gateway, oif=None):
        """Add the IPv4 default route via `gateway` (optionally on link oif)."""
        body = rtmsg() + attr(RTA_GATEWAY, socket.inet_aton(gateway))
        if oif is not None:
            body += attr_u32(RTA_OIF, oif)
        self.request(RTM_NEWROUTE, body, f"add default route via {gateway}",
                     NLM_F_CREATE | NLM_F_EXCL)

    def routes(self, family=socket.AF_INET):
        """Routes of the main table as dicts: dst, dst_len, gateway, oif."""
        return [r for r in (parse_route(body) for mtype, body in
                            self.dump(RTM_GETROUTE, rtmsg(family=family), "list routes")
                            if mtype == RTM_NEWROUTE) if r["table"] == RT_TABLE_MAIN]
