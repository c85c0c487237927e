"""Noticing that the code a server has imported is no longer the code on
disk (an upgrade, a `pip install -e` edit, a new client).

inotify watches every directory of the bocker package and the bin dir; any
event but a byte-code write means the server's modules may differ from
what a fresh `bocker-py` would import, so it must stop serving.  The
watches are made before the server imports the commands, so a change
during that import is seen too.

inotify comes through cffi's ABI mode on libc (no compiled code, no PyPI
dependency): two calls, declared here.
"""
import os
import struct

import cffi

_ffi = cffi.FFI()
_ffi.cdef("""
int inotify_init1(int flags);
int inotify_add_watch(int fd, const char *pathname, uint32_t mask);
""")
_libc = _ffi.dlopen(None)

IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED = 0x4000, 0x8000
WATCHED = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
           | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF)
EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


def package_dirs(root):
    """Every directory of the package at root, without __pycache__ (Python
    writes byte code there as it imports: that is not new code)."""
    out = []
    for directory, subdirs, _ in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        out.append(directory)
    return out


def relevant(mask, name):
    """Whether one event means new code: anything but byte code,
    and always a lost event (overflow) or a watch gone (dir removed)."""
    if mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
        return True
    # the import system makes __pycache__ (and writes .pyc files into it)
    # the first time a module is imported: that is no new code
    return not (name.endswith(b".pyc") or name == b"__pycache__")


def parse_events(data):
    """[(wd, mask, name)] of a read() of an inotify fd."""
    out, at = [], 0
    while at + EVENT.size <= len(data):
        wd, mask, _, length = EVENT.unpack_from(data, at)
        name = data[at + EVENT.size:at + EVENT.size + length].rstrip(b"\0")
        out.append((wd, mask, name))
        at += EVENT.size + length
    return out


class Watch:
    """inotify on dirs; stale() says whether any of them changed since."""

    def __init__(self, dirs):
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(_ffi.errno, os.strerror(_ffi.errno), "inotify_init1")
        self.fd = fd
        self._stale = False
        for d in dirs:
            if _libc.inotify_add_watch(fd, os.fsencode(d), WATCHED) < 0:
                err = _ffi.errno
                os.close(fd)
                raise OSError(err, os.strerror(err), d)

    def fileno(self):
        return self.fd

    def stale(self):
        """True once any watched dir has seen a relevant event (sticky)."""
        while not self._stale:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            self._stale = any(relevant(mask, name) for _, mask, name in parse_events(data))
        return self._stale

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def watch_installation(bin_dir):
    """A Watch on the bocker package's dirs and bin_dir."""
    import bocker

    return Watch(package_dirs(os.path.dirname(os.path.abspath(bocker.__file__))) + [bin_dir])
