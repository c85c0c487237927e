"""Reading the event log (bocker/events.py) as `bocker events` does:
--since/--until times, --filter (type, event, container, image, label,
volume, network), Docker's one-line text form, and following the file
as new events are appended (and across a rotation)."""
import os
import re
import time

from bocker import events
from bocker.errors import InvalidArgument

FILTER_KEYS = ("type", "event", "container", "image", "label", "volume", "network")
_DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+$")
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_time(text, now=None):
    """A --since/--until value as ns since the epoch: a Go duration
    ('10m', '1h30m': that long ago), a Unix time ('1700000000.5'), or an
    RFC 3339 date or time ('2026-01-02', '2026-01-02T15:04:05Z',
    '...+02:00', with fractions)."""
    import calendar

    now = time.time() if now is None else now
    t = str(text).strip()
    if _DURATION.match(t):
        secs = sum(float(n) * _UNIT[u] for n, u in _PART.findall(t))
        return int((now - secs) * 1e9)
    if re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,9})?", t):
        whole, _, frac = t.partition(".")
        return int(whole) * 10**9 + int((frac + "000000000")[:9])
    m = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})"
                     r"(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?", t)
    if not m:
        raise InvalidArgument(f"invalid time '{t[:40]}': a duration (10m), a Unix time or "
                              "an RFC 3339 date")
    y, mo, d, h, mi, s, frac, zone = m.groups()
    try:
        fields = (int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
        secs = calendar.timegm(time.struct_time(fields + (0, 0, 0)))
        time.strptime(f"{y}-{mo}-{d}", "%Y-%m-%d")  # refuses 2026-02-31
    except (ValueError, OverflowError):
        raise InvalidArgument(f"invalid time '{t[:40]}'") from None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        secs -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    elif not zone and h is not None:
        secs = time.mktime(time.struct_time(fields + (0, 0, -1)))  # local time, as Docker
    return int(secs) * 10**9 + int(((frac or "") + "000000000")[:9])


def parse_filters(items):
    """{key: [values]} of --filter KEY=VALUE items (checked keys)."""
    out = {}
    for item in items:
        key, eq, value = str(item).partition("=")
        key = key.strip().lower()
        if not eq or key not in FILTER_KEYS:
            raise InvalidArgument(f"invalid filter '{str(item)[:60]}' (events filters: "
                                  f"{', '.join(FILTER_KEYS)})")
        out.setdefault(key, []).append(value)
    return out


def matches(e, filters):
    """True if event e passes every filter key (values of one key OR'd)."""
    actor = e.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    aid = actor.get("ID", "")
    for key, values in filters.items():
        if key == "type":
            ok = e.get("Type") in values
        elif key == "event":
            ok = e.get("Action") in values or e.get("Action", "").split(":")[0] in values
        elif key == "container":
            ok = e.get("Type") == "container" and any(
                v and (aid == v or aid.startswith(v) or attrs.get("name") == v) for v in values)
        elif key == "image":
            image = attrs.get("image") if e.get("Type") == "container" else attrs.get("name")
            ok = any(v and (v in (image, aid) or _same_image(v, image)) for v in values)
        elif key == "label":
            ok = any(_label(v, attrs) for v in values)
        else:  # volume, network: by the actor's ID or name
            ok = e.get("Type") == key and any(v in (aid, attrs.get("name")) for v in values)
        if not ok:
            return False
    return True


def _same_image(wanted, image):
    # busybox matches busybox:latest, as Docker's reference match
    return bool(image) and ":" not in wanted.rsplit("/", 1)[-1] and image == wanted + ":latest"


def _label(spec, attrs):
    key, eq, value = spec.partition("=")
    return key in attrs and (not eq or attrs[key] == value)


def text_line(e):
    """Docker's default form: TIME TYPE ACTION ID (k=v, ...), attributes sorted."""
    actor = e.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(attrs.items()))
    tail = f" ({shown})" if shown else ""
    return f"{format_time(e['timeNano'])} {e['Type']} {e['Action']} {actor.get('ID', '')}{tail}"


def format_time(ns):
    """RFC 3339 with nanoseconds, local time, as Docker's events print."""
    secs, frac = divmod(int(ns), 10**9)
    t = time.localtime(secs)
    off = t.tm_gmtoff
    zone = "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) // 60 % 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{frac:09d}{zone}"


def template_view(e):
    """The event with the names Go's events.Message gives its fields
    (Status, ID, From, Scope, Time, TimeNano) beside the JSON ones."""
    return {**e, "Status": e.get("status", ""), "ID": e.get("id", ""), "From": e.get("from", ""),
            "Scope": e.get("scope", "local"), "Time": e.get("time", 0),
            "TimeNano": e.get("timeNano", 0)}


def stream(paths, since=None, until=None, filters=None, poll=0.1, stop=None):
    """Yield the matching events: those logged from since (ns; None: from
    now on, as Docker), following the log until until (ns; None: until
    interrupted, or until stop() says so)."""
    filters = filters or {}
    path = events.log_path(paths)
    # events older than floor are not shown: before --since, or (after a
    # rotation copied them into the new file) printed already; otherwise
    # lines are shown in file order, which concurrent writers may append
    # a little out of time order
    floor = since if since is not None else 0
    last_ns = 0
    f, ino = _open(path)
    try:
        if f is not None and since is None:
            f.seek(0, os.SEEK_END)
        pending = b""
        while True:
            if f is not None:
                chunk = f.read(1 << 20)
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    if len(pending) > events.MAX_LINE:
                        pending = b""  # no event is this long: a torn write, skipped
                    for raw in lines:
                        e = events.parse_line(raw)
                        if e is None or e["timeNano"] < floor:
                            continue
                        if until is not None and e["timeNano"] > until:
                            return
                        last_ns = max(last_ns, e["timeNano"])
                        if matches(e, filters):
                            yield e
                    continue
            if until is not None and time.time_ns() > until:
                return
            if stop is not None and stop():
                return
            time.sleep(poll)
            if _rotated(path, ino):  # replaced: read the new file from its start
                if f is not None:
                    f.close()
                f, ino = _open(path)
                pending = b""
                floor = max(floor, last_ns + 1)  # what we printed is in it too: not again
    finally:
        if f is not None:
            f.close()


def _open(path):
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None, None
    st = os.fstat(f.fileno())
    return f, (st.st_dev, st.st_ino)


def _rotated(path, ino):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) != ino
