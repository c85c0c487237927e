"""A Dockerfile's text parsed into stages of instructions (pure).

Docker's reading of the text: parser directives (`# escape=`, `# syntax=`,
`# check=`) only before anything else; a line ending in the escape char
continues on the next (joined as written, the next line's indentation
kept); comment lines (`#` first after indentation) and empty lines inside a
continuation are dropped; exec form is a JSON array of strings (anything
else, invalid JSON included, is shell form).  Arguments are NOT expanded
here: the engine expands those of EXPANDED with bocker.build.words, with
the environment of the step.  Every mistake is one BuildError naming
`Dockerfile:<line>`.
"""
import json
import re
from dataclasses import dataclass, field

from bocker.build.errors import BuildError
from bocker.build.words import pairs, split_words

MAX_TEXT = 1 << 20         # bytes of a Dockerfile (the caller reads at most this)
MAX_LINES = 100_000        # physical lines
MAX_INSTRUCTIONS = 10_000  # instructions in one Dockerfile

KEYWORDS = ("FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "EXPOSE", "LABEL",
            "ENTRYPOINT", "CMD", "VOLUME", "STOPSIGNAL", "SHELL", "HEALTHCHECK", "MAINTAINER",
            "ONBUILD")
# the instructions whose arguments Docker expands with the build's variables
EXPANDED = frozenset(("ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER",
                      "VOLUME", "WORKDIR", "ARG"))
# instructions with an exec form (a JSON array)
_JSON_FORM = frozenset(("RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"))
# flag name -> True if it takes a value, False if boolean (--link, --link=false)
_FLAGS = {
    "FROM": {"platform": True},
    "COPY": {"from": True, "chown": True, "chmod": True, "link": False},
    "ADD": {"chown": True, "chmod": True, "link": False},
    "HEALTHCHECK": {"interval": True, "timeout": True, "start-period": True,
                    "start-interval": True, "retries": True},
}
# flags Docker knows that bocker refuses, with why
_REFUSED_FLAGS = {
    ("RUN", "mount"): "RUN --mount is not supported (no cache, secret or ssh mounts)",
    ("RUN", "network"): "RUN --network is not supported: use bocker build --network",
    ("RUN", "security"): "RUN --security is not supported: every RUN is confined",
    ("COPY", "parents"): "COPY --parents is not supported",
    ("COPY", "exclude"): "COPY --exclude is not supported",
    ("ADD", "exclude"): "ADD --exclude is not supported",
    ("ADD", "checksum"): "ADD --checksum is not supported (ADD of a URL is not supported)",
    ("ADD", "keep-git-dir"): "ADD --keep-git-dir is not supported (ADD of a git URL is not"
                             " supported)",
}
_DIRECTIVE = re.compile(r"#[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*=[ \t]*(.*?)[ \t]*$")
_KNOWN_DIRECTIVES = ("escape", "syntax", "check")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9_.-]*")
_HEREDOC = re.compile(r"<<-?[ \t]*[\"']?[A-Za-z_]")
_FLAG_NAME = re.compile(r"[a-z][a-z0-9-]*")
_WS = " \t\v\f\r"


@dataclass(frozen=True)
class Instruction:
    """One instruction: keyword upper case, flags ((name, value), ...),
    args unexpanded, json the exec form's strings or None (for HEALTHCHECK
    CMD [..] the command's), original as written (history's text)."""
    line: int
    keyword: str
    flags: tuple
    args: str
    json: tuple | None
    original: str

    def flag(self, name, default=None):
        """The value of --name (the last one given), or default."""
        for key, value in reversed(self.flags):
            if key == name:
                return value
        return default


@dataclass
class Stage:
    index: int
    name: str | None
    base: str
    platform: str | None
    from_line: int
    instructions: list = field(default_factory=list)


@dataclass
class Dockerfile:
    escape: str
    syntax: str | None
    global_args: list
    stages: list

    def stage(self, ref):
        """The stage named `ref` (case-insensitive) or numbered `ref`, or None."""
        ref = ref.lower()
        for st in self.stages:
            if st.name == ref:
                return st
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None


