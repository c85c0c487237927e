"""The Debian rootfs the build benchmark compiles in (issue 17).

`debootstrap --variant=minbase --include=gcc,libc6-dev bookworm DIR
http://deb.debian.org/debian`, made once and kept on the host as a tarball
under /var/cache/bocker-test/ (the integration tests' cache directory), so
a rerun costs an extraction, not a download.

Where the build tests' fixture is in the tree
(tests/integration/buildfixtures.py) its make_tree() is used, so the
benchmark and the tests share one tarball, one cache key and one lock.
Else (a tree without it) this module does the same on its own: a lock
file serialises two runs that would make it at once; the tarball is
written beside its final name and renamed, so a run cut short never
leaves half of one.
"""
import fcntl
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

CACHE_DIR = "/var/cache/bocker-test"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
TARBALL = f"debian-{SUITE}-minbase-gcc.tar"
DEBOOTSTRAP = ["debootstrap", "--variant=minbase", "--include=gcc,libc6-dev", SUITE]
FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "tests", "integration")


def _buildfixtures():
    """The build tests' fixture module, or None where this tree has none."""
    if not os.path.exists(os.path.join(FIXTURES, "buildfixtures.py")):
        return None
    if FIXTURES not in sys.path:
        sys.path.append(FIXTURES)
    try:
        return importlib.import_module("buildfixtures")
    except ImportError:      # pytest missing: the module imports it
        return None


def tarball(log=print, cache_dir=CACHE_DIR):
    """Path of this module's cached rootfs tarball, debootstrapping it if missing."""
    os.makedirs(cache_dir, mode=0o755, exist_ok=True)
    path = os.path.join(cache_dir, TARBALL)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path):
            return path
        if not shutil.which("debootstrap"):
            raise FileNotFoundError("debootstrap is missing (apt-get install debootstrap)")
        work = tempfile.mkdtemp(prefix="debootstrap-", dir=cache_dir)
        try:
            target = os.path.join(work, "rootfs")
            log(f"debootstrap {SUITE} (minbase, gcc, libc6-dev) into {target}...")
            subprocess.run([*DEBOOTSTRAP, target, MIRROR], check=True,
                           stdout=subprocess.DEVNULL)
            # apt's downloaded .debs are a third of the tree and no build needs them
            shutil.rmtree(os.path.join(target, "var/cache/apt/archives"), ignore_errors=True)
            part = path + f".part-{os.getpid()}"
            subprocess.run(["tar", "-C", target, "--numeric-owner", "--xattrs", "-cpf",
                            part, "."], check=True)
            os.rename(part, path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return path


def make_tree(target, log=print):
    """Make the Debian rootfs at `target` (a path that does not exist yet)."""
    fixtures = _buildfixtures()
    if fixtures is not None:
        if not shutil.which("debootstrap") and not _fixture_cached(fixtures):
            raise FileNotFoundError("debootstrap is missing (apt-get install debootstrap)")
        try:
            fixtures.make_tree(target, log=log)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:   # pytest.fail's Failed is a BaseException
            raise RuntimeError(f"the Debian tree: {str(e).splitlines()[0]}") from None
        return
    os.mkdir(target, 0o755)
    subprocess.run(["tar", "-C", target, "--numeric-owner", "--xattrs", "-xpf",
                    tarball(log)], check=True)


def _fixture_cached(fixtures):
    directory = fixtures.cache_dir()
    return bool(directory) and os.path.exists(
        os.path.join(directory, fixtures.cache_key() + ".tar"))
