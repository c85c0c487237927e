"""Fault injection: every named step of run, exec, commit, pull, load, rm
and setup (bocker.faults.STEPS), made to fail or to kill bocker there
(BOCKER_FAULT=STEP:fail|kill), must leave nothing held and every record
whole or absent.

After each faulted command the next ordinary commands must set things
right: `bocker ps -a` finishes a record whose creator or keeper died
(records.keeper_gone, finish.reap_orphan) and `rm` removes it; what a
killed removal leaves has no record any more, and `system prune` must
find it.  The conftest leak check (mounts, loops, subvolumes, cgroups,
links, nft, leases, records, id blocks, processes) then runs after every
case.  The matrix is built from STEPS, so a new step is tested without
anyone remembering to add it.
"""
import json
import os
import signal
import subprocess

import pytest

from bocker import faults, state
from bocker.runtime import records

from conftest import pids_whose_argv, run_bocker, wait_for
from conftest_pull import Layout, busybox_layer, push, registries  # noqa: F401

UNKNOWN = records.UNKNOWN_EXIT


def cases(command, skip=()):
    """(step, action) for every step of command, both actions."""
    return [pytest.param(step, action, id=f"{step}:{action}")
            for step, commands in faults.STEPS.items() if command in commands
            and step not in skip for action in faults.ACTIONS]


def faulted(step, action, *args, env=None, timeout=60):
    """Run `bocker ARGS` with the fault; returns the CompletedProcess."""
    return run_bocker(*args, env={**(env or {}), "BOCKER_FAULT": f"{step}:{action}"},
                      timeout=timeout)


def assert_fired(proc, step, action):
    """The fault happened where asked: killed by SIGKILL, or one line and
    a non-zero exit."""
    if action == "kill":
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
    else:
        assert proc.returncode != 0, proc.stdout
        assert proc.stderr == f"bocker: fault injected at {step}\n", proc.stderr


def assert_records_whole(root):
    """Every JSON file under root (outside rootfs trees) parses: records are
    replaced atomically, never left half-written."""
    checked = 0
    for dirpath, dirnames, filenames in os.walk(root):
        if "rootfs" in dirnames:
            dirnames.remove("rootfs")
        for name in filenames:
            if name.endswith(".json"):
                with open(os.path.join(dirpath, name), "rb") as f:
                    data = f.read()
                try:
                    json.loads(data)
                except ValueError:
                    raise AssertionError(f"torn JSON {dirpath}/{name}: {data[:80]!r}") from None
                checked += 1
    assert not [f for f in os.listdir(root) if ".tmp." in f], "temp files at the root"
    return checked


def stored_records(paths):
    """{container ID: stored container.json} as on disk (not loaded: loading finishes orphans)."""
    out = {}
    for cid in os.listdir(paths.containers):
        try:
            out[cid] = records.read_stored(paths, cid)
        except (FileNotFoundError, ValueError):
            continue
    return out


# A create killed between its directory and its record leaves a directory
# no listing shows: `system prune` must find it (and only then).
RECORDLESS = {"create.claim_name", "create.snapshot", "create.pin_profile",
              "create.allocate_ids", "create.save_record"}


def settle(paths, before, step, action):
    """What the next commands do after a faulted one: `ps -a` (finishes
    any container whose keeper died), then check each new record is
    truthful and remove it; then what only a prune finds."""
    from bocker.runtime import prune

    run_bocker("ps", "-a", check=True)
    new = {cid: r for cid, r in stored_records(paths).items() if cid not in before}
    for cid, record in new.items():
        st = record["State"]
        assert st["Status"] == "exited" and not st["Running"], (cid, st)
        try:  # whoever reaped it saw its end (`true`'s 0, or the child's failed step)
            seen = state.read_json(records.exit_path(paths, cid))["ExitCode"]
        except FileNotFoundError:
            seen = UNKNOWN  # nobody did, and the record says so
        assert st["ExitCode"] == seen, (cid, st, seen)
        run_bocker("rm", cid, check=True)
    left = set(os.listdir(paths.containers)) - before
    found = prune.prune_leftovers(paths)
    if action == "kill" and step in RECORDLESS:
        # the directory, then the id block and name claim it may have got
        assert len(left) == 1 and found[0] == f"container directory {left.pop()}", found
        assert all(line.startswith(("userns block", "name ")) for line in found[1:]), found
    else:
        assert found == [], found


