"""Integration fixtures: a real loop-mounted btrfs root, real cgroups,
and a leak check after every test.

Commands run through a bocker server of the session's own (its socket in
a private BOCKER_SERVER_DIR), which keeps pools (rootfs snapshots under
<root>/pool, network slots: bp* veths and pool-* leases) between tests:
those of a live server are not leaks, a dead owner's are; at the
session's end the servers are stopped and must leave no pool object.

The whole session shares one bocker root made by `bocker setup` under a
temporary directory (its own cgroup parent too), torn down at the end.
Every test is checked for what it left behind: mounts, loop devices,
subvolumes, cgroups, this session's links and nftables rules, leases,
container records, userns blocks, name claims, volumes, child processes and detached
monitors.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from bocker import hostsetup, ids, state
from bocker.kernel import cgroups, store
from bocker.net import ipam, network
from bocker.net import pool as netpool
from bocker.runtime import containers
from bocker.runtime import pool as rootfs_pool
from bocker.state import Paths

from netfixtures import NetWatch

if os.geteuid() != 0:
    pytest.skip("integration tests need root", allow_module_level=True)

BOCKER = os.path.join(os.path.dirname(sys.executable), "bocker")
# which path run_bocker tests: "server" ($BIN/bocker, the C client, through
# the warm server) or "direct" (the same client told BOCKER_NO_SERVER=1, so
# it execs the Python CLI); scripts/test.sh runs the suite both ways
CLI_MODE = os.environ.get("BOCKER_TEST_CLI", "server")
if CLI_MODE not in ("server", "direct"):
    raise SystemExit(f"BOCKER_TEST_CLI={CLI_MODE!r}: use server or direct")
if CLI_MODE == "direct":
    # for every bocker this session starts, run_bocker's or not (tests
    # that Popen $BIN/bocker themselves, in a pty, with a low rlimit...)
    os.environ["BOCKER_NO_SERVER"] = "1"
else:
    os.environ.pop("BOCKER_NO_SERVER", None)


# the session's own socket dir (0700): the suite never talks to a server
# another session or user started, and its servers are the session's to
# stop (scripts/cleanup-test-leftovers.sh knows the prefix)
SERVER_DIR = tempfile.mkdtemp(prefix="bocker-test-srv-")
os.environ["BOCKER_SERVER_DIR"] = SERVER_DIR


def is_c_client(path=BOCKER):
    """Whether path is the C client (an ELF file), not the Python script."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


@pytest.fixture(scope="session")
def paths():
    """A fresh bocker root on a loop btrfs, set up and torn down by bocker."""
    base = tempfile.mkdtemp(prefix="bocker-test-")
    os.environ["BOCKER_ROOT"] = root = os.path.join(base, "root")
    os.environ["BOCKER_CGROUP_PARENT"] = f"bocker-test-{os.getpid()}"
    p = Paths(root)
    failures = []
    # a bridge, subnet and nft table of the session's own
    tag = os.getpid() % 100000
    try:
        hostsetup.setup(p, size="4G", log=lambda *_: None, bridge=f"bkt{tag}",
                        # 10.200-249 is the sessions' range: tests that
                        # make bridges of their own stay outside it
                        subnet=f"10.{200 + tag % 50}.{tag % 250}.0/24")
        yield p
    finally:
        try:
            # before the root goes: the servers drain their pools on exit
            failures += stop_servers(SERVER_DIR)
            failures += _pool_leftovers(p)
        finally:
            if os.path.exists(root + ".setup.json"):
                hostsetup.teardown(p, containers.list_all(p), log=lambda *_: None)
            cgroups.driver().remove_parent()
            os.rmdir(base)
            shutil.rmtree(SERVER_DIR, ignore_errors=True)
    assert not failures, "bocker servers at the session's end: " + "; ".join(failures)


# ------------------------------------------------------------ servers

