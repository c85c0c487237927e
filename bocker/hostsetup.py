"""`bocker setup`: make the host ready, and undo exactly that.

If the root is not on btrfs, a sparse file is formatted btrfs (mkfs.btrfs,
once), attached to a loop device and mounted at the root through the shim.
What setup made is recorded in <root>.setup.json, outside the mount, so
`--teardown` removes it and nothing else.

setup is safe at every boot: the backing file is mounted again (not
formatted), the bridge, its address and the nftables tables are made
again as network.json names them.  The setup record also keeps the boot
it last started containers in (the kernel's boot_id): the first setup
after a reboot is the one that starts the containers whose restart policy
says so (bocker.runtime.restarter.at_boot, called by the CLI), as a
Docker daemon does when it starts.  `--systemd` installs a unit that runs
setup at boot (bootunit.py).
"""
import contextlib
import os
import shutil
import subprocess

from bocker import faults, state, trace, units
from bocker.errors import BockerError
from bocker.image import images
from bocker.kernel import native, store

DEFAULT_SIZE = "10G"


def _record_path(root):
    return root.rstrip("/") + ".setup.json"


BOOT_ID = "/proc/sys/kernel/random/boot_id"


def boot_id():
    """This boot's ID (a new one at every boot of the kernel)."""
    with open(BOOT_ID) as f:
        return f.read().strip()


def _read_record(root):
    try:
        return state.read_json(_record_path(root))
    except FileNotFoundError:
        return None


def rebooted(paths):
    """True if the root was set up in an earlier boot than this one and
    no setup has started its containers since (a root never set up, or
    set up by a bocker from before boot IDs were kept, was not)."""
    record = _read_record(paths.root)
    return bool(record and record.get("boot_id")) and record["boot_id"] != boot_id()


def remember_boot(paths):
    """Record that this boot's setup has started the root's containers."""
    record = _read_record(paths.root)
    if record is not None:
        record["boot_id"] = boot_id()
        state.write_json(_record_path(paths.root), record)


def install_boot_unit(paths, log=print):
    """`--systemd`: install and enable the unit that runs setup at boot
    (bootunit.py), and record it so that teardown removes it."""
    from bocker import bootunit

    record = _read_record(paths.root)
    if record is None:
        raise BockerError(f"{paths.root} is not set up: run 'bocker setup' first")
    record["systemd"] = bootunit.install(paths.root, log)
    state.write_json(_record_path(paths.root), record)


