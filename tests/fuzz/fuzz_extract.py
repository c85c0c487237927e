"""Fuzzing bocker's layer extractor (bocker/image/extract.py).

Each input is applied to an empty rootfs beside a directory of things no
layer may touch, and must leave these true:
  - it ends normally or with LayerError, never another exception;
  - nothing outside the rootfs changed (names, types, modes, owners,
    sizes, times, xattrs, contents, link targets);
  - every device node in the rootfs is one the archive declared (a
    hard link or rename cannot conjure one from outside);
  - the disk it used is bounded by the archive (a sparse member's holes
    stay holes: no few-KiB layer fills the disk).
An input's first byte chooses raw tar bytes or a tar built from the rest
(hostile_tars.from_bytes: names, links and PAX headers chosen from
hostile pieces), which reaches the extractor's own logic far more often.

    python tests/fuzz/fuzz_extract.py -runs=100000 CORPUS_DIR   # atheris (libFuzzer)
tests/fuzz/test_fuzz_extract.py runs it for a few thousand inputs.
"""
import io
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# imported by setup(), under atheris instrumented for coverage (tarfile
# too: its header parsing is half of what a hostile layer meets)
_extract = tarfile = hostile_tars = None
MAX_INPUT = 1 << 16
BLOCK = 4096        # a file's first block: rounding, not data
# Worlds on tmpfs when there is one: ten times faster than ext4's /tmp
# (each input makes, snapshots and removes a small tree).
WORLDS = os.environ.get("BOCKER_FUZZ_TMP") or (
    "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None)


def setup(instrument=False):
    """Import the extractor, instrumented for coverage under atheris."""
    global _extract, tarfile, hostile_tars
    import contextlib

    block = contextlib.nullcontext()
    if instrument:
        import atheris

        block = atheris.instrument_imports(include=["bocker.image.extract", "tarfile"])
    with block:
        import tarfile

        from bocker.image import extract
    import hostile_tars

    _extract = extract


def _observe(path):
    st = os.lstat(path)
    item = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_nlink, st.st_uid, st.st_gid,
            st.st_size, st.st_mtime_ns)
    if stat.S_ISLNK(st.st_mode):
        return item + (os.readlink(path),)
    item += (tuple(sorted((x, os.getxattr(path, x, follow_symlinks=False))
                          for x in os.listxattr(path, follow_symlinks=False))),)
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            item += (f.read(),)
    return item


def snapshot(top, skip):
    """Everything observable about top's tree but skip (the rootfs)."""
    out = {".": _observe(top)}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) != skip]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if path != skip:
                out[os.path.relpath(path, top)] = _observe(path)
    return out


def _declared(data):
    """(device numbers the archive declares, its tar size), read the way the
    extractor reads it, as far as it parses."""
    devices, stream = set(), None
    try:
        stream = _extract.decompressed(io.BytesIO(data))
        with tarfile.open(fileobj=stream, mode="r|", errorlevel=2) as tf:
            for m in tf:
                if m.ischr() or m.isblk():
                    devices.add((m.devmajor, m.devminor))
    except Exception:   # noqa: BLE001 - only what parsed is wanted here
        pass
    size = len(data)
    try:
        size = max(size, len(_extract.decompressed(io.BytesIO(data)).read(64 << 20)))
    except Exception:   # noqa: BLE001
        pass
    return devices, size


def _rootfs_facts(rootfs):
    """(device numbers of the nodes in rootfs, bytes of disk its files'
    data takes beyond one block each).  By fds and without recursion: a
    layer may nest deeper than os.walk recurses or a path can be long."""
    devices, used = set(), 0
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    todo = [os.open(rootfs, flags)]
    while todo:
        fd = todo.pop()
        try:
            for name in os.listdir(fd):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    todo.append(os.open(name, flags, dir_fd=fd))
                elif stat.S_ISREG(st.st_mode):
                    used += max(0, st.st_blocks * 512 - BLOCK)
                elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                    devices.add((os.major(st.st_rdev), os.minor(st.st_rdev)))
        finally:
            os.close(fd)
    return devices, used


def _remove(top):
    # rmtree recurses and cannot follow a layer's deepest trees
    try:
        shutil.rmtree(top)
    except (RecursionError, OSError):
        subprocess.run(["rm", "-rf", "--one-file-system", top], check=True)


def make_world(top):
    """top/outside with things to never touch, top/rootfs empty; returns rootfs."""
    outside = os.path.join(top, "outside")
    os.makedirs(os.path.join(outside, "dir"))
    for rel in ("victim", "dir/victim2"):
        with open(os.path.join(outside, rel), "w") as f:
            f.write("precious")
    os.symlink("victim", os.path.join(outside, "link"))
    os.mkfifo(os.path.join(outside, "fifo"))
    rootfs = os.path.join(top, "rootfs")
    os.mkdir(rootfs)
    return rootfs


def check_archive(data):
    """Apply one archive and assert the invariants; returns 'applied' or
    the LayerError's message."""
    top = tempfile.mkdtemp(prefix="bocker-fuzz-", dir=WORLDS)
    try:
        rootfs = make_world(top)
        before = snapshot(top, rootfs)
        try:
            _extract.extract(io.BytesIO(data), rootfs)
            outcome = "applied"
        except _extract.LayerError as e:
            outcome = str(e)
        assert "\n" not in outcome, f"a two-line error: {outcome!r}"
        assert snapshot(top, rootfs) == before, "the layer changed something outside"
        declared, size = _declared(data)
        devices, used = _rootfs_facts(rootfs)
        assert devices <= declared, f"device nodes nobody declared: {devices - declared}"
        assert used <= size, f"{used} bytes of file data on disk from a {size}-byte layer"
    finally:
        _remove(top)
    return outcome


def check_input(data):
    """One fuzzer input: raw tar bytes or, by its first byte, a built tar."""
    data = data[:MAX_INPUT]
    if data[:1] and data[0] & 1:
        data = hostile_tars.from_bytes(data[1:])
        if data is None:
            return None
    return check_archive(data)


def main(argv):
    """atheris's entry: python fuzz_extract.py [libFuzzer flags] [CORPUS_DIR...]."""
    import atheris

    setup(instrument=True)
    atheris.Setup(argv, check_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
