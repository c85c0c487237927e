"""The instructions that change only the config (ENV ARG WORKDIR USER
EXPOSE LABEL ENTRYPOINT CMD VOLUME STOPSIGNAL SHELL HEALTHCHECK
MAINTAINER ONBUILD), applied to a StageState as Docker's builder does,
field by field.  Pure: WORKDIR's directory is the builder's."""
import json
import posixpath
import re

from bocker.build import words
from bocker.build.errors import BuildError

CONFIG_ONLY = ("ENV", "ARG", "WORKDIR", "USER", "EXPOSE", "LABEL", "ENTRYPOINT", "CMD", "VOLUME",
               "STOPSIGNAL", "SHELL", "HEALTHCHECK", "MAINTAINER", "ONBUILD")
MAX_PORT = 65535
MAX_DURATION = 2 ** 63 - 1  # Go's time.Duration, an int64 of nanoseconds


def _fail(ins, what):
    raise BuildError(f"{ins.keyword} {what}", line=ins.line)


def apply(stage, ins, build_args, global_args, escape="\\"):
    """Apply the config-only instruction ins to stage (in place).
    build_args: --build-arg's {name: value}; global_args: the values of
    the ARGs before the first FROM.  Returns the history's created_by
    (BuildKit's text for it; None for ONBUILD, which BuildKit records in
    no history entry)."""
    before = dict(stage.args)
    handler = _HANDLERS[ins.keyword]
    handler(stage, ins, build_args, global_args, escape)
    return _created_by(stage, ins, before)


def _go_list(items, quoted=True):
    """Go's %q (quoted) or %v of a []string."""
    if quoted:
        return "[" + " ".join(json.dumps(i) for i in items) + "]"
    return "[" + " ".join(items) + "]"


def _go_duration(ns):
    """Go's time.Duration String() of whole seconds or less (what a
    healthcheck's history shows)."""
    if not ns:
        return "0s"
    if ns % 10**9 == 0:
        sec = ns // 10**9
        h, rest = divmod(sec, 3600)
        m, sec = divmod(rest, 60)
        return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{sec}s"
    return f"{ns / 10**9:g}s"


def _created_by(stage, ins, args_before):
    """BuildKit's history text of a config step (dispatch*'s commit messages)."""
    c, kw = stage.config, ins.keyword
    if kw in ("CMD", "ENTRYPOINT"):
        return f"{kw} {_go_list(c.get('Cmd' if kw == 'CMD' else 'Entrypoint') or [])}"
    if kw == "WORKDIR":
        return f"WORKDIR {c['WorkingDir']}"
    if kw in ("USER", "STOPSIGNAL"):
        return f"{kw} {c['User' if kw == 'USER' else 'StopSignal']}"
    if kw == "SHELL":
        return f"SHELL {_go_list(c['Shell'], quoted=False)}"
    if kw == "VOLUME":
        return ins.original if ins.json is None else f"VOLUME {_go_list(ins.json, quoted=False)}"
    if kw == "EXPOSE":
        return "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in sorted(c["ExposedPorts"])) + "]"
    if kw == "ARG":
        names = [k for k, _ in words.pairs(ins.args, {}, keyword="ARG")]
        return "ARG " + " ".join(k if stage.args.get(k) is None else f"{k}={stage.args[k]}"
                                 for k in names)
    if kw == "MAINTAINER":
        return f"MAINTAINER {stage.author}"
    if kw == "HEALTHCHECK":
        h = c["Healthcheck"]
        return (f"HEALTHCHECK &{{{_go_list(h['Test'])} "
                + " ".join(json.dumps(_go_duration(h.get(f))) for f in
                           ("Interval", "Timeout", "StartPeriod", "StartInterval"))
                + f" '\\x{h.get('Retries', 0):02x}'}}")
    if kw == "ONBUILD":
        return None
    return ins.original  # ENV, LABEL: as written


