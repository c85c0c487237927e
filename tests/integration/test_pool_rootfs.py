"""The rootfs pool (bocker/runtime/pool.py) on the session's real btrfs:
entries made ahead, taken by rename, never twice, never stale."""
import contextlib
import multiprocessing
import os
import shutil
import sys

import btrfsutil
import pytest

from bocker import faults, hostsetup
from bocker.image import images
from bocker.kernel import store
from bocker.runtime import pool
from bocker.state import Paths

from conftest import own_subvolumes


@pytest.fixture
def local(paths, monkeypatch):
    """A LocalPool of this process, drained after the test."""
    lp = pool.LocalPool(paths)
    try:
        yield lp
    finally:
        lp.drain_all()
        pool._pools.pop(paths.root, None)


@pytest.fixture
def scratch(paths):
    """A directory on the root's filesystem for taken rootfs; emptied after."""
    d = os.path.join(paths.root, f"pooltest-{os.getpid()}")
    os.mkdir(d)
    try:
        yield d
    finally:
        for name in os.listdir(d):
            store.delete(os.path.join(d, name))
        os.rmdir(d)


@pytest.fixture
def tree_image(paths, tmp_path):
    """An image of a small tree of our own (removed after, if still there)."""
    d = tmp_path / "tree"
    (d / "bin").mkdir(parents=True)
    (d / "etc").mkdir()
    (d / "etc" / "motd").write_text("pooled\n")
    os.symlink("/etc/motd", d / "link")
    with _image_of(paths, d) as image_id:
        yield image_id


@pytest.fixture
def bare_image(paths, tmp_path):
    """A second image of our own, that no pool was ever told of (a live
    server's pool keeps busybox entries: a take of busybox may win)."""
    d = tmp_path / "bare"
    (d / "etc").mkdir(parents=True)
    with _image_of(paths, d) as image_id:
        yield image_id


@contextlib.contextmanager
def _image_of(paths, directory):
    """An image of directory (bocker init), removed after, if still there."""
    image_id = images.init(paths, str(directory))
    try:
        yield image_id
    finally:
        if os.path.exists(paths.image(image_id)):
            images.remove(paths, image_id)


def _busybox(paths):
    return images.resolve(paths, "busybox")


def _entries(paths, image_id=None, pid=None):
    out = []
    for name in os.listdir(paths.pool) if os.path.isdir(paths.pool) else ():
        e = pool.parse_entry(name)
        if e and (image_id is None or e[0] == image_id) and (pid is None or e[1] == pid):
            out.append(name)
    return out


def _listing(root):
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                found[rel] = ("link", os.readlink(path))
            elif os.path.isfile(path):
                found[rel] = (st.st_mode, open(path, "rb").read())
            else:
                found[rel] = (st.st_mode,)
    return found


def test_fill_then_take_gives_a_writable_copy_of_the_image(paths, local, scratch, tree_image,
                                                           bare_image):
    local.want(tree_image)
    assert local.refill_some() == pool.TARGET
    assert len(_entries(paths, tree_image, os.getpid())) == pool.TARGET
    # none of ours half-made
    assert not [n for n in os.listdir(paths.pool) if pool.parse_transient(n) == os.getpid()]
    dest = os.path.join(scratch, "rootfs")
    assert pool.take_rootfs(paths, tree_image, dest)
    assert len(_entries(paths, tree_image)) == pool.TARGET - 1
    assert store.is_subvolume(dest) and not btrfsutil.get_subvolume_read_only(dest)
    assert _listing(dest) == _listing(images.rootfs(paths, tree_image))
    with open(os.path.join(dest, "etc", "new"), "w") as f:
        f.write("mine")  # writable, and the image unchanged by it
    assert not os.path.exists(os.path.join(images.rootfs(paths, tree_image), "etc", "new"))
    # another image's entries are never taken for this one
    assert not pool.take_rootfs(paths, bare_image, os.path.join(scratch, "other"))


