"""The server's pure parts: socket naming, the wire format (round-tripped
against a reference encoder written here from the protocol description, not from
wire.py), the peer comparison, inotify event parsing."""
import os
import resource
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bocker.server import address, launch, peer, stale, wire

# ---------------------------------------------------------------- address


def test_fnv1a64_known_vectors():
    # the published FNV-1a 64 test vectors
    assert address.fnv1a64(b"") == 0xcbf29ce484222325
    assert address.fnv1a64(b"a") == 0xaf63dc4c8601ec8c
    assert address.fnv1a64(b"foobar") == 0x85944171f73967e8


def test_socket_path_names_the_bin_dir_hash(monkeypatch):
    monkeypatch.setenv("BOCKER_SERVER_DIR", "/tmp/x")
    assert address.socket_path("/opt/v/bin") == "/tmp/x/cli-%016x.sock" % address.fnv1a64(
        b"/opt/v/bin")
    monkeypatch.delenv("BOCKER_SERVER_DIR")
    assert address.socket_path("/a").startswith("/run/bocker/cli-")
    assert address.socket_path("/a") != address.socket_path("/b")


# ---------------------------------------------------------- reference encoder

def ref_request(argv, env, umask, limits, mask=0b1111):
    """The protocol's request, written independently of wire.py."""
    records = [b"A" + a for a in argv] + [b"E" + e for e in env]
    if umask is not None:
        records.append(b"U" + oct(umask)[2:].encode())
    for number, (soft, hard) in sorted(limits.items()):
        records.append(b"L" + f"{number}:{soft}:{hard}".encode())
    body = b"".join(r + b"\0" for r in records)
    header = b"BKR1" + struct.pack("<I", 1) + struct.pack("<I", len(body)) + struct.pack("<I",
                                                                                         mask)
    return header, body


nonul = st.binary(max_size=40).filter(lambda b: b"\0" not in b)
names = st.binary(min_size=1, max_size=12).filter(lambda b: b"\0" not in b and b"=" not in b)
limit = st.one_of(st.just(-1), st.integers(0, 2**63))


@given(argv=st.lists(nonul, min_size=1, max_size=8),
       env=st.dictionaries(names, nonul, max_size=8),
       umask=st.one_of(st.none(), st.integers(0, 0o777)),
       limits=st.dictionaries(st.integers(0, 15), st.tuples(limit, limit), max_size=16),
       mask=st.sampled_from([0b1000, 0b1001, 0b1111, 0b1110, 0b1010]))
def test_request_round_trip(argv, env, umask, limits, mask):
    header, body = ref_request(argv, [k + b"=" + v for k, v in env.items()], umask, limits,
                               mask)
    length, got_mask = wire.decode_header(header)
    assert (length, got_mask) == (len(body), mask)
    assert wire.fd_count(mask) == bin(mask).count("1")
    req = wire.decode_payload(body)
    assert req.argv == [os.fsdecode(a) for a in argv]
    assert req.env == {os.fsdecode(k): os.fsdecode(v) for k, v in env.items()}
    assert req.umask == umask

    def unwire(x):
        return resource.RLIM_INFINITY if x == -1 else x

    assert req.rlimits == {n: (unwire(s), unwire(h)) for n, (s, h) in limits.items()}


def test_env_entries_without_a_name_or_equals_are_skipped():
    _, body = ref_request([b"bocker"], [b"NOEQUALS", b"=value", b"A=b=c"], None, {})
    assert wire.decode_payload(body).env == {"A": "b=c"}


@pytest.mark.parametrize("header", [
    b"BKR2" + struct.pack("<III", 1, 0, 8),          # magic
    b"BKR1" + struct.pack("<III", 2, 0, 8),          # proto
    b"BKR1" + struct.pack("<III", 1, (4 << 20) + 1, 8),  # over 4 MiB
    b"BKR1" + struct.pack("<III", 1, 0, 0b0111),     # no cwd fd
    b"BKR1" + struct.pack("<III", 1, 0, 0b11111),    # a bit beyond cwd
    b"BKR1" + struct.pack("<II", 1, 0),              # short
])
def test_bad_headers_are_refused(header):
    with pytest.raises(wire.WireError):
        wire.decode_header(header)


