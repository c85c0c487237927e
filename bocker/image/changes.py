"""`commit -c` and `import -c`: the Dockerfile instructions Docker allows
there, parsed and applied to a new image's config (pure).

CMD, ENTRYPOINT (JSON form `["a", "b"]` or shell form, run by
/bin/sh -c), ENV and LABEL (KEY=VALUE pairs, quoted as a Dockerfile's, or
the old `ENV KEY VALUE`), EXPOSE (PORT[-END][/PROTO]), STOPSIGNAL, USER,
VOLUME (JSON or words), WORKDIR (a relative one joins the previous).
ONBUILD and HEALTHCHECK are refused: `bocker build` runs no base image's
ONBUILD triggers, and nothing checks health.  Every refusal is an InvalidArgument (125), one line.
"""
import posixpath

from bocker.errors import InvalidArgument

MAX_CHANGE = 65536  # bytes of one --change: a config is not a file store
ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
           "WORKDIR")
_REFUSED = {"ONBUILD": "ONBUILD is not supported: bocker build runs no base image's triggers",
            "HEALTHCHECK": "HEALTHCHECK is not supported: bocker runs no health checks"}
_PROTOS = ("tcp", "udp", "sctp")


def parse(text):
    """One --change: (INSTRUCTION, value) with value the list, dict or
    string it sets.  Raises InvalidArgument for what Docker refuses (and
    for ONBUILD/HEALTHCHECK, see the module's docstring)."""
    if not isinstance(text, str) or len(text.encode()) > MAX_CHANGE:
        raise InvalidArgument(f"--change longer than {MAX_CHANGE} bytes")
    if any(c in text for c in "\n\r\0"):
        raise InvalidArgument("a --change is one instruction on one line (no newline or NUL)")
    word, _, rest = text.strip().partition(" ")
    if "\t" in word:
        word, _, more = word.partition("\t")
        rest = more + " " + rest
    kind, rest = word.upper(), rest.strip()
    if kind in _REFUSED:
        raise InvalidArgument(_REFUSED[kind])
    if kind not in ALLOWED:
        raise InvalidArgument(f"{word or '(empty)'} is not a valid change command")
    if not rest:
        raise InvalidArgument(f"{kind} requires at least one argument")
    return kind, _PARSERS[kind](kind, rest)


def apply(config, changes):
    """A copy of the image config dict with each --change text applied in
    order (each parsed first: nothing is applied if one is refused)."""
    parsed = [parse(c) for c in changes]
    out = dict(config or {})
    for kind, value in parsed:
        if kind == "CMD":
            out["Cmd"] = value
        elif kind == "ENTRYPOINT":
            out["Entrypoint"] = value
        elif kind == "ENV":
            env = [e for e in out.get("Env") or [] if isinstance(e, str)]
            for key, val in value.items():
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={val}"]
            out["Env"] = env
        elif kind == "LABEL":
            out["Labels"] = {**(out.get("Labels") if isinstance(out.get("Labels"), dict)
                                else {}), **value}
        elif kind in ("EXPOSE", "VOLUME"):
            field = "ExposedPorts" if kind == "EXPOSE" else "Volumes"
            have = out.get(field) if isinstance(out.get(field), dict) else {}
            out[field] = {**have, **{k: {} for k in value}}
        elif kind == "WORKDIR":
            base = out.get("WorkingDir") if isinstance(out.get("WorkingDir"), str) else ""
            out["WorkingDir"] = posixpath.normpath(posixpath.join(base or "/", value))
        else:
            out[{"STOPSIGNAL": "StopSignal", "USER": "User"}[kind]] = value
    return out


def _json_list(rest):
    """The JSON form's list of strings, or None if rest is not one (a
    Dockerfile's rule, shared with bocker build)."""
    from bocker.build.dockerfile import exec_form

    value = exec_form(rest)
    return list(value) if value is not None else None


def _command(kind, rest):
    value = _json_list(rest)
    return value if value is not None else ["/bin/sh", "-c", rest]


def _words(rest):
    """Words as a Dockerfile's (quotes and escapes removed, `$` kept)."""
    from bocker.build.errors import BuildError
    from bocker.build.words import split_words

    try:
        return split_words(rest)
    except BuildError as e:
        raise InvalidArgument(f"cannot parse '{rest}': {e.reason}") from None


def _pairs(kind, rest):
    """ENV/LABEL KEY=VALUE pairs (or the old `KEY the rest`), read as a
    Dockerfile's by bocker.build.words (no variable expansion here)."""
    from bocker.build.errors import BuildError
    from bocker.build.words import pairs

    try:
        found = pairs(rest, None, keyword=kind)
    except BuildError as e:
        raise InvalidArgument(f"cannot parse '{rest}': {e.reason}") from None
    return dict(found)


def _ports(kind, rest):
    out = []
    for w in _words(rest):
        ports, _, proto = w.partition("/")
        proto = (proto or "tcp").lower()
        start, _, end = ports.partition("-")
        try:
            low, high = int(start), int(end or start)
        except ValueError:
            raise InvalidArgument(f"invalid port '{w}' in EXPOSE") from None
        if proto not in _PROTOS or not 0 < low <= high <= 65535 or not start.isdigit() \
                or (end and not end.isdigit()):
            raise InvalidArgument(f"invalid port '{w}' in EXPOSE")
        out += [f"{p}/{proto}" for p in range(low, high + 1)]
    return out


def _volumes(kind, rest):
    paths = _json_list(rest)
    paths = paths if paths is not None else rest.split()
    for p in paths:
        if not p.startswith("/") or "\0" in p:
            raise InvalidArgument(f"VOLUME '{p}' is not an absolute path")
    return [posixpath.normpath(p) for p in paths]


def _stopsignal(kind, rest):
    from bocker import units

    units.parse_signal(rest)  # refused here, not at the stop
    return rest


def _plain(kind, rest):
    if "\0" in rest:
        raise InvalidArgument(f"{kind} holds a NUL byte")
    return rest


_PARSERS = {"CMD": _command, "ENTRYPOINT": _command, "ENV": _pairs, "LABEL": _pairs,
            "EXPOSE": _ports, "VOLUME": _volumes, "STOPSIGNAL": _stopsignal,
            "USER": _plain, "WORKDIR": _plain}
