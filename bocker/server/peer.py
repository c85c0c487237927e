"""Whom the server serves: a client that could have done the same work
itself.

A worker runs with the server's privileges, so a peer must already hold
them: the same uid, every namespace and the root the server has, at least
its effective capabilities, and no NoNewPrivs or seccomp filter (either
would make the direct CLI fail where the server would succeed).  A
refused client runs the Python CLI itself: refusing costs speed, never
behaviour.
"""
import os
import socket
import struct

# SO_PEERPIDFD (Linux 6.5): a pidfd of the peer, taken at connect(), so the
# /proc reads below cannot be about a recycled PID
SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)
UCRED = struct.Struct("3i")


class Untrusted(Exception):
    """Why a peer is refused (one line, for the server's own debugging)."""


def peer_credentials(sock):
    """(pid, uid, gid) of the peer, by SO_PEERCRED."""
    return UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size))


def peer_pidfd(sock, pid):
    """A pidfd of the peer: SO_PEERPIDFD, else pidfd_open(pid) (older
    kernels; then the check below of the pidfd's PID guards the reuse)."""
    try:
        data = sock.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD, 4)
        return struct.unpack("i", data)[0]
    except OSError:
        return os.pidfd_open(pid)


def _pidfd_pid(pidfd):
    # fdinfo's Pid is -1 once the process is gone: a /proc read made while
    # it still names our PID was about our peer, not a successor
    with open(f"/proc/self/fdinfo/{pidfd}") as f:
        for line in f:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    raise Untrusted("no Pid in the pidfd's fdinfo")


def read_status(pid):
    """The fields of /proc/PID/status this check uses, as strings."""
    wanted = {"CapEff", "NoNewPrivs", "Seccomp"}
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in wanted:
                fields[name] = value.strip()
    return fields


def _identity(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def namespaces_and_root(pid):
    """{name: (dev, ino)} of every namespace of pid, and 'root'."""
    out = {name: _identity(f"/proc/{pid}/ns/{name}") for name in os.listdir("/proc/self/ns")}
    out["root"] = _identity(f"/proc/{pid}/root")
    return out


def compare(ours, theirs):
    """Raise Untrusted unless theirs (status fields, namespaces) may do
    what ours may: used for the server against a peer."""
    our_status, our_ns = ours
    their_status, their_ns = theirs
    for name, identity in our_ns.items():
        if their_ns.get(name) != identity:
            raise Untrusted(f"another {name} namespace" if name != "root" else "another root")
    caps, our_caps = int(their_status.get("CapEff", "0"), 16), int(our_status["CapEff"], 16)
    if caps & our_caps != our_caps:
        raise Untrusted("fewer capabilities")
    if their_status.get("NoNewPrivs", "1") != "0":
        raise Untrusted("NoNewPrivs is set")
    if their_status.get("Seccomp", "1") != "0":
        raise Untrusted("under a seccomp filter")


def ourselves():
    """Our own status fields and namespaces, read once at server start."""
    return read_status("self"), namespaces_and_root("self")


def check(sock, ours):
    """Nothing if the peer on sock is trusted; Untrusted (or OSError: the
    peer is gone, /proc unreadable) otherwise.  ours: ourselves()."""
    pid, uid, _ = peer_credentials(sock)
    if uid != os.geteuid():
        raise Untrusted(f"uid {uid}")
    if pid <= 0:
        raise Untrusted("no peer PID (another PID namespace)")
    pidfd = peer_pidfd(sock, pid)
    try:
        theirs = read_status(pid), namespaces_and_root(pid)
        if _pidfd_pid(pidfd) != pid:
            raise Untrusted("the peer exited during the check")
    finally:
        os.close(pidfd)
    compare(ours, theirs)