def is_server(pid):
    """Whether the live process pid is a bocker server (or one of its
    workers, which are its forks): its argv runs bocker-server or
    `python -m bocker.server.main`."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read(65536).decode(errors="replace").split("\0")
    except OSError:
        return False
    return any(os.path.basename(a) == "bocker-server" for a in argv[:2]) or \
        argv[1:3] == ["-m", "bocker.server.main"]


def stop_servers(directory, timeout=30.0):
    """SIGTERM every server whose .pid file is in directory and wait
    (pidfd, bounded) for it to exit; returns what went wrong, as text.
    A server that outlives the bound is killed (and reported)."""
    import glob
    import select
    import signal

    problems = []
    for pidfile in sorted(glob.glob(os.path.join(directory, "cli-*.sock.pid"))):
        try:
            with open(pidfile) as f:
                pid = int(f.read(32))
            fd = os.pidfd_open(pid)
        except (OSError, ValueError):
            continue        # gone meanwhile (it removes its .pid on exit)
        try:
            if not is_server(pid):
                continue    # a stale .pid naming another process by now
            os.kill(pid, signal.SIGTERM)
            if not select.select([fd], [], [], timeout)[0]:
                problems.append(f"server {pid} did not exit {timeout:.0f} s after SIGTERM")
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
    return problems


def _pool_leftovers(paths, timeout=20.0):
    """What the pools left once no server runs: pool entries, bp* veths
    on the session's bridge, pool-* leases (texts; [] when none).  The
    veths go with their netns, which the kernel removes asynchronously."""
    def left():
        links = sorted(n for n in _links(paths) if _pool_veth_pid(n) is not None)
        leases = sorted(ip for ip, owner in _lease_owners(paths).items()
                        if owner.startswith(ipam.POOL_OWNER_PREFIX))
        return _entries(paths.pool), links, leases

    wait_for(lambda: not any(left()), timeout)
    entries, links, leases = left()
    return ([f"pool entries left: {sorted(entries)}"] if entries else []) + \
        ([f"pool veths left: {links}"] if links else []) + \
        ([f"pool leases left: {leases}"] if leases else [])


def _pool_veth_pid(name):
    """The maker's PID of a pooled host veth (bp + 7 hex PID + 5 hex
    number, bocker.net.pool); None for any other name."""
    tail = name[len(netpool.VETH_PREFIX):]
    if not name.startswith(netpool.VETH_PREFIX) or len(tail) != 12:
        return None
    try:
        return int(tail[:7], 16)
    except ValueError:
        return None


def _lease_owners(paths):
    """{address: owner} of the root's leases (owner None if unreadable)."""
    out = {}
    for name in _entries(paths.leases):
        try:
            out[name] = os.readlink(os.path.join(paths.leases, name))
        except OSError:
            out[name] = None
    return out


class _Servers:
    """Memo of which PIDs are live bocker servers, for one snapshot."""

    def __init__(self):
        self.seen = {}

    def __call__(self, pid):
        if pid not in self.seen:
            self.seen[pid] = bool(pid) and is_server(pid)
        return self.seen[pid]


def _pool_entry_pid(name):
    """The owner PID a pool dir name carries (an entry, one being made or
    deleted, an owner file); None for a name of no owner."""
    entry = rootfs_pool.parse_entry(name)
    if entry:
        return entry[1]
    pid = rootfs_pool.parse_transient(name)
    if pid:
        return pid
    return rootfs_pool._owner_pid(name)


