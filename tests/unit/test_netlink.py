"""rtnetlink encoding and parsing: pure functions, no root, no sockets."""
import socket
import struct

from hypothesis import given
from hypothesis import strategies as st

from bocker.net import netlink as nl

attr_types = st.integers(min_value=0, max_value=nl.NLA_TYPE_MASK)
payloads = st.binary(max_size=300)


@given(attr_types, payloads)
def test_attr_is_aligned_and_records_unpadded_length(type_, payload):
    raw = nl.attr(type_, payload)
    assert len(raw) % 4 == 0
    assert len(raw) - (4 + len(payload)) in range(4)
    length, got_type = struct.unpack_from("=HH", raw)
    assert (length, got_type) == (4 + len(payload), type_)
    assert raw[4 + len(payload):] == b"\0" * (len(raw) - 4 - len(payload))


@given(st.lists(st.tuples(attr_types, payloads), max_size=20))
def test_attrs_round_trip(items):
    raw = b"".join(nl.attr(t, p) for t, p in items)
    assert nl.parse_attrs(raw) == items


@given(attr_types, st.lists(st.tuples(attr_types, payloads), max_size=8))
def test_nested_round_trip_sets_the_nested_flag(type_, items):
    raw = nl.nested(type_, *(nl.attr(t, p) for t, p in items))
    _, flagged = struct.unpack_from("=HH", raw)
    assert flagged & nl.NLA_F_NESTED
    [(got_type, inner)] = nl.parse_attrs(raw)
    assert got_type == type_
    assert nl.parse_attrs(inner) == items


@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
                          st.integers(0, 2**32 - 1), payloads), max_size=10))
def test_messages_round_trip(items):
    raw = b"".join(nl.message(t, f, s, b) for t, f, s, b in items)
    assert len(raw) % 4 == 0
    assert nl.parse_messages(raw) == items


def test_truncated_input_is_an_error_not_a_hang():
    import pytest
    raw = nl.attr(3, b"abcdef")
    with pytest.raises(ValueError):
        nl.parse_attrs(raw[:6] + b"\0\0")         # header claims more than is there
    with pytest.raises(ValueError):
        nl.parse_attrs(struct.pack("=HH", 2, 1))  # length below the header size
    msg = nl.message(16, 0, 1, b"x" * 10)
    with pytest.raises(ValueError):
        nl.parse_messages(msg[:20])


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=15),
       st.integers(1, 2**31 - 1), st.integers(0, 2**32 - 1),
       st.binary(min_size=6, max_size=6), st.one_of(st.none(), st.integers(1, 2**31 - 1)))
def test_link_round_trip(name, index, flags, mac, master):
    body = (nl.ifinfomsg(index=index, flags=flags) + nl.attr_str(nl.IFLA_IFNAME, name)
            + nl.attr(nl.IFLA_ADDRESS, mac)
            + nl.nested(nl.IFLA_LINKINFO, nl.attr_str(nl.IFLA_INFO_KIND, "veth")))
    if master is not None:
        body += nl.attr_u32(nl.IFLA_MASTER, master)
    link = nl.parse_link(body)
    assert link == {"index": index, "flags": flags, "name": name, "kind": "veth",
                    "mac": ":".join(f"{b:02x}" for b in mac), "master": master}


@given(st.ip_addresses(v=4), st.integers(0, 32), st.integers(1, 2**31 - 1))
def test_addr_round_trip(ip, prefixlen, index):
    body = nl.ifaddrmsg(index, prefixlen) + nl.attr(nl.IFA_LOCAL, ip.packed)
    assert nl.parse_addr(body) == {"index": index, "family": socket.AF_INET,
                                   "prefixlen": prefixlen, "address": str(ip)}


@given(st.ip_addresses(v=4), st.integers(1, 2**31 - 1))
def test_route_round_trip(gw, oif):
    body = nl.rtmsg() + nl.attr(nl.RTA_GATEWAY, gw.packed) + nl.attr_u32(nl.RTA_OIF, oif)
    r = nl.parse_route(body)
    assert (r["gateway"], r["oif"], r["dst"], r["dst_len"], r["table"]) == (
        str(gw), oif, None, 0, nl.RT_TABLE_MAIN)


def test_struct_sizes_match_the_kernel_headers():
    assert (nl.NLMSGHDR.size, nl.IFINFOMSG.size, nl.IFADDRMSG.size, nl.RTMSG.size,
            nl.RTATTR.size) == (16, 16, 8, 12, 4)


def test_string_attrs_are_nul_terminated():
    assert nl.attr_str(nl.IFLA_IFNAME, "eth0") == struct.pack("=HH", 9, 3) + b"eth0\0\0\0\0"


def test_veth_peer_is_a_whole_ifinfomsg_inside_linkinfo():
    """The layout the kernel's veth_newlink expects: LINKINFO{KIND, DATA{PEER{ifinfomsg, attrs}}}."""
    peer_body = nl.ifinfomsg() + nl.attr_str(nl.IFLA_IFNAME, "eth0") + nl.attr_u32(nl.IFLA_NET_NS_FD, 7)
    raw = nl.nested(nl.IFLA_LINKINFO, nl.attr_str(nl.IFLA_INFO_KIND, "veth"),
                    nl.nested(nl.IFLA_INFO_DATA, nl.nested(nl.VETH_INFO_PEER, peer_body)))
    [(t, info)] = nl.parse_attrs(raw)
    kind, data = nl.parse_attrs(info)
    assert t == nl.IFLA_LINKINFO and kind == (nl.IFLA_INFO_KIND, b"veth\0")
    [(pt, peer)] = nl.parse_attrs(data[1])
    assert pt == nl.VETH_INFO_PEER
    attrs = dict(nl.parse_attrs(peer[nl.IFINFOMSG.size:]))
    assert attrs[nl.IFLA_IFNAME] == b"eth0\0" and attrs[nl.IFLA_NET_NS_FD] == struct.pack("=I", 7)


def test_error_ack_and_extended_message():
    hdr = nl.NLMSGHDR.pack(16, nl.RTM_NEWLINK, 5, 1, 0)
    assert nl.parse_error(0, struct.pack("=i", 0) + hdr) == (0, None)
    body = struct.pack("=i", -17) + hdr + nl.attr_str(nl.NLMSGERR_ATTR_MSG, "File exists")
    assert nl.parse_error(nl.NLM_F_ACK_TLVS, body) == (17, "File exists")


@given(st.binary(min_size=6, max_size=6))
def test_mac_bytes_round_trip(raw):
    assert nl.mac_bytes(":".join(f"{b:02x}" for b in raw)) == raw
