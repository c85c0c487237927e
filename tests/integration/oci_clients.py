"""Real OCI clients driving a runtime binary: podman (through conmon) and
containerd (through ctr and the runc shim v2 with BinaryName, the path a
Kubernetes node takes).  Each test gets a private root under one
temporary directory /tmp/bocker-test-oci-*: storage, run and tmp
directories, the runtime's --root, containerd's sockets, and a cgroup
parent /bocker-test-oci-* of its own, so nothing of the host's is used
or touched (scripts/cleanup-test-leftovers.sh knows both names).

The runtime under test: $BOCKER_OCI_RUNTIME if set (e.g. /usr/sbin/runc,
which proves the harness itself), else the installed `bocker-oci`
console script, else a wrapper script around the repo under test.

After every test the fixture removes whatever the clients left, then
fails the test if anything had been left that is not the clients' to
keep: a process (conmon, shim, container), a mount under the private
directory, a cgroup that would not go, state in the runtime's --root.

    @pytest.fixture
    def podman():
        with oci_clients.podman_session() as p:
            yield p
"""
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile

from bocker import hostsetup
from conftest import pids_whose_argv, wait_for  # noqa: F401  (the clients' tests import wait_for from here)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "bocker-test-oci-"
IMAGE = "localhost/bocker-test-busybox:latest"
CTR_NAMESPACE = "bocker-test"


def require(tool):
    """The path of a client's binary; a missing one FAILS (CI must prove
    the integration, so it installs them: scripts/test.sh)."""
    path = shutil.which(tool)
    assert path, f"{tool} is not installed (scripts/test.sh installs it with apt)"
    return path


def runtime_binary(base):
    """The runtime binary to hand the clients (see the module docstring)."""
    chosen = os.environ.get("BOCKER_OCI_RUNTIME")
    if chosen:
        assert os.access(chosen, os.X_OK), f"BOCKER_OCI_RUNTIME={chosen} is not executable"
        return chosen
    installed = shutil.which("bocker-oci") or os.path.join(os.path.dirname(sys.executable),
                                                         "bocker-oci")
    if os.access(installed, os.X_OK):
        return installed
    # conmon and the shim exec a path: a script that runs the module of this
    # tree; -P: not the caller's working directory first on sys.path (podman
    # runs the runtime in its own, which may hold another bocker tree)
    wrapper = os.path.join(base, "bocker-oci")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -P -m bocker.oci.cli \"$@\"\n")
    os.chmod(wrapper, 0o755)
    return wrapper


def busybox_tar(path):
    """A busybox-static rootfs as a plain tar at path (podman import's input
    and the one layer of the OCI archive); returns its bytes."""
    rootfs = tempfile.mkdtemp(prefix=PREFIX + "rootfs-")
    try:
        hostsetup.make_busybox_rootfs(rootfs)
        with tarfile.open(path, "w") as tar:
            for name in sorted(os.listdir(rootfs)):
                tar.add(os.path.join(rootfs, name), arcname=name)
    finally:
        shutil.rmtree(rootfs)
    with open(path, "rb") as f:
        return f.read()


