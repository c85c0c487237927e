"""p8952/bocker, the bash original, as a comparator row.

Its script hard-codes a btrfs /var/bocker, a bridge `bridge0` at
10.0.0.1/24 and cgroup-tools, and every `run` makes a netns, a veth pair,
a cgroup and a snapshot.  It runs here inside an nsrunner helper with a
private mount and network namespace (see benchmarks/nsrunner.py): its
/var/bocker is a scratch btrfs mounted only there, its bridge0 exists only
there.  What could outlive the helper is put back by prepare()'s cleanup:

- each container (`ps_*` subvolume and cgroup) by p8952's own `rm`, after
  every start (untimed), and its image at the end;
- `ps_*` cgroups still at the top of the v1 hierarchies that were not
  there before (a run that died half-way);
- the /var/bocker and /run/netns directories, if they did not exist before
  (the mounts over them were private to the helper);
- the loop device, if autoclear has not detached it.
"""
import os
import re
import shutil
import subprocess
import sys

from benchmarks.nsrunner import P8952_ROOT, NsRunner

TOOLS = ("bash", "ip", "unshare", "chroot", "btrfs", "mkfs.btrfs", "cgcreate", "cgset",
         "cgexec", "cgdelete", "shuf", "tee", "losetup", "mount")
PACKAGES = {"cgcreate": "cgroup-tools", "cgset": "cgroup-tools", "cgexec": "cgroup-tools",
            "cgdelete": "cgroup-tools", "btrfs": "btrfs-progs", "mkfs.btrfs": "btrfs-progs",
            "ip": "iproute2"}
CGROUP_V1 = "/sys/fs/cgroup"
RUN_NETNS = "/run/netns"
IMAGE_SIZE = "2G"


class Unavailable(Exception):
    """p8952/bocker cannot run here; the message says precisely why."""


def _cgroups_named_ps():
    """{path} of ps_* groups at the top of every v1 hierarchy (cgcreate's)."""
    found = set()
    try:
        hierarchies = os.listdir(CGROUP_V1)
    except OSError:
        return found
    for h in hierarchies:
        top = os.path.join(CGROUP_V1, h)
        if os.path.islink(top) or not os.path.isdir(top):
            continue
        try:
            found.update(os.path.join(top, e) for e in os.listdir(top)
                         if e.startswith("ps_"))
        except OSError:
            pass
    return found


def _rmdir_if_ours(path):
    """Remove a directory we created, only if it is empty and not a mount."""
    if os.path.isdir(path) and not os.path.ismount(path) and not os.listdir(path):
        os.rmdir(path)


def _run(argv):
    return subprocess.run(argv, capture_output=True, text=True)


class P8952:
    """The running comparator: its helper, image, and what to undo."""

    def __init__(self, script, ws, repo_root, stack, log=print):
        self.script = os.path.abspath(script)
        self.bash = shutil.which("bash")
        self.log = log
        self.image = None
        self.runner = None
        self._prepare(ws, repo_root, stack)

    def _prepare(self, ws, repo_root, stack):
        if not os.path.isfile(self.script):
            raise Unavailable(f"{self.script}: no such file")
        missing = [t for t in TOOLS if not shutil.which(t)]
        if missing:
            pkgs = sorted({PACKAGES.get(t, t) for t in missing})
            raise Unavailable(f"missing {', '.join(missing)} (apt-get install {' '.join(pkgs)})")
        if not os.path.isdir(os.path.join(CGROUP_V1, "memory")) or \
                not os.path.isdir(os.path.join(CGROUP_V1, "cpu")):
            raise Unavailable("needs cgroup v1 cpu and memory hierarchies (cgcreate -g "
                              "cpu,cpuacct,memory): this host has none")
        # Undo in reverse: first p8952's own rm, last the directories.
        if not os.path.exists(P8952_ROOT):
            os.makedirs(P8952_ROOT)
            stack.callback(_rmdir_if_ours, P8952_ROOT)
        if not os.path.exists(RUN_NETNS):
            stack.callback(_rmdir_if_ours, RUN_NETNS)   # `ip netns add` makes it
        cgroups_before = _cgroups_named_ps()
        stack.callback(self._sweep_cgroups, cgroups_before)
        image = os.path.join(ws.dir, "p8952.btrfs")
        with open(image, "wb") as f:
            f.truncate(_bytes(IMAGE_SIZE))
        stack.callback(self._detach_loop, image)
        done = _run(["mkfs.btrfs", "-q", image])
        if done.returncode != 0:
            raise Unavailable(f"mkfs.btrfs: {done.stderr.strip()}")
        try:
            self.runner = NsRunner(sys.executable, repo_root, "p8952", [image])
        except OSError as e:
            raise Unavailable(f"could not set up its namespaces: {e}") from None
        stack.callback(self.runner.close)
        stack.callback(self._remove_all)
        code, out = self.runner.run([self.bash, self.script, "init", ws.rootfs])
        found = re.search(r"Created: (img_\d+)", out)
        if code != 0 or not found:
            raise Unavailable(f"`bocker init` failed (exit {code}): {out.strip()[-300:]}")
        self.image = found.group(1)
        # Its `run` ends in `| tee ... || true`: exit 0 whatever happened, so
        # check once that a container really runs and prints.
        code, out = self.runner.run([self.bash, self.script, "run", self.image,
                                     "echo", "p8952-ran"])
        self.remove_containers()
        if code != 0 or "p8952-ran" not in out:
            raise Unavailable(f"`bocker run` did not run a container (exit {code}): "
                              f"{out.strip()[-300:]}")
        self.note = self.runner.note

    def argv(self):
        return [self.bash, self.script, "run", self.image, "true"]

    def time(self, stderr_path=None):
        return self.runner.time(self.argv(), None, stderr_path)

    def containers(self):
        """p8952's ps_* entries, seen through the helper's mount namespace."""
        base = f"/proc/{self.runner.pid}/root{P8952_ROOT}"
        try:
            return sorted(e for e in os.listdir(base) if e.startswith("ps_"))
        except OSError:
            return []

    def remove_containers(self):
        """`bocker rm` every container p8952 left (its subvolume and cgroup)."""
        for ps in self.containers():
            self.runner.run([self.bash, self.script, "rm", ps])

    def _remove_all(self):
        self.remove_containers()
        if self.image:
            self.runner.run([self.bash, self.script, "rm", self.image])

    def _sweep_cgroups(self, before):
        for path in sorted(_cgroups_named_ps() - before):
            try:
                os.rmdir(path)
            except OSError as e:
                self.log(f"  warning: p8952 left cgroup {path}: {e}")

    def _detach_loop(self, image):
        """The loop device goes by autoclear once the helper's namespace is
        gone; detach it here if it has not (yet)."""
        import time
        for _ in range(50):
            out = _run(["losetup", "-j", image]).stdout.strip()
            if not out:
                return
            time.sleep(0.1)
        for line in out.splitlines():
            dev = line.split(":", 1)[0]
            _run(["losetup", "-d", dev])
            self.log(f"  note: detached {dev} ({image}) by hand")


def _bytes(size):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