def wait_gone(pid, start_time):
    """Wait until pid (started at start_time) has exited."""
    assert wait_for(lambda: not records.alive(pid, start_time), timeout=20), pid


def wait_keeper(paths, cid):
    """Wait until cid's monitor and the finish it execs are gone (a record
    not saved running names the monitor by its cmdline only)."""
    assert wait_for(lambda: not monitors_of(cid), timeout=20)
    st = stored_records(paths).get(cid, {}).get("State", {})
    if st.get("Running"):
        wait_gone(st["RunnerPid"], st["RunnerStartTime"])
    else:  # the finish the monitor execs: its argv names the container
        assert wait_for(lambda: not finishers_of(cid), timeout=20)


def finishers_of(cid):
    """PIDs of `python -m bocker.runtime.finish ROOT cid` processes."""
    return pids_whose_argv(lambda argv: b"bocker.runtime.finish" in argv
                            and cid.encode() in argv)


def monitors_of(cid):
    """PIDs of bocker-monitor processes keeping cid."""
    return pids_whose_argv(lambda argv: os.path.basename(argv[0]) == b"bocker-monitor"
                            and any(cid.encode() in a for a in argv))


# ------------------------------------------------------------------ run

# every kind of resource a start takes: name, id block, lease, veth, guard, port
RUN = ("--name", f"faulted-{os.getpid()}", "--userns=auto",
       "-p", f"127.0.0.1:{20000 + os.getpid() % 10000}:80")


# Up to the clone a detached start takes the same steps as an attached
# one; from there on its container lives under a monitor, whose finish
# takes the finish.* steps; run.* are an attached run's own.
_SAME_UNTIL_CLONE = {s for s in faults.STEPS if s.startswith("create.")} | {
    "start.user_and_env", "start.make_workdir", "start.lease_address", "start.container_mounts",
    "start.forget_previous_end", "start.create_cgroup"}
RUN_CASES = [pytest.param(*p.values, "attached", id=p.id + "-attached") for p in cases("run")] + [
    pytest.param(*p.values, "detached", id=p.id + "-detached")
    for p in cases("run", skip=_SAME_UNTIL_CLONE) if not p.values[0].startswith("run.")]


@pytest.mark.parametrize("step,action,mode", RUN_CASES)
def test_run(paths, step, action, mode):
    detached = mode == "detached"
    before = set(os.listdir(paths.containers))
    proc = faulted(step, action, "run", *(("-d",) if detached else ()), *RUN, "busybox",
                   "true")
    if detached and step.startswith("finish."):
        # the monitor's `python -m bocker.runtime.finish` hits it, not the CLI
        assert proc.returncode == 0, proc.stderr
        cid = proc.stdout.strip()
        wait_keeper(paths, cid)
        assert stored_records(paths)[cid]["State"]["Running"]  # finish never saved it
    else:
        assert_fired(proc, step, action)
    # a container the start left behind exits under its monitor (attached
    # too: a killed client's container is the monitor's to finish)
    for cid in set(os.listdir(paths.containers)) - before:
        wait_keeper(paths, cid)
    settle(paths, before, step, action)
    assert_records_whole(paths.root)


# ------------------------------------------------------------------ exec

@pytest.fixture(scope="module")
def sleeper(paths):
    """A detached container that runs until removed: (ID, its PID)."""
    cid = run_bocker("run", "-d", "busybox", "sleep", "1000", check=True).stdout.strip()
    yield cid
    run_bocker("rm", "-f", cid, check=True)


def _procs(paths, cid):
    from bocker.kernel import cgroups

    cg = cgroups.driver()
    d = cg._dir(cid) if cg.version == 2 else cg._dirs(cid)[0]
    with open(os.path.join(d, "cgroup.procs")) as f:
        return f.read().split()


@pytest.mark.parametrize("step,action", cases("exec"))
def test_exec(paths, sleeper, step, action):
    proc = faulted(step, action, "exec", sleeper, "true")
    assert_fired(proc, step, action)
    record = json.loads(run_bocker("inspect", sleeper, check=True).stdout)[0]
    assert record["State"]["Running"]  # a failed exec never touches its container
    # nothing of the exec is left in the container's cgroup: only its init
    assert wait_for(lambda: _procs(paths, sleeper) == [str(record["State"]["Pid"])]), \
        _procs(paths, sleeper)
    assert_records_whole(paths.root)


