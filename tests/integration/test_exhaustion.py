"""Exhaustion and bad state: a full filesystem, a full subnet, too few
fds, a corrupt record, a user who is not root.  Each says what is wrong in
one line, exits non-zero (125 for a run that never started), loses
nothing and leaves nothing (the session's leak check, and each own root's
own checks at its teardown)."""
import contextlib
import json
import os
import resource
import subprocess

import pytest

from bocker import hostsetup
from bocker.cli.app import COMMAND_MODULES
from bocker.runtime import containers
from bocker.state import Paths

from conftest import (BOCKER, CLI_MODE, _pool_veth_pid, is_server, own_leases, own_subvolumes,
                      run_bocker, wait_for)
from conftest_pull import registries  # noqa: F401
from test_pull import pushed  # noqa: F401

TAG = os.getpid() % 100000


def one_line_error(proc, *words):
    """proc failed with one line on stderr holding every word (any case), no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr and len(err.splitlines()) == 1, proc.stderr
    for word in words:
        assert word.lower() in err.lower(), proc.stderr
    return err


# ------------------------------------------------------------ own roots

def _mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


@contextlib.contextmanager
def own_root(size="4G", subnet=None):
    """A bocker root of the test's own (loop btrfs of size, its own
    bridge on subnet), torn down after; whatever it holds then is a leak."""
    import tempfile

    base = tempfile.mkdtemp(prefix="bocker-test-x-")
    p = Paths(os.path.join(base, "root"))
    subnet = subnet or f"10.195.{TAG % 250}.0/24"
    hostsetup.setup(p, size=size, log=lambda *_: None, bridge=f"bkx{TAG}", subnet=subnet)
    try:
        yield p
        # (a live server's pool leases are its own: teardown takes the root from under them)
        assert own_leases(p) == []
        left = [r["Id"] for r in containers.list_all(p)]
        assert left == [], f"containers left in the test's root: {left}"
        veths = [n for n in os.listdir(f"/sys/class/net/bkx{TAG}/brif")
                 if not is_server(_pool_veth_pid(n) or 0)]  # (a live server's slots: its own)
        assert veths == [], "veths left on its bridge"
    finally:
        for r in containers.list_all(p):  # a failed test's, so teardown can go on
            with contextlib.suppress(Exception):
                containers.remove(p, r["Id"], force=True)
        hostsetup.teardown(p, containers.list_all(p), log=lambda *_: None)
        os.rmdir(base)
        assert not _mounted(p.root)
        assert f"bkx{TAG}" not in os.listdir("/sys/class/net")


def in_root(p, *args, **kw):
    """The bocker CLI on root p."""
    return run_bocker(*args, env={"BOCKER_ROOT": p.root}, **kw)


# ------------------------------------------------------------ not root

# Arguments each command parses (what they name need not exist: the
# check comes first).
ARGS = {"setup": [], "init": ["/tmp"], "images": [], "rmi": ["x"], "pull": ["busybox"],
        "login": ["-u", "u", "-p", "p"], "load": ["-i", "/nonexistent"],
        "save": ["x", "-o", "/tmp/x"], "run": ["busybox", "true"], "exec": ["x", "true"],
        "stop": ["x"], "kill": ["x"], "wait": ["x"], "start": ["x"], "restart": ["x"], "attach": ["x"], "ps": [],
        "logs": ["x"], "inspect": ["x"], "commit": ["x"], "rm": ["x"],
        "tag": ["x", "y"], "history": ["x"], "logout": [], "cp": ["x:/a", "/tmp/b"],
        "diff": ["x"], "export": ["x", "-o", "/tmp/x"], "import": ["/nonexistent"],
        "create": ["busybox", "true"], "rename": ["x", "y"], "top": ["x"],
        "stats": ["--no-stream"], "port": ["x"], "update": ["-m", "64m", "x"], "pause": ["x"],
        "unpause": ["x"], "info": [], "events": ["--until", "0s"],
        "volume": ["ls"], "system": ["df"], "container": ["prune", "-f"],
        "image": ["prune", "-f"], "build": ["/tmp"], "builder": ["prune", "-f"]}
NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]


def as_nobody(*args):
    return subprocess.run([*NOBODY, BOCKER, *args], capture_output=True, text=True,
                          timeout=60)


def test_not_root_says_so_for_every_command(paths):
    # a new command gets a line here (`version` reads no root: anyone may)
    assert set(ARGS) | {"version"} == set(COMMAND_MODULES)
    for command, args in [*ARGS.items(), ("system", ["prune", "-f"])]:
        proc = as_nobody(command, *args)
        one_line_error(proc, "needs root")
        assert proc.returncode == (125 if command in ("run", "create") else 1), (command, proc)
    for args in (["--help"], ["--version"], ["version"], ["ps", "--help"], ["run", "--help"],
                 ["system", "df", "--help"]):
        proc = as_nobody(*args)
        assert proc.returncode == 0 and proc.stdout and "root" not in proc.stderr, proc


# ------------------------------------------------------------ corrupt records

def _corrupt(path, how):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(b"\x00garbage{" if how == "garbage" else data[:len(data) // 2])


def test_corrupt_records_are_named_and_the_rest_works(paths, bocker):
    made = [bocker("run", "--name", f"crpt-{i}-{TAG}", "busybox", "true", check=True)
            for i in range(3)]
    assert made
    ids = {i: bocker("inspect", f"crpt-{i}-{TAG}", check=True) for i in range(3)}
    ids = {i: json.loads(p.stdout)[0]["Id"] for i, p in ids.items()}
    running = bocker("run", "-d", "--name", f"crpt-run-{TAG}", "busybox", "sleep", "600",
                     check=True).stdout.strip()
    image = bocker("commit", ids[2], "--name", f"crpt-img-{TAG}",
                   check=True).stdout.split()[-1]
    records = {cid: os.path.join(paths.container(cid), "container.json")
               for cid in (ids[0], ids[1], running)}
    _corrupt(records[ids[0]], "garbage")
    _corrupt(records[ids[1]], "half")
    _corrupt(records[running], "half")
    image_json = os.path.join(paths.image(image), "image.json")
    _corrupt(image_json, "half")

    ps = bocker("ps", "-a")
    assert ps.returncode == 0 and ids[2] in ps.stdout, ps
    for cid in (ids[0], ids[1], running):
        assert cid not in ps.stdout
        assert [line for line in ps.stderr.splitlines()
                if cid in line and records[cid] in line and "corrupt" in line], ps.stderr
    assert len(ps.stderr.splitlines()) == 3 and "Traceback" not in ps.stderr
    imgs = bocker("images")
    assert imgs.returncode == 0 and "busybox" in imgs.stdout and image not in imgs.stdout
    assert imgs.stderr.count("\n") == 1 and image in imgs.stderr and image_json in imgs.stderr

    # every other command goes on
    assert bocker("run", "--rm", "busybox", "true").returncode == 0
    assert bocker("inspect", ids[2], check=True)
    one_line_error(bocker("inspect", ids[0]), ids[0], "container.json", "corrupt")
    one_line_error(bocker("inspect", image), image, "image.json", "corrupt")
    # rm without -f: its record cannot say whether it runs
    one_line_error(bocker("rm", ids[1]), ids[1], "rm -f")
    assert bocker("rm", ids[2], check=True)

    # -f removes each: by the name it claimed, by ID, and a running one
    for ref in (f"crpt-0-{TAG}", ids[1], running):
        assert bocker("rm", "-f", ref, check=True)
    assert bocker("rmi", "-f", image, check=True)
    ps = bocker("ps", "-a", "-q", check=True)
    assert ps.stderr == "" and not set(ps.stdout.split()) & {ids[0], ids[1], ids[2], running}
    assert bocker("images", check=True).stderr == ""
    # the running one's monitor saw it killed and is gone too
    assert wait_for(lambda: not _monitor_of(paths, running))


def _monitor_of(paths, cid):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f"{cid}".encode() in f.read() and pid != str(os.getpid()):
                    return pid
        except OSError:
            pass
    return None


# ------------------------------------------------------------ a full filesystem

def _subvolumes(p):
    return set(own_subvolumes(p))  # (a live server's pool comes and goes)


@pytest.fixture(scope="session")
def pushed_or_none(request):
    """The registry's test images, or None where docker-registry or skopeo
    is missing (the rest of the test still runs).  Session-scoped, so the
    registries start before a test's leak check takes its first look."""
    try:
        return request.getfixturevalue("pushed")
    except pytest.skip.Exception:
        return None