def oci_archive(path, layer, name=IMAGE):
    """An OCI image layout as a tar (what `ctr images import` reads): the
    layout file, an index naming the image, a manifest, a config, a layer."""
    blobs = {}

    def blob(data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    layer_desc = blob(layer, "application/vnd.oci.image.layer.v1.tar")
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(config, "application/vnd.oci.image.config.v1+json"),
        "layers": [layer_desc]}).encode()
    desc = blob(manifest, "application/vnd.oci.image.manifest.v1+json")
    desc["annotations"] = {"io.containerd.image.name": name,
                           "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
    index = json.dumps({"schemaVersion": 2, "manifests": [desc],
                        "mediaType": "application/vnd.oci.image.index.v1+json"}).encode()
    with tarfile.open(path, "w") as tar:
        def add(member, data):
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for digest, data in blobs.items():
            add("blobs/sha256/" + digest[7:], data)


# ------------------------------------------------------------ host state

def cgroup_mounts():
    """[(controllers, mount point)] of every cgroup hierarchy: controllers
    is a set of names (v1, "name=systemd" included) or {"unified"} (v2)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype, _source, options = right.split()[:3]
            if fstype == "cgroup2":
                out.append(({"unified"}, left.split()[4]))
            elif fstype == "cgroup":
                names = {o for o in options.split(",") if o not in ("rw", "ro")}
                out.append((names, left.split()[4]))
    return out


def cgroup_dirs(parent):
    """The directories of cgroup `parent` (a path from the roots) in every hierarchy."""
    return [os.path.join(mount, parent.strip("/")) for _, mount in cgroup_mounts()]


def cgroup_procs(parent):
    """PIDs in cgroup `parent` or below it, in any hierarchy."""
    pids = set()
    for top in cgroup_dirs(parent):
        for directory, _, _ in os.walk(top):
            with contextlib.suppress(OSError):
                with open(os.path.join(directory, "cgroup.procs")) as f:
                    pids.update(int(p) for p in f.read().split())
    return pids


def remove_cgroup(parent):
    """rmdir cgroup `parent` and everything below it, leaves first;
    returns the directories that would not go."""
    stuck = []
    for top in cgroup_dirs(parent):
        for directory, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError:
                stuck.append(directory)
    return stuck


def cgroup_file(pid, controller, v1_name, v2_name):
    """The path of a controller's file for the cgroup of process pid:
    the v1 hierarchy holding that controller, else the v2 one."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    mounts = cgroup_mounts()
    for _, names, path in lines:
        if controller in names.split(","):
            mount = next(m for c, m in mounts if controller in c)
            return os.path.join(mount, path.lstrip("/"), v1_name)
    path = next(p for _, names, p in lines if names == "")
    mount = next(m for c, m in mounts if c == {"unified"})
    return os.path.join(mount, path.lstrip("/"), v2_name)


def run_tool(name, argv, env, check, timeout, input):
    """Run a client's command line (text; stdin /dev/null unless input);
    with check, a non-zero exit fails the test with its output."""
    proc = subprocess.run(argv, capture_output=True, text=True, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {' '.join(argv[1:])} -> {proc.returncode}\n"
                             f"{proc.stdout}{proc.stderr}")
    return proc


def pids_whose_argv_has(needle):
    """PIDs (not zombies, not ours) with an argv word containing needle."""
    needle = needle.encode()
    return [pid for pid in pids_whose_argv(lambda argv: any(needle in a for a in argv))
            if pid != os.getpid()]


def alive(pid):
    """True if pid runs (a zombie is not running)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def mounts_under(prefix):
    """Mount points below prefix in our mount namespace, deepest first."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted((p for p in points if p.startswith(prefix.rstrip("/") + "/")),
                  key=len, reverse=True)


def files_under(top):
    """Every non-directory below top (the runtime's state must be gone)."""
    return sorted(os.path.join(d, n) for d, _, names in os.walk(top) for n in names)