# ------------------------------------------------------------------ commit

def _image_ids(paths):
    return {e for e in os.listdir(paths.images) if e.startswith("img_")}


def remove_new_images(paths, before):
    """rmi every image made since before; there must be no half-made one."""
    from bocker.image import images

    for entry in _image_ids(paths) - before:
        assert os.path.exists(os.path.join(paths.images, entry, "image.json")), \
            f"an image directory without its record: {entry}"
        images.remove(paths, entry)


# steps that are themselves the deleting of what is left: failing there
# leaves it for prune, as a kill does
CLEANUP = {"images.replace_rootfs.delete"}


def after_image_fault(paths, before, step, action):
    """An image command cut short: its image is whole or absent; what a
    kill left only `image prune` finds (a failure undoes it all itself);
    then nothing half-made is left."""
    remove_new_images(paths, before)
    out = run_bocker("image", "prune", "-f", check=True).stdout
    if action == "fail" and step not in CLEANUP:
        assert "Released leftovers" not in out, out
    assert [e for e in os.listdir(paths.images) if not e.startswith("img_")] == []
    assert os.listdir(os.path.join(paths.root, "tmp")) == [] \
        if os.path.isdir(os.path.join(paths.root, "tmp")) else True
    assert_layer_store_whole(paths)


@pytest.mark.parametrize("step,action", cases("commit"))
def test_commit(paths, sleeper, step, action):
    before = _image_ids(paths)
    proc = faulted(step, action, "commit", sleeper, "--name", "faults-commit:1")
    assert_fired(proc, step, action)
    assert_records_whole(paths.root)
    after_image_fault(paths, before, step, action)


@pytest.fixture(scope="module")
def into(paths, sleeper):
    """An image that `commit CONTAINER IMAGE` replaces the content of."""
    run_bocker("commit", sleeper, "--name", "faults-into:1", check=True)
    yield "faults-into:1"
    run_bocker("rmi", "faults-into:1", check=True)


@pytest.mark.parametrize("step,action", cases("commit-into"))
def test_commit_into(paths, sleeper, into, step, action):
    before = _image_ids(paths)
    proc = faulted(step, action, "commit", sleeper, into)
    assert_fired(proc, step, action)
    assert_records_whole(paths.root)
    after_image_fault(paths, before, step, action)
    # the image is whole: its old content or its new
    assert run_bocker("run", "--rm", "--network", "none", into, "true").returncode == 0


# ------------------------------------------------------------------ pull, load

@pytest.fixture(scope="module")
def pushed(registries, tmp_path_factory):
    """An image of two layers in the local registry."""
    lay = Layout(str(tmp_path_factory.mktemp("faults") / "oci"))
    lay.tag(lay.image([busybox_layer("faults"), busybox_layer("faults-top")]), "t")
    ref = f"{registries.plain}/bkp/faults:v1"
    push(lay.dir, "t", ref)
    return ref


def assert_layer_store_whole(paths):
    """Each stored layer has its record and subvolume, nothing half-made
    is left (temp directories of dead pulls included), no pin outlives
    its pull."""
    for entry in os.listdir(paths.layers) if os.path.isdir(paths.layers) else ():
        if entry == ".pins":
            assert not os.listdir(os.path.join(paths.layers, entry)), "a pin left"
            continue
        assert not entry.startswith("."), f"a half-made layer left: {entry}"


@pytest.mark.parametrize("step,action", cases("pull"))
def test_pull(paths, pushed, step, action):
    before = _image_ids(paths)
    proc = faulted(step, action, "pull", pushed)
    assert_fired(proc, step, action)
    assert_records_whole(paths.root)
    after_image_fault(paths, before, step, action)


@pytest.fixture(scope="module")
def archive(paths, sleeper, tmp_path_factory):
    """A docker-archive (`bocker save`) of an image of its own name."""
    out = str(tmp_path_factory.mktemp("faults") / "image.tar")
    before = _image_ids(paths)
    run_bocker("commit", sleeper, "--name", "faults-load:1", check=True)
    run_bocker("save", "faults-load:1", "-o", out, check=True)
    remove_new_images(paths, before)
    return out


