"""The attach protocol's messages (protocol.py; formats.h's side is in
test_formats.py) and Docker's detach keys: the parser and the scanner
that finds them in the user's input, however it is cut into chunks."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bocker.errors import InvalidArgument
from bocker.runtime import protocol


@given(st.integers(-2**31, 2**31 - 1))
def test_exit_code_round_trips(code):
    assert protocol.decode(protocol.exit_message(code)) == (protocol.EXIT, code)


@given(st.integers(0, 2**32 - 1))
def test_lost_count_round_trips(count):
    assert protocol.decode(protocol.lost_message(count)) == (protocol.LOST, count)


@given(st.integers(-10, 70000), st.integers(-10, 70000))
def test_resize_is_clamped_to_a_winsize(rows, cols):
    kind, (r, c) = protocol.decode(protocol.resize(rows, cols))
    assert kind == protocol.RESIZE
    assert (r, c) == (min(max(rows, 0), 0xFFFF), min(max(cols, 0), 0xFFFF))


@given(st.binary(max_size=3 * protocol.DATA_MAX + 7))
def test_stdin_is_cut_into_messages_the_monitor_takes(data):
    msgs = protocol.stdin_messages(data)
    assert all(m[:1] == protocol.STDIN and 1 < len(m) <= protocol.MSG_MAX for m in msgs)
    assert b"".join(m[1:] for m in msgs) == data


@pytest.mark.parametrize("msg", [protocol.EXIT + b"\0\0", protocol.LOST + b"12345",
                                 protocol.RESIZE, protocol.EXIT])
def test_a_short_or_long_fixed_message_is_refused(msg):
    with pytest.raises(ValueError, match="malformed attach message"):
        protocol.decode(msg)


@given(st.sampled_from([protocol.STDOUT, protocol.STDERR, b"?"]), st.binary(max_size=64))
def test_data_messages_decode_to_their_payload(kind, payload):
    assert protocol.decode(kind + payload) == (kind, payload)


# ------------------------------------------------------------ detach keys

@pytest.mark.parametrize("text, keys", [
    ("ctrl-p,ctrl-q", b"\x10\x11"),       # Docker's default
    ("ctrl-a,x", b"\x01x"),
    ("CTRL-Z", b"\x1a"),
    ("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", bytes([0, 27, 28, 29, 30, 31])),
    ("a,b,c", b"abc"),
])
def test_detach_keys_parse_as_docker(text, keys):
    assert protocol.parse_detach_keys(text) == keys


@pytest.mark.parametrize("text", ["", "ctrl-", "ctrl-1", "ctrl-pq", "ab", "é", "ctrl-é",
                                  "shift-a", "ctrl-p,,ctrl-q", ","])
def test_bad_detach_keys_are_one_clear_error(text):
    with pytest.raises(InvalidArgument, match="invalid detach keys"):
        protocol.parse_detach_keys(text)


@given(st.text(alphabet="abcxyz,-CTRLctrl@[]^_\\", max_size=20))
def test_any_detach_keys_text_parses_or_is_refused(text):
    try:
        keys = protocol.parse_detach_keys(text)
    except InvalidArgument:
        return
    assert 1 <= len(keys) <= len(text.split(","))


def _feed(keys, chunks):
    scanner = protocol.DetachScanner(keys)
    out = b""
    for chunk in chunks:
        passed, detached = scanner.feed(chunk)
        out += passed
        if detached:
            return out, True, scanner.held
    return out, False, scanner.held


def _chunks(data, cuts):
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0] + points + [len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@given(st.binary(min_size=1, max_size=3), st.binary(max_size=200), st.lists(st.integers(0, 300), max_size=8))
def test_the_scanner_detaches_at_the_first_sequence_whatever_the_chunks(keys, data, cuts):
    out, detached, held = _feed(keys, _chunks(data, cuts))
    at = data.find(keys)
    if at < 0:
        assert not detached
        assert out + held == data      # nothing lost: the held part may yet be the keys
        assert data.endswith(held) and keys.startswith(held) and held != keys
    else:
        assert detached
        assert out == data[:at]        # the keys themselves never reach the container


@given(st.binary(max_size=100))
def test_input_without_the_keys_passes_at_once_but_for_a_possible_start(data):
    keys = b"\x10\x11"
    out, detached, held = _feed(keys, [data])
    if keys not in data:
        assert not detached and out + held == data and held in (b"", b"\x10")


def test_a_partial_sequence_is_passed_on_when_it_breaks():
    scanner = protocol.DetachScanner(b"\x10\x11")
    assert scanner.feed(b"a\x10") == (b"a", False)
    assert scanner.feed(b"b") == (b"\x10b", False)
    assert scanner.feed(b"\x10\x10") == (b"\x10", False)
    assert scanner.feed(b"\x11rest") == (b"", True)


def test_overlapping_keys_are_found():
    """aab in aaab: a naive scanner restarts after the third a and misses it."""
    assert _feed(b"aab", [b"aaab"]) == (b"a", True, b"")