def _env(stage, ins, build_args, global_args, escape):
    pairs = words.pairs(ins.args, stage.scope(), escape, keyword="ENV")
    if not pairs:
        _fail(ins, "requires at least one argument")
    for key, value in pairs:
        if not key or value is None:
            _fail(ins, f"names '{key}' without a value")
        stage.set_env(key, value)


def _arg(stage, ins, build_args, global_args, escape):
    pairs = words.pairs(ins.args, stage.scope(), escape, keyword="ARG")
    if not pairs:
        _fail(ins, "requires at least one argument")
    for key, default in pairs:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key or ""):
            _fail(ins, f"names an invalid build argument '{key}'")
        if key in build_args:
            value = build_args[key]
        elif default is not None:
            value = default
        else:  # a bare ARG in a stage takes the global ARG's value
            value = global_args.get(key)
        stage.args[key] = value


def declare_global(ins, values, build_args, escape="\\"):
    """An ARG before the first FROM: its values into values (name -> value)."""
    for key, default in words.pairs(ins.args, dict(values), escape, keyword="ARG"):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key or ""):
            _fail(ins, f"names an invalid build argument '{key}'")
        values[key] = build_args[key] if key in build_args else default


def _workdir(stage, ins, build_args, global_args, escape):
    path = words.expand(ins.args.strip(), stage.scope(), escape)
    if not path:
        _fail(ins, "requires exactly one argument")
    path = posixpath.normpath(posixpath.join(stage.config.get("WorkingDir") or "/", path))
    stage.config["WorkingDir"] = "/" + path.lstrip("/")


def _user(stage, ins, build_args, global_args, escape):
    user = words.expand(ins.args.strip(), stage.scope(), escape)
    if not user or len(user.split()) != 1:
        _fail(ins, "requires exactly one argument")
    stage.config["User"] = user


def _expose(stage, ins, build_args, global_args, escape):
    ports = dict(stage.config.get("ExposedPorts") or {})
    items = words.split_words(ins.args, stage.scope(), escape)
    if not items:
        _fail(ins, "requires at least one argument")
    for item in items:
        for port in _ports(ins, item):
            ports[port] = {}
    stage.config["ExposedPorts"] = ports


def _ports(ins, item):
    """Docker's nat.ParsePortSpecs of EXPOSE: N, N/proto, N-M[/proto]."""
    m = re.fullmatch(r"(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?", item.lower())
    if not m:
        _fail(ins, f"has an invalid port '{item}'")
    first, last = int(m.group(1)), int(m.group(2) or m.group(1))
    if not 0 < first <= last <= MAX_PORT or last - first > 1024:
        _fail(ins, f"has an invalid port range '{item}'")
    return [f"{p}/{m.group(3) or 'tcp'}" for p in range(first, last + 1)]


def _label(stage, ins, build_args, global_args, escape):
    pairs = words.pairs(ins.args, stage.scope(), escape, keyword="LABEL")
    if not pairs:
        _fail(ins, "requires at least one argument")
    labels = dict(stage.config.get("Labels") or {})
    for key, value in pairs:
        if not key or value is None:
            _fail(ins, f"names '{key}' without a value")
        labels[key] = value
    stage.config["Labels"] = labels


def command_form(stage, ins):
    """The argv of a CMD/ENTRYPOINT/RUN: its exec form as written, else
    the SHELL and the text (not expanded: the shell expands it)."""
    if ins.json is not None:
        return list(ins.json)
    return stage.shell() + [ins.args]


def _cmd(stage, ins, build_args, global_args, escape):
    stage.config["Cmd"] = command_form(stage, ins)
    stage.config["ArgsEscaped"] = True  # BuildKit sets it for every CMD (Docker's image spec)
    stage.cmd_set = True


def _entrypoint(stage, ins, build_args, global_args, escape):
    stage.config["Entrypoint"] = command_form(stage, ins)
    if not stage.cmd_set:  # a CMD from the base image is reset (Docker's rule)
        stage.config.pop("Cmd", None)