@pytest.mark.parametrize("step,action", cases("load"))
def test_load(paths, archive, step, action):
    before = _image_ids(paths)
    proc = faulted(step, action, "load", "-i", archive)
    assert_fired(proc, step, action)
    assert_records_whole(paths.root)
    after_image_fault(paths, before, step, action)


# ------------------------------------------------------------------ rm

def _kept_running(paths, cid):
    """True if cid's stored record says it runs and its PID 1 lives (an rm
    cut short before its stop: its monitor stays, as it should)."""
    try:
        st = records.read_stored(paths, cid)["State"]
    except (FileNotFoundError, ValueError):
        return False
    return bool(st.get("Running")) and records.alive(st.get("Pid"), st.get("PidStartTime"))


@pytest.mark.parametrize("step,action", cases("rm"))
def test_rm(paths, step, action):
    cid = run_bocker("run", "-d", *RUN, "busybox", "sleep", "1000", check=True).stdout.strip()
    proc = faulted(step, action, "rm", "-f", cid)
    assert_fired(proc, step, action)
    assert_records_whole(paths.root)
    # the killed container's monitor finishes it once the rm lets go of
    # its lock, and a directory the rm left without its record is that
    # finish's to remove (finish._finish_removal): what prune must find
    # is what is left after that, not what the next command races it for
    # (through the warm server, the next command comes before it ends)
    assert wait_for(lambda: _kept_running(paths, cid)
                    or not (monitors_of(cid) or finishers_of(cid)), timeout=30)
    listed = run_bocker("ps", "-a", "-q", check=True).stdout.split()
    if cid in listed:  # whole: it can be removed as any other
        run_bocker("rm", "-f", cid, check=True)
        left = False
    else:  # gone from every listing; what is left of it has no record
        left = os.path.exists(paths.container(cid))
    out = run_bocker("system", "prune", "-f", check=True).stdout
    if left:  # and system prune finds it
        assert f"container directory {cid}" in out, out
    assert not os.path.exists(paths.container(cid))


# ------------------------------------------------------------------ setup, teardown
#
# Each case sets up a small root of its own (never the session's), with a
# bridge, subnet, nft table and cgroup parent of its own.

@pytest.fixture
def scratch(tmp_path):
    """(env for bocker, setup args, what must be gone at the end) of a
    fresh root under tmp_path; whatever a failing case left is removed
    afterwards so that it cannot break the next one."""
    from bocker.net import nat

    tag = os.getpid() % 100000
    bridge = f"bkz{tag}"
    root = tmp_path / "root"
    env = {"BOCKER_ROOT": str(root), "BOCKER_CGROUP_PARENT": f"bocker-faults-{tag}"}
    args = ("setup", "--size", "256M", "--bridge", bridge,
            "--subnet", f"10.193.{tag % 250}.0/24")
    yield env, args, {"base": str(tmp_path), "root": str(root), "bridge": bridge,
                      "table": nat.table_for(bridge), "cgroup": env["BOCKER_CGROUP_PARENT"]}
    if os.path.ismount(root):
        subprocess.run(["umount", "-l", str(root)], check=False)
    subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
    for family in ("ip", "bridge"):
        subprocess.run(["nft", "delete", "table", family, nat.table_for(bridge)],
                       capture_output=True, check=False)


def setup_leftovers(gone):
    """What of a scratch setup is still on the host."""
    left = []
    with open("/proc/self/mountinfo") as f:
        if any(line.split()[4].startswith(gone["base"]) for line in f):
            left.append("mount")
    for dev in os.listdir("/sys/block"):
        backing = f"/sys/block/{dev}/loop/backing_file"
        if os.path.exists(backing) and open(backing).read().startswith(gone["base"]):
            left.append(f"loop {dev}")
    for path in (gone["root"], gone["root"] + ".btrfs", gone["root"] + ".setup.json"):
        if os.path.exists(path):
            left.append(path)
    if gone["bridge"] in os.listdir("/sys/class/net"):
        left.append(f"bridge {gone['bridge']}")
    for family in ("ip", "bridge"):
        if subprocess.run(["nft", "list", "table", family, gone["table"]],
                          capture_output=True).returncode == 0:
            left.append(f"nft table {family} {gone['table']}")
    from bocker.kernel import cgroups

    mount = cgroups.driver()
    dirs = mount._dirs("") if mount.version == 1 else [mount._dir("")]
    left += [d for d in dirs if gone["cgroup"] in d and os.path.isdir(d)]
    return left


