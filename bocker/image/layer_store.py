"""The layer store: each layer a read-only btrfs subvolume named by its chain ID.

<root>/layers/<chain id hex>/rootfs is a snapshot of its parent layer's
subvolume with the layer applied (extract.py; Docker's btrfs driver does
the same), plus layer.json beside it.  Images snapshot their top layer, so
shared base layers are stored once and a re-pull applies nothing.  A chain
ID becomes a path in one place (_dir), after digest.hex_of has checked it.
Pins keep prune() off the layers a pull or load is building on.
"""
import contextlib
import errno
import hashlib
import os
import secrets

from bocker import faults, state, trace
from bocker.image import digest
from bocker.image.extract import LayerError, extract
from bocker.kernel import store


def chain_ids(diff_ids):
    """OCI chain IDs: ChainID(L0)=DiffID(L0), ChainID(Ln)=sha256(ChainID(Ln-1) DiffID(Ln))."""
    out = []
    for diff_id in diff_ids:
        digest.check(diff_id, "diff_id")
        if out:
            diff_id = "sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest()
        out.append(diff_id)
    return out


def _dir(paths, chain_id):
    # The one place a chain ID becomes a path: only sha256:<64 hex> may.
    return os.path.join(paths.layers, digest.hex_of(chain_id, "chain ID"))


def rootfs(paths, chain_id):
    """The subvolume holding a layer and everything below it."""
    return os.path.join(_dir(paths, chain_id), "rootfs")


def exists(paths, chain_id):
    """True if the layer is complete in the store."""
    return os.path.exists(os.path.join(_dir(paths, chain_id), "layer.json"))


def add(paths, parent, chain_id, diff_id, fileobj, info=None):
    """Store a layer: snapshot parent's layer (or start empty), apply fileobj.

    The tar's sha256 must equal diff_id.  The layer appears under its chain
    ID only when complete; on any failure nothing is left behind.
    """
    digest.check(diff_id, "diff_id")
    store.require_btrfs(paths.root)
    os.makedirs(paths.layers, exist_ok=True)
    final = _dir(paths, chain_id)
    parent_rootfs = rootfs(paths, parent) if parent else None
    # named by our PID: what a killed add leaves, prune_leftovers removes
    tmp = os.path.join(paths.layers, f".tmp-{os.getpid()}-{secrets.token_hex(4)}")
    os.mkdir(tmp, 0o700)
    try:
        target = os.path.join(tmp, "rootfs")
        if parent:
            store.snapshot(parent_rootfs, target)
        else:
            store.create(target)
        faults.point("layer_store.extract")
        with trace.span("layer extract", target=target, diff_id=diff_id) as sp:
            got, size = extract(fileobj, target)
            sp.set(f"{size} bytes")
        if got != diff_id:
            raise LayerError(f"digest mismatch for {diff_id} (uncompressed layer)")
        store.set_readonly(target)  # shared by every image built on it
        record = dict(info or {}, chain_id=chain_id, diff_id=diff_id, parent=parent,
                      size=size)
        faults.point("layer_store.write_record")
        state.write_json(os.path.join(tmp, "layer.json"), record)
        try:
            os.rename(tmp, final)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            _remove_layer_dir(tmp)  # a concurrent pull stored it first
    except BaseException:
        _remove_layer_dir(tmp)
        raise
    return final


def prune_leftovers(paths):
    """What killed adds and prunes left under layers/: a layer being built
    (.tmp-<pid>-...) by a process that is gone, a layer directory whose
    layer.json a prune deleted before it was killed.  Call it holding the
    root's lock (prune runs under it).  Returns their names."""
    from bocker.image.images import BUILDING, _pid_alive

    gone = []
    try:
        entries = sorted(os.listdir(paths.layers))
    except FileNotFoundError:
        return []
    for entry in entries:
        directory = os.path.join(paths.layers, entry)
        if entry.startswith(BUILDING) and not _pid_alive(entry[len(BUILDING):].split("-")[0]):
            _remove_layer_dir(directory)
            gone.append(entry)
        elif digest.is_hex(entry) and not os.path.exists(os.path.join(directory, "layer.json")):
            _remove_layer_dir(directory)
            gone.append(entry)
    return gone


def _remove_layer_dir(directory):
    store.remove_dir(directory, "layer.json")


def list_all(paths):
    """Chain IDs of every complete layer in the store."""
    try:
        entries = os.listdir(paths.layers)
    except FileNotFoundError:
        return []
    return sorted("sha256:" + e for e in entries
                  if digest.is_hex(e) and exists(paths, "sha256:" + e))


@contextlib.contextmanager
def pinned(paths, chain_ids):
    """Keep prune() off these layers while a pull or load builds on them.

    The pin is written under the layer store's lock, the lock prune runs
    under, so a pull that pins first and then checks what exists cannot
    see a layer vanish between that check and its image's snapshot.  The
    lock is held for the pin's write only, never for a download.
    """
    directory = os.path.join(paths.layers, ".pins")
    os.makedirs(directory, exist_ok=True)
    pin = os.path.join(directory, f"{os.getpid()}-{secrets.token_hex(4)}")
    with locked(paths):
        state.write_json(pin, {"pid": os.getpid(), "layers": list(chain_ids)})
    try:
        yield
    finally:
        os.unlink(pin)


def locked(paths):
    """The layer store's lock (a flock on layers/): pins and prune."""
    os.makedirs(paths.layers, exist_ok=True)
    return state.locked(paths.layers, directory=True)


def _pinned(paths):
    out = set()
    directory = os.path.join(paths.layers, ".pins")
    for entry in os.listdir(directory) if os.path.isdir(directory) else ():
        path = os.path.join(directory, entry)
        try:
            pin = state.read_json(path)
            os.kill(pin["pid"], 0)
        except ProcessLookupError:
            os.unlink(path)  # its pull died without unpinning
            continue
        except (OSError, ValueError, KeyError):
            continue
        out.update(pin["layers"])
    return out


def prune(paths, used):
    """Delete every stored layer not in used (chain IDs) nor pinned; returns those deleted.

    Call it holding locked(paths) (images.remove does).
    """
    gone = []
    used = set(used) | _pinned(paths)
    for chain_id in list_all(paths):
        if chain_id not in used:
            directory = _dir(paths, chain_id)
            os.unlink(os.path.join(directory, "layer.json"))  # no longer listed
            _remove_layer_dir(directory)
            gone.append(chain_id)
    return gone
