"""Where the server of one installation listens.

One server per bin dir (a venv, a prefix): the client and the server both
name the socket by the FNV-1a-64 hash of that directory, so two installs
never talk to each other's code.
"""
import os
import sys

DEFAULT_DIR = "/run/bocker"
FNV_OFFSET = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3


def fnv1a64(data):
    """The 64-bit FNV-1a hash of data (bytes), as csrc/client.c computes it."""
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def bindir():
    """This Python's bin dir, resolved: the dir the client sits in too."""
    return os.path.realpath(os.path.dirname(sys.executable))


def server_dir():
    """The socket's directory: $BOCKER_SERVER_DIR (tests), else /run/bocker."""
    return os.environ.get("BOCKER_SERVER_DIR") or DEFAULT_DIR


def socket_path(bin_dir=None, directory=None):
    """The socket path of the server for bin_dir (default: ours)."""
    bin_dir = bindir() if bin_dir is None else bin_dir
    directory = server_dir() if directory is None else directory
    return os.path.join(directory, "cli-%016x.sock" % fnv1a64(os.fsencode(bin_dir)))


def lock_path(sock):
    """The flock file that makes one server per socket."""
    return sock + ".lock"


def pid_path(sock):
    """The file holding the running server's PID."""
    return sock + ".pid"
