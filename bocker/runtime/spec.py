"""What a container runs: the request, and the pure functions that turn
it and the image's config into argv, environment, user and volume specs.
Nothing here writes a file or calls the shim (mounts.py does)."""
import os

from bocker.errors import InvalidArgument

# Docker's defaults: no memory limit and no cpu.shares write unless asked
# (p8952/bocker's 512 MB / 512 shares live on as $BOCKER_MEM_LIMIT and
# $BOCKER_CPU_SHARE); 0 means "none" in both, as in Docker's HostConfig.
DEFAULT_MEMORY = 0
DEFAULT_CPU_SHARES = 0
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# The resource and device flags of runtime/resources.py, each with its
# default (a tuple: a list field); a record from before them loads with these.
RESOURCE_DEFAULTS = {
    "memory_reservation": None, "memory_swappiness": None, "oom_kill_disable": False,
    "oom_score_adj": None, "cpu_period": None, "cpu_quota": None, "cpuset_mems": None,
    "cpu_rt_period": None, "cpu_rt_runtime": None, "blkio_weight": None,
    "blkio_weight_device": (), "device_read_bps": (), "device_write_bps": (),
    "device_read_iops": (), "device_write_iops": (), "kernel_memory": None,
    "cgroup_parent": None, "cgroupns": None, "devices": (), "device_cgroup_rules": (),
}


def has_resources(req):
    """True if req asks for any of RESOURCE_DEFAULTS' flags (the start
    path loads runtime/resources.py only then)."""
    # `is not None`: --memory-swappiness 0 and --oom-score-adj 0 are asked for
    for key in RESOURCE_DEFAULTS:
        value = getattr(req, key)
        if value is not None and value is not False and value != []:
            return True
    return False