def setup(paths, size=DEFAULT_SIZE, default_image=True, log=print, bridge=None, subnet=None):
    """Idempotently make paths.root a btrfs filesystem, the bridge network
    (bridge, subnet, NAT) and the default busybox image.  Returns the
    setup record."""
    root = paths.root
    record = _Record(root)
    # A setup that fails half-way undoes what it made, in reverse, and
    # puts its record back as it found it (the first undo, run last).
    with contextlib.ExitStack() as undo:
        undo.callback(record.restore)
        faults.point("setup.make_root")
        if not os.path.isdir(root):
            # the record lives beside the root: its parents first (as ever,
            # they stay at teardown)
            os.makedirs(os.path.dirname(root), exist_ok=True)
            record.note(created_root=True)
            os.mkdir(root, 0o711)
            undo.callback(os.rmdir, root)
        if not store.is_btrfs(root):
            _mount_loop_btrfs(root, units.parse_size(size), record, log, undo)
        faults.point("setup.make_dirs")
        for d in (paths.images, paths.containers, paths.layers, paths.volumes):
            os.makedirs(d, 0o711, exist_ok=True)
        _setup_network(paths, record, bridge, subnet, log, undo)
        faults.point("setup.write_record")
        record.note()
        faults.point("setup.default_image")
        if default_image and not _has_image(paths, "busybox:latest"):
            image_id = images.create(paths, "busybox-static", make_busybox_rootfs,
                                     name="busybox:latest",
                                     config={"Cmd": ["sh"], "Env": [
                                         "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]})
            log(f"Created: {image_id}")
        undo.pop_all()
    return record.fields


class _Record:
    """<root>.setup.json, written before each thing setup makes (what it
    is about to make, noted first): a setup killed at any point leaves a
    record naming everything it made, so the next setup finishes the job
    and --teardown removes all of it (teardown skips what is not there)."""

    def __init__(self, root):
        self.path = _record_path(root)
        try:
            self.fields = state.read_json(self.path)
            self.found = dict(self.fields)
        except FileNotFoundError:
            self.fields, self.found = {"root": root}, None

    def note(self, **fields):
        """Record fields (durably) before what they name is made."""
        self.fields.update(fields)
        state.write_json(self.path, self.fields)

    def restore(self):
        """Put the record back as this setup found it (none: remove it)."""
        if self.found is not None:
            state.write_json(self.path, self.found)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _setup_network(paths, record, bridge, subnet, log, undo):
    """The bridge, IPv4 forwarding and NAT (network.setup_host), recorded
    in the root's network.json for `run` and in the setup record for
    teardown."""
    from bocker.net import nat, network

    faults.point("setup.network")
    try:
        current = state.read_json(paths.network)
    except FileNotFoundError:
        current = {}
    bridge = bridge or current.get("bridge") or network.DEFAULT_BRIDGE
    subnet = subnet or current.get("subnet") or network.DEFAULT_SUBNET
    if current and (current["bridge"], current["subnet"]) != (bridge, subnet):
        raise BockerError(f"{paths.root} is set up with {current['bridge']} "
                          f"{current['subnet']}: tear it down first to change it")
    config = {"bridge": bridge, "subnet": subnet, "table": nat.table_for(bridge)}
    record.note(network=config)
    with trace.span("network setup", **config):
        network.setup_host(bridge, subnet, config["table"])
    if not current:  # made by this call: a failure later removes it again
        undo.callback(network.teardown_host, bridge, subnet, config["table"])
        undo.callback(os.unlink, paths.network)
    state.write_json(paths.network, config)
    log(f"Network: {bridge} {network.gateway(subnet)} ({subnet}), nftables table {config['table']}")


def _has_image(paths, name):
    return any(name in r.get("names", ()) for r in images.list_all(paths))


def _mount_loop_btrfs(root, size, record, log, undo):
    backing = root.rstrip("/") + ".btrfs"
    record.note(backing=backing)
    if not os.path.exists(backing):
        # formatted under another name: a backing file is always a whole
        # filesystem, whatever point a setup was killed at
        partial = backing + ".partial"
        with open(partial, "wb") as f:
            f.truncate(size)  # sparse: takes no space until written
        faults.point("setup.mkfs")
        try:
            subprocess.run(["mkfs.btrfs", "-q", partial], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except (subprocess.CalledProcessError, FileNotFoundError) as e:
            os.unlink(partial)
            detail = e.stderr.decode().strip() if getattr(e, "stderr", None) else str(e)
            raise BockerError(f"mkfs.btrfs {backing} failed: {detail}") from None
        except BaseException:
            os.unlink(partial)
            raise
        os.rename(partial, backing)
        undo.callback(os.unlink, backing)
    faults.point("setup.loop_attach")
    with trace.span("loop attach", file=backing, autoclear=True) as sp:
        device, fd = native.loop_attach(backing, autoclear=True)
        sp.set(device)
    try:
        faults.point("setup.mount")
        with trace.span("mount", source=device, target=root, fstype="btrfs"):
            native.mount(device, root, "btrfs")
    finally:
        os.close(fd)  # autoclear: the device now lives exactly as long as the mount
    undo.callback(native.umount, root)
    log(f"Mounted {backing} ({device}) at {root}")


def teardown(paths, containers, log=print):
    """Undo setup: unmount the loop btrfs (the loop device detaches itself),
    delete the backing file, remove the root if setup created it.

    containers: the root's container records (bocker.runtime's list_all),
    to refuse while any is running.  The caller reads them because setup
    sits below the runtime: the runtime needs what setup made, never the
    other way round.
    """
    from bocker.kernel import cgroups

    root = paths.root
    record_path = _record_path(root)
    try:
        record = state.read_json(record_path)
    except FileNotFoundError:
        raise BockerError(f"nothing to tear down: {root} was not set up by bocker") from None
    running = [r["Id"] for r in containers
               if r["State"].get("Running") or r["State"].get("Restarting")]
    if running:
        raise BockerError(f"containers are running ({', '.join(running)}): stop them first")
    faults.point("teardown.remove_cgroup_parent")
    cgroups.driver().remove_parent()
    if "systemd" in record:
        from bocker import bootunit

        bootunit.remove(record["systemd"], log)
    faults.point("teardown.network")
    if "network" in record:
        from bocker.net import network

        net = record["network"]
        with trace.span("network teardown", **net):
            network.teardown_host(net["bridge"], net["subnet"], net["table"])
        log(f"Removed {net['bridge']} and nftables table {net['table']}")
    # the rootfs pool's snapshots made ahead (runtime/pool.py): none survives the root
    store.remove_directory_of_subvolumes(paths.pool)
    faults.point("teardown.umount")
    if "backing" in record:
        with contextlib.suppress(OSError):  # the user's data goes with the filesystem: say so
            volumes = sorted(os.listdir(paths.volumes))
            if volumes:
                log(f"Removing {len(volumes)} volume(s) with the filesystem: "
                    f"{', '.join(volumes)[:200]}")
        if os.path.ismount(root):
            with trace.span("umount", target=root):
                native.umount(root)
            log(f"Unmounted {root}")
        faults.point("teardown.unlink_backing")
        for path in (record["backing"], record["backing"] + ".partial"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    faults.point("teardown.remove_root")
    if record.get("created_root") and os.path.isdir(root):
        os.rmdir(root)
    faults.point("teardown.unlink_record")
    os.unlink(record_path)


def make_busybox_rootfs(rootfs, busybox="/bin/busybox"):
    """Fill rootfs with a static busybox, its applet links and the few
    files a shell expects."""
    if not os.path.exists(busybox):
        raise BockerError(f"{busybox} not found: install busybox-static")
    for d, mode in (("bin", 0o755), ("sbin", 0o755), ("usr/bin", 0o755),
                    ("usr/sbin", 0o755), ("etc", 0o755), ("root", 0o700),
                    ("home", 0o755), ("var", 0o755), ("mnt", 0o755), ("proc", 0o555),
                    ("sys", 0o555), ("dev", 0o755), ("tmp", 0o1777)):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        os.chmod(os.path.join(rootfs, d), mode)
    shutil.copy2(busybox, os.path.join(rootfs, "bin/busybox"))
    applets = subprocess.run([busybox, "--list-full"], check=True,
                             capture_output=True, text=True).stdout.split()
    for applet in applets:
        link = os.path.join(rootfs, applet)
        if applet == "bin/busybox" or os.path.lexists(link):
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink("/bin/busybox", link)
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "etc/group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    }
    for name, text in files.items():
        with open(os.path.join(rootfs, name), "w") as f:
            f.write(text)
