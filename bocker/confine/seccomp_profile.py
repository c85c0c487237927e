"""Seccomp profiles in Docker/OCI JSON, parsed and validated as hostile
input (bounded sizes, every key, type and range checked, one-line errors):
Profile, Rule and Condition, parse(), load_profile() for
--security-opt seccomp=PATH, pin_profile() (the copy kept beside a
container) and bocker's own default_profile()."""
import json
import os
import re

from bocker import patterns
from bocker.errors import InvalidArgument

try:  # CPython's own SHA-256: hashlib would load OpenSSL, 2.5 ms of every start
    from _sha256 import sha256
except ImportError:  # Python 3.12+ names it _sha2; other Pythons: hashlib
    try:
        from _sha2 import sha256
    except ImportError:
        from hashlib import sha256

DEFAULT_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles",
                               "seccomp_default.json")
UNCONFINED = "unconfined"

# Bounds on a profile: generous for any real one (Docker's has ~60 rules
# and ~420 names), small enough that a hostile file cannot make us work.
MAX_PROFILE_BYTES = 1 << 20
MAX_RULES = 1024
MAX_NAMES = 8192
MAX_ARGS = 6
MAX_ERRNO = 4095          # the kernel's bound for SECCOMP_RET_ERRNO data
BPF_MAXINSNS = 4096       # the kernel's bound on a filter program
INSN_BYTES = 8            # sizeof(struct sock_filter)
EPERM, ENOSYS = 1, 38

# Kernel action words (SECCOMP_RET_*); libseccomp's SCMP_ACT_* are the same.
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7ff00000,
    "SCMP_ACT_LOG": 0x7ffc0000, "SCMP_ACT_ALLOW": 0x7fff0000,
}
WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")   # carry errnoRet in the low bits
# enum scmp_compare
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
       "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
# SCMP_ARCH_* -> libseccomp's name for it
ARCHES = {f"SCMP_ARCH_{a.upper()}": a for a in (
    "x86", "x86_64", "x32", "arm", "aarch64", "mips", "mipsel", "mips64", "mipsel64",
    "mips64n32", "mipsel64n32", "ppc", "ppc64", "ppc64le", "s390", "s390x", "parisc",
    "parisc64", "riscv64")}
# uname machine -> (SCMP_ARCH_*, Go's name, which Docker's includes.arches use)
NATIVE = {"x86_64": ("SCMP_ARCH_X86_64", "amd64"), "aarch64": ("SCMP_ARCH_AARCH64", "arm64")}

_NAME = patterns.lazy(r"[a-z_][a-z0-9_]{0,63}\Z")
_CAP = patterns.lazy(r"(CAP_)?[A-Z][A-Z0-9_]{0,39}\Z")
_GOARCH = patterns.lazy(r"[a-z][a-z0-9_]{0,19}\Z")
_KERNEL = patterns.lazy(r"(\d{1,5})\.(\d{1,5})(?:\.(\d{1,5}))?")

TOP_KEYS = {"defaultAction", "defaultErrnoRet", "architectures", "archMap", "syscalls",
            "comment", "flags"}
RULE_KEYS = {"names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes"}
ARG_KEYS = {"index", "value", "valueTwo", "op"}
COND_KEYS = {"caps", "arches", "minKernel"}


class Condition:
    """An includes or excludes block: capability names (without CAP_),
    architecture names, a minimum kernel (tuple) or None."""

    __slots__ = ("caps", "arches", "min_kernel")

    def __init__(self, caps=(), arches=(), min_kernel=None):
        self.caps, self.arches, self.min_kernel = frozenset(caps), frozenset(arches), min_kernel

    def empty(self):
        return not (self.caps or self.arches or self.min_kernel)


class Rule:
    """One syscalls[] entry: names, kernel action word, args as
    (index, op, value, value_two), includes and excludes."""

    __slots__ = ("names", "action", "args", "includes", "excludes")

    def __init__(self, names, action, args=(), includes=None, excludes=None):
        self.names, self.action, self.args = tuple(names), action, tuple(args)
        self.includes = includes or Condition()
        self.excludes = excludes or Condition()

    def applies(self, caps, goarch, kernel):
        """Docker's reading: every included capability held, the arch among
        the included ones, the kernel new enough; and no excluded
        capability held, the arch not excluded, the kernel not at or past
        an excluded minimum."""
        inc, exc = self.includes, self.excludes
        if not inc.caps <= caps or (inc.arches and goarch not in inc.arches):
            return False
        if inc.min_kernel and kernel < inc.min_kernel:
            return False
        if exc.caps & caps or goarch in exc.arches:
            return False
        return not (exc.min_kernel and kernel >= exc.min_kernel)