class RunRequest:
    """Everything `bocker run` can be asked for, already validated by type.

    Stored in the container's record (as a dict) so `bocker start` can
    start the same container again.
    """

    FIELDS = ("image", "command", "name", "hostname", "env", "workdir", "user", "memory",
              "cpu_shares", "cpus", "pids_limit", "network", "remove", "privileged",
              "entrypoint", "volumes", "tmpfs", "dns", "ports", "cap_add", "cap_drop",
              "security_opt", "sysctls", "ulimits", "read_only", "userns", "restart",
              "mounts", "volumes_from", "publish_all", "expose", "ip", "mac_address",
              "extra_hosts", "memory_swap", "cpuset_cpus", "shm_size", "labels",
              "stop_signal", "stop_timeout", "init", "group_add", "pid", "ipc", "uts",
              "attach", "sig_proxy", "annotations", "dns_search", "dns_options", "domainname",
              *RESOURCE_DEFAULTS)

    def __init__(self, image, command=None, *, name=None, hostname=None, env=(),
                 workdir=None, user=None, memory=None, cpu_shares=None, cpus=None,
                 pids_limit=None, network="bridge", remove=False, privileged=False,
                 entrypoint=None, volumes=(), tmpfs=(), dns=(), ports=(), cap_add=(),
                 cap_drop=(), security_opt=(), sysctls=(), ulimits=(), read_only=False,
                 userns=None, restart="no", mounts=(), volumes_from=(), publish_all=False,
                 expose=(), ip=None, mac_address=None, extra_hosts=(), memory_swap=None,
                 cpuset_cpus=None, shm_size=None, labels=None, stop_signal=None,
                 stop_timeout=None, init=False, group_add=(), pid=None, ipc=None, uts=None,
                 attach=(), sig_proxy=True, annotations=None, dns_search=(), dns_options=(),
                 domainname=None, **resources):
        self.image, self.command, self.name = image, list(command or []), name
        self.hostname, self.env, self.workdir, self.user = hostname, list(env), workdir, user
        self.memory = DEFAULT_MEMORY if memory is None else memory
        self.cpu_shares = DEFAULT_CPU_SHARES if cpu_shares is None else cpu_shares
        self.cpus, self.pids_limit = cpus, pids_limit
        self.network, self.remove, self.privileged = network, remove, privileged
        self.entrypoint = entrypoint
        self.volumes, self.tmpfs = list(volumes), list(tmpfs)
        # --mount values and --volumes-from refs as given (bocker/volume)
        self.mounts, self.volumes_from = list(mounts), list(volumes_from)
        self.dns, self.ports = list(dns), [str(p) for p in ports]
        # confinement (security.py, capabilities.py): as the user gave them;
        # pids_limit None means bocker's default, -1 none
        self.cap_add, self.cap_drop = list(cap_add), list(cap_drop)
        self.security_opt, self.sysctls = list(security_opt), list(sysctls)
        self.ulimits, self.read_only = list(ulimits), bool(read_only)
        self.restart = restart or "no"  # --restart as given (restartpolicy.py reads it)
        # the network's Docker flags (runtime/networking.py checks them)
        self.publish_all, self.expose = bool(publish_all), list(expose)
        self.ip, self.mac_address = ip or None, mac_address or None
        self.extra_hosts = list(extra_hosts)
        # Docker's: memory_swap bytes (-1 unlimited, None: Docker's 2x memory),
        # cpuset_cpus as given ("0-2,4"), shm_size bytes (None: 64 MB),
        # labels {str: str} of the run (the image's are merged at create)
        self.memory_swap, self.cpuset_cpus, self.shm_size = memory_swap, cpuset_cpus, shm_size
        self.labels = dict(labels or {})
        self.stop_signal, self.stop_timeout = stop_signal, stop_timeout
        self.init, self.group_add = bool(init), [str(g) for g in group_add]
        # "host": share the host's namespace of that kind; None: its own
        self.pid, self.ipc, self.uts = pid or None, ipc or None, uts or None
        # -a: the streams an attached run relays (lower case; empty: all);
        # --sig-proxy: it forwards our signals; --annotation {str: str};
        # --dns-search/--dns-option: resolv.conf's search and options lines;
        # --domainname: the UTS domain name (runextras.py checks them all)
        self.attach, self.sig_proxy = [str(a).lower() for a in attach], bool(sig_proxy)
        self.annotations = dict(annotations or {})
        self.dns_search, self.dns_options = list(dns_search), list(dns_options)
        self.domainname = domainname or None
        # Docker's further resource and device flags (runtime/resources.py)
        for key in resources:
            if key not in RESOURCE_DEFAULTS:
                raise TypeError(f"RunRequest: unknown field {key}")
        for key, default in RESOURCE_DEFAULTS.items():
            value = resources.get(key, default)
            setattr(self, key, list(value) if isinstance(default, tuple) else value)
        from bocker.confine import userns as userns_mod

        self.userns = userns_mod.mode(userns)  # None: $BOCKER_USERNS, else host

    def check(self):
        """Refuse what cannot run before anything is made (one clear line)."""
        from bocker.confine import capabilities, security, userns
        from bocker.runtime import checks

        checks.check(self)
        if has_resources(self):
            from bocker.runtime import resources

            resources.check(self)
        capabilities.effective(self.cap_add, self.cap_drop, self.privileged)
        profile = security.parse_security_opts(self.security_opt)["seccomp"]
        if profile not in ("default", "unconfined"):
            from bocker.confine import seccomp

            seccomp.load_profile(profile)
        for item in self.sysctls:
            security.parse_sysctl(item, self.network)
        for item in self.ulimits:
            security.parse_ulimit(item)
        security.pids_limit(self.pids_limit)
        userns.check(self)
        if self.restart != "no":  # (the module is loaded for a policy only)
            from bocker.runtime import restartpolicy

            restartpolicy.check(self.restart, self.remove)

    def to_dict(self):
        """The request as the record stores it (JSON-safe, every field)."""
        return {f: getattr(self, f) for f in self.FIELDS}

    @classmethod
    def from_dict(cls, data):
        """The request a record stored.  A field the record's bocker did not
        know yet takes its default (userns: host, whatever $BOCKER_USERNS
        says now); a field this bocker does not know is dropped."""
        data = {k: v for k, v in data.items() if k in cls.FIELDS}
        data.setdefault("userns", "host")  # a record from before --userns
        return cls(data.pop("image"), data.pop("command", None), **data)


def limits_from_env(memory=None, cpu_shares=None, environ=None):
    """(memory, cpu_shares) as `bocker run` was given them, else from
    $BOCKER_MEM_LIMIT (megabytes, as p8952/bocker read it; returned as
    '<n>m' for units.parse_size) and $BOCKER_CPU_SHARE; None leaves
    RunRequest's defaults."""
    environ = os.environ if environ is None else environ
    if memory is None and environ.get("BOCKER_MEM_LIMIT"):
        memory = environ["BOCKER_MEM_LIMIT"] + "m"
    if cpu_shares is None and environ.get("BOCKER_CPU_SHARE"):
        try:
            cpu_shares = int(environ["BOCKER_CPU_SHARE"])
        except ValueError:
            raise InvalidArgument(f"invalid $BOCKER_CPU_SHARE "
                                  f"'{environ['BOCKER_CPU_SHARE']}'") from None
    return memory, cpu_shares


def build_argv(command, config, entrypoint=None):
    """The argv to exec: Entrypoint + Cmd, as Docker combines them.

    A single COMMAND with whitespace runs through /bin/sh -c, as
    p8952/bocker ran `bocker run img "sleep 5 && ps aux"`.
    """
    entry = list(entrypoint) if entrypoint is not None else list(config.get("Entrypoint") or [])
    if command and len(command) == 1 and not entry and any(c.isspace() for c in command[0]):
        return ["/bin/sh", "-c", command[0]]
    if entrypoint is not None and not command:
        return entry or ["/bin/sh"]
    cmd = list(command) or list(config.get("Cmd") or [])
    return entry + cmd if entry or cmd else ["/bin/sh"]


