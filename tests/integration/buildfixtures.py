"""Build-test support: a Debian bookworm image with gcc (`debian-gcc`),
made with debootstrap and imported with `bocker init`.

    from buildfixtures import DEBIAN_IMAGE, debian_image, debian_rootfs  # noqa: F401

debootstrap takes a minute or more, so the tree it makes is kept on the
host as a tarball under $BOCKER_TEST_CACHE (default /var/cache/bocker-test/),
named by what goes into it (suite, variant, architecture, packages): a
local rerun extracts it instead.  In CI (CI=1 or BOCKER_CI=1, which
.ci/run sets) the host cache is never read: .ci/run points
BOCKER_TEST_CACHE at a directory of its own run (/tmp/bocker-test-cache-*,
which its cleanup removes), so both passes of scripts/test.sh share one
fresh tree; without it each CI session makes its own.

debootstrap missing: the tests that need the image skip on a developer's
machine and FAIL in CI (the CI must prove the build tests ran).
"""
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

DEBIAN_IMAGE = "debian-gcc"
SUITE = "bookworm"
VARIANT = "minbase"
PACKAGES = ("gcc", "libc6-dev")
MIRROR = os.environ.get("BOCKER_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEBOOTSTRAP_TIMEOUT = 1800      # a bound on a hang (a slow mirror), not a timing


def in_ci():
    """Whether this session runs in CI (where nothing may be skipped)."""
    return any(os.environ.get(v, "") not in ("", "0") for v in ("CI", "BOCKER_CI"))


def cache_dir():
    """Where the debootstrapped tarball is kept between sessions; None in
    CI unless .ci/run gave its run a fresh directory."""
    chosen = os.environ.get("BOCKER_TEST_CACHE")
    if chosen:
        return chosen
    return None if in_ci() else "/var/cache/bocker-test"


def cache_key():
    """The name of the tarball: what debootstrap is asked for (the mirror
    is not part of it: any Debian mirror serves the same packages)."""
    what = json.dumps([SUITE, VARIANT, platform.machine(), sorted(PACKAGES)])
    return f"debian-{SUITE}-{VARIANT}-{hashlib.sha256(what.encode()).hexdigest()[:16]}"


def debootstrap(target):
    """Make the Debian tree in target (which must not exist yet) with
    debootstrap; fails the session (with debootstrap's output) if it
    does not work.  Returns the seconds it took."""
    started = time.monotonic()
    argv = ["debootstrap", f"--variant={VARIANT}", "--include=" + ",".join(PACKAGES),
            SUITE, target, MIRROR]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(argv)}: no end after {DEBOOTSTRAP_TIMEOUT} s\n"
                    f"{(e.stdout or b'')[-4000:]!r}")
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} -> {proc.returncode}\n"
                    f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return time.monotonic() - started


def _tar(*args):
    """Run tar with ownership, modes, xattrs and device nodes kept."""
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                    "--acls", *args], check=True, capture_output=True, timeout=600)


@contextlib.contextmanager
def _locked(directory, name):
    """An exclusive flock on directory/name.lock: two sessions wanting the
    same tarball make it once (the kernel drops a dead holder's lock)."""
    fd = os.open(os.path.join(directory, name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def make_tree(target, log=lambda msg: None):
    """Fill target (a new directory's path) with the Debian tree: from the
    cache's tarball if there is one, else with debootstrap (and then into
    the cache, through a temporary name and a rename, so a killed run
    never leaves a half tarball under the real name)."""
    directory = cache_dir()
    if directory is None:
        log(f"debootstrap took {debootstrap(target):.0f} s (no cache: CI)")
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = cache_key()
    tarball = os.path.join(directory, key + ".tar")
    with _locked(directory, key):
        if os.path.exists(tarball):
            os.mkdir(target, 0o755)
            _tar("-xpf", tarball, "-C", target)
            log(f"Debian tree from {tarball}")
            return
        log(f"debootstrap took {debootstrap(target):.0f} s; caching it in {tarball}")
        partial = os.path.join(directory, f".{key}.tar.{os.getpid()}")
        try:
            _tar("-cpf", partial, "-C", target, ".")
            os.rename(partial, tarball)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)


@pytest.fixture(scope="session")
def debian_rootfs():
    """A Debian bookworm tree with gcc and libc6-dev, on the host (made
    once per session, removed at its end).  Skips where debootstrap is
    missing, but in CI, where that fails."""
    if shutil.which("debootstrap") is None:
        message = "debootstrap is not installed (scripts/test.sh installs it with apt)"
        if in_ci():
            pytest.fail(message + ": the build tests cannot run in CI without it")
        pytest.skip(message)
    # /tmp/bocker-test-*: scripts/cleanup-test-leftovers.sh unmounts
    # (debootstrap mounts /proc and /sys in the tree while it runs) and
    # removes what a killed session left
    work = tempfile.mkdtemp(prefix="bocker-test-debian-")
    target = os.path.join(work, "rootfs")
    try:
        make_tree(target, log=lambda msg: print(f"buildfixtures: {msg}", file=sys.stderr))
        yield target
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", work], check=False)


@pytest.fixture(scope="module")
def debian_image(paths, debian_rootfs):
    """The debian-gcc image in the session's root, made once per module and
    removed at its end: other modules see only their own images (some
    remove every image but busybox), and the leak check, which runs after
    every test, sees it made before the first test and gone after the last."""
    # here, not at the top: conftest imports this module to register it
    from conftest import run_bocker

    run_bocker("init", debian_rootfs, "--name", DEBIAN_IMAGE, check=True, timeout=600)
    yield DEBIAN_IMAGE
    run_bocker("rmi", "-f", DEBIAN_IMAGE, check=True, timeout=120)


@pytest.fixture
def built(bocker, paths):
    """Image names or IDs a build test appends here are removed after it;
    then the whole build cache goes, and must be gone (the suite's leak
    check runs after this)."""
    from bocker.build import cache

    made = []
    yield made
    for ref in made:
        bocker("rmi", "-f", ref)
    bocker("builder", "prune", "-a", "-f", check=True, timeout=300)
    assert not cache.keys(paths)
