"""The options of `bocker run` (and `bocker create`), grouped by what
they configure, and the RunRequest they make.

Each group is a list of click options; `container_options` applies them
all, so run and create take the same flags.  `request(image, command,
options)` turns the parsed options into a spec.RunRequest: the one place
where a flag's value becomes a request field.
"""
import click


def _apply(decorators):
    def wrap(f):
        for d in reversed(decorators):
            f = d(f)
        return f
    return wrap


# What runs and as whom: the process, its identity, its environment.
PROCESS = [
    click.option("--name", help="Name for the container."),
    # -h is the hostname, as Docker's (run and create take only --help)
    click.option("-h", "--hostname", help="Hostname (default: the container ID)."),
    click.option("-e", "--env", "env", multiple=True, help="KEY=VAL (or KEY to pass ours)."),
    click.option("--env-file", multiple=True, help="File of KEY=VAL lines."),
    click.option("-w", "--workdir", help="Working directory inside the container."),
    click.option("-u", "--user", help="UID[:GID] or NAME[:GROUP]."),
    click.option("--entrypoint", help="Override the image's entrypoint ('' clears it)."),
    click.option("-l", "--label", "labels", multiple=True, help="KEY=VAL metadata."),
    click.option("--label-file", multiple=True, help="File of KEY=VAL label lines."),
    click.option("--stop-signal", help="Signal that stops it (default SIGTERM, or the image's)."),
    click.option("--stop-timeout", type=int,
                 help="Seconds stop waits before SIGKILL (default 10; -1: forever)."),
    click.option("--init", is_flag=True,
                 help="Run a reaping init as PID 1 (signals forwarded, zombies reaped)."),
    click.option("--group-add", multiple=True, help="Supplementary group (name or gid)."),
    click.option("--pid", help="host: share the host's PID namespace."),
    click.option("--ipc", help="host: share the host's IPC namespace (and /dev/shm)."),
    click.option("--uts", help="host: share the host's UTS namespace (its hostname)."),
    click.option("--rm", "remove", is_flag=True, help="Remove the container when it exits."),
    click.option("--restart", default="no", show_default=True,
                 help="When it exits: no, always, unless-stopped, on-failure[:MAX_RETRIES]."),
    click.option("-a", "--attach", "attach", multiple=True, metavar="STDIN|STDOUT|STDERR",
                 help="The streams an attached run relays (repeatable; default all, stdin "
                 "with -i)."),
    # --sig-proxy=false too: the commands are boolflags.DockerBools
    click.option("--sig-proxy/--no-sig-proxy", default=True,
                 help="An attached run forwards the signals it gets (default true; "
                 "=false: it does not)."),
    click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE",
                 help="Metadata for the runtime (stored; inspect's HostConfig.Annotations)."),
]

# What it may use: cgroup limits and rlimits.
RESOURCES = [
    click.option("-m", "--memory",
                 help="Memory limit, e.g. 512m, 1.5g; 0: none (default none, or "
                 "$BOCKER_MEM_LIMIT in MB)."),
    click.option("--memory-swap",
                 help="Memory plus swap, e.g. 1g; -1: unlimited (default twice --memory)."),
    click.option("-c", "--cpu-shares", type=int,
                 help="CPU shares (relative weight; default none, or $BOCKER_CPU_SHARE)."),
    click.option("--cpuset-cpus", help="CPUs it may run on, e.g. 0-2,4."),
    click.option("--cpus", help="CPU quota in CPUs, e.g. 1.5."),
    click.option("--pids-limit", type=int,
                 help="Maximum number of processes (default 2048; -1 for no limit)."),
    click.option("--ulimit", "ulimits", multiple=True,
                 help="NAME=SOFT[:HARD], e.g. nofile=1024:2048."),
    # Docker's further cgroup and device flags (bocker/runtime/resources.py)
    click.option("--memory-reservation", help="Soft memory limit, e.g. 256m."),
    click.option("--memory-swappiness", type=int, help="Swappiness 0-100 (cgroup v1 only)."),
    click.option("--oom-kill-disable", is_flag=True,
                 help="Disable the OOM killer (cgroup v1 only)."),
    click.option("--oom-score-adj", type=int, help="OOM score adjustment, -1000 to 1000."),
    click.option("--cpu-period", type=int, help="CFS period in microseconds."),
    click.option("--cpu-quota", type=int, help="CFS quota in microseconds (-1: none)."),
    click.option("--cpuset-mems", help="Memory nodes it may use, e.g. 0-1."),
    click.option("--cpu-rt-period", type=int, help="Real-time period in microseconds."),
    click.option("--cpu-rt-runtime", type=int, help="Real-time runtime in microseconds."),
    click.option("--blkio-weight", type=int, help="Block I/O weight, 10-1000."),
    click.option("--blkio-weight-device", multiple=True, help="DEVICE:WEIGHT."),
    click.option("--device-read-bps", multiple=True, help="DEVICE:RATE, e.g. /dev/vda:1mb."),
    click.option("--device-write-bps", multiple=True, help="DEVICE:RATE."),
    click.option("--device-read-iops", multiple=True, help="DEVICE:IOPS."),
    click.option("--device-write-iops", multiple=True, help="DEVICE:IOPS."),
    click.option("--kernel-memory", help="Deprecated by Docker: accepted, no effect."),
    click.option("--cgroup-parent",
                 help="Parent cgroup: relative (below bocker's parent group) or absolute."),
    click.option("--cgroupns", type=click.Choice(["host", "private"]),
                 help="private: its own cgroup namespace (default); host: the host's."),
    click.option("--device", "devices", multiple=True,
                 help="HOST[:CONTAINER[:PERMS]], e.g. /dev/loop3:/dev/loop3:rw."),
    click.option("--device-cgroup-rule", "device_cgroup_rules", multiple=True,
                 help="'TYPE MAJOR:MINOR PERMS' allowed in the devices cgroup, e.g. 'c 7:* rwm'."),
]

