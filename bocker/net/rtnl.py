"""rtnetlink operations: links, addresses and routes without `ip`.

`Rtnl` sends each request with NLM_F_ACK and reads the kernel's answer
(NetlinkSocket in netlink.py), turning NLMSG_ERROR into OSError with that
errno and a message naming the operation and the link.

A socket in another network namespace (a container's) comes from
native.socket_in_netns(); pass its fd to Rtnl(fd=...).  Links are never
moved between namespaces: a veth peer is created where it will live
(IFLA_NET_NS_FD), which spares the kernel's synchronize_net() on a move.
"""
import errno
import os
import socket

from bocker.net.netlink import (IFA_ADDRESS, IFA_BROADCAST, IFA_LOCAL, IFF_UP, IFLA_ADDRESS,
                                IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_LINKINFO,
                                IFLA_MASTER, IFLA_MTU, IFLA_NET_NS_FD, NLM_F_ACK, NLM_F_CREATE,
                                NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR,
                                RTA_GATEWAY, RTA_OIF, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR,
                                RTM_NEWLINK, RTM_NEWROUTE, RTM_SETLINK, VETH_INFO_PEER,
                                NetlinkSocket, attr, attr_str, attr_u32, ifaddrmsg, ifinfomsg,
                                mac_bytes, message, nested, parse_error, parse_link, parse_messages,
                                rtmsg)


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

    def add_default_route(self, gateway, oif=None):
        """Add the IPv4 default route via `gateway` (optionally on link oif)."""
        body = rtmsg() + attr(RTA_GATEWAY, socket.inet_aton(gateway))
        if oif is not None:
            body += attr_u32(RTA_OIF, oif)
        self.request(RTM_NEWROUTE, body, f"add default route via {gateway}",
                     NLM_F_CREATE | NLM_F_EXCL)