class Leftovers:
    """What a test's clients left: collected while cleaning it up, reported at the end."""

    def __init__(self):
        self.items = []

    def add(self, what, things):
        if things:
            self.items.append(f"{what}: {sorted(things)}")

    def kill(self, what, pids):
        """SIGKILL pids (still running) and note them."""
        pids = [p for p in pids if alive(p)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.add(what, [f"{p} {_argv(p)}" for p in pids])
        wait_for(lambda: not any(alive(p) for p in pids), 10)


def _argv(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _private_base(kind):
    base = tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-")
    os.chmod(base, 0o755)    # conmon, the shim and the container read below it
    return base


def _finish(base, cgroup_parent, leftovers):
    """The last steps of every teardown: mounts, the directory, the cgroups."""
    points = mounts_under(base)
    for point in points:
        subprocess.run(["umount", "-l", point], capture_output=True)
    leftovers.add("mounts left under " + base, points)
    shutil.rmtree(base, ignore_errors=True)
    leftovers.add("cgroups that would not go", remove_cgroup(cgroup_parent))
    assert not leftovers.items, "the clients left: " + "; ".join(leftovers.items)


# ------------------------------------------------------------ podman

class Podman:
    """podman 4 (rootful, cgroupfs, conmon) with its own storage, run and
    tmp directories, network config dir, containers.conf naming the
    runtime under test through a wrapper that gives it a private --root."""

    def __init__(self, base, runtime):
        self.base, self.runtime = base, runtime
        self.binary = require("podman")
        require("conmon")
        d = {name: os.path.join(base, name) for name in
             ("root", "runroot", "tmp", "net", "runtime-root", "volumes")}
        for path in d.values():
            os.makedirs(path, exist_ok=True)
        self.dirs = d
        self.cgroup_parent = "/" + os.path.basename(base)
        # podman passes no --root to the runtime (`--runtime-flag root=` does
        # not reach the `podman container cleanup` that conmon runs at exit,
        # whose delete then looks in the default root): a wrapper gives it
        self.wrapper = os.path.join(base, "runtime")
        with open(self.wrapper, "w") as f:
            f.write(f'#!/bin/sh\nexec {runtime} --root {d["runtime-root"]} "$@"\n')
        os.chmod(self.wrapper, 0o755)
        self.conf = os.path.join(base, "containers.conf")
        with open(self.conf, "w") as f:
            f.write(self.containers_conf(self.wrapper, d))
        storage = os.path.join(base, "storage.conf")
        with open(storage, "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\nrunroot = "{d["runroot"]}"\n'
                    f'graphroot = "{d["root"]}"\n')
        self.env = {**os.environ, "CONTAINERS_CONF": self.conf,
                    "CONTAINERS_STORAGE_CONF": storage, "TMPDIR": d["tmp"]}

    @staticmethod
    def containers_conf(runtime, d):
        """containers.conf: no default ulimits (podman's nofile=1048576 needs
        CAP_SYS_RESOURCE), no network, cgroupfs, file events, the runtime."""
        return f"""[containers]
default_ulimits = []
netns = "none"

[network]
network_config_dir = "{d['net']}"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d['tmp']}/events.log"
image_copy_tmp_dir = "{d['tmp']}"
tmp_dir = "{d['tmp']}"
volume_path = "{d['volumes']}"
runtime = "under-test"
# as for runc: podman passes --log FILE --log-format=json and reads errors there
runtime_supports_json = ["under-test"]

[engine.runtimes]
under-test = ["{runtime}"]
"""

    def argv(self, *args):
        d = self.dirs
        return [self.binary, "--root", d["root"], "--runroot", d["runroot"],
                "--tmpdir", d["tmp"], "--storage-driver", "vfs",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                "--network-config-dir", d["net"], *args]

    def __call__(self, *args, check=True, timeout=120, input=None):
        """Run podman; returns the CompletedProcess (text)."""
        return run_tool("podman", self.argv(*args), self.env, check, timeout, input)

    def run_args(self, *args):
        """`podman run` with the options every test's containers get."""
        return ("run", "--network", "none", "--cgroup-parent", self.cgroup_parent, *args)

    def spawn(self, *args, timeout=30):
        """podman under a pseudo-terminal (pexpect), for -it."""
        import pexpect

        argv = self.argv(*args)
        return pexpect.spawn(argv[0], argv[1:], env=self.env, encoding="utf-8",
                             timeout=timeout, dimensions=(24, 80))

    def import_image(self):
        layer = os.path.join(self.base, "busybox.tar")
        busybox_tar(layer)
        self("import", layer, IMAGE)
        os.unlink(layer)
        return IMAGE

    def teardown(self):
        """Remove every container, wait for conmon and podman's cleanup
        processes, then remove and report whatever is left."""
        leftovers = Leftovers()
        try:
            proc = self("rm", "--all", "--force", "--time", "0", check=False)
            if proc.returncode != 0:
                leftovers.add("podman rm -af failed", [proc.stderr.strip()])
            # conmon and its exit command (`podman container cleanup`) name base in argv
            wait_for(lambda: not pids_whose_argv_has(self.base), 20)
            leftovers.kill("processes naming " + self.base, pids_whose_argv_has(self.base))
            leftovers.kill("processes in " + self.cgroup_parent, cgroup_procs(self.cgroup_parent))
            leftovers.add("runtime state left", files_under(self.dirs["runtime-root"]))
        finally:
            _finish(self.base, self.cgroup_parent, leftovers)


@contextlib.contextmanager
def podman_session():
    """A Podman with the busybox image imported; cleaned and checked after."""
    base = _private_base("podman")
    p = None
    try:
        p = Podman(base, runtime_binary(base))
        p.image = p.import_image()
        yield p
    finally:
        if p is not None:
            p.teardown()
        else:
            shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------ containerd

class Containerd:
    """containerd with its own root, state, gRPC and ttrpc sockets, opt
    dir and no CRI plugin, in a mount namespace of its own whose /run is a
    fresh tmpfs (containerd 1.6 puts its shims' sockets in
    /run/containerd/s whatever the config says).  ctr runs containers
    through io.containerd.runc.v2 with --runc-binary (the shim's
    BinaryName option: what a Kubernetes RuntimeClass handler sets) and
    --runc-root (its Root option) pointing at the runtime under test."""

    def __init__(self, base, runtime):
        self.base, self.runtime = base, runtime
        self.binary = require("containerd")
        self.ctr_binary = require("ctr")
        require("containerd-shim-runc-v2")
        require("unshare")
        d = {name: os.path.join(base, name) for name in
             ("root", "state", "opt", "fifo", "runtime-root", "tmp")}
        for path in d.values():
            os.makedirs(path, exist_ok=True)
        self.dirs = d
        self.address = os.path.join(base, "containerd.sock")
        self.cgroup_parent = "/" + os.path.basename(base)
        self.config = os.path.join(base, "config.toml")
        with open(self.config, "w") as f:
            f.write(self.config_toml(d, self.address))
        self.env = {**os.environ, "CONTAINERD_SNAPSHOTTER": "native"}
        self.proc = None
        # ctr makes /run/containerd/fifo without --fifo-dir: a test must not
        self.host_run_existed = os.path.exists("/run/containerd")

    @staticmethod
    def config_toml(d, address):
        return f"""version = 2
root = "{d['root']}"
state = "{d['state']}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{address}"

[ttrpc]
  address = "{address}.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d['opt']}"
"""

    def start(self):
        log = open(os.path.join(self.base, "containerd.log"), "w")
        script = "mount -t tmpfs -o mode=0755 bocker-test-run /run && exec \"$0\" --config \"$1\""
        with log:
            # TMPDIR: the shim's exec process files and console sockets go there
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                 self.binary, self.config], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "TMPDIR": self.dirs["tmp"]})
        up = wait_for(lambda: self.proc.poll() is not None or (
            os.path.exists(self.address) and self.ctr("version", check=False).returncode == 0),
            20)
        assert up and self.proc.poll() is None, "containerd did not start:\n" + self.log()

    def log(self):
        with open(os.path.join(self.base, "containerd.log")) as f:
            return f.read()[-4000:]

    def argv(self, *args):
        return [self.ctr_binary, "--address", self.address, "--namespace", CTR_NAMESPACE, *args]

    def ctr(self, *args, check=True, timeout=120, input=None):
        """Run ctr; returns the CompletedProcess (text)."""
        return run_tool("ctr", self.argv(*args), self.env, check, timeout, input)

    def run_args(self, cid, *flags):
        """`ctr run` options through the runtime under test (then IMAGE ID ...)."""
        return ("run", "--runc-binary", self.runtime, "--runc-root", self.dirs["runtime-root"],
                "--fifo-dir", self.dirs["fifo"], "--cgroup", f"{self.cgroup_parent}/{cid}",
                *flags)

    def exec_args(self, exec_id, *flags):
        """`ctr tasks exec` options (then TASK ARGS ...): ctr makes the
        FIFOs, which the shim must see, in its --fifo-dir."""
        return ("tasks", "exec", "--fifo-dir", self.dirs["fifo"], "--exec-id", exec_id, *flags)

    def spawn(self, *args, timeout=30):
        """ctr under a pseudo-terminal (pexpect), for -t."""
        import pexpect

        argv = self.argv(*args)
        return pexpect.spawn(argv[0], argv[1:], env=self.env, encoding="utf-8",
                             timeout=timeout, dimensions=(24, 80))

    def import_image(self):
        layer = busybox_tar(os.path.join(self.base, "busybox.tar"))
        archive = os.path.join(self.base, "busybox-oci.tar")
        oci_archive(archive, layer)
        self.ctr("images", "import", archive)
        os.unlink(archive)
        os.unlink(os.path.join(self.base, "busybox.tar"))
        return IMAGE

    def ids(self, *what):
        return self.ctr(*what, "ls", "-q", check=False).stdout.split()

    def teardown(self):
        """Kill and delete every task and container, stop containerd by
        PID, then remove and report whatever is left."""
        leftovers = Leftovers()
        try:
            if self.proc is not None and self.proc.poll() is None:
                for task in self.ids("tasks"):
                    self.ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)
                    self.ctr("tasks", "delete", "--force", task, check=False)
                for container in self.ids("containers"):
                    self.ctr("containers", "delete", container, check=False)
                leftovers.add("tasks that would not go", self.ids("tasks"))
                leftovers.add("containers that would not go", self.ids("containers"))
                self.proc.terminate()
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    leftovers.add("containerd ignored SIGTERM", [self.proc.pid])
            # shims name our address in their argv; a deleted task's shim exits
            wait_for(lambda: not pids_whose_argv_has(self.address), 20)
            leftovers.kill("shims naming " + self.address, pids_whose_argv_has(self.address))
            leftovers.kill("processes naming " + self.base, pids_whose_argv_has(self.base))
            leftovers.kill("processes in " + self.cgroup_parent, cgroup_procs(self.cgroup_parent))
            leftovers.add("runtime state left", files_under(self.dirs["runtime-root"]))
            if not self.host_run_existed and os.path.exists("/run/containerd"):
                leftovers.add("made on the host", ["/run/containerd"])
                for directory, _, _ in sorted(os.walk("/run/containerd"), reverse=True):
                    with contextlib.suppress(OSError):
                        os.rmdir(directory)
        finally:
            _finish(self.base, self.cgroup_parent, leftovers)


@contextlib.contextmanager
def containerd_session():
    """A running Containerd with the busybox image imported; stopped,
    cleaned and checked after."""
    base = _private_base("ctd")
    c = None
    try:
        c = Containerd(base, runtime_binary(base))
        c.start()
        c.image = c.import_image()
        yield c
    finally:
        if c is not None:
            c.teardown()
        else:
            shutil.rmtree(base, ignore_errors=True)
