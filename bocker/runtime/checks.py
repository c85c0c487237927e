"""The plain fields of a RunRequest checked before anything is made: the
image reference, limits, hostname, working directory, user, environment,
DNS servers, -v and --tmpfs.  RunRequest.check calls check(), so the
library refuses what the CLI refuses, with the same one line.  Pure: no
file is read, nothing is imported that a start does not already load
(ipaddress only when --dns is given)."""
import os
import re

from bocker import ids, patterns
from bocker.errors import InvalidArgument

MIN_MEMORY = 6 << 20          # Docker's minimum: below it the container's own start is OOM
MAX_INT64 = (1 << 63) - 1     # what the kernel's limits (and Docker's int64s) hold
MIN_CPUS = 0.01               # Docker's floor: a 1 ms quota in a 100 ms period
MAX_PIDS = 1 << 22            # PID_MAX_LIMIT: the kernel refuses a higher pids.max
MAX_ID = 2 ** 32 - 2          # (uid_t)-1 means "unchanged" to the kernel
HOST_NAME_MAX = 64            # sethostname(2)
# One hostname label (RFC 1123, and '_' which the world uses anyway).
_LABEL = patterns.lazy(r"[a-zA-Z0-9](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?\Z")
# What bocker mounts to confine a container: a -v or --tmpfs over one of
# these (or below /proc, /sys, /dev/pts) would replace the confinement
# itself (masked and read-only /proc paths, read-only /sys, the device
# allowlist), so it is refused, as runc refuses /proc.
_CONFINED_TREES = ("/proc", "/sys", "/dev/pts")
_CONFINED_POINTS = ("/", "/dev")


def check(req):
    """Raise InvalidArgument (one line) for a field of req that cannot run."""
    _no_nul(req)
    check_image(req.image)
    check_limits(req)
    if req.hostname is not None:
        check_hostname(req.hostname)
    check_exec([], req.env, req.workdir, req.user)
    for server in req.dns:
        check_dns(server)
    if req.volumes or req.mounts or req.volumes_from:
        from bocker.volume import plan

        plan.check(req)
    for spec in req.tmpfs:
        check_target(parse_tmpfs(spec)[0], f"tmpfs '{spec}'")
    check_labels(req.labels, "--label")
    check_stop(req.stop_signal, req.stop_timeout)
    if len(req.group_add) > MAX_GROUPS:
        raise InvalidArgument(f"too many --group-add: at most {MAX_GROUPS}")
    for group in req.group_add:
        check_group(group)
    check_namespaces(req)
    from bocker.runtime import runextras  # -a, --annotation, --dns-search/-option, --domainname

    runextras.check(req)


def check_exec(argv, env, workdir, user):
    """The same refusals for an exec's own options, before it joins anything."""
    for item in [*argv, *env, workdir or "", user or ""]:
        if "\0" in item:
            raise InvalidArgument("invalid exec argument: it contains a NUL byte")
    if workdir and not workdir.startswith("/"):
        raise InvalidArgument(f"the working directory '{workdir}' is invalid: "
                              f"it needs to be an absolute path")
    if user:
        check_user(user)
    for item in env:
        check_env(item)


def _no_nul(req):
    # Every string goes to the kernel as a C string at last: a NUL would
    # cut it short there (or raise ValueError in os.path on the way).
    for field in req.FIELDS:
        value = getattr(req, field, None)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, str) and "\0" in item:
                raise InvalidArgument(f"invalid {field}: it contains a NUL byte")


def check_image(ref):
    """An image ID, ID prefix or NAME[:TAG][@DIGEST], as Docker's grammar has it."""
    if "@" in ref:
        from bocker.image import reference  # only for a digest: 1 ms of imports

        reference.parse(ref)
        return
    try:
        ids.split_name(ref)
    except InvalidArgument:
        lower = "repository name must be lowercase: " if ref != ref.lower() else ""
        raise InvalidArgument(f"invalid reference format: {lower}'{ref}'") from None