def test_full_filesystem(tmp_path, pushed_or_none):
    pushed_images = pushed_or_none
    with own_root(size="128M") as p:
        archive = str(tmp_path / "busybox.tar")
        assert in_root(p, "save", "busybox", "-o", archive, check=True)
        before = _subvolumes(p)
        # a container writes until the filesystem is full: data, then
        # small files (inline in btrfs's metadata) until that is full too
        filler = in_root(p, "run", "-d", "busybox", "sh", "-c",
                         "dd if=/dev/zero of=/fill bs=1M; i=0; "
                         "while printf %2000s x > /f$i; do i=$((i+1)); done; sync; sleep 600",
                         check=True).stdout.strip()
        assert wait_for(lambda: "sleep" in _processes_of(filler), timeout=300)
        made = _subvolumes(p) - before

        run = in_root(p, "run", "--rm", "busybox", "true")
        assert run.returncode == 125, run
        one_line_error(run, "no space left on device")
        load = in_root(p, "load", "-i", archive)
        one_line_error(load, "no space left on device")
        if pushed_images:
            pulled = in_root(p, "pull", f"{pushed_images['host']}/bkp/single:v1")
            one_line_error(pulled, "no space left on device")
        # nothing half-made stays; no image is lost
        assert _subvolumes(p) - before == made
        # (but a live server's pool leases, which come and go)
        assert {os.readlink(os.path.join(p.leases, ip)) for ip in own_leases(p)} <= {filler}
        images = in_root(p, "images", "-q", check=True).stdout.split()
        assert len(images) == 1

        assert in_root(p, "rm", "-f", filler, check=True)
        # btrfs's cleaner frees a deleted subvolume's space a little later
        assert wait_for(lambda: in_root(p, "run", "--rm", "busybox", "true").returncode == 0,
                        timeout=120)
        assert in_root(p, "images", "-q", check=True).stdout.split() == images
        # (a run needs metadata only; a load needs the data space the cleaner frees)
        loads = []
        assert wait_for(lambda: loads.append(in_root(p, "load", "-i", archive))
                        or loads[-1].returncode == 0, timeout=120), loads[-1].stderr
        loaded = loads[-1].stdout.split()[-1]
        assert in_root(p, "run", "--rm", loaded, "true", check=True)
        assert in_root(p, "rmi", loaded, check=True)
        if pushed_images:
            pulled = in_root(p, "pull", f"{pushed_images['host']}/bkp/single:v1", check=True)
            image = pulled.stdout.split()[-1]
            assert in_root(p, "run", "--rm", image, "true", check=True)
            assert in_root(p, "rmi", image, check=True)


