"""The container's session keyring: a new one by default, as runc's
(`--no-new-keyring` keeps the caller's)."""
import os

from bocker.oci import log

KEYCTL_JOIN_SESSION_KEYRING = 1
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}


def join_new_session_keyring():
    """A new anonymous session keyring for us, so the container (our
    child, cloned next) inherits its own, not the caller's (runc's default; its
    --no-new-keyring keeps the caller's).  A kernel that refuses is a
    warning: the container then shares the caller's session keyring."""
    import ctypes
    import platform

    nr = SYS_KEYCTL.get(platform.machine())
    if nr is None:
        log.warning("no new session keyring: keyctl's number on this architecture is unknown")
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(nr, KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        err = ctypes.get_errno()
        log.warning(f"no new session keyring (the container shares the caller's): "
                    f"keyctl: {os.strerror(err)}")