@pytest.mark.parametrize("step,action", cases("setup"))
def test_setup(scratch, step, action):
    env, args, gone = scratch
    assert_fired(faulted(step, action, *args, env=env), step, action)
    if os.path.exists(gone["root"] + ".setup.json"):
        state.read_json(gone["root"] + ".setup.json")  # whole: it parses
    again = run_bocker(*args, env=env)
    assert again.returncode == 0, again.stderr  # a setup cut short is finished by the next
    assert_records_whole(gone["root"])
    down = run_bocker("setup", "--teardown", env=env)
    assert down.returncode == 0, down.stderr
    assert setup_leftovers(gone) == []


@pytest.mark.parametrize("step,action", cases("teardown"))
def test_teardown(scratch, step, action):
    env, args, gone = scratch
    run_bocker(*args, env=env, check=True)
    assert_fired(faulted(step, action, "setup", "--teardown", env=env), step, action)
    down = run_bocker("setup", "--teardown", env=env)
    assert down.returncode == 0, down.stderr  # a teardown cut short is finished by the next
    assert setup_leftovers(gone) == []


# ------------------------------------------------------------------ a keeper or an init killed

def held(paths, cid):
    """What of cid's is still held on the host: its cgroup, lease, guard
    entries and port rules (its id block is its own until rm: its rootfs
    is owned by those ids)."""
    from bocker.kernel import cgroups
    from bocker.net import ipam, network

    out = []
    cg = cgroups.driver()
    dirs = cg._dirs(cid) if cg.version == 1 else [cg._dir(cid)]
    out += [d for d in dirs if os.path.isdir(d)]
    out += [f"lease {ip}" for ip, owner in ipam.leases(paths.leases).items() if owner == cid]
    table = state.read_json(paths.network)["table"]
    port = RUN[-1].rsplit(":", 1)[0].rsplit(":", 1)[1]
    for family in ("ip", "bridge"):
        text = subprocess.run(["nft", "list", "table", family, table], capture_output=True,
                              text=True).stdout
        for line in text.splitlines():
            if network.veth_name(cid) in line or f"dport {port} " in line:
                out.append(f"nft {family}: {line.strip()}")
    return out


@pytest.fixture
def detached(paths):
    """A detached container and its stored State; removed afterwards."""
    cid = run_bocker("run", "-d", *RUN, "busybox", "sleep", "1000", check=True).stdout.strip()
    yield cid, records.read_stored(paths, cid)["State"]
    run_bocker("rm", "-f", cid, check=True)


def test_monitor_killed(paths, detached):
    """The container outlives its monitor, and is truthfully running; once
    it is gone too, its end went unseen: Exited (unknown), nothing held."""
    cid, st = detached
    running = held(paths, cid)  # what the check below must find gone
    assert {"lease", "nft ip:", "nft bridge:"} <= {h.split()[0] if h.startswith("lease")
                                                   else " ".join(h.split()[:2])
                                                   for h in running}, running
    os.kill(st["RunnerPid"], signal.SIGKILL)
    wait_gone(st["RunnerPid"], st["RunnerStartTime"])
    assert cid in run_bocker("ps", "-q", check=True).stdout.split()  # still running
    os.kill(st["Pid"], signal.SIGKILL)  # nobody is left to see this end
    wait_gone(st["Pid"], st["PidStartTime"])
    out = run_bocker("ps", "-a", check=True).stdout
    assert "Exited (unknown)" in [line for line in out.splitlines() if cid in line][0]
    record = records.read_stored(paths, cid)
    assert record["State"]["ExitCode"] == UNKNOWN and not record["State"]["Running"]
    assert held(paths, cid) == []


def test_init_killed(paths, detached):
    """The monitor sees its container's init killed: Exited (137), nothing held."""
    cid, st = detached
    os.kill(st["Pid"], signal.SIGKILL)
    wait_gone(st["RunnerPid"], st["RunnerStartTime"])  # the monitor, then its finish, ended
    out = run_bocker("ps", "-a", check=True).stdout
    assert "Exited (137)" in [line for line in out.splitlines() if cid in line][0]
    record = records.read_stored(paths, cid)
    assert record["State"]["ExitCode"] == 128 + signal.SIGKILL
    assert held(paths, cid) == []
