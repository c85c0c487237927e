"""The netpool hand-over's messages (bocker/net/pool.py): request and
reply encoded and decoded, and anything else refused."""
import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bocker.kernel import procfs
from bocker.net import ipam, pool


def _slot(**over):
    fields = dict(root="/var/bocker", bridge="bocker0", bridge_index=7,
                  subnet="10.0.0.0/24", table="bocker_bocker0", ip="10.0.0.9",
                  prefixlen=24, gateway="10.0.0.1", mac=ipam.mac_for("10.0.0.9"),
                  veth="bp000123400001", owner="pool-1234-5678-1")
    fields.update(over)
    return pool.Slot(-1, **fields)


@given(st.text(alphabet=st.characters(blacklist_characters="\0",
                                      blacklist_categories=("Cs",)),
               min_size=1, max_size=200))
def test_request_round_trip(tail):
    root = "/" + tail
    assert pool.decode_request(pool.encode_request(root)) == root


@pytest.mark.parametrize("data", [b"", b"NPQ1", struct.pack("<4sI", b"NPQ1", 5) + b"/a",
                                  struct.pack("<4sI", b"NPQ1", 2) + b"ab",
                                  struct.pack("<4sI", b"NPQ1", 3) + b"/\0a",
                                  struct.pack("<4sI", b"XXXX", 2) + b"/a",
                                  struct.pack("<4sI", b"NPQ1", 0)])
def test_bad_request_refused(data):
    with pytest.raises(ValueError):
        pool.decode_request(data)


def test_reply_round_trip():
    slot = _slot()
    assert pool.decode_reply(pool.encode_reply(slot)) == slot.fields()
    assert pool.decode_reply(pool.encode_reply(None)) is None


@pytest.mark.parametrize("over", [dict(ip="10.0.1.9"), dict(gateway="10.0.0.2"),
                                  dict(mac="02:42:0a:00:00:0a"), dict(veth="eth0"),
                                  dict(veth="bp" + "x" * 20), dict(owner="ps_123"),
                                  dict(bridge_index=0), dict(bridge_index=True),
                                  dict(prefixlen=16), dict(root="relative"),
                                  dict(bridge="a/b"), dict(subnet="nonsense")])
def test_bad_reply_fields_refused(over):
    with pytest.raises(ValueError):
        pool.decode_reply(pool.encode_reply(_slot(**over)))


@given(st.binary(max_size=300))
def test_garbage_reply_never_crashes(data):
    try:
        fields = pool.decode_reply(data)
    except ValueError:
        return
    # what garbage decodes to is "no slot" or a checked slot's fields
    assert fields is None or set(fields) == set(pool.Slot.FIELDS)


def test_reply_with_extra_or_missing_field_refused():
    fields = _slot().fields()
    for bad in ({**fields, "extra": 1}, {k: v for k, v in fields.items() if k != "ip"}, [1]):
        body = json.dumps(bad).encode()
        with pytest.raises(ValueError):
            pool.decode_reply(struct.pack("<4sI", b"NPS1", len(body)) + body)


def test_pool_owner_alive_only_for_a_live_process():
    import os

    me = os.getpid()
    start = procfs.start_time(me)
    assert ipam.pool_owner_alive(f"pool-{me}-{start}-3")
    assert not ipam.pool_owner_alive(f"pool-{me}-{start + 1}-3")
    assert not ipam.pool_owner_alive("ps_0123456789ab")
    assert not ipam.pool_owner_alive("pool-x-1-2")
