"""--filter KEY=VALUE for ps, images and volume ls, as Docker reads them.

parse() turns the repeated option into {key: [values]}; values of one key
OR (status=running and status=exited: either), different keys AND, except
label= whose values must all match (Docker's rule).  containers(),
images() and volumes() give a predicate over one listing's records.  A
malformed filter or an unknown key is a FilterError: one line, exit 125.
"""
import re

from bocker.errors import BockerError

CONTAINER_KEYS = ("name", "id", "label", "status", "exited", "ancestor", "before", "since",
                  "network", "publish", "expose", "volume", "health", "is-task")
IMAGE_KEYS = ("dangling", "label", "reference", "before", "since")
VOLUME_KEYS = ("name", "label", "dangling", "driver")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


class FilterError(BockerError):
    """A --filter that is not KEY=VALUE or names an unknown key: 125."""

    exit_code = 125


def parse(values, keys):
    """The --filter values as {key: [value, ...]}, each key one of keys."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise FilterError(f"bad format of filter '{item}' (expected name=value)")
        if key not in keys:
            raise FilterError(f"invalid filter '{key}'")
        out.setdefault(key, []).append(value)
    return out


def _bool(key, value):
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise FilterError(f"invalid filter '{key}={value}': use true or false")


def _search(pattern, *texts):
    """Docker's name= filter: a regular expression found anywhere; one
    that does not compile is looked for as plain text."""
    try:
        rx = re.compile(pattern)
        return any(rx.search(t) for t in texts)
    except re.error:
        return any(pattern in t for t in texts)


def labels_match(wanted, labels):
    """label=KEY or label=KEY=VALUE, every one of them (AND)."""
    labels = labels if isinstance(labels, dict) else {}
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _ports_spec(key, value):
    """publish=/expose= values: PORT[-PORT][/PROTO] -> (low, high, proto)."""
    port, _, proto = value.partition("/")
    proto = proto.lower() or "tcp"
    low, _, high = port.partition("-")
    try:
        lo, hi = int(low), int(high or low)
    except ValueError:
        raise FilterError(f"invalid filter '{key}={value}': not a port or range") from None
    if not (0 < lo <= hi <= 65535) or proto not in ("tcp", "udp", "sctp"):
        raise FilterError(f"invalid filter '{key}={value}': not a port or range")
    return lo, hi, proto


def _port_in(specs, ports):
    for name in ports:
        port, _, proto = str(name).partition("/")
        if not port.isdigit():
            continue
        if any(lo <= int(port) <= hi and (proto or "tcp") == p for lo, hi, p in specs):
            return True
    return False


def container_state(record):
    """Docker's State.Status of a record: running, restarting, exited, ..."""
    st = record.get("State") or {}
    if st.get("Restarting"):
        return "restarting"
    # paused (verbs' pause) is still Running in Docker's State: its own
    # flag or status says so; removing and dead likewise
    if st.get("Paused"):
        return "paused"
    if st.get("Status") in ("paused", "removing", "dead"):
        return st["Status"]
    if st.get("Running"):
        return "running"
    return st.get("Status") or "created"


def containers(filters, records, resolve_image=None):
    """A predicate for container records (recordshape.with_view's) that
    match filters (parse()'s output).  records: all containers, for
    before=/since= (a name or ID among them, else FilterError).
    resolve_image(ref) -> an image ID or None, for ancestor=."""
    tests = []
    f = filters
    for value in f.get("status", ()):
        if value not in STATUSES:
            raise FilterError(f"invalid filter 'status={value}': one of {', '.join(STATUSES)}")
    if "status" in f:
        tests.append(lambda r: container_state(r) in f["status"])
    if "name" in f:
        tests.append(lambda r: any(_search(v, r.get("Name", ""), "/" + r.get("Name", ""))
                                   for v in f["name"]))
    if "id" in f:
        tests.append(lambda r: any(r["Id"].startswith(v) for v in f["id"]))
    if "label" in f:
        tests.append(lambda r: labels_match(f["label"], (r.get("Config") or {}).get("Labels")))
    if "exited" in f:
        codes = set()
        for value in f["exited"]:
            try:
                codes.add(int(value))
            except ValueError:
                raise FilterError(f"invalid filter 'exited={value}': not an exit code") from None
        tests.append(lambda r: container_state(r) == "exited" and
                     (r.get("State") or {}).get("ExitCode") in codes)
    if "ancestor" in f:
        ids = {resolve_image(v) for v in f["ancestor"]} - {None} if resolve_image else set()
        names = {_tagged(v) for v in f["ancestor"]}
        tests.append(lambda r: r.get("Image") in ids or _tagged(r.get("ImageName")) in names or
                     any(str(r.get("Image", "")).startswith(v) for v in f["ancestor"]))
    for key, newer in (("before", False), ("since", True)):
        for value in f.get(key, ()):
            at = _created_of(value, records)

            def test(r, at=at, newer=newer):
                return r["Created"] > at if newer else r["Created"] < at
            tests.append(test)
    if "network" in f:
        tests.append(lambda r: _network(r) in f["network"])
    if "publish" in f:
        specs = [_ports_spec("publish", v) for v in f["publish"]]
        tests.append(lambda r: _port_in(specs, [p for p, b in _ports(r).items() if b]))
    if "expose" in f:
        specs = [_ports_spec("expose", v) for v in f["expose"]]
        tests.append(lambda r: _port_in(specs, list(_exposed(r)) + list(_ports(r))))
    if "volume" in f:
        tests.append(lambda r: any(m.get("Name") in f["volume"] or
                                   m.get("Destination") in f["volume"] or
                                   m.get("Source") in f["volume"]
                                   for m in mounts_of(r)))
    if "health" in f:  # bocker has no health checks: only "none" matches
        tests.append(lambda r: "none" in f["health"])
    if "is-task" in f:  # no swarm: nothing is a task
        tests.append(lambda r: not any(_bool("is-task", v) for v in f["is-task"]))
    return lambda r: all(t(r) for t in tests)