def run_bocker(*args, input=None, timeout=60, check=False, env=None):
    """Run the bocker CLI ($BIN/bocker, by the path CLI_MODE names);
    returns CompletedProcess with text output."""
    mode_env = {"BOCKER_NO_SERVER": "1"} if CLI_MODE == "direct" else {}
    proc = subprocess.run([BOCKER, *args], input=input, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **mode_env, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"bocker {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


def wait_for(predicate, timeout=10.0):
    """Poll predicate until true (True) or timeout seconds pass (False):
    a bound on a hang, never a timing the test asserts."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture(scope="session")
def cli_path(paths):
    """The CLI path this session tests, checked to be the one it claims: in
    server mode a command must really run in a server's worker (its
    `server fork` trace record, from another PID than the client's, and
    the server's .pid file), or the pass would silently test the
    fallback only.  Until $BIN/bocker is the C client there is no server
    path: the Python script runs as before, and a warning says so."""
    if CLI_MODE == "direct" or not is_c_client():
        if CLI_MODE == "server":
            import warnings

            warnings.warn(f"{BOCKER} is not the C client: the server path is not tested")
        return CLI_MODE
    from bocker.server import address

    sock = address.socket_path(os.path.realpath(os.path.dirname(sys.executable)))
    forks = []

    def served():
        # the first call may find no server: it starts one and falls back
        proc = run_bocker("version", env={"BOCKER_TRACE": "json"})
        forks[:] = [json.loads(line) for line in proc.stderr.splitlines()
                    if line.startswith("{") and '"server fork"' in line]
        return bool(forks) and os.path.exists(address.pid_path(sock))

    assert wait_for(served, timeout=20), f"no command ran in a bocker server ({sock})"
    with open(address.pid_path(sock)) as f:
        server_pid = int(f.read())
    assert forks[0]["pid"] != server_pid, "the command ran in the server itself"
    return CLI_MODE


@pytest.fixture
def bocker(paths, cli_path):
    return run_bocker


# ------------------------------------------------------------ leak check
#
# Other test sessions (other helpers, CI jobs) run on this machine at the
# same time with roots, bridges and containers of their own: every check
# below looks only at what this session's root, records and bridge name,
# so their objects never show up as our leaks.

def _mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted(p for p in points if p.startswith(prefix) and p != prefix)


def _loop_devices(base):
    """Loop devices backed by a file under base (other programs' are not ours)."""
    out = set()
    for dev in os.listdir("/sys/block"):
        backing = f"/sys/block/{dev}/loop/backing_file"
        if os.path.exists(backing):
            with open(backing) as f:
                path = f.read().strip()
            if path.startswith(base):
                out.add((dev, path))
    return out


def _cgroups():
    cg = cgroups.driver()
    groups = set()
    # v1: cpuset's too (a --cpuset-cpus container's group there)
    dirs = (cg._dirs("") + cg._optional_dirs("")
            if cg.version == 1 else [cg._dir("")])
    for d in dirs:
        if os.path.isdir(d):
            groups.update(os.path.join(d, e) for e in os.listdir(d)
                          if os.path.isdir(os.path.join(d, e)))
    return groups


def _entries(directory):
    """Names in directory ([] if it does not exist)."""
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def _session_network(paths):
    """(bridge, nft table) that `bocker setup` recorded for this root, or
    None before setup.  Read from network.json each time: a test may
    point it elsewhere for a moment, never across its end."""
    try:
        net = state.read_json(paths.network)
    except FileNotFoundError:
        return None
    return net["bridge"], net["table"]


def _links(paths, servers=None):
    """Host links this session made: its bridge, every link enslaved to
    it (the veths of its containers), the veth of every container it has
    a record of, and the names netfixtures.NetWatch derives from our PID;
    but a pooled veth (bp*) a live server made: the server's until it
    exits (with servers, a _Servers)."""
    names = os.listdir("/sys/class/net")
    net = _session_network(paths)
    bridge = net[0] if net else None
    watch = NetWatch()
    # NetWatch's bridges are <tag>b<n>: the 'b' keeps PID 123's tag from
    # matching PID 1234's bridges
    pid_names = (*watch.prefixes, watch.tag + "b")
    ours = {network.veth_name(c) for c in _entries(paths.containers) if ids.is_id(c, "ps")}
    out = set()
    for name in names:
        if name == bridge or name in ours or name.startswith(pid_names):
            out.add(name)
        elif bridge:
            try:
                master = os.readlink(f"/sys/class/net/{name}/master")
            except OSError:
                continue
            if os.path.basename(master) == bridge and not (
                    servers and servers(_pool_veth_pid(name))):
                out.add(name)
    return out


def _settled_links(paths, before, timeout=20.0):
    """Our host links, after giving the kernel time to remove the veths of
    network namespaces that just died: it does so asynchronously, one
    batch of namespaces after another, which takes seconds after fifty
    containers stop at once.  Returns as soon as nothing new is left (the
    timeout only stops a wait for a veth that really leaked)."""
    import time

    deadline = time.monotonic() + timeout
    links = _links(paths, _Servers())
    while links - before and time.monotonic() < deadline:
        time.sleep(0.02)
        links = _links(paths, _Servers())
    return links


def _canonical(value):
    """An nft JSON value without what changes on its own (handles, packet
    counters, the time left to an element), as comparable text."""
    if isinstance(value, dict):
        if "counter" in value and len(value) == 1:
            return "counter"
        return {k: _canonical(v) for k, v in value.items() if k not in ("handle", "expires")}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _nft_items(paths):
    """Every rule (per chain) and permanent set element (per set) of this
    session's `ip` and `bridge` tables, each numbered by its occurrence so
    that a second copy of a rule counts too.  Elements with a timeout are
    left out: nat.expel gives an element 1 ms to live instead of deleting
    it, and the kernel stops listing it when that runs out."""
    net = _session_network(paths)
    if net is None:
        return set()
    items, seen = set(), {}
    for family in ("ip", "bridge"):
        proc = subprocess.run(["nft", "-j", "list", "table", family, net[1]],
                              capture_output=True, text=True)
        if proc.returncode != 0:        # no table: nothing of ours in it
            continue
        for obj in json.loads(proc.stdout).get("nftables", []):
            if "rule" in obj:
                rule = obj["rule"]
                key = (family, "chain " + rule["chain"],
                       json.dumps(_canonical(rule["expr"]), sort_keys=True))
            elif "set" in obj:
                for elem in obj["set"].get("elem", ()):
                    if isinstance(elem, dict) and "timeout" in elem.get("elem", {}):
                        continue
                    key = (family, "set " + obj["set"]["name"],
                           json.dumps(_canonical(elem), sort_keys=True))
                    seen[key] = seen.get(key, 0) + 1
                    items.add((*key, seen[key]))
                continue
            else:
                continue
            seen[key] = seen.get(key, 0) + 1
            items.add((*key, seen[key]))
    return items


def _processes(root):
    """(our child processes, detached keepers of this root): a leaked
    foreground container is a child of ours; a detached one lives on under
    a bocker-monitor whose argv names its log under root; a restart still
    waiting is a `python -m bocker.runtime.restarter ROOT ...` process."""
    me, prefix = str(os.getpid()), root.rstrip("/") + "/"
    kids, monitors = set(), set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[1] == me and fields[0] != "Z":
                kids.add(pid)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue            # gone meanwhile
        keeper = os.path.basename(argv[0]) == "bocker-monitor" or argv[1:3] == [
            "-m", "bocker.runtime.restarter"]
        if keeper and any(a == root or a.startswith(prefix) for a in argv[1:]):
            monitors.add((pid, " ".join(argv).strip()))
    return kids, monitors


def pids_whose_argv(match):
    """PIDs of the processes whose argv (a list of bytes) match(argv) accepts."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if match(argv):
            out.append(int(pid))
    return out


# A live server's pool objects are its own, not a test's leaks (they come
# and go as its filler refills); a dead owner's are (a server drains its
# pools when it exits).  Tests that compare subvolumes or leases before
# and after a command use these.

def own_subvolumes(paths, servers=None):
    """The root's subvolumes (relative paths, sorted) but the pool
    entries of a live bocker server."""
    servers = servers or _Servers()
    pool_dir = os.path.relpath(paths.pool, paths.root) + "/"
    return [s for s in store.list_subvolumes(paths.root)
            if not (s.startswith(pool_dir) and servers(_pool_entry_pid(s[len(pool_dir):])))]


def own_leases(paths, servers=None):
    """The root's leased addresses but those of a live server's pools."""
    servers = servers or _Servers()
    out = []
    for ip, owner in _lease_owners(paths).items():
        if owner and owner.startswith(ipam.POOL_OWNER_PREFIX) and ipam.pool_owner_alive(owner) \
                and servers(int(owner[len(ipam.POOL_OWNER_PREFIX):].split("-")[0])):
            continue
        out.append(ip)
    return sorted(out)


def snapshot_kernel_objects(paths):
    """Everything a bocker command could leak, as comparable sets."""
    children, monitors = _processes(paths.root)
    servers = _Servers()
    return {
        "mounts": _mounts_under(paths.root),
        "loops": _loop_devices(os.path.dirname(paths.root)),
        "subvolumes": own_subvolumes(paths, servers),
        "cgroups": _cgroups(),
        "links": _links(paths, servers),
        "nft": _nft_items(paths),
        "pool": [n for n in _entries(paths.pool) if not servers(_pool_entry_pid(n))],
        "leases": own_leases(paths, servers),
        "hostports": _entries(os.path.join(paths.root, "hostports")),
        "macs": _entries(os.path.join(paths.root, "macs")),
        "containers": _entries(paths.containers),
        "userns": _entries(paths.userns),
        "names": _entries(paths.names),
        "volumes": _entries(paths.volumes),  # (their _data is in subvolumes too)
        "children": children,
        "monitors": monitors,
    }


@pytest.fixture(autouse=True)
def no_leaks(request, paths):
    """Fail a test that leaves a kernel object or a record behind."""
    before = snapshot_kernel_objects(paths)
    yield
    after = snapshot_kernel_objects(paths)
    after["links"] = _settled_links(paths, set(before["links"]))
    leaked = {k: sorted(set(after[k]) - set(before[k])) for k in before}
    leaked = {k: v for k, v in leaked.items() if v}
    assert not leaked, f"test leaked kernel objects: {leaked}"


@pytest.fixture
def cleanup(bocker):
    """IDs appended here are force-removed after the test."""
    made = []
    yield made
    for cid in made:
        bocker("rm", "-f", cid)


@pytest.fixture
def net(paths):
    """The session's bridge network record (bridge, subnet, gateway)."""
    return state.read_json(paths.network)


@pytest.fixture
def v2_driver(monkeypatch):
    """The v2 driver on the host's cgroup2 mount, made the driver every
    container of the test runs under (on a hybrid host it has few or none
    of memory/cpu/io: containers there run without those limits); skips
    where there is no cgroup2 mount."""
    mount = next((p for p, fstype, _ in cgroups.read_mounts() if fstype == "cgroup2"), None)
    if not mount:
        pytest.skip("no cgroup2 mount on this host")
    driver = cgroups.V2Driver(mount)
    monkeypatch.setattr(cgroups, "_driver", driver)
    yield driver
    driver.remove_parent()


# ------------------------------------------------------------ fixture modules
#
# Registered here so any module can ask for them by name (imported last:
# they import run_bocker from this module).  debian_image: the debian-gcc
# image the build tests compile in (debootstrap, cached on the host);
# built: the images and build cache a build test made, removed after it.
import buildfixtures  # noqa: E402

debian_rootfs, debian_image = buildfixtures.debian_rootfs, buildfixtures.debian_image
built = buildfixtures.built
