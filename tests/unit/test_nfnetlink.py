"""nf_tables set-element messages, encoded without root or a kernel.

That the kernel accepts them, and nft reads back the same elements, is
shown by tests/integration/test_network_confinement.py."""
import socket

import pytest

from bocker.errors import InvalidArgument
from bocker.net import nat
from bocker.net import nfnetlink as nf
from bocker.net.netlink import NLM_F_ACK, NLM_F_REQUEST, parse_attrs, parse_messages


def test_concatenated_key_takes_whole_registers():
    key = nf.key_concat(nf.key_ifname("bk0123456789ab"), nf.key_ether("02:42:0a:00:00:02"),
                        nf.key_ipv4("10.0.0.2"))
    assert len(key) == 16 + 8 + 4
    assert key[:16] == b"bk0123456789ab\0\0"
    assert key[16:24] == bytes([2, 0x42, 10, 0, 0, 2, 0, 0])   # 6 bytes, padded to 8
    assert key[24:] == socket.inet_aton("10.0.0.2")


@pytest.mark.parametrize("name", ["", "a" * 16])
def test_ifname_key_refuses_what_the_kernel_would(name):
    with pytest.raises(ValueError):
        nf.key_ifname(name)


def test_setelem_body_names_table_set_and_each_key():
    keys = [b"\1" * 28, b"\2" * 28]
    body = nf.setelem_body(nf.NFPROTO_BRIDGE, "bocker_br0", "ports", keys)
    family, version, res_id = nf.NFGENMSG.unpack_from(body)
    assert (family, version, res_id) == (nf.NFPROTO_BRIDGE, 0, 0)
    attrs = dict(parse_attrs(body[nf.NFGENMSG.size:]))
    assert attrs[nf.NFTA_SET_ELEM_LIST_TABLE] == b"bocker_br0\0"
    assert attrs[nf.NFTA_SET_ELEM_LIST_SET] == b"ports\0"
    elems = parse_attrs(attrs[nf.NFTA_SET_ELEM_LIST_ELEMENTS])
    got = []
    for type_, elem in elems:
        assert type_ == nf.NFTA_LIST_ELEM
        ((key_type, key),) = parse_attrs(elem)
        ((value_type, value),) = parse_attrs(key)
        assert (key_type, value_type) == (nf.NFTA_SET_ELEM_KEY, nf.NFTA_DATA_VALUE)
        got.append(value)
    assert got == keys


def test_batch_is_wrapped_numbered_and_acks_only_its_messages():
    data, acked = nf.batch(7, [(nf.NFT_MSG_NEWSETELEM, 0, b"a" * 4),
                               (nf.NFT_MSG_DELSETELEM, 0, b"b" * 4)])
    msgs = parse_messages(data)
    assert [(t, s) for t, _, s, _ in msgs] == [
        (nf.NFNL_MSG_BATCH_BEGIN, 7), ((10 << 8) | nf.NFT_MSG_NEWSETELEM, 8),
        ((10 << 8) | nf.NFT_MSG_DELSETELEM, 9), (nf.NFNL_MSG_BATCH_END, 10)]
    assert acked == [8, 9]
    assert all(f & NLM_F_ACK for _, f, s, _ in msgs if s in acked)
    assert all(f == NLM_F_REQUEST for _, f, s, _ in msgs if s not in acked)
    # begin and end address the nf_tables subsystem
    assert nf.NFGENMSG.unpack_from(msgs[0][3]) == (socket.AF_UNSPEC, 0, socket.htons(10))


@pytest.mark.parametrize("veth,mac", [("bk1", "02:42:0A:00:00:02"), ("bk1", "02:42:0a:00:00"),
                                      ('bk"x', "02:42:0a:00:00:02")])
def test_admission_refuses_a_bad_mac_or_name(veth, mac):
    with pytest.raises(InvalidArgument):
        nat._elements(veth, mac, "10.0.0.2")