def check_limits(req):
    """Memory, CPU shares and quota, pids: each in the range the kernel takes."""
    if not isinstance(req.memory, int) or req.memory < 0 or req.memory > MAX_INT64:
        raise InvalidArgument(f"invalid memory limit {req.memory!r}")
    if 0 < req.memory < MIN_MEMORY:   # 0: no limit (Docker's -m 0)
        raise InvalidArgument("minimum memory limit allowed is 6MB")
    if not isinstance(req.cpu_shares, int) or req.cpu_shares < 0:
        raise InvalidArgument(f"invalid --cpu-shares {req.cpu_shares!r}: 0 or more")
    if req.cpus is not None:
        count = os.cpu_count() or 1
        if not isinstance(req.cpus, (int, float)) or not MIN_CPUS <= req.cpus <= count:
            raise InvalidArgument(f"range of CPUs is from {MIN_CPUS} to {count}.00, as there "
                                  f"are only {count} CPUs available")
    swap = req.memory_swap
    if swap is not None:
        if not isinstance(swap, int) or swap < -1 or swap > MAX_INT64:
            raise InvalidArgument(f"invalid --memory-swap {swap!r}")
        if not req.memory and swap != -1:
            raise InvalidArgument("you should always set the memory limit when using "
                                  "the memoryswap limit")
        if swap != -1 and swap < req.memory:
            raise InvalidArgument("minimum memoryswap limit should be larger than the "
                                  "memory limit, see usage")
    if req.cpuset_cpus is not None:
        check_cpuset(req.cpuset_cpus)
    shm = req.shm_size
    if shm is not None and (not isinstance(shm, int) or not 0 < shm <= MAX_INT64):
        raise InvalidArgument(f"invalid --shm-size {shm!r}")
    pids = req.pids_limit
    if pids is not None and (not isinstance(pids, int) or pids > MAX_PIDS):
        raise InvalidArgument(f"invalid --pids-limit {pids}: at most {MAX_PIDS}, or -1")


def check_hostname(name):
    """RFC 1123 labels, at most 64 characters (sethostname's limit): no
    space or newline, which would break the container's /etc/hosts."""
    if not 0 < len(name) <= HOST_NAME_MAX or not all(_LABEL.match(p) for p in name.split(".")):
        raise InvalidArgument(f"invalid hostname '{name}': letters, digits, '-' and '.', "
                              f"at most {HOST_NAME_MAX} characters")


def check_user(user):
    """-u NAME|UID[:GROUP|GID]: a numeric id must fit a uid_t."""
    name, sep, group = str(user).partition(":")
    if not name or (sep and not group):
        raise InvalidArgument(f"invalid user '{user}': use UID[:GID] or NAME[:GROUP]")
    for part in (name, group):
        if part.isdigit() and (not part.isascii() or int(part) > MAX_ID):
            raise InvalidArgument(f"invalid user '{user}': ids are 0 to {MAX_ID}")


def check_env(item):
    """-e KEY[=VALUE]: a key, and no NUL anywhere."""
    key = item.partition("=")[0]
    if not key:
        raise InvalidArgument(f"invalid environment variable '{item}'")


def check_dns(server):
    """--dns: an IP address (the line goes into resolv.conf as it is)."""
    import ipaddress

    try:
        ipaddress.ip_address(server)
    except ValueError:
        raise InvalidArgument(f"invalid --dns '{server}': not an IP address") from None


# The options tmpfs itself takes (they go to mount(2) as its data), each
# with its value's form; anything else the kernel would refuse mid-start.
_TMPFS_OPTIONS = {"size": r"[0-9]+[kmgKMG%]?", "nr_blocks": r"[0-9]+[kmgKMG]?",
                  "nr_inodes": r"[0-9]+[kmgKMG]?", "mode": r"[0-7]{1,4}", "uid": r"[0-9]{1,10}",
                  "gid": r"[0-9]{1,10}",
                  "huge": r"never|always|within_size|advise|deny|force"}


def parse_tmpfs(spec):
    """'PATH[:OPTIONS]' -> (normalised absolute path, options); OPTIONS
    are tmpfs's own KEY=VALUE,... (size, nr_blocks, nr_inodes, mode, uid,
    gid, huge)."""
    path, _, opts = spec.partition(":")
    if not path.startswith("/"):
        raise InvalidArgument(f"invalid tmpfs '{spec}': the path must be absolute")
    for opt in opts.split(",") if opts else ():
        key, sep, value = opt.partition("=")
        form = _TMPFS_OPTIONS.get(key)
        if not sep or form is None or not re.fullmatch(form, value, re.ASCII) or (
                key in ("uid", "gid") and int(value) > MAX_ID):
            raise InvalidArgument(f"invalid tmpfs '{spec}': option '{opt}': use "
                                  f"{'|'.join(_TMPFS_OPTIONS)}=VALUE")
    return os.path.normpath(path), opts