# How it reaches the network.
def _network_mode(ctx, param, value):
    from bocker.runtime import networking

    try:
        return networking.check_mode(value)
    except Exception as e:
        raise click.BadParameter(str(e).split(": ", 1)[-1]) from None


NETWORK = [
    click.option("--network", "--net", "network", default="bridge", show_default=True,
                 callback=_network_mode,
                 help="bridge: own address on bocker's bridge; none: only lo; "
                 "host: the host's network; container:NAME: that container's."),
    click.option("-p", "--publish", "ports", multiple=True,
                 help="[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|udp|sctp]; "
                 "no HOST_PORT: any free one."),
    click.option("-P", "--publish-all", "publish_all", is_flag=True,
                 help="Publish every exposed port on a free host port."),
    click.option("--expose", multiple=True, help="Expose PORT[-END][/PROTO] (for -P)."),
    click.option("--ip", help="The container's address on bocker's bridge subnet."),
    click.option("--mac-address", help="The container's MAC address (eth0)."),
    click.option("--add-host", "extra_hosts", multiple=True,
                 help="NAME:IP (or NAME:host-gateway, the bridge's address) in /etc/hosts."),
    click.option("--dns", multiple=True, help="DNS server for the container's resolv.conf."),
    click.option("--dns-search", multiple=True,
                 help="DNS search domain for its resolv.conf ('.': none)."),
    click.option("--dns-option", "--dns-opt", "dns_options", multiple=True,
                 help="resolv.conf option, e.g. ndots:2, edns0."),
    click.option("--domainname", help="The container's NIS (UTS) domain name."),
]

# What its filesystem holds beyond the image.
STORAGE = [
    click.option("-v", "--volume", "volumes", multiple=True,
                 help="[NAME|/HOST:]/CONTAINER[:ro|rw|nocopy]: a named volume (made if "
                 "missing), a host path, or (/CONTAINER alone) an anonymous volume."),
    click.option("--mount", "mounts", multiple=True,
                 help="type=volume|bind|tmpfs,source=...,target=...[,readonly,...] "
                 "(Docker's syntax)."),
    click.option("--volumes-from", "volumes_from", multiple=True,
                 help="CONTAINER[:ro|rw]: its volumes and binds, at the same paths."),
    click.option("--tmpfs", multiple=True, help="PATH[:OPTIONS] tmpfs mount."),
    click.option("--shm-size", help="Size of /dev/shm, e.g. 256m (default 64m)."),
    click.option("--read-only", is_flag=True,
                 help="Mount the container's root filesystem read-only."),
]

# Its confinement (bocker.confine).
SECURITY = [
    click.option("--privileged", is_flag=True,
                 help="Turn confinement off: every capability, no seccomp, /proc and /sys "
                 "as they are."),
    click.option("--cap-add", multiple=True, help="Add a capability (e.g. NET_ADMIN, ALL)."),
    click.option("--cap-drop", multiple=True, help="Drop a capability (e.g. CHOWN, ALL)."),
    click.option("--security-opt", multiple=True,
                 help="seccomp=unconfined|PROFILE.json, no-new-privileges (always on)."),
    click.option("--sysctl", "sysctls", multiple=True,
                 help="Namespaced sysctl KEY=VALUE (net.*, kernel.shm*, kernel.msg*, "
                 "kernel.sem, fs.mqueue.*)."),
    click.option("--userns", type=click.Choice(["auto", "host", ""]), default=None,
                 help="auto: root in the container is an unprivileged host uid (its own "
                 "65536 ids, an idmapped rootfs); host: the host's ids (default, or "
                 "$BOCKER_USERNS)."),
]