def parse(text):
    """The Dockerfile in `text` (str).  BuildError "Dockerfile:N: ..." on
    anything Docker would refuse, and on what bocker does not support."""
    if not isinstance(text, str):
        raise BuildError("the Dockerfile is not text")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT:
        raise BuildError(f"the Dockerfile is larger than {MAX_TEXT} bytes")
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise BuildError("the Dockerfile holds a NUL byte", line)
    lines = text.removeprefix("\ufeff").split("\n")
    if len(lines) > MAX_LINES:
        raise BuildError(f"the Dockerfile has more than {MAX_LINES} lines")
    escape, syntax, start = _directives(lines)
    df = Dockerfile(escape=escape, syntax=syntax, global_args=[], stages=[])
    names = set()
    count = 0
    for number, joined in _logical_lines(lines, start, escape):
        count += 1
        if count > MAX_INSTRUCTIONS:
            raise BuildError(f"more than {MAX_INSTRUCTIONS} instructions", number)
        ins = _instruction(number, joined, escape)
        if ins.keyword == "FROM":
            df.stages.append(_stage(ins, len(df.stages), names))
        elif not df.stages:
            if ins.keyword != "ARG":
                raise BuildError(f"{ins.keyword} before the first FROM (only ARG may come"
                                 " before it)", number)
            df.global_args.append(ins)
        else:
            df.stages[-1].instructions.append(ins)
    if not df.stages:
        raise BuildError("the Dockerfile has no FROM instruction", 1)
    return df


def _directives(lines):
    """(escape, syntax, index of the first line after the directives)."""
    found = {}
    for i, raw in enumerate(lines):
        m = _DIRECTIVE.match(raw.rstrip("\r").lstrip(_WS))
        if not m or m.group(1).lower() not in _KNOWN_DIRECTIVES:
            return found.get("escape", "\\"), found.get("syntax"), i
        key, value = m.group(1).lower(), m.group(2)
        if key in found:
            raise BuildError(f"only one {key} parser directive can be used", i + 1)
        if key == "escape" and value not in ("\\", "`"):
            raise BuildError(f"invalid escape token {value!r} does not match ` or \\", i + 1)
        found[key] = value
    return found.get("escape", "\\"), found.get("syntax"), len(lines)


def _is_comment(raw):
    return raw.lstrip(_WS + "\n").startswith("#")


def _continues(raw, escape):
    """(text without the trailing escape, True) if raw ends in the escape
    char (trailing blanks allowed), else (raw, False)."""
    stripped = raw.rstrip(" \t\r")
    if stripped.endswith(escape):
        return stripped[:-1], True
    return raw.rstrip("\r"), False


def _logical_lines(lines, start, escape):
    """(first line number, the instruction's text joined) for each
    instruction; comments and blank lines skipped."""
    i = start
    while i < len(lines):
        raw = lines[i]
        i += 1
        if _is_comment(raw) or not raw.strip(_WS):
            continue
        number = i
        text, more = _continues(raw.lstrip(_WS), escape)
        while more and i < len(lines):
            raw = lines[i]
            i += 1
            if _is_comment(raw) or not raw.strip(_WS):
                continue  # Docker drops these inside a continuation
            part, more = _continues(raw, escape)
            text += part
        if text.strip(_WS):
            yield number, text


