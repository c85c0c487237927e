"""Linux capabilities by name: Docker's default set, and --cap-add /
--cap-drop applied to it.  Pure: no kernel calls."""
from bocker.errors import InvalidArgument

# capability(7) numbers, as in <linux/capability.h>
NUMBERS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4,
    "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9,
    "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13,
    "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18,
    "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
    "SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28,
    "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32,
    "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35, "BLOCK_SUSPEND": 36,
    "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

# Docker's default set (moby oci/caps/defaults.go).  bocker's default drops
# MKNOD as well: it has no device cgroup to fence mknod'ed nodes, so it
# mounts everything nodev and keeps no way to make devices.
DOCKER_DEFAULT = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
                  "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
                  "AUDIT_WRITE")
DEFAULT = tuple(c for c in DOCKER_DEFAULT if c != "MKNOD")


def normalize(name):
    """'cap_sys_admin', 'SYS_ADMIN', 'CAP_SYS_ADMIN' -> 'SYS_ADMIN'; 'all' -> 'ALL'."""
    bare = str(name).strip().upper()
    bare = bare[4:] if bare.startswith("CAP_") else bare
    if bare != "ALL" and bare not in NUMBERS:
        raise InvalidArgument(f"unknown capability: '{name}'")
    return bare


def effective(add=(), drop=(), privileged=False):
    """The set of capability names a container keeps, Docker's way: the
    default set, minus --cap-drop, plus --cap-add (ALL allowed in both;
    an add wins over a drop of ALL, as in Docker)."""
    if privileged:
        return set(NUMBERS)
    add = {normalize(c) for c in add}
    drop = {normalize(c) for c in drop}
    caps = set() if "ALL" in drop else set(DEFAULT) - drop
    caps |= set(NUMBERS) if "ALL" in add else add - {"ALL"}
    return caps


def mask(names):
    """A bit mask (bit N = capability N) for the shim."""
    out = 0
    for n in names:
        out |= 1 << NUMBERS[n]
    return out


def names(caps):
    """Sorted 'CAP_X' names, as inspect shows them."""
    return sorted("CAP_" + c for c in caps)