class Profile:
    """A parsed, validated profile.  digest identifies its source bytes."""

    __slots__ = ("default_action", "architectures", "arch_map", "rules", "digest", "source")

    def __init__(self, default_action, architectures, arch_map, rules, digest, source):
        self.default_action, self.architectures = default_action, architectures
        self.arch_map, self.rules, self.digest, self.source = arch_map, rules, digest, source


def _fail(source, message):
    raise InvalidArgument(f"seccomp profile {source}: {message}")


def _int(value, what, source, low=0, high=(1 << 64) - 1):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _fail(source, f"{what} must be an integer from {low} to {high}")
    return value


def _strings(value, what, source, pattern, limit=64):
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        _fail(source, f"{what} must be a list of at most {limit} strings")
    for item in value:
        if not isinstance(item, str) or not pattern.match(item):
            _fail(source, f"{what}: bad entry {str(item)[:40]!r}")
    return value


def _keys(obj, allowed, what, source):
    if not isinstance(obj, dict):
        _fail(source, f"{what} must be an object")
    extra = set(obj) - allowed
    if extra:
        _fail(source, f"{what}: unknown key {sorted(extra)[0][:40]!r}")


def _action(obj, key, errno_key, source, default_errno=EPERM):
    name = obj.get(key)
    if name is None:
        _fail(source, f"{key} is missing")
    if not isinstance(name, str) or name not in ACTIONS:
        _fail(source, f"{key} {str(name)[:40]!r} is not one of {', '.join(sorted(ACTIONS))}")
    word = ACTIONS[name]
    if name in WITH_ERRNO:
        word |= _int(obj.get(errno_key, default_errno), errno_key, source, 0, MAX_ERRNO)
    elif errno_key in obj:
        _fail(source, f"{errno_key} goes only with SCMP_ACT_ERRNO or SCMP_ACT_TRACE")
    return word


def _arch(name, what, source):
    if not isinstance(name, str) or name not in ARCHES:
        _fail(source, f"{what}: unknown architecture {str(name)[:40]!r}")
    return name


def _kernel_version(text, what, source):
    m = _KERNEL.fullmatch(text) if isinstance(text, str) else None
    if not m:
        _fail(source, f"{what} must look like '4.8' or '5.10.1'")
    return tuple(int(g or 0) for g in m.groups())


def _condition(obj, what, source):
    if obj is None:
        return Condition()
    _keys(obj, COND_KEYS, what, source)
    caps = [c.upper() for c in _strings(obj.get("caps"), f"{what}.caps", source,
                                        re.compile(_CAP.pattern, re.I))]
    caps = [c[4:] if c.startswith("CAP_") else c for c in caps]
    arches = _strings(obj.get("arches"), f"{what}.arches", source, _GOARCH)
    mk = obj.get("minKernel")
    return Condition(caps, arches, None if mk is None else
                     _kernel_version(mk, f"{what}.minKernel", source))


def _arg(obj, where, source):
    _keys(obj, ARG_KEYS, where, source)
    index = _int(obj.get("index"), f"{where}.index", source, 0, 5)
    op = obj.get("op")
    if not isinstance(op, str) or op not in OPS:
        _fail(source, f"{where}.op {str(op)[:40]!r} is not one of {', '.join(sorted(OPS))}")
    value = _int(obj.get("value", 0), f"{where}.value", source)
    value_two = _int(obj.get("valueTwo", 0), f"{where}.valueTwo", source)
    return index, OPS[op], value, value_two