def _instruction(number, text, escape):
    text = text.strip(_WS)
    word, rest = _split_first(text)
    keyword = word.upper()
    if keyword not in KEYWORDS:
        raise BuildError(f"unknown instruction: {word}", number)
    flags, args = _flags(number, keyword, rest)
    if not args and keyword not in ("CMD", "ENTRYPOINT"):
        raise BuildError(f"{keyword} requires at least one argument", number)
    parsed = exec_form(args) if keyword in _JSON_FORM else None
    if keyword in ("RUN", "COPY", "ADD") and parsed is None and _HEREDOC.search(args):
        raise BuildError(f"heredocs (<<EOF) in {keyword} are not supported", number)
    if keyword in ("RUN", "COPY", "ADD", "SHELL") and parsed == ():
        raise BuildError(f"{keyword} requires at least one argument", number)
    if keyword == "SHELL" and parsed is None:
        raise BuildError('SHELL requires the JSON form: SHELL ["executable", "parameters"]',
                         number)
    if keyword in ("COPY", "ADD"):
        count = len(parsed) if parsed is not None else len(_checked(number, split_words,
                                                                    args, None, escape))
        if count < 2:
            raise BuildError(f"{keyword} requires at least two arguments (SOURCE... DEST)",
                             number)
    if keyword in ("ENV", "LABEL", "ARG"):
        _checked(number, pairs, args, None, escape, keyword)  # syntax now, values at the step
    if keyword == "HEALTHCHECK":
        parsed = _healthcheck(number, args)
    elif keyword == "ONBUILD":
        inner = _split_first(args)[0].upper()
        if inner in ("ONBUILD", "FROM", "MAINTAINER"):
            raise BuildError(f"{inner} isn't allowed as an ONBUILD trigger", number)
        if inner not in KEYWORDS:
            raise BuildError(f"unknown instruction in ONBUILD: {inner}", number)
    return Instruction(line=number, keyword=keyword, flags=flags, args=args,
                       json=parsed, original=text)


def _checked(number, fn, *args):
    """fn(*args), its BuildError placed at the line."""
    try:
        return fn(*args)
    except BuildError as e:
        raise e.at(number) from None


def _split_first(text):
    m = re.search(f"[{_WS}]+", text)
    if not m:
        return text, ""
    return text[:m.start()], text[m.end():].strip(_WS)


def _flags(number, keyword, rest):
    """The leading --name[=value] words, checked for `keyword`; (flags, args)."""
    flags = []
    while rest.startswith("--"):
        word, after = _split_first(rest)
        if word == "--":
            rest = after
            break
        name, eq, value = word[2:].partition("=")
        name = name.lower()
        refused = _REFUSED_FLAGS.get((keyword, name))
        if refused:
            raise BuildError(refused, number)
        known = _FLAGS.get(keyword, {})
        if name not in known or not _FLAG_NAME.fullmatch(name):
            raise BuildError(f"unknown flag: --{name} for {keyword}", number)
        if known[name]:
            if not eq or value == "":
                raise BuildError(f"{keyword} --{name} needs a value (--{name}=VALUE)", number)
        else:
            if eq and value.lower() not in ("true", "false"):
                raise BuildError(f"{keyword} --{name} is true or false, not {value!r}", number)
            value = None if not eq else value.lower()
        flags.append((name, value))
        rest = after
    return tuple(flags), rest


def exec_form(args):
    """The exec form's strings as a tuple, or None (shell form: not a
    JSON array of strings, invalid JSON included)."""
    if not args.startswith("["):
        return None
    try:
        value = json.loads(args)
    except (ValueError, RecursionError):
        return None  # not JSON: Docker takes it as shell form
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(value)


def _healthcheck(number, args):
    """NONE, or CMD with a command: the command's exec form or None."""
    word, rest = _split_first(args)
    word = word.upper()
    if word == "NONE":
        if rest:
            raise BuildError("HEALTHCHECK NONE takes no arguments", number)
        return None
    if word != "CMD":
        raise BuildError("HEALTHCHECK is NONE or [OPTIONS] CMD command", number)
    if not rest:
        raise BuildError("HEALTHCHECK CMD requires a command", number)
    return exec_form(rest)


def _stage(ins, index, names):
    """A Stage from a FROM instruction: FROM [--platform=P] image [AS name]."""
    words = ins.args.split()
    if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
        raise BuildError("FROM is FROM [--platform=PLATFORM] IMAGE [AS NAME]", ins.line)
    name = None
    if len(words) == 3:
        name = words[2].lower()
        if not _STAGE_NAME.fullmatch(name):
            raise BuildError(f"invalid name for build stage: {words[2]!r}, name can't start"
                             " with a number or contain symbols", ins.line)
        if name in names:
            raise BuildError(f"duplicate name {name!r} for a build stage", ins.line)
        names.add(name)
    return Stage(index=index, name=name, base=words[0], platform=ins.flag("platform"),
                 from_line=ins.line, instructions=[])