def build_env(image_env, user_env, hostname, home="/root"):
    """Image Env, then -e values, with PATH, HOSTNAME and HOME defaults."""
    env = {}
    for item in list(image_env) + list(user_env):
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable '{item}'")
        if not sep:  # `-e KEY` passes the caller's value, if any
            if key not in os.environ:
                continue
            value = os.environ[key]
        env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", hostname)
    env.setdefault("HOME", home)
    return [f"{k}={v}" for k, v in env.items()]


def parse_env_file(path):
    """KEY=VAL lines of an --env-file; blank lines and # comments skipped."""
    return _item_lines(path, "env file")


def _item_lines(path, what, limit=-1):
    """The stripped lines of an --env-file or --label-file (what), blank
    lines and # comments skipped; read up to limit bytes (-1: all)."""
    try:
        with open(path) as f:
            text = f.read(limit)
    except OSError as e:
        raise InvalidArgument(f"cannot read {what} {path}: {e.strerror}") from None
    return [ln.strip() for ln in text.splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def resolve_user(rootfs, user):
    """'-u' value (UID[:GID] or NAME[:GROUP]) -> (uid, gid, home), looked
    up in the container's own /etc/passwd and /etc/group."""
    if not user:
        return 0, 0, "/root"
    name, _, group = str(user).partition(":")
    uid = gid = None
    home = "/"
    for fields in _read_db(rootfs, "etc/passwd"):
        if len(fields) >= 6 and (fields[0] == name or fields[2] == name):
            uid, gid, home = int(fields[2]), int(fields[3]), fields[5]
            break
    if uid is None:
        if not name.isdigit():
            raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
        uid, gid = int(name), int(name) if not group else 0
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            match = [f for f in _read_db(rootfs, "etc/group") if len(f) > 2 and f[0] == group]
            if not match:
                raise InvalidArgument(f"unable to find group {group}")
            gid = int(match[0][2])
    return uid, gid, home


def resolve_groups(rootfs, groups):
    """--group-add values (gids or names in the container's /etc/group) -> gids."""
    gids = []
    table = None
    for group in groups:
        if group.isascii() and group.isdigit():
            gids.append(int(group))
            continue
        if table is None:
            table = {f[0]: int(f[2]) for f in _read_db(rootfs, "etc/group") if len(f) > 2}
        if group not in table:
            raise InvalidArgument(f"unable to find group {group}: no matching entries in "
                                  f"group file")
        gids.append(table[group])
    return gids


def parse_labels(items, files=()):
    """--label KEY=VAL (KEY alone: an empty value, as Docker) and
    --label-file lines (blank and # lines skipped) -> {key: value}."""
    out = {}
    # (bounded: a label file is small)
    for item in [line for path in files for line in _item_lines(path, "label file", 1 << 20)] \
            + list(items):
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label '{item}': empty name")
        out[key] = value
    return out


def _read_db(rootfs, rel):
    # The container's own file, read by the host: resolved inside the
    # rootfs (an /etc or /etc/passwd symlink cannot reach the host's), a
    # regular file only (a FIFO would hang us) and bounded (rootfs_read).
    from bocker.kernel import rootfs_read

    limit = 4 << 20     # bytes: far beyond any real passwd or group file
    max_id = 2 ** 32 - 2  # (uid_t)-1 means "unchanged" to the kernel
    try:
        data = rootfs_read.read_file(rootfs, rel, limit)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except rootfs_read.UnsafeFile as e:
        raise InvalidArgument(f"cannot read the container's /{rel}: {e.reason}") from None
    except OSError as e:
        raise InvalidArgument(f"cannot read the container's /{rel}: "
                              f"{os.strerror(e.errno)}") from None
    out = []
    for line in data.decode("utf-8", "replace").split("\n"):
        fields = line.split(":")
        # Field 2 is the uid (passwd) or gid (group), field 3 passwd's gid:
        # lines with anything but a decimal ID there are skipped, not fatal.
        ids = fields[2:4] if rel == "etc/passwd" else fields[2:3]
        if len(fields) > 2 and all(f.isascii() and f.isdigit() and int(f) <= max_id
                                   for f in ids):
            out.append(fields)
    return out


def parse_volume(spec):
    """'[NAME|/HOST:]/CONTAINER[:ro|rw]' -> (source, normalised container
    path, readonly): source is a host path (a bind), a volume name, or ''
    (an anonymous volume).  A relative host path is refused: it is neither
    a name nor a path bocker would make below wherever it was run."""
    from bocker.volume import parse

    m = parse.parse_volume(spec)
    return m.source, m.target, m.readonly
