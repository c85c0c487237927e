"""-v, --mount and an image's Volumes, read into MountSpecs (pure: no
file is touched; a name is only checked, never made a path here).

-v forms (Docker's on Linux):
    /ctr                        an anonymous volume at /ctr
    NAME:/ctr[:OPTS]            the named volume NAME (made if missing)
    /host:/ctr[:OPTS]           a bind of the host path
OPTS: ro, rw, nocopy, z, Z (SELinux: nothing to do), private/rprivate.
--mount: Docker's CSV of key=value (type=volume|bind|tmpfs, source/src,
target/destination/dst, readonly/ro[=BOOL], volume-opt, volume-nocopy,
volume-driver=local, tmpfs-size, tmpfs-mode, bind-propagation).
"""
import csv
import os

from bocker.errors import InvalidArgument
from bocker.volume import names

MAX_IMAGE_VOLUMES = 64     # an image's Volumes: more is hostile, not a real image
MAX_PATH = 4095
_PROPAGATION = ("", "private", "rprivate")  # what the shim's clone gives: a private tree
_BOOL = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


class MountSpec:
    """One mount as asked for.  kind: volume, bind or tmpfs; source: the
    volume's name ("" for an anonymous one), the host path (bind) or None
    (tmpfs); target: the normalised absolute path in the container.
    make_source: a missing bind source is made (-v's), else refused (--mount's)."""

    __slots__ = ("kind", "source", "target", "readonly", "nocopy", "options",
                 "tmpfs_size", "tmpfs_mode", "make_source")

    def __init__(self, kind, source, target, readonly=False, nocopy=False, options=None,
                 tmpfs_size=None, tmpfs_mode=None, make_source=False):
        self.kind, self.source, self.target = kind, source, target
        self.make_source = make_source
        self.readonly, self.nocopy = readonly, nocopy
        self.options = dict(options or {})
        self.tmpfs_size, self.tmpfs_mode = tmpfs_size, tmpfs_mode

    def __repr__(self):
        return f"MountSpec({self.kind}, {self.source!r}, {self.target!r}, ro={self.readonly})"

    def __eq__(self, other):
        return isinstance(other, MountSpec) and all(
            getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def tmpfs_data(self):
        """The tmpfs mount's data string (Docker's default mode 1777)."""
        data = [f"mode={self.tmpfs_mode:o}" if self.tmpfs_mode is not None else "mode=1777"]
        if self.tmpfs_size:
            data.append(f"size={self.tmpfs_size}")
        return ",".join(data)


def target_path(path, what):
    """path as an absolute normalised container path (not '/')."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidArgument(f"invalid {what}: the container path must be absolute")
    if "\0" in path or len(path) > MAX_PATH:
        raise InvalidArgument(f"invalid {what}: the container path is not a path")
    norm = "/" + os.path.normpath(path).lstrip("/")
    if norm == "/":
        raise InvalidArgument(f"invalid {what}: / cannot be mounted over (it is the root)")
    return norm


def _host_path(path, what):
    if "\0" in path or len(path) > MAX_PATH:
        raise InvalidArgument(f"invalid {what}: the host path is not a path")
    return os.path.normpath(path)


def parse_volume(spec):
    """A -v value -> MountSpec (kind volume or bind); InvalidArgument
    (one line) for anything else, such as a relative host path."""
    what = f"volume '{spec}'"
    if not isinstance(spec, str) or not spec:
        raise InvalidArgument("invalid volume '': use [NAME|/HOST:]/CONTAINER[:ro|rw]")
    parts = spec.split(":")
    if len(parts) == 1:
        return MountSpec("volume", "", target_path(parts[0], what))
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid {what}: use [NAME|/HOST:]/CONTAINER[:ro|rw]")
    source, target = parts[0], target_path(parts[1], what)
    readonly, nocopy = _volume_opts(parts[2] if len(parts) == 3 else "", what)
    if source.startswith("/"):
        if nocopy:
            raise InvalidArgument(f"invalid {what}: nocopy is for volumes, not binds")
        return MountSpec("bind", _host_path(source, what), target, readonly, make_source=True)
    try:
        names.check(source)
    except InvalidArgument as e:
        raise InvalidArgument(f"invalid {what}: {e}") from None
    return MountSpec("volume", source, target, readonly, nocopy)


def _volume_opts(text, what):
    readonly, nocopy, modes = False, False, set()
    for opt in text.split(",") if text else ():
        if opt in ("ro", "rw"):
            modes.add(opt)
            readonly = opt == "ro"
        elif opt == "nocopy":
            nocopy = True
        elif opt in ("z", "Z") or opt in _PROPAGATION:
            continue
        elif opt in ("shared", "rshared", "slave", "rslave"):
            raise InvalidArgument(f"invalid {what}: propagation '{opt}' is not supported "
                                  f"(volumes are private mounts)")
        else:
            raise InvalidArgument(f"invalid {what}: unknown option '{opt}' "
                                  f"(ro, rw, nocopy, z, Z)")
    if len(modes) > 1:
        raise InvalidArgument(f"invalid {what}: ro and rw at once")
    return readonly, nocopy


def parse_mount(spec):
    """A --mount value (Docker's CSV of key=value) -> MountSpec."""
    what = f"mount '{spec}'"
    try:
        fields = next(csv.reader([spec], strict=True), []) if isinstance(spec, str) and spec else []
    except csv.Error as e:
        raise InvalidArgument(f"invalid {what}: {e}") from None
    if not fields:
        raise InvalidArgument("invalid mount '': use type=volume|bind|tmpfs,target=/PATH,...")
    kv = []
    for field in fields:
        key, sep, value = field.partition("=")
        key = key.strip().lower()
        kv.append((key, value if sep else None))
    kind = next((v for k, v in kv if k == "type"), "volume")
    if kind not in ("volume", "bind", "tmpfs"):
        raise InvalidArgument(f"invalid {what}: type must be volume, bind or tmpfs")
    source = target = None
    readonly = nocopy = False
    options, size, mode = {}, None, None
    for key, value in kv:
        if key == "type":
            continue
        if key in ("source", "src"):
            source = value or ""
        elif key in ("target", "destination", "dst"):
            target = target_path(value or "", what)
        elif key in ("readonly", "ro"):
            readonly = _bool(value, key, what)
        elif key == "volume-nocopy" and kind == "volume":
            nocopy = _bool(value, key, what)
        elif key == "volume-opt" and kind == "volume":
            name, sep, val = (value or "").partition("=")
            if not name or not sep:
                raise InvalidArgument(f"invalid {what}: volume-opt needs KEY=VALUE")
            options[name] = val
        elif key == "volume-driver" and kind == "volume":
            if value != "local":
                raise InvalidArgument(f"invalid {what}: only the local volume driver exists")
        elif key == "tmpfs-size" and kind == "tmpfs":
            from bocker import units

            size = units.parse_size(value or "")
        elif key == "tmpfs-mode" and kind == "tmpfs":
            try:
                mode = int(value or "", 8)
            except ValueError:
                mode = -1
            if not 0 <= mode <= 0o7777:
                raise InvalidArgument(f"invalid {what}: tmpfs-mode is an octal mode")
        elif key == "bind-propagation" and kind == "bind":
            if value not in _PROPAGATION:
                raise InvalidArgument(f"invalid {what}: propagation '{value}' is not "
                                      f"supported (binds are private mounts)")
        elif key == "consistency":
            continue  # macOS only, as Docker ignores it on Linux
        else:
            raise InvalidArgument(f"invalid {what}: unknown key '{key}' for type={kind}")
    if target is None:
        raise InvalidArgument(f"invalid {what}: target is required")
    if kind == "tmpfs":
        if source:
            raise InvalidArgument(f"invalid {what}: a tmpfs has no source")
        return MountSpec("tmpfs", None, target, readonly, tmpfs_size=size, tmpfs_mode=mode)
    if kind == "bind":
        if not source or not source.startswith("/"):
            raise InvalidArgument(f"invalid {what}: a bind's source must be an absolute path")
        return MountSpec("bind", _host_path(source, what), target, readonly)
    if source:
        try:
            names.check(source)
        except InvalidArgument as e:
            raise InvalidArgument(f"invalid {what}: {e}") from None
    return MountSpec("volume", source or "", target, readonly, nocopy, options)


def _bool(value, key, what):
    if value is None:
        return True
    try:
        return _BOOL[value.lower()]
    except KeyError:
        raise InvalidArgument(f"invalid {what}: {key} takes true or false") from None


def image_volumes(config):
    """The container paths of an image config's Volumes ({"/data": {}}),
    validated (an image is hostile input): a dict of at most
    MAX_IMAGE_VOLUMES absolute paths; anything else is refused."""
    vols = config.get("Volumes") if isinstance(config, dict) else None
    if vols is None:
        return []
    if not isinstance(vols, dict) or len(vols) > MAX_IMAGE_VOLUMES:
        raise InvalidArgument(f"the image's Volumes is not a map of at most "
                              f"{MAX_IMAGE_VOLUMES} paths")
    out = []
    for path in vols:
        out.append(target_path(path, f"image volume {ascii(path)[:60]}"))
    return sorted(set(out))