def _rule(obj, i, source):
    where = f"syscalls[{i}]"
    _keys(obj, RULE_KEYS, where, source)
    names = obj.get("names")
    if names is None and "name" in obj:   # the older, singular spelling
        names = [obj["name"]]
    names = _strings(names, f"{where}.names", source, _NAME, MAX_NAMES)
    if not names:
        _fail(source, f"{where}: no system call names")
    action = _action(obj, "action", "errnoRet", source)
    args = obj.get("args")
    args = [] if args is None else args
    if not isinstance(args, list) or len(args) > MAX_ARGS:
        _fail(source, f"{where}.args must be a list of at most {MAX_ARGS} conditions")
    args = [_arg(a, f"{where}.args[{j}]", source) for j, a in enumerate(args)]
    if len({a[0] for a in args}) != len(args):
        # libseccomp 2.5 refuses it, and runc's reading (OR) surprises
        _fail(source, f"{where}: two conditions on the same argument")
    return Rule(names, action, args, _condition(obj.get("includes"), f"{where}.includes", source),
                _condition(obj.get("excludes"), f"{where}.excludes", source))


def _arch_map(value, source):
    if value is None:
        return {}
    if not isinstance(value, list) or len(value) > 64:
        _fail(source, "archMap must be a list of at most 64 entries")
    out = {}
    for i, entry in enumerate(value):
        _keys(entry, {"architecture", "subArchitectures"}, f"archMap[{i}]", source)
        main = _arch(entry.get("architecture"), f"archMap[{i}]", source)
        subs = entry.get("subArchitectures")
        subs = [] if subs is None else subs
        if not isinstance(subs, list) or len(subs) > 16:
            _fail(source, f"archMap[{i}].subArchitectures must be a list")
        out[main] = [_arch(s, f"archMap[{i}].subArchitectures", source) for s in subs]
    return out


def parse(data, source="<profile>"):
    """Parse and validate profile bytes (Docker/OCI seccomp JSON).  Raises
    InvalidArgument with a one-line message naming the bad part."""
    if len(data) > MAX_PROFILE_BYTES:
        _fail(source, f"larger than {MAX_PROFILE_BYTES} bytes")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as e:
        _fail(source, f"not JSON ({str(e)[:80]})")
    _keys(obj, TOP_KEYS, "the profile", source)
    if obj.get("flags"):
        _fail(source, "flags are not supported")
    default = _action(obj, "defaultAction", "defaultErrnoRet", source)
    architectures = [_arch(a, "architectures", source)
                     for a in _strings(obj.get("architectures"), "architectures", source,
                                       re.compile(r"SCMP_ARCH_[A-Z0-9_]{1,20}\Z"))]
    arch_map = _arch_map(obj.get("archMap"), source)
    syscalls = obj.get("syscalls")
    syscalls = [] if syscalls is None else syscalls
    if not isinstance(syscalls, list) or len(syscalls) > MAX_RULES:
        _fail(source, f"syscalls must be a list of at most {MAX_RULES} entries")
    rules = [_rule(r, i, source) for i, r in enumerate(syscalls)]
    if sum(len(r.names) for r in rules) > MAX_NAMES:
        _fail(source, f"more than {MAX_NAMES} system call names")
    return Profile(default, architectures, arch_map, rules,
                   sha256(data).hexdigest(), source)


def _read_bounded(path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks, size = [], 0
        while size <= MAX_PROFILE_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def load_profile(path):
    """Read and parse a profile file (--security-opt seccomp=PATH)."""
    try:
        data = _read_bounded(path)
    except OSError as e:
        raise InvalidArgument(f"seccomp profile {path}: {e.strerror}") from None
    return parse(data, path)


def pin_profile(directory, security_opt):
    """Copy a `seccomp=PATH` profile, validated, beside the container (as
    Docker keeps the profile it was created with), so that start and exec
    apply that profile whatever later happens to the file.  Returns the
    options with the path pointing at the copy."""
    from bocker.confine import security

    path = security.parse_security_opts(security_opt)["seccomp"]
    if path in ("default", UNCONFINED):
        return list(security_opt)
    try:
        data = _read_bounded(path)
    except OSError as e:
        raise InvalidArgument(f"seccomp profile {path}: {e.strerror}") from None
    parse(data, path)
    copy = os.path.join(directory, "seccomp.json")
    with open(copy, "wb") as f:
        f.write(data)
    return [o for o in security_opt if not str(o).startswith("seccomp")] + [f"seccomp={copy}"]


_default = None


def default_profile():
    """bocker's own profile (bocker/profiles/seccomp_default.json)."""
    global _default
    if _default is None:
        _default = load_profile(DEFAULT_PROFILE)
    return _default
