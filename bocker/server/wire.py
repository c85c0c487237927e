"""The client/server protocol (docs/architecture.md, "The CLI"), encoded and decoded.

Request: a 16-byte header (`BKR1`, proto, payload length, fd mask, each a
little-endian u32) then the payload: NUL-terminated records of one tag
byte and text (`A` arg, `E` NAME=VALUE, `U` octal umask, `L`
resource:soft:hard).  Replies and the client's signal messages are 8
bytes: type (u8), three zero bytes, value (i32).

The client is untrusted input as far as shape goes (a bug, another
version): everything is bounded and checked here, and a bad request is
refused with BAD_REQUEST rather than half-run.
"""
import os
import resource
import struct
from dataclasses import dataclass, field

MAGIC = b"BKR1"
PROTO = 1
HEADER = struct.Struct("<4sIII")
MESSAGE = struct.Struct("<B3xi")
MAX_PAYLOAD = 4 << 20
MAX_ARGS = 1 << 16
# the fd mask: bits 0..2 for stdin/stdout/stderr, bit 3 the cwd (always sent)
CWD_BIT = 3
ALL_BITS = 0b1111
RLIMITS = 16

# reply types (server -> client) and the client's one message
STARTED, EXITED, SIGNALED, REFUSED, KILL = b"S"[0], b"X"[0], b"Q"[0], b"R"[0], b"K"[0]
# REFUSED's reasons
STALE, UNTRUSTED, BAD_REQUEST, BUSY = 1, 2, 3, 4


class WireError(ValueError):
    """A request that is not one this protocol can carry."""


@dataclass
class Request:
    """One command as the client sent it (fds not included: the mask says
    which came, in order 0, 1, 2, cwd)."""

    argv: list
    env: dict
    umask: int = None
    rlimits: dict = field(default_factory=dict)  # resource -> (soft, hard)


def decode_header(data):
    """(payload length, fd mask) of a 16-byte header; WireError if it is
    not ours, another protocol version, too long, or without the cwd fd."""
    if len(data) != HEADER.size:
        raise WireError("short header")
    magic, proto, length, mask = HEADER.unpack(data)
    if magic != MAGIC:
        raise WireError("bad magic")
    if proto != PROTO:
        raise WireError(f"protocol {proto}, not {PROTO}")
    if length > MAX_PAYLOAD:
        raise WireError("payload over 4 MiB")
    if mask & ~ALL_BITS or not mask & (1 << CWD_BIT):
        raise WireError("bad fd mask")
    return length, mask


def fd_count(mask):
    """How many fds a header's mask announces."""
    return bin(mask & ALL_BITS).count("1")


def _limit(text):
    value = int(text, 10)
    if value == -1:
        return resource.RLIM_INFINITY
    if value < 0 or value >= 1 << 64:
        raise WireError("rlimit out of range")
    return value


def _number(text):
    # int() takes '+', '_' and spaces: the wire takes digits (and one '-') only
    body = text[1:] if text.startswith("-") else text
    if not body or not body.isascii() or not body.isdigit():
        raise WireError(f"not a number: {text[:20]!r}")
    return text


def decode_payload(data):
    """The Request in payload bytes; WireError on any record out of shape."""
    if len(data) > MAX_PAYLOAD:
        raise WireError("payload over 4 MiB")
    if data and not data.endswith(b"\0"):
        raise WireError("payload not NUL-terminated")
    argv, env, umask, rlimits = [], {}, None, {}
    for record in data.split(b"\0")[:-1] if data else []:
        if not record:
            raise WireError("empty record")
        tag, text = record[:1], record[1:]
        if tag == b"A":
            if len(argv) >= MAX_ARGS:
                raise WireError("too many arguments")
            argv.append(os.fsdecode(text))  # as Python decodes its own argv
        elif tag == b"E":
            name, eq, value = text.partition(b"=")
            # an entry without '=' or with an empty name: Python's own
            # os.environ skips those too; and the first of two entries wins, as there
            if eq and name:
                env.setdefault(os.fsdecode(name), os.fsdecode(value))
        elif tag == b"U":
            if not text or not set(text) <= set(b"01234567") or int(text, 8) > 0o777:
                raise WireError("bad umask")
            umask = int(text, 8)
        elif tag == b"L":
            parts = text.decode("ascii", "replace").split(":")
            if len(parts) != 3:
                raise WireError("bad rlimit record")
            number = int(_number(parts[0]))
            if not 0 <= number < RLIMITS:
                raise WireError("rlimit resource out of range")
            rlimits[number] = (_limit(_number(parts[1])), _limit(_number(parts[2])))
        else:
            raise WireError(f"unknown record tag {tag!r}")
    if not argv:
        raise WireError("no argv")
    return Request(argv, env, umask, rlimits)


def encode_message(kind, value):
    """One 8-byte message: kind (a type byte), value (i32)."""
    return MESSAGE.pack(kind, value)


def decode_message(data):
    """(kind, value) of one 8-byte message; WireError if padding is not zero."""
    if len(data) != MESSAGE.size or data[1:4] != b"\0\0\0":
        raise WireError("bad message")
    return MESSAGE.unpack(data)