def _volume(stage, ins, build_args, global_args, escape):
    if ins.json is not None:
        items = [words.expand(v, stage.scope(), escape) for v in ins.json]
    else:
        items = words.split_words(ins.args, stage.scope(), escape)
    if not items or any(not v.strip() for v in items):
        _fail(ins, "specified can not be an empty string")
    volumes = dict(stage.config.get("Volumes") or {})
    for v in items:
        volumes[v] = {}
    stage.config["Volumes"] = volumes


def _stopsignal(stage, ins, build_args, global_args, escape):
    sig = words.expand(ins.args.strip(), stage.scope(), escape)
    if not re.fullmatch(r"(SIG)?[A-Z0-9+-]{1,16}|\d{1,3}", sig):
        _fail(ins, f"has an invalid signal '{sig}'")
    stage.config["StopSignal"] = sig


def _shell(stage, ins, build_args, global_args, escape):
    if ins.json is None or not ins.json:
        _fail(ins, "requires the arguments to be in JSON form")
    stage.config["Shell"] = list(ins.json)


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
            "h": 3600 * 10**9}


def go_duration(text):
    """Go's time.ParseDuration (no sign) in nanoseconds; None if it is not one."""
    if text == "0":
        return 0
    pos, total = 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += int(float(m.group(1)) * _UNIT_NS[m.group(2)])
        pos = m.end()
    return total if pos == len(text) and pos else None


def _healthcheck(stage, ins, build_args, global_args, escape):
    flags = dict(ins.flags)
    kind, _, rest = ins.args.strip().partition(" ")
    if kind.upper() == "NONE":
        if rest.strip() or flags:
            _fail(ins, "NONE takes no other arguments")
        stage.config["Healthcheck"] = {"Test": ["NONE"]}
        return
    if kind.upper() != "CMD" or not rest.strip():
        _fail(ins, "requires NONE or CMD and a command")
    rest = rest.strip()
    test = None
    if rest.startswith("["):
        try:
            parsed = json.loads(rest)
            if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed):
                test = ["CMD"] + parsed
        except ValueError:
            test = None
    if test is None:
        test = ["CMD-SHELL", rest]
    check = {"Test": test}
    for flag, field in (("interval", "Interval"), ("timeout", "Timeout"),
                        ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        if flags.get(flag) is not None:
            ns = go_duration(flags[flag])
            if ns is None or ns > MAX_DURATION:
                _fail(ins, f"--{flag} has an invalid duration '{flags[flag]}'")
            if ns and ns < 10**6:
                _fail(ins, f"--{flag} cannot be less than 1ms")
            if ns:
                check[field] = ns
    if flags.get("retries") is not None:
        if not re.fullmatch(r"\d{1,9}", flags["retries"]):
            _fail(ins, f"--retries has an invalid number '{flags['retries']}'")
        if int(flags["retries"]):
            check["Retries"] = int(flags["retries"])
    stage.config["Healthcheck"] = check


def _maintainer(stage, ins, build_args, global_args, escape):
    stage.author = words.expand(ins.args.strip(), stage.scope(), escape)


def _onbuild(stage, ins, build_args, global_args, escape):
    trigger = ins.args.strip()
    first = trigger.split(None, 1)[0].upper() if trigger else ""
    if first in ("ONBUILD", "FROM", "MAINTAINER", ""):
        _fail(ins, f"does not take {first or 'an empty trigger'}")
    stage.config["OnBuild"] = list(stage.config.get("OnBuild") or []) + [trigger]


_HANDLERS = {"ENV": _env, "ARG": _arg, "WORKDIR": _workdir, "USER": _user, "EXPOSE": _expose,
             "LABEL": _label, "ENTRYPOINT": _entrypoint, "CMD": _cmd, "VOLUME": _volume,
             "STOPSIGNAL": _stopsignal, "SHELL": _shell, "HEALTHCHECK": _healthcheck,
             "MAINTAINER": _maintainer, "ONBUILD": _onbuild}
