"""What every system starts from: one busybox rootfs, one OCI bundle over
it, and the compiled kernel floor, all in one temp directory that
`workspace()` removes on the way out (nothing is mounted in it: every
system mounts inside its own private mount namespace)."""
import contextlib
import json
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUSYBOX = "/bin/busybox"


class Workspace:
    """Paths of the shared fixtures (filled in by workspace())."""

    def __init__(self, directory):
        self.dir = directory
        self.rootfs = os.path.join(directory, "bundle", "rootfs")
        self.bundle = os.path.join(directory, "bundle")
        self.floor = None          # path of the compiled floor, or None
        self.floor_note = ""       # why it is missing


@contextlib.contextmanager
def workspace(tag="bkb"):
    """A temp directory with the busybox rootfs; removed afterwards."""
    directory = tempfile.mkdtemp(prefix=f"{tag}-bench-{os.getpid()}-")
    try:
        ws = Workspace(directory)
        build_rootfs(ws.rootfs)
        yield ws
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def busybox_applets(busybox=BUSYBOX):
    """The applet names a busybox binary provides."""
    out = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True)
    return [name for name in out.stdout.split() if name and "/" not in name]


def build_rootfs(rootfs, busybox=BUSYBOX):
    """A minimal rootfs: static busybox, one symlink per applet, the empty
    mount points a runtime expects and the /etc files runtimes bind over."""
    if not os.path.exists(busybox):
        raise FileNotFoundError(f"{busybox} is missing (apt-get install busybox-static)")
    for d in ("bin", "sbin", "proc", "sys", "dev", "etc", "tmp", "root", "run", "var"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy2(busybox, os.path.join(rootfs, "bin", "busybox"))
    for applet in busybox_applets(busybox):
        link = os.path.join(rootfs, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    etc = {
        "passwd": "root:x:0:0:root:/root:/bin/sh\n",
        "group": "root:x:0:\n",
        "hostname": "bench\n",
        "hosts": "127.0.0.1 localhost\n",
        "resolv.conf": "",
    }
    for name, text in etc.items():
        with open(os.path.join(rootfs, "etc", name), "w") as f:
            f.write(text)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)


def busybox_version(busybox=BUSYBOX):
    """First line of `busybox` (e.g. 'BusyBox v1.35.0 (Debian ...)')."""
    try:
        out = subprocess.run([busybox], capture_output=True, text=True)
        return (out.stdout or out.stderr).splitlines()[0].strip()
    except (OSError, IndexError):
        return None


def write_oci_config(ws, spec_tool):
    """config.json for crun and runc: the runtime's own default spec (from
    `spec_tool spec`), with no terminal and /bin/true as the process, so
    both comparators run the very same bundle.  Returns the tool used."""
    subprocess.run([spec_tool, "spec"], cwd=ws.bundle, check=True,
                   capture_output=True)
    path = os.path.join(ws.bundle, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    config["root"] = {"path": "rootfs", "readonly": True}
    config["hostname"] = "bench"
    with open(path, "w") as f:
        json.dump(config, f, indent=1)
    return os.path.basename(spec_tool)


def compile_floor(ws, cc=None):
    """Compile floor.c into the workspace (static if the libc allows it).
    Sets ws.floor, or ws.floor_note when no compiler works."""
    cc = cc or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        ws.floor_note = "no C compiler (apt-get install gcc)"
        return
    source = os.path.join(HERE, "floor.c")
    target = os.path.join(ws.dir, "floor")
    errors = ""
    for extra in (["-static"], []):
        out = subprocess.run([cc, "-O2", "-Wall", *extra, "-o", target, source],
                             capture_output=True, text=True)
        if out.returncode == 0:
            ws.floor = target
            ws.floor_note = "static" if extra else "dynamic (no static libc)"
            return
        errors = out.stderr.strip().splitlines()[-1:] or ["cc failed"]
    ws.floor_note = f"floor.c did not compile: {errors[0]}"
