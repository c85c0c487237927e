"""The event log: one JSON line per thing that happened (a container
created, started, died; an image pulled, tagged, deleted), appended to
<root>/events.log in Docker's event shape, read back by `bocker events`.

Writing never fails a command: the log is a record of what bocker did,
not part of doing it, so an OSError becomes one warning on stderr at
most.  Each event is one write(2) on an O_APPEND descriptor, so lines
from concurrent commands never interleave; a line is bounded (long
attribute values are cut), so one event cannot grow the file much.

Rotation, as podman's file backend: when the file passes MAX_SIZE, its
older half is dropped (the newer half is copied to a temporary file
renamed over the log) and a `system log-rotation` event marks the cut.
Writers hold a shared flock on the file while they write and the rotator
an exclusive one, so no line lands in a file that was just replaced.
"""
import fcntl
import json
import os
import time

MAX_SIZE = 1 << 20          # rotate past 1 MiB, keeping about half
MAX_VALUE = 256             # an attribute value longer than this is cut
MAX_ATTRIBUTES = 32         # more attributes than this are dropped
MAX_LINE = 8192             # a reader skips longer lines: a writer never makes one
_FILE = "events.log"


def log_path(paths):
    """<root>/events.log."""
    return os.path.join(paths.root, _FILE)


def emit(paths, kind, action, actor_id, attributes=None):
    """Append one event: kind ("container", "image", "volume", "network"),
    action ("start", "die", "tag", ...), the actor's ID and its attributes
    (a dict of str -> str: name, image, exitCode, signal ...).  Never
    raises for the log's sake: a failure is a warning on stderr."""
    try:
        line = encode(event(kind, action, actor_id, attributes))
        _append(log_path(paths), line)
    except (OSError, ValueError, TypeError) as e:
        _warn(e)


def container(paths, record, action, **extra):
    """emit() for a container: its ID, and as Docker's attributes its
    name, image and labels, with extra (exitCode, signal, oldName)."""
    try:
        config = record.get("Config") or {}
        labels = config.get("Labels") if isinstance(config.get("Labels"), dict) else {}
        # name and image first: a label never pushes them past MAX_ATTRIBUTES
        image = record.get("ImageName") or (record.get("Spec") or {}).get("image")
        attrs = {"image": image or record.get("Image"),
                 "name": record.get("Name"), **extra}
        attrs.update((k, v) for k, v in labels.items() if k not in attrs)
        emit(paths, "container", action, record.get("Id"), attrs)
    except (AttributeError, TypeError) as e:  # a record not of our shape: no event
        _warn(e)


def event(kind, action, actor_id, attributes=None, now_ns=None):
    """The event as Docker's /events API shapes it (with its legacy
    status/id/from fields for containers and images)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    attrs = _bounded(attributes or {})
    e = {}
    if kind in ("container", "image"):
        e["status"] = _cut(str(action))
        e["id"] = _cut(str(actor_id))
        if kind == "container" and "image" in attrs:
            e["from"] = attrs["image"]
    e.update({"Type": _cut(str(kind)), "Action": _cut(str(action)),
              "Actor": {"ID": _cut(str(actor_id)), "Attributes": attrs},
              "scope": "local", "time": now_ns // 1_000_000_000, "timeNano": now_ns})
    return e


def encode(e):
    """One line of the log (bytes, newline included), never over MAX_LINE."""
    line = json.dumps(e, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
    if len(line) > MAX_LINE:  # many attributes at their bound: keep the names only
        e = dict(e, Actor={"ID": e["Actor"]["ID"], "Attributes": {
            k: v for k, v in e["Actor"]["Attributes"].items() if k in ("name", "image")}})
        line = json.dumps(e, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
    return line


def _cut(value):
    return value if len(value) <= MAX_VALUE else value[:MAX_VALUE]


def _bounded(attributes):
    out = {}
    for k, v in attributes.items():
        if len(out) >= MAX_ATTRIBUTES:
            break
        if v is None:
            continue
        out[_cut(str(k))] = _cut(str(v))
    return out


def _append(path, line):
    # Open, share-lock, check the file is still the log (a rotation may
    # have replaced it between our open and our lock), write, close.
    for _ in range(4):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            st = os.fstat(fd)
            if not _same_file(st, path):
                continue  # rotated meanwhile: this inode is no longer the log
            if st.st_size + len(line) > MAX_SIZE:
                fcntl.flock(fd, fcntl.LOCK_EX)  # converts: the other writers finish first
                if _same_file(os.fstat(fd), path) and os.fstat(fd).st_size + len(line) > MAX_SIZE:
                    _rotate(fd, path)
                continue  # write into the new file
            os.write(fd, line)
            return
        finally:
            os.close(fd)
    raise OSError(0, "the event log kept being rotated under us")


def _same_file(st, path):
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def _rotate(fd, path):
    """Replace the log by its newer half and a log-rotation event; the
    caller holds the exclusive lock on the old file."""
    size = os.fstat(fd).st_size
    keep_from = size // 2
    # bounded: at most the file's size at the lock, itself about MAX_SIZE
    with open(path, "rb") as f:
        f.seek(keep_from)
        tail = f.read(max(0, size - keep_from))
    cut = tail.find(b"\n")
    tail = tail[cut + 1:] if cut >= 0 else b""
    mark = encode(event("system", "log-rotation", path, {"io.bocker.event.rotate": "end"}))
    tmp = f"{path}.tmp.{os.getpid()}"
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        data = memoryview(mark + tail)
        while data:
            data = data[os.write(out, data):]
    finally:
        os.close(out)
    os.rename(tmp, path)


def _warn(error):
    try:
        from bocker.cli import output

        output.warn(f"cannot write the event log: {getattr(error, 'strerror', None) or error}")
    except Exception:  # noqa: BLE001 - the log must never fail a command
        pass


def read(paths, limit=64 << 20):
    """Every event in the log, oldest first (at most limit bytes from its
    end; lines that are not an event object are skipped: the file is ours
    but a crash can cut a line)."""
    try:
        with open(log_path(paths), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                f.seek(size - limit)
                f.readline()  # a partial first line
            data = f.read(limit)
    except FileNotFoundError:
        return []
    return parse_lines(data)


def parse_lines(data):
    """The events in data (bytes of whole lines); malformed lines skipped."""
    out = []
    for raw in data.split(b"\n"):
        e = parse_line(raw)
        if e is not None:
            out.append(e)
    return out


def parse_line(raw):
    """One event from one line, or None if the line is not one."""
    if not raw or len(raw) > MAX_LINE:
        return None
    try:
        e = json.loads(raw)
    except ValueError:
        return None
    if (not isinstance(e, dict) or not isinstance(e.get("Type"), str)
            or not isinstance(e.get("Action"), str) or not isinstance(e.get("timeNano"), int)
            or not isinstance(e.get("Actor"), dict)):
        return None
    actor = e["Actor"]
    if not isinstance(actor.get("ID"), str) or not isinstance(actor.get("Attributes", {}), dict):
        return None
    return e
