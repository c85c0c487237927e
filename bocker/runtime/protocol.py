"""The attach protocol between a container's monitor and its clients
(csrc/formats.h defines it; tests/unit/test_formats.py checks that both
sides agree), and Docker's detach keys.

One SOCK_SEQPACKET message is one type byte and its payload.  Nothing
here touches a socket: the messages are bytes in and bytes out, so the
encoders, decoders and the detach-key scanner are pure.
"""
import struct

from bocker.errors import InvalidArgument

DATA_MAX = 16384          # payload bytes per message, at most
MSG_MAX = 1 + DATA_MAX    # what one read of a message needs
# monitor -> client
STDOUT, STDERR, LOST, EXIT = b"o", b"e", b"l", b"x"
# client -> monitor
STDIN, STDIN_EOF, RESIZE, DETACH, CLEANED = b"i", b"c", b"w", b"q", b"f"

SOCKET_NAME = "attach"    # in the container's directory

# the integer payloads, in native byte order (both ends run on one host)
_I32, _U32, _WINSIZE = struct.Struct("=i"), struct.Struct("=I"), struct.Struct("=HH")
_FIXED = {EXIT: _I32, LOST: _U32, RESIZE: _WINSIZE}


def stdin_messages(data):
    """data for the container's stdin, as messages of at most DATA_MAX bytes."""
    return [STDIN + data[i:i + DATA_MAX] for i in range(0, len(data), DATA_MAX)]


def resize(rows, cols):
    """A window-size message (the monitor sets it on the pty)."""
    return RESIZE + _WINSIZE.pack(min(max(rows, 0), 0xFFFF), min(max(cols, 0), 0xFFFF))


def exit_message(code):
    """The monitor's last message: the container's exit code."""
    return EXIT + _I32.pack(code)


def lost_message(count):
    """The monitor's note that count output bytes were dropped for us."""
    return LOST + _U32.pack(count)


def decode(msg):
    """(type byte, value) of a message: the code for EXIT, the byte count
    for LOST, (rows, cols) for RESIZE, the payload bytes for any other
    type.  A fixed-size message of the wrong size is ValueError."""
    kind, payload = msg[:1], msg[1:]
    fixed = _FIXED.get(kind)
    if fixed is None:
        return kind, payload
    if len(payload) != fixed.size:
        raise ValueError(f"malformed attach message: {bytes(msg[:8])!r}")
    value = fixed.unpack(payload)
    return kind, value if len(value) > 1 else value[0]


# ------------------------------------------------------------ detach keys

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
# ctrl-X for these X, besides the letters: the ASCII control codes 0, 27-31
_CTRL_PUNCT = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(text):
    """Docker's --detach-keys syntax, a comma-separated list of keys each
    a single character or ctrl-<letter or one of @[\\]^_>, as the bytes a
    terminal sends for them.  Bad syntax is InvalidArgument."""
    out = bytearray()
    for key in text.split(","):
        lower = key.lower()
        if len(key) == 1 and key.isascii():
            out.append(ord(key))
        elif lower.startswith("ctrl-") and len(key) == 6 and key[5].isascii() and (
                key[5].isalpha() or key[5] in _CTRL_PUNCT):
            ch = lower[5]
            out.append(ord(ch) - ord("a") + 1 if ch.isalpha() else _CTRL_PUNCT[ch])
        else:
            raise InvalidArgument(f"invalid detach keys {text!r}: unknown key {key!r}"
                                  " (a character, or ctrl-<a-z, @, [, \\, ], ^, _>)")
    return bytes(out)


class DetachScanner:
    """Watches the user's input for the detach sequence, in whatever
    chunks it comes: feed() returns (bytes to pass on, detached).  Bytes
    that could start the sequence are held back until the next ones show
    whether they do; once it is complete, it and whatever followed it in
    that chunk are not passed on."""

    def __init__(self, keys):
        self.keys = keys
        self.held = b""

    def feed(self, data):
        """(what to pass on now, whether the sequence is complete)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for i in range(len(data)):
            held = self.held + data[i:i + 1]
            # the longest end of what we hold that may still become the sequence
            while held and not self.keys.startswith(held):
                out.append(held[0])
                held = held[1:]
            self.held = held
            if held == self.keys:
                self.held = b""
                return bytes(out), True
        return bytes(out), False