def _tagged(name):
    """NAME with Docker's default tag: busybox and busybox:latest are one."""
    name = str(name or "")
    return name if ":" in name.rpartition("/")[2] or "@" in name else name + ":latest"


def _created_of(ref, records):
    for r in records:
        if r["Id"] == ref or r.get("Name") == ref:
            return r["Created"]
    found = [r for r in records if r["Id"].startswith(ref)]
    if len(found) == 1:
        return found[0]["Created"]
    raise FilterError(f"No such container: {ref}")


def _network(record):
    mode = ((record.get("HostConfig") or {}).get("NetworkMode")
            or (record.get("Spec") or {}).get("network") or "bridge")
    return mode


def _ports(record):
    ports = (record.get("NetworkSettings") or {}).get("Ports")
    return ports if isinstance(ports, dict) else {}


def _exposed(record):
    exposed = (record.get("Config") or {}).get("ExposedPorts")
    return exposed if isinstance(exposed, dict) else {}


def mounts_of(record):
    """A record's Docker Mounts list ([] before any helper writes it)."""
    mounts = record.get("Mounts")
    return [m for m in mounts if isinstance(m, dict)] if isinstance(mounts, list) else []


def images(filters, records):
    """A predicate for image records (image.json's) matching filters."""
    import fnmatch

    tests = []
    f = filters
    if "dangling" in f:
        wanted = {_bool("dangling", v) for v in f["dangling"]}
        tests.append(lambda r: (not r.get("names")) in wanted)
    if "label" in f:
        tests.append(lambda r: labels_match(f["label"], (r.get("config") or {}).get("Labels")))
    if "reference" in f:
        def reference(r):
            for name in r.get("names") or ():
                repo = name.rpartition(":")[0] if ":" in name.rpartition("/")[2] else name
                if any(fnmatch.fnmatchcase(name, v) or fnmatch.fnmatchcase(repo, v)
                       for v in f["reference"]):
                    return True
            return False
        tests.append(reference)
    for key, newer in (("before", False), ("since", True)):
        for value in f.get(key, ()):
            at = _image_created(value, records)

            def test(r, at=at, newer=newer):
                return r["created"] > at if newer else r["created"] < at
            tests.append(test)
    return lambda r: all(t(r) for t in tests)


def _image_created(ref, records):
    from bocker import ids

    wanted = ids.normalize_name(ref) if not ref.startswith("img_") and _is_name(ref) else ref
    for r in records:
        if r["id"] == ref or wanted in (r.get("names") or ()):
            return r["created"]
    found = [r for r in records if r["id"].startswith(ref)]
    if len(found) == 1:
        return found[0]["created"]
    raise FilterError(f"No such image: {ref}")


def _is_name(ref):
    from bocker.errors import InvalidArgument
    from bocker import ids

    try:
        ids.split_name(ref)
        return True
    except InvalidArgument:
        return False


def volumes(filters, used_names=()):
    """A predicate for volumes (dicts with Name, Labels, Driver), for
    `volume ls --filter`: name= (a regular expression, as Docker), label=,
    driver=, dangling= (true: no container in used_names uses it)."""
    tests = []
    f = filters
    used = set(used_names)
    if "name" in f:
        tests.append(lambda v: any(_search(p, v.get("Name", "")) for p in f["name"]))
    if "label" in f:
        tests.append(lambda v: labels_match(f["label"], v.get("Labels")))
    if "driver" in f:
        tests.append(lambda v: v.get("Driver", "local") in f["driver"])
    if "dangling" in f:
        wanted = {_bool("dangling", x) for x in f["dangling"]}
        tests.append(lambda v: (v.get("Name") not in used) in wanted)
    return lambda v: all(t(v) for t in tests)


def volume_names_in_use(container_records):
    """The names of the volumes some container mounts (for dangling=)."""
    return {m.get("Name") for r in container_records for m in mounts_of(r)
            if m.get("Type") == "volume" and m.get("Name")}
