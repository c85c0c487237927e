"""Where bocker keeps things, and how it writes them: the paths under a
root, atomic JSON files, the flocks, and the listing of record
directories.

<root> (a btrfs filesystem, default /var/bocker, or $BOCKER_ROOT):
    images/<img_id>/rootfs        subvolume
    images/<img_id>/image.json    metadata, beside the rootfs, never in it
    containers/<ps_id>/rootfs     snapshot of the image
    containers/<ps_id>/container.json, log, hosts, hostname, resolv.conf
    layers/<chain_id>/rootfs      pulled layers (see image/layer_store.py)
    network.json                  the bridge, subnet and nft table of setup
    leases/<ip> -> <ps_id>        address leases (symlinks, see net/network.py)
    userns/<host uid> -> <ps_id>  --userns=auto id blocks (symlinks, see confine/userns.py)
    names/<name> -> <ps_id>       container names (symlinks, see runtime/names.py)
    volumes/<name>/_data          a volume's subvolume (see bocker/volume)
    volumes/<name>/volume.json    its metadata, beside the data
    pool/<img_id>.<pid>.<n>       rootfs snapshots made ahead (runtime/pool.py)
    buildcache/<key>/step.json    a build step's cache entry, rootfs beside it (build/cache.py)
    lock                          flock: shared by each container's mkdir,
                                  exclusive for prune of record-less leftovers

Every other lock is a flock on the directory it guards, held for a few
system calls: containers/<ps_id> (its record's read-modify-write: finish,
rm), names (dropping a name), images (image names), layers (pins and
layer prune).  None is ever held while a container runs or a layer
downloads.

One module, not three (paths, JSON, lock): it is about a hundred lines
with one job, the on-disk format, and every record module imports all of
it; split, each part would be a few lines and every importer would grow.
"""
import contextlib
import fcntl
import json
import os
import threading

DEFAULT_ROOT = "/var/bocker"


def root_dir(root=None):
    """The bocker root: the argument, else $BOCKER_ROOT, else /var/bocker."""
    return os.path.abspath(root or os.environ.get("BOCKER_ROOT") or DEFAULT_ROOT)


class Paths:
    """The directory layout under one root."""

    def __init__(self, root=None):
        self.root = root_dir(root)
        self.images = os.path.join(self.root, "images")
        self.containers = os.path.join(self.root, "containers")
        self.layers = os.path.join(self.root, "layers")
        self.lock = os.path.join(self.root, "lock")
        self.network = os.path.join(self.root, "network.json")
        self.leases = os.path.join(self.root, "leases")
        self.userns = os.path.join(self.root, "userns")
        self.names = os.path.join(self.root, "names")
        self.volumes = os.path.join(self.root, "volumes")
        self.pool = os.path.join(self.root, "pool")
        self.buildcache = os.path.join(self.root, "buildcache")

    def image(self, image_id):
        """images/<image_id>; only a well-formed image ID becomes that path."""
        return os.path.join(self.images, _checked_id(image_id, "img"))

    def container(self, container_id):
        """containers/<container_id>; only a well-formed container ID."""
        return os.path.join(self.containers, _checked_id(container_id, "ps"))


    def volume(self, name):
        """volumes/<name>; only a valid volume name becomes that path."""
        from bocker.volume import names

        return os.path.join(self.volumes, names.check(name))


def _checked_id(value, prefix):
    # IDs come back from records and arguments: a '../x' there must never
    # become a path, whatever wrote it.
    from bocker import ids
    from bocker.errors import InvalidArgument

    if not isinstance(value, str) or not ids.is_id(value, prefix):
        kind = "image" if prefix == "img" else "container"
        raise InvalidArgument(f"invalid {kind} ID {ascii(value)[:40]}")
    return value


def write_json(path, data, durable=True):
    """Write JSON atomically: temp file, fsync, rename over the old one.

    durable=False skips the fsync (about 1 ms each on btrfs): for a
    container's state, which is rewritten at every start and exit.  The
    rename stays atomic, and btrfs flushes a file that replaces another on
    rename, so a crash leaves the old state or the new one.
    """
    tmp = f"{path}.tmp.{os.getpid()}"
    # one line: json's C encoder takes no indent, and the pure-Python one
    # it falls back to costs about 0.2 ms per container record, twice a start
    data = memoryview(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        try:
            # a full filesystem may take part of a write: a short one
            # renamed over the old file would be a truncated record
            while data:
                data = data[os.write(fd, data):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # ENOSPC: the old file stays, no temp file beside it
        raise


def read_json(path):
    """Read a JSON file; FileNotFoundError if it is missing."""
    with open(path, "rb") as f:
        return json.loads(f.read())


_held = threading.local()  # this thread's depth in each lock it holds


@contextlib.contextmanager
def locked(path, shared=False, directory=False):
    """Hold a flock on path for the duration of the block: exclusive, or
    shared with other shared holders.  Yields True.

    directory=True locks an existing directory (its own fd, no lock file
    made): a directory that is gone (a container removed meanwhile) is
    not made, and the block runs unlocked with False.

    Re-entrant in one thread: a block that holds the lock already just
    goes on holding it.  A second flock on a new fd of the same file would
    wait for itself forever; other threads and processes still wait for
    the first."""
    depth = _held.__dict__.setdefault("depth", {})
    key = os.path.abspath(path)
    if depth.get(key):
        depth[key] += 1
        try:
            yield True
        finally:
            depth[key] -= 1
        return
    try:
        fd = (os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if directory
              else os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except FileNotFoundError:
        if not directory:
            raise
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        depth[key] = 1
        yield True
    finally:
        depth.pop(key, None)
        os.close(fd)


def read_records(directory, id_prefix, load, missing=(FileNotFoundError,), on_broken=None):
    """load(id) for every <id_prefix>_<hex> entry of directory; an entry
    whose load raises one of missing is being created or removed right
    now, and is skipped.  A corrupt one (CorruptRecord) is skipped too and
    passed to on_broken, if given, so one bad file never stops the others
    being listed."""
    from bocker import ids
    from bocker.errors import CorruptRecord

    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return []
    out = []
    for entry in entries:
        if ids.is_id(entry, id_prefix):
            try:
                out.append(load(entry))
            except missing:
                continue
            except CorruptRecord as e:
                if on_broken:
                    on_broken(e)
    return out
