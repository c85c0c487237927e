"""What confines a container, from the user's options to the values the
shim applies: --sysctl (only the kernel's namespaced keys), --ulimit,
--security-opt, and the summary `inspect` shows.  Pure: no kernel calls.
Capabilities live in capabilities.py, the seccomp filter in seccomp.py."""
from bocker import patterns
from bocker.errors import InvalidArgument

# Sysctls the kernel keeps per namespace, as Docker allows them: IPC ones
# (the container has its own IPC namespace) and net.* (its own network
# namespace; not with --network host, where they would be the host's).
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
SYSCTL_KEY = patterns.lazy(r"^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$")

# setrlimit(2) resources by Docker's --ulimit names
RLIMITS = {"cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6,
           "nofile": 7, "memlock": 8, "as": 9, "locks": 10, "sigpending": 11,
           "msgqueue": 12, "nice": 13, "rtprio": 14, "rttime": 15}
RLIM_INFINITY = (1 << 64) - 1
RLIM_MAX = (1 << 63) - 1  # Docker's int64: a larger number is a typo, not a limit

DEFAULT_PIDS_LIMIT = 2048


def parse_sysctl(item, network="bridge"):
    """'net.ipv4.ip_forward=1' (or net/ipv4/...) -> 'net.ipv4.ip_forward=1',
    refusing any key the kernel does not namespace: writing those would
    change the host for everyone (kernel.core_pattern runs a program as
    root on the host's next crash)."""
    key, sep, value = str(item).partition("=")
    key = key.strip().replace("/", ".")
    if not sep or not SYSCTL_KEY.match(key) or "\n" in value or "\0" in value:
        raise InvalidArgument(f"invalid sysctl '{item}': use KEY=VALUE")
    namespaced = (key in IPC_SYSCTLS or key.startswith("fs.mqueue.")
                  or (key.startswith("net.") and network != "host"))
    if not namespaced:
        why = ("it would change the host's network: the container shares it"
               if key.startswith("net.") else "it is not namespaced: it would change the host")
        raise InvalidArgument(f"sysctl '{key}' is not allowed in a container: {why}")
    return f"{key}={value}"


def _rlimit_value(text, item):
    if text in ("-1", "unlimited"):
        return RLIM_INFINITY
    # isascii: str.isdigit() is true for '²', which int() refuses
    if not (text.isascii() and text.isdigit()) or int(text) > RLIM_MAX:
        raise InvalidArgument(f"invalid ulimit '{item}': values are numbers up to {RLIM_MAX}"
                              f", or unlimited")
    return int(text)


def parse_ulimit(item):
    """'nofile=1024:2048' or 'nproc=512' -> (resource number, soft, hard)."""
    name, sep, values = str(item).partition("=")
    if not sep or name not in RLIMITS:
        raise InvalidArgument(f"invalid ulimit '{item}': use NAME=SOFT[:HARD] with NAME one "
                              f"of {', '.join(sorted(RLIMITS))}")
    soft_text, _, hard_text = values.partition(":")
    soft = _rlimit_value(soft_text, item)
    hard = _rlimit_value(hard_text, item) if hard_text else soft
    if soft > hard:
        raise InvalidArgument(f"invalid ulimit '{item}': soft limit above hard limit")
    return RLIMITS[name], soft, hard


def parse_security_opts(opts):
    """--security-opt values -> {'seccomp': 'default'|'unconfined'|PATH,
    'no_new_privileges': True}.  no-new-privileges is always on (unless
    --privileged); AppArmor and SELinux labels are refused: this host's
    bocker applies neither, and silently ignoring them would claim a
    confinement that is not there."""
    out = {"seccomp": "default", "no_new_privileges": True}
    for opt in opts:
        key, sep, value = str(opt).partition("=")
        if not sep and ":" in key:  # Docker's old form, seccomp:unconfined
            key, _, value = key.partition(":")
        if key == "seccomp" and value:
            out["seccomp"] = value
        elif key == "no-new-privileges" and value in ("", "true"):
            pass
        elif key == "no-new-privileges" and value == "false":
            raise InvalidArgument("no-new-privileges cannot be turned off (use --privileged)")
        elif key in ("apparmor", "label"):
            raise InvalidArgument(f"--security-opt {key}: not supported: bocker applies no "
                                  f"AppArmor or SELinux profile")
        else:
            raise InvalidArgument(f"invalid --security-opt '{opt}'")
    return out


def pids_limit(value):
    """--pids-limit: None -> the default (2048); 0 or -1 -> unlimited."""
    if value is None:
        return DEFAULT_PIDS_LIMIT
    value = int(value)
    if value < -1:
        raise InvalidArgument(f"invalid --pids-limit {value}: a positive number, or -1")
    return value if value > 0 else None
