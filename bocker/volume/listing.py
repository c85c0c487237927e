"""`volume ls --filter` and `--format`, for volume dicts (inspect shape).

A minimal local implementation: the shared bocker/cli/gotemplate.py and
filters.py were not on main when volumes were wired (the integrator may
route these through them).  Filters: name= (substring, as Docker's),
label=KEY / label=KEY=VALUE (and label!=), dangling=true|false, driver=.
Format: {{.Field}}, {{.A.B}}, {{json .}}, {{json .Field}}, a leading
`table`, and \\t / \\n escapes.
"""
import json
import re

from bocker.errors import InvalidArgument

_ACTION = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?"
                     r"\s*\}\}")
_KEYS = ("name", "label", "label!", "dangling", "driver")


def parse_filters(items):
    """['key=value', ...] -> [(key, value)]; an unknown key is refused."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in _KEYS:
            raise InvalidArgument(f"invalid filter '{item}': use name=, label=, label!=, "
                                  f"dangling= or driver=")
        if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter '{item}': dangling is true or false")
        out.append((key, value))
    return out


def _label(volume, value):
    labels = volume.get("Labels") or {}
    key, sep, want = value.partition("=")
    return key in labels and (not sep or labels[key] == want)


def matches(volume, filters, used):
    """True if volume passes every filter (a key given twice: either value);
    used: the names some container mounts (for dangling=)."""
    by_key = {}
    for key, value in filters:
        by_key.setdefault(key, []).append(value)
    tests = {
        "name": lambda v: v in volume["Name"],
        "label": lambda v: _label(volume, v),
        "label!": lambda v: not _label(volume, v),
        "dangling": lambda v: (volume["Name"] not in used) == (v.lower() in ("true", "1")),
        "driver": lambda v: v == volume.get("Driver"),
    }
    return all(any(tests[k](v) for v in values) for k, values in by_key.items())


def _field(value, path):
    for part in path.split(".") if path else ():
        if not isinstance(value, dict) or part not in value:
            raise InvalidArgument(f"template: can't evaluate field {part}")
        value = value[part]
    return value


def _text(value):
    if isinstance(value, dict):  # Docker's ls shows labels as k=v,k=v
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(template, volume):
    """One line of --format for volume; an unsupported action is refused."""
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    if template.startswith("table"):
        template = template[5:].lstrip()
    pos, out = 0, []
    for m in _ACTION.finditer(template):
        out.append(template[pos:m.start()])
        value = _field(volume, m.group(2))
        out.append(json.dumps(value) if m.group(1) else _text(value))
        pos = m.end()
    rest = template[pos:]
    if "{{" in rest or any("{{" in s for s in out[::2]):
        raise InvalidArgument(f"unsupported --format '{template}': bocker's volume ls "
                              f"takes {{{{.Field}}}} and {{{{json .}}}}")
    out.append(rest)
    return "".join(out)


def header(template):
    """The header line of a `table` format (field names upper-cased)."""
    template = template.replace("\\t", "\t")[5:].lstrip()
    names = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Mountpoint": "MOUNTPOINT"}
    return _ACTION.sub(lambda m: names.get(m.group(2) or "", (m.group(2) or "").upper()),
                       template)
