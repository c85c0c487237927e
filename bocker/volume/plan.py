"""A container's Mounts, decided once at create: -v, --mount,
--volumes-from and the image's Volumes, in Docker's record shape
(Type, Name, Source, Destination, Driver, Mode, RW, Propagation).

The volumes they name are made here (named ones if missing, anonymous
ones new) and filled from the image (copy-up) while empty; each volume
this create made is removed again by the caller's undo if the create
fails later.  The caller holds the root's lock shared (volumes.py).
"""
import os

from bocker.errors import InvalidArgument
from bocker.volume import copyup, parse, volumes

MAX_MOUNTS = 64  # the shim's SHIM_MAX_BINDS bounds a start's mounts anyway


def specs(req):
    """The MountSpecs of req's -v and --mount, in order (parse checks)."""
    return ([parse.parse_volume(v) for v in req.volumes]
            + [parse.parse_mount(m) for m in req.mounts])


def check(req):
    """Refuse (one line) a request whose mounts cannot be made: a bad -v,
    --mount or --volumes-from, two mounts at one place, or a target over
    bocker's confinement; returns the MountSpecs."""
    from bocker.runtime import checks

    asked, taken = specs(req), set()
    for spec in asked:
        checks.check_target(spec.target, f"mount '{spec.target}'")
        if spec.target in taken:
            raise InvalidArgument(f"Duplicate mount point: {spec.target}")
        taken.add(spec.target)
    for ref in req.volumes_from:
        parse_volumes_from(ref)
    return asked


def plan(paths, cid, req, image_config, image_rootfs, undo):
    """The record's Mounts for container cid's req (volumes made and
    filled); registers on undo the removal of each volume it created."""
    from bocker.runtime import checks

    asked = check(req)
    taken = {spec.target for spec in asked}
    mounts = []
    for spec in asked:
        if spec.kind == "bind":
            mounts.append(_bind(spec))
        elif spec.kind == "tmpfs":
            mounts.append(_entry("tmpfs", "", spec.target, "", not spec.readonly))
        else:
            mounts.append(_volume(paths, cid, spec, image_rootfs, undo))
    for ref in req.volumes_from:
        for entry in _from_container(paths, ref):
            if entry["Destination"] not in taken:
                taken.add(entry["Destination"])
                mounts.append(entry)
    for target in parse.image_volumes(image_config):
        if target not in taken:
            checks.check_target(target, f"image volume '{target}'")
            taken.add(target)
            mounts.append(_volume(paths, cid, parse.MountSpec("volume", "", target),
                                  image_rootfs, undo))
    if len(mounts) > MAX_MOUNTS:
        raise InvalidArgument(f"too many mounts ({len(mounts)}; at most {MAX_MOUNTS})")
    # parents first: /a before /a/b, whatever order they were given in
    return sorted(mounts, key=lambda m: m["Destination"].count("/"))


def _entry(kind, source, target, mode, rw, name=None, propagation=""):
    entry = {"Type": kind, "Source": source, "Destination": target, "Mode": mode,
             "RW": rw, "Propagation": propagation}
    if name is not None:
        entry.update(Name=name, Driver="local")
    return entry


def _bind(spec):
    if not os.path.exists(spec.source):
        if not spec.make_source:  # --mount's, as Docker's
            raise InvalidArgument(f"invalid mount config for type \"bind\": bind source "
                                  f"path does not exist: {spec.source}")
        os.makedirs(spec.source)  # -v's behaviour (Docker's too)
    return _entry("bind", spec.source, spec.target, "ro" if spec.readonly else "",
                  not spec.readonly, propagation="rprivate")


def _volume(paths, cid, spec, image_rootfs, undo):
    volume, made = volumes.create(paths, spec.source or None, options=spec.options,
                                  anonymous=not spec.source)
    name = volume["Name"]
    if made:
        undo.callback(volumes.discard, paths, name, cid)
    if not spec.nocopy:
        volumes.fill(paths, name, lambda data: copyup.copy_up(image_rootfs, spec.target, data))
    return _entry("volume", volumes.data_dir(paths, name), spec.target,
                  "ro" if spec.readonly else "z", not spec.readonly, name=name)


def parse_volumes_from(text):
    """'CONTAINER[:ro|rw]' -> (container ref, None | 'ro' | 'rw')."""
    ref, sep, mode = text.rpartition(":") if ":" in text else (text, "", "")
    if not ref or (sep and mode not in ("ro", "rw")):
        raise InvalidArgument(f"invalid --volumes-from '{text}': use CONTAINER[:ro|rw]")
    return ref, mode or None


def _from_container(paths, text):
    """The volumes and binds of another container, at the same places
    (read-only or writable as there, unless :ro / :rw says)."""
    from bocker.runtime import records

    ref, mode = parse_volumes_from(text)
    record = records.load(paths, records.resolve(paths, ref))
    out = []
    for m in record.get("Mounts") or ():
        if not isinstance(m, dict) or m.get("Type") not in ("volume", "bind"):
            continue
        entry = dict(m)
        if mode:
            entry["RW"], entry["Mode"] = mode == "rw", mode
        if entry["Type"] == "volume":
            entry["Source"] = volumes.data_dir(paths, m["Name"])  # never a stored path
        out.append(entry)
    return out


def legacy_binds(volumes_):
    """The Mounts of a record made before volumes existed (its -v values
    were all HOST:CONTAINER binds)."""
    return [_entry("bind", m.source, m.target, "ro" if m.readonly else "", not m.readonly,
                   propagation="rprivate")
            for m in map(parse.parse_volume, volumes_) if m.kind == "bind"]
