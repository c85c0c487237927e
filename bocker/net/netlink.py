"""netlink in pure Python: the wire format and the socket.

The messages and attributes of rtnetlink (and what nfnetlink shares) are
built and parsed by pure functions here (unit-tested without root);
`NetlinkSocket` sends a request and reads the kernel's answers up to its
ack, turning NLMSG_ERROR into OSError with that errno and a message naming
the operation.  The rtnetlink operations (links, addresses, routes) are
`Rtnl` in rtnl.py; nf_tables set elements are in nfnetlink.py.

A socket in another network namespace (a container's) comes from
native.socket_in_netns(); pass its fd to Rtnl(fd=...).  Links are never
moved between namespaces: a veth peer is created where it will live
(IFLA_NET_NS_FD), which spares the kernel's synchronize_net() on a move.
"""
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