def _processes_of(cid):
    """The commands running in a container's cgroup (pids hierarchy)."""
    from bocker.kernel import cgroups

    out = []
    cg = cgroups.driver()
    for d in (cg._dirs(cid) if cg.version == 1 else [cg._dir(cid)]):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids = f.read().split()
        except OSError:
            continue
        for pid in pids:
            try:
                with open(f"/proc/{pid}/comm") as f:
                    out.append(f.read().strip())
            except OSError:
                pass
        if out:
            break
    return out


# ------------------------------------------------------------ a full subnet

def test_full_subnet():
    # a /29: 8 addresses less network, broadcast and gateway
    with own_root(subnet=f"10.194.{TAG % 250}.0/29") as p:
        keep = [in_root(p, "run", "-d", "busybox", "sleep", "600", check=True).stdout.strip()
                for _ in range(5)]
        leases = {ip: os.readlink(os.path.join(p.leases, ip)) for ip in os.listdir(p.leases)}
        assert sorted(leases.values()) == sorted(keep)

        full = in_root(p, "run", "--rm", "busybox", "true")
        assert full.returncode == 125, full
        one_line_error(full, "subnet is full", p.leases)
        assert sorted(in_root(p, "ps", "-a", "-q", check=True).stdout.split()) == sorted(keep)
        assert {ip: os.readlink(os.path.join(p.leases, ip))
                for ip in os.listdir(p.leases)} == leases
        assert in_root(p, "run", "--rm", "--network", "none", "busybox", "true", check=True)

        # one exits: the next run gets its address, even before its
        # monitor has finished it
        assert in_root(p, "stop", "-t", "0", keep[0], check=True)
        again = in_root(p, "run", "--rm", "busybox", "cat", "/etc/hosts", check=True)
        freed = next(ip for ip, cid in leases.items() if cid == keep[0])
        assert freed in again.stdout
        for cid in keep:
            assert in_root(p, "rm", "-f", cid, check=True)