def test_take_of_an_empty_or_missing_pool_is_false(paths, scratch, bare_image):
    assert not pool.take_rootfs(Paths(os.path.join(scratch, "no-root")), _busybox(paths),
                                os.path.join(scratch, "x"))
    assert not pool.take_rootfs(paths, bare_image, os.path.join(scratch, "x"))
    assert not os.path.exists(os.path.join(scratch, "x"))


def _take(args):
    root, image_id, dest = args
    return dest if pool.take_rootfs(Paths(root), image_id, dest) else None


def test_an_entry_is_never_handed_out_twice(paths, local, scratch, monkeypatch, tree_image):
    monkeypatch.setattr(pool, "TARGET", 6)
    image_id = tree_image  # an image no server's pool was told of: only our 6 entries
    local.want(image_id)
    assert local.refill_some() == 6
    jobs = [(paths.root, image_id, os.path.join(scratch, f"t{i}")) for i in range(16)]
    with multiprocessing.get_context("fork").Pool(8) as workers:
        won = [d for d in workers.map(_take, jobs, chunksize=1) if d]
    assert len(won) == 6 and not _entries(paths, image_id)
    uuids = {btrfsutil.subvolume_info(d).uuid for d in won}  # each a subvolume of its own
    assert len(uuids) == 6
    assert sorted(os.listdir(scratch)) == sorted(os.path.basename(d) for d in won)


def test_an_entry_of_replaced_content_is_refused(paths, local, scratch, tree_image):
    local.want(tree_image)
    local.refill_some()
    # `commit` into an existing image keeps its ID with new content
    images.replace_rootfs(paths, tree_image, images.rootfs(paths, _busybox(paths)), "test")
    dest = os.path.join(scratch, "rootfs")
    assert not pool.take_rootfs(paths, tree_image, dest)
    assert not os.path.lexists(dest)


def test_entries_of_a_dead_owner_are_removed_at_refill(paths, local, tree_image):
    pid = os.fork()
    if pid == 0:
        try:
            other = pool.LocalPool(paths)
            other.want(tree_image)
            other.refill_some()
        finally:
            os._exit(0)  # dies without draining
    os.waitpid(pid, 0)
    assert len(_entries(paths, tree_image, pid)) == pool.TARGET
    assert os.path.exists(os.path.join(paths.pool, f"{pool.OWNER}{pid}"))
    local.refill_some()  # wants nothing: only sweeps
    assert not _entries(paths, tree_image, pid)
    assert not os.path.exists(os.path.join(paths.pool, f"{pool.OWNER}{pid}"))


def test_rmi_removes_the_image_entries_whoever_made_them(paths, local, tree_image, bocker):
    local.want(tree_image)
    local.want(_busybox(paths))
    local.refill_some()
    assert _entries(paths, tree_image)
    out = bocker("rmi", tree_image)
    assert out.returncode == 0, out.stderr
    assert not _entries(paths, tree_image)
    # others' stay (ours: a live server may keep entries of its own)
    assert len(_entries(paths, _busybox(paths), os.getpid())) == pool.TARGET
    local.refill_some()  # an image gone: nothing made of it again
    assert not _entries(paths, tree_image)


def test_drain_leaves_nothing(paths, local):
    local.want(_busybox(paths))
    local.refill_some()
    local.drain_all()
    assert not [n for n in os.listdir(paths.pool)
                if n.startswith((".", "img_")) and str(os.getpid()) in n]


def test_prewarm_finds_the_command_and_refuses_escapes(paths, scratch, tmp_path):
    rootfs = os.path.join(scratch, "warm")
    store.snapshot(images.rootfs(paths, _busybox(paths)), rootfs)
    host_only = os.path.realpath(sys.executable)  # on the host, not in busybox
    assert not os.path.lexists(rootfs + host_only)
    os.symlink("/../../../.." + host_only, os.path.join(rootfs, "bin", "escape"))
    os.symlink("../../../../../../.." + host_only, os.path.join(rootfs, "bin", "escape2"))
    os.mkfifo(os.path.join(rootfs, "bin", "fifo"))
    done = pool.prewarm(rootfs, {"Cmd": ["sh"], "Env": ["PATH=/nowhere:/bin"]},
                        ["true", "/bin/escape", "escape2", "fifo", "/bin/ls"])
    # sh and true resolve inside (busybox links); the escapes stay inside (where
    # nothing is), the FIFO is no regular file
    assert done == ["/bin/sh", "/bin/true", "/bin/ls"]