def check_target(target, what):
    """A mount target inside the container that does not cover the root
    or one of bocker's confinement mounts."""
    target = os.path.normpath(target)
    if target.startswith("//"):
        target = "/" + target.lstrip("/")
    if target in _CONFINED_POINTS or any(target == t or target.startswith(t + "/")
                                         for t in _CONFINED_TREES):
        raise InvalidArgument(f"invalid {what}: {target} cannot be mounted over "
                              f"(it is {'the root' if target == '/' else 'bocker confinement'})")


MAX_CPU = 8191                # CONFIG_NR_CPUS' largest; a CPU past the host's is the kernel's refusal
MAX_GROUPS = 64              # --group-add values (the kernel takes 65536; nobody needs them)
MAX_LABELS = 1024             # labels per container (image's and run's together)
MAX_LABEL_BYTES = 64 << 10    # one key or value
_CPUSET = patterns.lazy(r"[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?)*\Z", re.ASCII)
_IPC_SYSCTLS = ("kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.")
_GROUP = patterns.lazy(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\Z", re.ASCII)


def check_cpuset(value):
    """--cpuset-cpus: '0-2,4' (the kernel's list form), each CPU one this
    host has (else the kernel refuses the write mid-start)."""
    count = os.cpu_count() or 1
    if not isinstance(value, str) or not _CPUSET.match(value):
        raise InvalidArgument(f"invalid --cpuset-cpus '{value}': use a list such as 0-2,4")
    for part in value.split(","):
        low, _, high = part.partition("-")
        if int(low) > int(high or low) or int(high or low) >= min(count, MAX_CPU + 1):
            raise InvalidArgument(f"invalid --cpuset-cpus '{value}': this host has "
                                  f"CPUs 0-{count - 1}")


def check_labels(labels, what):
    """Labels: a dict of str -> str, at most MAX_LABELS, each key non-empty,
    keys and values at most MAX_LABEL_BYTES, no NUL (an image's Labels are
    hostile input: this runs before they are stored)."""
    if not isinstance(labels, dict):
        raise InvalidArgument(f"invalid {what}: not a map of strings")
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"invalid {what}: more than {MAX_LABELS} labels")
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise InvalidArgument(f"invalid {what}: not a map of strings")
        if len(key) > MAX_LABEL_BYTES or len(value) > MAX_LABEL_BYTES:
            raise InvalidArgument(f"invalid {what}: a label longer than {MAX_LABEL_BYTES}")
        if "\0" in key or "\0" in value:
            raise InvalidArgument(f"invalid {what}: it contains a NUL byte")


def check_stop(stop_signal, stop_timeout):
    """--stop-signal (a name or number) and --stop-timeout (seconds, -1: wait forever)."""
    if stop_signal is not None:
        from bocker import units

        if not isinstance(stop_signal, str):
            raise InvalidArgument(f"invalid --stop-signal {stop_signal!r}")
        if units.parse_signal(stop_signal) == 0:
            raise InvalidArgument(f"invalid signal '{stop_signal}'")
    if stop_timeout is not None and (not isinstance(stop_timeout, int)
                                     or not -1 <= stop_timeout <= 1 << 31):
        raise InvalidArgument(f"invalid --stop-timeout {stop_timeout!r}")


def check_group(group):
    """--group-add: a gid or a group name (looked up in the container's /etc/group)."""
    numeric = isinstance(group, str) and group.isascii() and group.isdigit()
    if not isinstance(group, str) or not (
            (int(group) <= MAX_ID) if numeric else _GROUP.match(group)):
        raise InvalidArgument(f"invalid --group-add '{group}': a gid or a group name")


def check_namespaces(req):
    """--pid/--ipc/--uts: '' or host; what cannot go with them refused, as Docker does."""
    for flag in ("pid", "ipc", "uts"):
        value = getattr(req, flag)
        if value not in (None, "host"):
            raise InvalidArgument(f"invalid --{flag} '{value}': only 'host' is supported")
    if req.uts == "host" and req.hostname is not None:
        raise InvalidArgument("conflicting options: hostname and the UTS mode")
    if req.ipc == "host" and any(s.split("=")[0].startswith(_IPC_SYSCTLS) for s in req.sysctls):
        raise InvalidArgument("an IPC --sysctl is not allowed with --ipc host (it would "
                              "change the host's)")
    if req.userns == "auto" and (req.pid or req.ipc or req.uts):
        raise InvalidArgument("--userns auto cannot share the host's pid, ipc or uts "
                              "namespace")
