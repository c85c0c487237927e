"""config.json mount options, fstab style, to what mount(2) and
mount_setattr take: runc's reading of them.  Each known option sets or
clears one MS_* flag, or names a propagation; anything else is
filesystem data ("mode=755,size=65536k") passed on to mount(2)."""
from bocker.oci import jsonfields as jf

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# option -> (clear?, flag): applied in the order given, so a later "rw"
# undoes an earlier "ro" (as mount(8) and runc read them)
FLAGS = {
    "defaults": (False, 0),
    "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "nosuid": (False, MS_NOSUID), "suid": (True, MS_NOSUID),
    "nodev": (False, MS_NODEV), "dev": (True, MS_NODEV),
    "noexec": (False, MS_NOEXEC), "exec": (True, MS_NOEXEC),
    "sync": (False, MS_SYNCHRONOUS), "async": (True, MS_SYNCHRONOUS),
    "dirsync": (False, MS_DIRSYNC),
    "remount": (False, MS_REMOUNT),
    "mand": (False, MS_MANDLOCK), "nomand": (True, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME), "atime": (True, MS_NOATIME),
    "nodiratime": (False, MS_NODIRATIME), "diratime": (True, MS_NODIRATIME),
    "relatime": (False, MS_RELATIME), "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME), "nostrictatime": (True, MS_STRICTATIME),
    "nosymfollow": (False, MS_NOSYMFOLLOW), "symfollow": (True, MS_NOSYMFOLLOW),
    "iversion": (False, MS_I_VERSION), "noiversion": (True, MS_I_VERSION),
    "lazytime": (False, MS_LAZYTIME), "nolazytime": (True, MS_LAZYTIME),
    "silent": (False, MS_SILENT), "loud": (True, MS_SILENT),
}
# runc 1.1's recursive forms ("rro": read-only all the way down, by
# mount_setattr AT_RECURSIVE): the same flag; the shim sets a bind's
# flags on its whole detached tree, and a new filesystem has no submounts.
RECURSIVE_FLAGS = {"r" + name: FLAGS[name] for name in (
    "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "noatime", "atime",
    "nodiratime", "diratime", "relatime", "norelatime", "strictatime", "nostrictatime",
    "nosymfollow", "symfollow")}
BINDS = {"bind": False, "rbind": True}   # option -> recursive
PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}
# Options runc knows that bocker does not apply: a warning, not data
# (as data they would make mount(2) fail with EINVAL).
NOT_APPLIED = {"tmpcopyup": "copying the contents under a tmpfs up into it",
               "idmap": "idmapped mounts", "ridmap": "idmapped mounts"}

MAX_DATA = 4095            # mount(2) copies one page of data
MAX_OPTIONS = 256


class Options:
    """One mount's options, read: flags (MS_*, without MS_BIND/MS_REC),
    propagation (an MS_* propagation, with MS_REC for the r forms, or 0),
    bind (a bind or rbind option was given), recursive (rbind), data
    (the other options, comma-joined, or None) and warnings."""

    __slots__ = ("flags", "propagation", "bind", "recursive", "data", "warnings")

    def __init__(self):
        self.flags, self.propagation, self.bind, self.recursive = 0, 0, False, False
        self.data, self.warnings = None, []


def parse(options, where):
    """Read a mount's `options` array (None: no options) into Options."""
    out = Options()
    if options is None:
        return out
    data = []
    for i, opt in enumerate(jf.strings(options, where, MAX_OPTIONS, jf.PATH_MAX)):
        name = jf.item(where, i)
        if opt in FLAGS or opt in RECURSIVE_FLAGS:
            clear, flag = FLAGS.get(opt) or RECURSIVE_FLAGS[opt]
            out.flags = out.flags & ~flag if clear else out.flags | flag
        elif opt in BINDS:
            out.bind = True
            out.recursive = out.recursive or BINDS[opt]
        elif opt in PROPAGATION:
            out.propagation = PROPAGATION[opt]   # the last one given wins
        elif opt in NOT_APPLIED:
            out.warnings.append(f"{name} '{opt}' is not applied: bocker-oci does no"
                                f" {NOT_APPLIED[opt]}")
        elif not opt:
            continue
        elif "," in opt:
            # one option per entry: a comma would smuggle several into data
            jf.fail(name, f"must be one option, not {opt[:60]!r}")
        else:
            data.append(opt)
    if data:
        out.data = ",".join(data)
        if len(out.data.encode()) > MAX_DATA:
            jf.fail(where, f"filesystem options longer than {MAX_DATA} bytes")
    return out


def propagation(value, where):
    """linux.rootfsPropagation ("rslave", ...) -> its MS_* bits; "" -> 0."""
    jf.string(value, where, 64)
    if value == "":
        return 0
    if value not in PROPAGATION:
        jf.fail(where, f"{value[:40]!r} is not one of {', '.join(sorted(PROPAGATION))}")
    return PROPAGATION[value]
