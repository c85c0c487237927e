"""An image's history (the config's `history`: one entry per build step),
kept in image.json at pull or load, and the rows `bocker history` prints.

The config is hostile input: only a list of objects is kept, at most
MAX_ENTRIES of them, each with its known fields checked and cut to a bound
(a created_by of a megabyte would otherwise be printed on every call).
"""
MAX_ENTRIES = 1000
_BOUNDS = {"created": 64, "created_by": 8192, "author": 256, "comment": 1024}


def from_config(config):
    """The validated history of a full image config (a dict): a list of
    {created, created_by, author, comment, empty_layer}; [] if absent."""
    raw = config.get("history") if isinstance(config, dict) else None
    if not isinstance(raw, list):
        return []
    out = []
    for entry in raw[:MAX_ENTRIES]:
        if not isinstance(entry, dict):
            continue
        kept = {k: v[:bound] for k, bound in _BOUNDS.items()
                if isinstance(v := entry.get(k), str)}
        if entry.get("empty_layer") is True:
            kept["empty_layer"] = True
        out.append(kept)
    return out


def rows(record, layer_sizes=None):
    """History rows of an image record, newest first, as dicts with Docker's
    --format fields: ID, CreatedBy, Comment, Created (epoch seconds or
    None), Size: the layer's size in bytes for a step that made a layer
    (layer_sizes: the image's layers' sizes in order, as Docker pairs them
    with the steps that are not empty_layer), 0 for an empty step, None
    when unknown.  An image made here (init, commit, import) without a
    history has one row: its source."""
    steps = record.get("history")
    if not isinstance(steps, list) or not steps:
        steps = [{"created_by": f"bocker: {record.get('source', '')}",
                  "comment": "", "_epoch": record.get("created")}]
    sizes = _step_sizes(steps, layer_sizes)
    out = []
    for i, (step, size) in enumerate(zip(reversed(steps), reversed(sizes))):
        epoch = step.get("_epoch")
        if epoch is None and step.get("created"):
            epoch = parse_rfc3339(step["created"])
        out.append({"ID": record["id"] if i == 0 else "<missing>",
                    "Created": epoch, "CreatedBy": step.get("created_by", ""),
                    "Comment": step.get("comment", ""), "Size": size,
                    "EmptyLayer": bool(step.get("empty_layer"))})
    return out


def layer_sizes(paths, record):
    """The sizes of an image's layers in order, for rows(): a pulled or
    loaded image's from its layer records, a built one's its base's then
    its steps' (the build cache's records); None in place of one unknown
    (a pruned cache entry), None for an image of one layer (init, commit)."""
    from bocker.image import layerplan

    return layerplan.sizes(paths, record)


def _step_sizes(steps, layer_sizes):
    """Each step's size: the next layer's for a step that made one, 0 for
    an empty one; all None if the layers and the steps do not pair up."""
    made = [s for s in steps if not s.get("empty_layer")]
    if layer_sizes is None or len(made) != len(layer_sizes):
        return [None] * len(steps)
    sizes = iter(layer_sizes)
    return [0 if s.get("empty_layer") else next(sizes) for s in steps]


_RFC3339 = (r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d{1,9})?"
            r"(?:([Zz])|([+-])(\d\d):(\d\d))")


def parse_rfc3339(text):
    """Seconds since the epoch of an RFC 3339 time (a config's `created`,
    nanoseconds and offsets included), or None if it is not one."""
    import calendar
    import re

    m = re.fullmatch(_RFC3339, text) if isinstance(text, str) else None
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
        return None
    offset = 0 if m.group(8) or not m.group(9) else (
        (int(m.group(10)) * 60 + int(m.group(11))) * 60 * (1 if m.group(9) == "+" else -1))
    return secs - offset + (float(m.group(7)) if m.group(7) else 0.0)


def rfc3339_local(epoch):
    """Go's time.Unix(epoch).Format(time.RFC3339): local time, whole
    seconds, 'Z' in UTC else the offset (+01:00), as Docker's history
    prints CreatedAt (and CREATED with -H=false)."""
    import time

    t = time.localtime(int(epoch))
    off = t.tm_gmtoff or 0
    zone = "Z" if off == 0 else "%s%02d:%02d" % ("+" if off > 0 else "-",
                                               abs(off) // 3600, abs(off) % 3600 // 60)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + zone