def test_a_container_runs_from_a_pooled_entry_and_rm_removes_it(paths, local, bocker):
    import json

    before = own_subvolumes(paths)
    local.want(_busybox(paths))
    local.refill_some()
    out = bocker("run", "--rm", "busybox", "sh", "-c", "echo w > /w && cat /w", check=True,
                 env={"BOCKER_TRACE": "json"})
    assert out.stdout == "w\n"
    # it took an entry: ours, or (through a warm server) one the server
    # made, whose count its filler restores at once; so by the trace
    takes = [json.loads(line) for line in out.stderr.splitlines()
             if line.startswith("{") and '"pool take rootfs"' in line]
    assert len(takes) == 1 and takes[0]["result"], out.stderr
    name = takes[0]["result"]
    assert pool.parse_entry(name)[0] == _busybox(paths)
    assert not os.path.lexists(os.path.join(paths.pool, name))
    local.drain_all()
    assert own_subvolumes(paths) == before  # its --rm removed the taken one


def test_teardown_removes_the_pool(tmp_path, monkeypatch):
    monkeypatch.setenv("BOCKER_CGROUP_PARENT", f"bocker-pooltd-{os.getpid()}")
    other = Paths(str(tmp_path / "root"))
    bridge = f"bkq{os.getpid() % 100000}"
    try:
        hostsetup.setup(other, size="256M", bridge=bridge,
                        subnet=f"10.193.{os.getpid() % 250}.0/24", log=lambda *_: None)
        lp = pool.LocalPool(other)
        lp.want(images.resolve(other, "busybox"))
        lp.refill_some()
        assert _entries(other)
        # stop teardown just before its unmount: the pool must be gone by then
        monkeypatch.setattr(faults, "_STEP", "teardown.umount")
        monkeypatch.setattr(faults, "_FAULT", ("teardown.umount", "fail"))
        with pytest.raises(faults.FaultInjected):
            hostsetup.teardown(other, [], log=lambda *_: None)
        assert not os.path.exists(other.pool)
        monkeypatch.setattr(faults, "_STEP", None)
    finally:
        pool._pools.pop(other.root, None)
        if (tmp_path / "root.setup.json").exists():
            hostsetup.teardown(other, [], log=lambda *_: None)
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_server_flow_worker_notes_then_idle_refill(paths, scratch):
    """A worker (a fork of the process that imported pool) tells what it
    started; after_command takes it in, refill_some makes prewarmed entries
    of that image, drain_all removes them."""
    image_id = _busybox(paths)
    pool.open_channel()  # as the server does before it forks its workers
    pid = os.fork()
    if pid == 0:  # the worker: a miss, then its command
        try:
            pool.take_rootfs(paths, image_id, os.path.join(scratch, "miss"))
            pool.note_use(paths, image_id, "/bin/true")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    try:
        pool.after_command()
        assert list(pool._pools[paths.root].wanted[image_id]) == ["/bin/true"]
        made = 0
        while made < pool.TARGET:  # each call a small budget, as the server's idle ticks
            got = pool.refill_some(1)
            assert got  # a budget of 1 ms still makes one entry per call
            made += got
        assert pool.refill_some(1) == 0  # full: nothing more
        assert len(_entries(paths, image_id, os.getpid())) == pool.TARGET
    finally:
        pool.drain_all()
        pool._pools.pop(paths.root, None)
    assert not _entries(paths, pid=os.getpid())
    assert not os.path.exists(os.path.join(paths.pool, f"{pool.OWNER}{os.getpid()}"))
