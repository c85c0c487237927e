"""The process of a config.json (`process`), or of `exec --process FILE`:
parse_process() checks every member and returns a Process."""
import os

from bocker.oci import jsonfields as jf
from bocker.oci import ocisec

KEYS = ("terminal", "consoleSize", "user", "args", "commandLine", "env", "cwd",
        "capabilities", "rlimits", "noNewPrivileges", "apparmorProfile", "oomScoreAdj",
        "scheduler", "selinuxLabel", "ioPriority")
USER_KEYS = ("uid", "gid", "umask", "additionalGids", "username")
ID_MAX = jf.U32 - 1        # (uid_t)-1 means "leave unchanged" to setresuid
NGROUPS_MAX = 65536


class Process:
    """A checked process: args, env (["K=V"]), cwd, uid, gid, gids (extra
    gids), umask (int or None), caps ({set: mask} for bounding, effective,
    inheritable, permitted, ambient), rlimits ([(RLIMIT_*, soft, hard)]),
    no_new_privs, oom_score_adj (int or None), terminal, console_size
    ((rows, cols); (0, 0): unset) and warnings (what it asks for that is
    not applied)."""

    __slots__ = ("args", "env", "cwd", "uid", "gid", "gids", "umask", "caps", "rlimits",
                 "no_new_privs", "oom_score_adj", "terminal", "console_size", "warnings")

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields[name])

    def __repr__(self):
        return f"Process(args={self.args!r}, uid={self.uid}, gid={self.gid})"


def host_has_apparmor():
    """AppArmor is enabled on this host (its securityfs directory is there)."""
    return os.path.isdir("/sys/kernel/security/apparmor")


def host_has_selinux():
    """SELinux is enabled on this host (selinuxfs is mounted)."""
    return os.path.isdir("/sys/fs/selinux")


def not_applied_label(value, where, warnings, lsm):
    """A warning for an AppArmor profile or SELinux label, which bocker
    never applies; why depends on whether this host could."""
    jf.string(value, where, jf.PATH_MAX)
    if not value:
        return
    present = host_has_apparmor() if lsm == "AppArmor" else host_has_selinux()
    why = (f"bocker-oci applies no {lsm} labels" if present else f"this host has no {lsm}")
    warnings.append(f"{where} {value[:60]!r} is not applied: {why}")


def _env(value, where):
    env = jf.strings(value, where, jf.MAX_ARGV)
    for i, entry in enumerate(env):
        name, sep, _ = entry.partition("=")
        if not sep or not name:
            jf.fail(jf.item(where, i), f"must be NAME=VALUE, not {entry[:40]!r}")
    return env


def _user(value, where, warnings):
    if value is None:
        return 0, 0, [], None
    jf.obj(value, where)
    jf.unknown_keys(value, USER_KEYS, where, warnings)
    uid = jf.integer(jf.member(value, "uid", 0), jf.key(where, "uid"), 0, ID_MAX)
    gid = jf.integer(jf.member(value, "gid", 0), jf.key(where, "gid"), 0, ID_MAX)
    gids_where = jf.key(where, "additionalGids")
    gids = [jf.integer(g, jf.item(gids_where, i), 0, ID_MAX)
            for i, g in enumerate(jf.array(jf.member(value, "additionalGids", []), gids_where,
                                           NGROUPS_MAX))]
    umask = value.get("umask")
    if umask is not None:
        umask = jf.integer(umask, jf.key(where, "umask"), 0, 0o777)
    if value.get("username") is not None and jf.string(value["username"],
                                                       jf.key(where, "username"), 256):
        warnings.append(f"{jf.key(where, 'username')} is not applied: it is for Windows")
    return uid, gid, gids, umask


def _console_size(value, where):
    if value is None:
        return 0, 0
    jf.obj(value, where)
    rows = jf.integer(jf.member(value, "height", 0), jf.key(where, "height"), 0, 0xffff)
    cols = jf.integer(jf.member(value, "width", 0), jf.key(where, "width"), 0, 0xffff)
    return rows, cols


def _not_applied_object(value, where, warnings, what):
    if value is not None:
        jf.obj(value, where)
        warnings.append(f"{where} is not applied: bocker-oci sets no {what}")


def parse_process(value, where="config.json: process"):
    """A process object (config.json's `process`, or an exec process file
    with where naming it) -> Process; InvalidArgument, one line naming
    the field, for anything malformed."""
    jf.obj(value, where)
    warnings = []
    jf.unknown_keys(value, KEYS, where, warnings)
    args_where = jf.key(where, "args")
    if value.get("args") is None:
        jf.fail(args_where, "is required")
    args = jf.strings(value["args"], args_where, jf.MAX_ARGV)
    if not args or not args[0]:
        jf.fail(args_where, "must name the program to run")
    env = _env(jf.member(value, "env", []), jf.key(where, "env"))
    if value.get("cwd") is None:
        jf.fail(jf.key(where, "cwd"), "is required")
    cwd = jf.abs_path(value["cwd"], jf.key(where, "cwd"))
    uid, gid, gids, umask = _user(value.get("user"), jf.key(where, "user"), warnings)
    caps = ocisec.parse_capabilities(value.get("capabilities"),
                                     jf.key(where, "capabilities"), warnings, uid)
    rlimits = ocisec.parse_rlimits(jf.member(value, "rlimits", []),
                                   jf.key(where, "rlimits"))
    nnp = jf.boolean(jf.member(value, "noNewPrivileges", False),
                     jf.key(where, "noNewPrivileges"))
    terminal = jf.boolean(jf.member(value, "terminal", False), jf.key(where, "terminal"))
    oom = value.get("oomScoreAdj")
    if oom is not None:
        oom = jf.integer(oom, jf.key(where, "oomScoreAdj"), -1000, 1000)
    if value.get("commandLine") is not None:
        jf.string(value["commandLine"], jf.key(where, "commandLine"))
        warnings.append(f"{jf.key(where, 'commandLine')} is not applied: it is for Windows")
    for name, lsm in (("apparmorProfile", "AppArmor"), ("selinuxLabel", "SELinux")):
        not_applied_label(jf.member(value, name, ""), jf.key(where, name), warnings, lsm)
    _not_applied_object(value.get("scheduler"), jf.key(where, "scheduler"), warnings,
                        "scheduling policy")
    _not_applied_object(value.get("ioPriority"), jf.key(where, "ioPriority"), warnings,
                        "I/O priority")
    return Process(args=args, env=env, cwd=cwd, uid=uid, gid=gid, gids=gids, umask=umask,
                   caps=caps, rlimits=rlimits, no_new_privs=nnp, oom_score_adj=oom,
                   terminal=terminal,
                   console_size=_console_size(value.get("consoleSize"),
                                              jf.key(where, "consoleSize")),
                   warnings=warnings)