# ------------------------------------------------------------ too few fds

def _with_nofile(n, *args):
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    # (through the path the session tests: run_bocker's environment)
    env = {**os.environ, **({"BOCKER_NO_SERVER": "1"} if CLI_MODE == "direct" else {})}
    return subprocess.run([BOCKER, *args], preexec_fn=limit, capture_output=True, text=True,
                          timeout=60, env=env)


def _fds(pid):
    """What each fd of pid is (pipe, socket, file path), as a sorted list."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        out.append((int(fd), target.split(":")[0] if ":[" in target else target))
    return sorted(out)


def _monitor_fds(paths, cid):
    pid = _monitor_of(paths, cid)
    return sorted(kind.replace(cid, "ID") for _, kind in _fds(pid))  # (their numbers vary)


def test_too_few_fds_fail_clearly_or_work(paths, bocker):
    worked = set()
    for n in range(8, 26, 2):
        for args in (["--rm", "busybox", "true"], ["--rm", "--network", "none", "busybox",
                                                   "true"]):
            proc = _with_nofile(n, "run", *args)
            if proc.returncode == 0:
                worked.add(n)
            else:
                assert proc.returncode == 125, proc
                one_line_error(proc, "too many open files")
    assert 8 not in worked and 24 in worked     # both sides were tried
    # a detached start at the least limit that works: the container gets
    # stdio only, the monitor what it gets with a normal limit
    n = min(m for m in range(8, 40) if _detached_works(m))
    low = _with_nofile(n, "run", "-d", "busybox", "sleep", "600").stdout.strip()
    normal = bocker("run", "-d", "busybox", "sleep", "600", check=True).stdout.strip()
    try:
        for cid in (low, normal):
            pid = json.loads(bocker("inspect", cid, check=True).stdout)[0]["State"]["Pid"]
            assert [fd for fd, _ in _fds(pid)] == [0, 1, 2]
        assert _monitor_fds(paths, low) == _monitor_fds(paths, normal)
    finally:
        bocker("rm", "-f", low, normal)


def _detached_works(n):
    proc = _with_nofile(n, "run", "-d", "busybox", "true")
    if proc.returncode != 0:
        one_line_error(proc, "too many open files")
        return False
    run_bocker("rm", "-f", proc.stdout.strip(), check=True)
    return True
