"""The Debian rootfs the build benchmark compiles in (issue 17).

`debootstrap --variant=minbase --include=gcc,libc6-dev bookworm DIR
http://deb.debian.org/debian`, made once and kept on the host as a tarball
under /var/cache/bocker-test/ (the integration tests' cache directory), so
a rerun costs an extraction, not a download.  A lock file serialises two
runs that would make it at once; the tarball is written beside its final
name and renamed, so a run cut short never leaves half of one.
"""
import fcntl
import os
import shutil
import subprocess
import tempfile

CACHE_DIR = "/var/cache/bocker-test"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
TARBALL = f"debian-{SUITE}-minbase-gcc.tar"
DEBOOTSTRAP = ["debootstrap", "--variant=minbase", "--include=gcc,libc6-dev", SUITE]


def tarball(log=print, cache_dir=CACHE_DIR):
    """Path of the cached rootfs tarball, debootstrapping it if missing."""
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


def extract(directory, log=print, cache_dir=CACHE_DIR):
    """Fill the empty `directory` with the Debian rootfs (from the cache)."""
    subprocess.run(["tar", "-C", directory, "--numeric-owner", "--xattrs", "-xpf",
                    tarball(log, cache_dir)], check=True)
