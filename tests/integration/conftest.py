"""Integration fixtures: a real loop-mounted btrfs root, real cgroups,
and a leak check after every test.

The whole session shares one bocker root made by `bocker setup` under a
temporary directory (its own cgroup parent too), torn down at the end.
Every test is checked for what it left behind: mounts, loop devices,
subvolumes, cgroups, veths, network namespaces and processes.
"""
import os
import subprocess
import sys
import tempfile

import pytest

from bocker import hostsetup
from bocker.kernel import cgroups, store
from bocker.state import Paths

if os.geteuid() != 0:
    pytest.skip("integration tests need root", allow_module_level=True)

BOCKER = os.path.join(os.path.dirname(sys.executable), "bocker")


@pytest.fixture(scope="session")
def paths():
    """A fresh bocker root on a loop btrfs, set up and torn down by bocker."""
    base = tempfile.mkdtemp(prefix="bocker-test-")
    os.environ["BOCKER_ROOT"] = root = os.path.join(base, "root")
    os.environ["BOCKER_CGROUP_PARENT"] = f"bocker-test-{os.getpid()}"
    p = Paths(root)
    # a bridge, subnet and nft table of the session's own
    tag = os.getpid() % 100000
    try:
        hostsetup.setup(p, size="4G", log=lambda *_: None, bridge=f"bkt{tag}",
                        subnet=f"10.{200 + tag % 50}.{tag % 250}.0/24")
        yield p
    finally:
        if os.path.exists(root + ".setup.json"):
            hostsetup.teardown(p, log=lambda *_: None)
        cgroups.driver().remove_parent()
        os.rmdir(base)


def run_bocker(*args, input=None, timeout=60, check=False, env=None):
    """Run the bocker CLI; returns CompletedProcess with text output."""
    proc = subprocess.run([BOCKER, *args], input=input, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"bocker {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


@pytest.fixture
def bocker(paths):
    return run_bocker


# ------------------------------------------------------------ leak check

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
    dirs = cg._dirs("") if cg.version == 1 else [cg._dir("")]
    for d in dirs:
        if os.path.isdir(d):
            groups.update(os.path.join(d, e) for e in os.listdir(d)
                          if os.path.isdir(os.path.join(d, e)))
    return groups


def _links():
    return set(os.listdir("/sys/class/net"))


def _settled_links(before, timeout=20.0):
    """Host links, after giving the kernel time to remove the veths of
    network namespaces that just died: it does so asynchronously, one
    batch of namespaces after another, which takes seconds after fifty
    containers stop at once.  Returns as soon as nothing new is left."""
    import time

    deadline = time.monotonic() + timeout
    links = _links()
    while links - before and time.monotonic() < deadline:
        time.sleep(0.02)
        links = _links()
    return links


def _children():
    """Our own child processes (a leaked container would be one)."""
    me = str(os.getpid())
    kids = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] != "Z":
                kids.add(pid)
    return kids


def snapshot_kernel_objects(paths):
    """Everything a bocker command could leak, as comparable sets."""
    return {
        "mounts": _mounts_under(paths.root),
        "loops": _loop_devices(os.path.dirname(paths.root)),
        "subvolumes": store.list_subvolumes(paths.root),
        "cgroups": _cgroups(),
        "links": _links(),
        "children": _children(),
    }


@pytest.fixture(autouse=True)
def no_leaks(request, paths):
    """Fail a test that leaves a kernel object behind."""
    before = snapshot_kernel_objects(paths)
    yield
    after = snapshot_kernel_objects(paths)
    after["links"] = _settled_links(set(before["links"]))
    leaked = {k: sorted(set(after[k]) - set(before[k])) for k in before}
    leaked = {k: v for k, v in leaked.items() if v}
    assert not leaked, f"test leaked kernel objects: {leaked}"
