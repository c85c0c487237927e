"""config.json's security fields in the terms of bocker's confine
package: capability name sets -> masks (confine/capabilities.py),
rlimit names -> RLIMIT_* numbers (confine/security.py), and
linux.seccomp -> the BPF program, through the same parser and compiler
as `--security-opt seccomp=FILE` (confine/seccomp_profile.py, seccomp.py)."""
import json

from bocker.confine import capabilities, security, seccomp_profile
from bocker.errors import InvalidArgument
from bocker.oci import jsonfields as jf

CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
# OCI's names: RLIMIT_NOFILE ... from the --ulimit names
RLIMITS = {"RLIMIT_" + name.upper(): number for name, number in security.RLIMITS.items()}

SECCOMP_KEYS = ("defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath",
                "listenerMetadata", "syscalls")
SECCOMP_FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                 "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")


def last_cap():
    """The highest capability number this kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read(16))
    except (OSError, ValueError):
        return max(capabilities.NUMBERS.values())


def all_caps():
    """The mask of every capability this kernel and bocker know."""
    top = last_cap()
    return capabilities.mask(n for n, v in capabilities.NUMBERS.items() if v <= top)


def cap_mask(names, where, warnings):
    """A capability set ["CAP_CHOWN", ...] -> its bit mask.  A name neither
    bocker nor this kernel knows is a warning and skipped, as runc 1.1
    does (a config written for a newer kernel still runs)."""
    top, picked = last_cap(), []
    for i, name in enumerate(jf.strings(names, where, 256, 64)):
        bare = name[4:] if name.startswith("CAP_") else None
        if bare not in capabilities.NUMBERS:
            warnings.append(f"{jf.item(where, i)}: unknown capability {name[:40]!r} skipped")
        elif capabilities.NUMBERS[bare] > top:
            warnings.append(f"{jf.item(where, i)}: {name} is not known to this kernel: skipped")
        else:
            picked.append(bare)
    return capabilities.mask(picked)


def parse_capabilities(value, where, warnings, uid=0):
    """process.capabilities -> {set: mask} for the five sets.  Absent,
    the process keeps what the kernel leaves a process of its uid: root
    everything (bounded, permitted, effective; none inheritable), any
    other uid only the bounding set, as setuid(2) from root clears the
    rest (a uid that could raise capabilities would be root by another
    name)."""
    if value is None:
        full = all_caps()
        mine = full if uid == 0 else 0
        return dict(bounding=full, permitted=mine, effective=mine, inheritable=0, ambient=0)
    jf.obj(value, where)
    jf.unknown_keys(value, CAP_SETS, where, warnings)
    return {s: cap_mask(value[s], jf.key(where, s), warnings) if value.get(s) is not None else 0
            for s in CAP_SETS}


def parse_rlimits(value, where):
    """process.rlimits -> [(RLIMIT_* number, soft, hard)]; an unknown type,
    a repeated one or soft above hard is an error (the kernel could not
    apply it, and the spec says so)."""
    out, seen = [], set()
    for i, entry in enumerate(jf.array(value, where, 64)):
        at = jf.item(where, i)
        jf.obj(entry, at)
        kind = jf.string(entry.get("type"), jf.key(at, "type"), 64)
        if kind not in RLIMITS:
            jf.fail(jf.key(at, "type"), f"unknown rlimit {kind[:40]!r}")
        if kind in seen:
            jf.fail(jf.key(at, "type"), f"{kind} is given twice")
        seen.add(kind)
        soft = jf.integer(entry.get("soft"), jf.key(at, "soft"), 0, jf.U64)
        hard = jf.integer(entry.get("hard"), jf.key(at, "hard"), 0, jf.U64)
        if soft > hard:
            jf.fail(at, f"soft limit {soft} above hard limit {hard}")
        out.append((RLIMITS[kind], soft, hard))
    return out


def parse_seccomp(value, where, warnings=None):
    """linux.seccomp -> a seccomp_profile.Profile, checked by the same
    parser as a --security-opt seccomp=FILE profile.  flags and the
    notify listener are not applied (warnings); every other member must
    be one of the spec's."""
    warnings = [] if warnings is None else warnings
    jf.obj(value, where)
    jf.unknown_keys(value, SECCOMP_KEYS, where, warnings)
    flags = value.get("flags")
    if flags is not None:
        for i, flag in enumerate(jf.strings(flags, jf.key(where, "flags"), 16, 64)):
            if flag not in SECCOMP_FLAGS:
                jf.fail(jf.item(jf.key(where, "flags"), i), f"unknown flag {flag[:40]!r}")
            # TSYNC: the child is single-threaded, so every thread has it anyway
            if flag != "SECCOMP_FILTER_FLAG_TSYNC":
                warnings.append(f"{jf.item(jf.key(where, 'flags'), i)} {flag} is not applied")
    for name in ("listenerPath", "listenerMetadata"):
        if value.get(name) is not None:
            jf.string(value[name], jf.key(where, name), jf.PATH_MAX)
            if value[name]:
                warnings.append(f"{jf.key(where, name)} is not applied: bocker-oci has no"
                                f" seccomp notify listener")
    # what confine's parser reads: the spec's members less the ones warned about
    profile = {k: v for k, v in value.items() if k in SECCOMP_KEYS and k not in (
        "flags", "listenerPath", "listenerMetadata")}
    try:
        data = json.dumps(profile).encode()
    except (ValueError, TypeError, RecursionError):  # not JSON-shaped (never, from a file)
        jf.fail(where, "is not a JSON object")
    try:
        return seccomp_profile.parse(data, SOURCE)
    except InvalidArgument as e:
        raise _renamed(e, where) from None


SOURCE = "config.json"


def _renamed(error, where):
    """confine's "seccomp profile config.json: syscalls[2].action ..." as
    this field's error: "config.json: linux.seccomp: syscalls[2].action ..."."""
    return InvalidArgument(f"{where}: {str(error).removeprefix(f'seccomp profile {SOURCE}: ')}")


def cap_names(mask):
    """A mask -> capability names without CAP_ (what seccomp.plan takes)."""
    return {name for name, bit in capabilities.NUMBERS.items() if mask >> bit & 1}


def compile_seccomp(value, caps_mask, where="config.json: linux.seccomp"):
    """linux.seccomp (the OCI object, or None) -> the BPF program (bytes)
    for a process holding caps_mask (its effective or bounding set: it
    decides a profile's includes/excludes.caps), compiled by libseccomp
    in the shim; None for no seccomp object."""
    from bocker.confine import seccomp

    if value is None:
        return None
    profile = parse_seccomp(value, where)
    try:
        return seccomp.compile_profile(profile, cap_names(caps_mask))
    except InvalidArgument as e:   # libseccomp refused a rule
        raise _renamed(e, where) from None