# Where its image comes from (ensure_image consumes these before request()).
IMAGE = [
    click.option("--pull", "pull", type=click.Choice(["missing", "always", "never"]),
                 default="missing", show_default=True,
                 help="Pull the image first: missing (if not here), always, never."),
    click.option("--platform", metavar="OS/ARCH[/VARIANT]",
                 help="The platform to pull (and to accept a local image of)."),
    click.option("-q", "--quiet", is_flag=True, help="No pull progress (nor 'Unable to find')."),
    click.option("--disable-content-trust", is_flag=True, default=True,
                 help="Accepted as Docker's: bocker has no content trust, it is always off."),
]

# Docker's boolean flags of these groups that take =BOOL (boolflags.DockerBools)
BOOL_FLAGS = {"--sig-proxy": ("--sig-proxy", "--no-sig-proxy"),
              "--disable-content-trust": ("--disable-content-trust",
                                          "--disable-content-trust")}

container_options = _apply(PROCESS + RESOURCES + NETWORK + STORAGE + SECURITY + IMAGE)


def take_pull(options):
    """The IMAGE group's values (policy, platform), taken out of options
    (a dict of every container_options value) before request(); -q is
    taken by take_quiet, --disable-content-trust dropped (always off)."""
    options.pop("disable_content_trust", None)
    return options.pop("pull", None), options.pop("platform", None)


def take_quiet(options):
    """run's/create's -q (no pull output), taken out of options."""
    return bool(options.pop("quiet", False))


def ensure_image(paths, image, policy=None, platform=None, quiet=False):
    """Docker's `--pull` for run and create: pull IMAGE if the policy says
    so, its progress on stderr (stdout stays the container's; -q: none).
    A bad policy or platform is a RunRefused (125)."""
    from bocker.errors import InvalidArgument, RunRefused
    from bocker.image import autopull

    def say(text):
        click.echo(text, err=True)

    try:
        autopull.check_policy(policy)
        if platform:
            from bocker.image import platforms

            platforms.parse_platform(platform)
    except InvalidArgument as e:
        raise RunRefused(str(e)) from None
    def progress():  # the printer, imported only when a pull happens
        from bocker.cli.images import _Lines, _Quiet

        return _Quiet() if quiet else _Lines(say)

    autopull.ensure(paths, image, policy, platform=platform, progress=progress,
                    say=None if quiet else say)


def request(image, command, options):
    """The spec.RunRequest of IMAGE, COMMAND and the parsed options (a
    dict of every container_options value; consumed)."""
    from bocker import units
    from bocker.runtime import spec

    o = options
    take_pull(o)  # ensure_image's (for a caller that did not take them)
    take_quiet(o)
    from bocker.runtime import runextras
    env = [item for path in o.pop("env_file") for item in spec.parse_env_file(path)]
    env += list(o.pop("env"))
    memory, cpu_shares = spec.limits_from_env(o.pop("memory"), o.pop("cpu_shares"))
    cpus, entrypoint = o.pop("cpus"), o.pop("entrypoint")
    swap, shm = o.pop("memory_swap"), o.pop("shm_size")
    labels = spec.parse_labels(o.pop("labels"), o.pop("label_file"))
    attach = runextras.parse_attach(o.pop("attach"))
    annotations = runextras.parse_annotations(o.pop("annotations"))
    reservation, kmem = o.pop("memory_reservation"), o.pop("kernel_memory")
    req = spec.RunRequest(
        image, list(command), env=env,
        # -m 0 is Docker's "no limit"; 1.5g is 1.5 GiB
        memory=units.parse_size(memory, "b", zero=True) if memory else None,
        memory_swap=(-1 if str(swap).strip() == "-1" else units.parse_size(swap, "b"))
        if swap else None,
        shm_size=units.parse_size(shm, "b") if shm else None, labels=labels,
        memory_reservation=units.parse_size(reservation, "b", zero=True) if reservation
        else None, kernel_memory=units.parse_size(kmem, "b", zero=True) if kmem else None,
        attach=attach, annotations=annotations,
        cpu_shares=cpu_shares, cpus=units.parse_cpus(cpus) if cpus else None,
        # --entrypoint '' clears the image's entrypoint, as Docker's does
        entrypoint=None if entrypoint is None else [entrypoint] if entrypoint else [],
        **o)
    if req.oom_kill_disable and not req.memory:  # Docker's warning too
        click.echo("bocker: warning: disabling the OOM killer on a container without a "
                   "-m/--memory limit may be dangerous", err=True)
    if req.kernel_memory is not None:  # Docker's deprecation: kept for inspect, never written
        click.echo("bocker: warning: --kernel-memory is deprecated (as in Docker) and has "
                   "no effect", err=True)
    return req
