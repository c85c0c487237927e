"""config.json's linux.namespaces for the clone: the types to create
(clone flags) and the ones to join by path (fds the child setns()es
into, the PID namespace apart: the parent enters it for the clone)."""
import os

from bocker.errors import BockerError, InvalidArgument
from bocker.kernel import native

NS_FLAGS = {"pid": native.CLONE_NEWPID, "network": native.CLONE_NEWNET,
            "mount": native.CLONE_NEWNS, "ipc": native.CLONE_NEWIPC,
            "uts": native.CLONE_NEWUTS, "user": native.CLONE_NEWUSER,
            "cgroup": native.CLONE_NEWCGROUP, "time": native.CLONE_NEWTIME}


def clone_flags(namespaces):
    """The namespaces to create (those without a path); the mount
    namespace always (the rootfs is pivoted into one of its own)."""
    flags = 0
    for kind, path in (namespaces or {}).items():
        if path is None:
            if kind not in NS_FLAGS:
                raise InvalidArgument(f"config.json: linux.namespaces: unknown type {kind!r}")
            flags |= NS_FLAGS[kind]
    if "mount" not in (namespaces or {}):
        flags |= native.CLONE_NEWNS
    return flags


def open_joined(namespaces, fds):
    """([(fd, CLONE_NEW*)] to join, the user namespace first; the PID
    namespace's fd or -1) for the namespaces given by path; fds tracks
    every fd opened (the caller closes them after the clone)."""
    join, pidns = [], -1
    for kind in sorted(namespaces, key=lambda k: k != "user"):
        path = namespaces[kind]
        if path is None:
            continue
        if kind not in NS_FLAGS:
            raise InvalidArgument(f"config.json: linux.namespaces: unknown type {kind!r}")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise BockerError(f"open {kind} namespace {path}: {e.strerror}") from None
        fds.add(fd)
        if kind == "pid":
            pidns = fd
        else:
            join.append((fd, NS_FLAGS[kind]))
    return join, pidns