@pytest.mark.parametrize("body", [
    b"",                       # no argv
    b"Abocker",                # not NUL-terminated
    b"Abocker\0\0",            # empty record
    b"Abocker\0Zx\0",          # unknown tag
    b"Abocker\0U999\0",        # not octal
    b"Abocker\0U1000\0",       # beyond 0777
    b"Abocker\0U\0",
    b"Abocker\0L16:1:1\0",     # resource beyond 15
    b"Abocker\0L1:1\0",        # two fields
    b"Abocker\0L1:+1:1\0",     # int()'s extras are not the wire's
    b"Abocker\0L1:1_0:1\0",
    b"Abocker\0L1:-2:1\0",     # only -1 is negative
    b"Abocker\0L1: 1:1\0",
])
def test_bad_payloads_are_refused(body):
    with pytest.raises(wire.WireError):
        wire.decode_payload(body)


@given(kind=st.sampled_from(b"SXQRK"), value=st.integers(-2**31, 2**31 - 1))
def test_message_round_trip(kind, value):
    data = bytes([kind, 0, 0, 0]) + struct.pack("<i", value)
    assert wire.encode_message(kind, value) == data
    assert wire.decode_message(data) == (kind, value)


def test_message_padding_must_be_zero():
    with pytest.raises(wire.WireError):
        wire.decode_message(b"K\0\1\0" + struct.pack("<i", 15))


# ---------------------------------------------------------------- peer

OURS = ({"CapEff": "000001ffffffffff", "NoNewPrivs": "0", "Seccomp": "0"},
        {"mnt": (1, 10), "pid": (1, 11), "root": (8, 2)})


def test_an_identical_peer_is_trusted():
    assert peer.compare(OURS, OURS) is None  # no Untrusted raised


@pytest.mark.parametrize("change", [
    ({"CapEff": "000001ffffdfffff"}, {}),  # CAP_SYS_ADMIN gone
    ({"NoNewPrivs": "1"}, {}),
    ({"Seccomp": "2"}, {}),
    ({}, {"mnt": (1, 99)}),
    ({}, {"root": (8, 3)}),
    ({}, {"pid": None}),
])
def test_a_peer_that_could_not_do_it_itself_is_refused(change):
    status, ns = dict(OURS[0]), dict(OURS[1])
    status.update(change[0])
    ns.update(change[1])
    with pytest.raises(peer.Untrusted):
        peer.compare(OURS, (status, ns))


def test_more_capabilities_than_ours_are_fine():
    status = dict(OURS[0], CapEff="ffffffffffffffff")
    assert peer.compare(OURS, (status, OURS[1])) is None


# ---------------------------------------------------------------- stale

def _event(wd, mask, name):
    padded = name + b"\0" * (16 - len(name) % 16) if name else b""
    return struct.pack("iIII", wd, mask, 0, len(padded)) + padded


def test_events_parse_and_pyc_writes_are_not_new_code():
    data = _event(1, stale.IN_CLOSE_WRITE, b"x.cpython-311.pyc") + _event(2, stale.IN_ATTRIB,
                                                                          b"app.py")
    events = stale.parse_events(data)
    assert events == [(1, stale.IN_CLOSE_WRITE, b"x.cpython-311.pyc"),
                      (2, stale.IN_ATTRIB, b"app.py")]
    assert [stale.relevant(m, n) for _, m, n in events] == [False, True]
    assert not stale.relevant(stale.IN_CREATE, b"__pycache__")
    assert stale.relevant(stale.IN_Q_OVERFLOW, b"")
    assert stale.relevant(stale.IN_DELETE_SELF, b"")


def test_package_dirs_skip_pycache(tmp_path):
    (tmp_path / "a" / "__pycache__").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    assert stale.package_dirs(str(tmp_path)) == [str(tmp_path), str(tmp_path / "a"),
                                                 str(tmp_path / "b")]


def test_a_watch_sees_a_touch_but_not_a_pyc(tmp_path):
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "m.py").write_text("")
    w = stale.Watch(stale.package_dirs(str(tmp_path)))
    try:
        (tmp_path / "n.pyc").write_bytes(b"")
        assert not w.stale()
        os.utime(tmp_path / "m.py")
        assert w.stale()
    finally:
        w.close()


# ---------------------------------------------------------------- launch

def test_setup_starts_no_server_beside_the_python_script(tmp_path):
    (tmp_path / "bocker").write_text("#!/usr/bin/python3\n")
    (tmp_path / "bocker-server").write_text("#!/bin/sh\nexit 99\n")
    os.chmod(tmp_path / "bocker-server", 0o755)
    assert not launch.is_c_client(str(tmp_path / "bocker"))
    assert launch.is_c_client("/bin/sh")
    assert not launch.is_c_client(str(tmp_path / "missing"))
    assert launch.ensure_running(str(tmp_path)) is False
