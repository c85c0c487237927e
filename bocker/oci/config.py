"""An OCI bundle's config.json, read and checked as hostile input:
load(bundle_dir) -> Bundle.  Every member's type and range is checked
(one-line InvalidArgument naming the field, "config.json:
mounts[3].destination: must be a string"); every member present that
bocker does not apply becomes a warning in Bundle.warnings (or the
Process's), never silently dropped.

Also here, for the runtime: parse_process (exec --process FILE),
compile_seccomp (linux.seccomp -> BPF) and default_spec (`spec`)."""
import json
import os
import posixpath
import re
import stat

from bocker.confine import security
from bocker.errors import InvalidArgument
from bocker.oci import jsonfields as jf
from bocker.oci import mountopts, ocisec
from bocker.oci.defaultspec import default_spec
from bocker.oci.ocisec import compile_seccomp
from bocker.oci.process import Process, not_applied_label, parse_process

__all__ = ["load", "parse", "Bundle", "MountPlan", "Hook", "Device", "Process",
           "parse_process", "compile_seccomp", "default_spec", "MAX_CONFIG_BYTES",
           "NAMESPACE_FLAGS"]

MAX_CONFIG_BYTES = 8 << 20
DOC = "config.json"
TOP_KEYS = ("ociVersion", "process", "root", "hostname", "domainname", "mounts", "hooks",
            "annotations", "linux", "solaris", "windows", "vm", "zos")
OTHER_PLATFORMS = {"solaris": "Solaris", "windows": "Windows", "vm": "virtual machines",
                   "zos": "z/OS"}
LINUX_KEYS = ("uidMappings", "gidMappings", "sysctl", "resources", "cgroupsPath", "namespaces",
              "devices", "seccomp", "rootfsPropagation", "maskedPaths", "readonlyPaths",
              "mountLabel", "intelRdt", "personality", "timeOffsets")
# linux.namespaces types -> their CLONE_NEW* flag (clone(2), setns(2))
NAMESPACE_FLAGS = {"pid": 0x20000000, "network": 0x40000000, "mount": 0x00020000,
                   "ipc": 0x08000000, "uts": 0x04000000, "user": 0x10000000,
                   "cgroup": 0x02000000, "time": 0x00000080}
NAMESPACES = tuple(NAMESPACE_FLAGS)
HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")
HOOK_KEYS = ("path", "args", "env", "timeout")
MOUNT_KEYS = ("destination", "type", "source", "options", "uidMappings", "gidMappings")
RESOURCES = {"devices": list, "memory": dict, "cpu": dict, "pids": dict, "blockIO": dict,
             "hugepageLimits": list, "network": dict, "rdma": dict, "unified": dict}
DEVICE_KEYS = ("path", "type", "major", "minor", "fileMode", "uid", "gid")
DEVICE_KINDS = {"c": "c", "u": "c", "b": "b", "p": "p"}   # u: unbuffered, a char device
MAJOR_MAX, MINOR_MAX = (1 << 12) - 1, (1 << 20) - 1        # the kernel's dev_t
# What the spec says every container gets (runc makes the same nodes):
# (path, major, minor), character devices, 0666 root:root.
DEFAULT_DEVICES = (("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
                   ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0))
MAX_ID_MAPPINGS = 340       # the kernel's bound on /proc/PID/uid_map lines
MAX_HOSTNAME = 64           # HOST_NAME_MAX
_VERSION = re.compile(r"1\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})([-+][0-9A-Za-z.+-]{0,64})?\Z")
_FSTYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z")
ID_MAX = jf.U32 - 1


class MountPlan:
    """One mounts[] entry, read: kind ("bind": source is a host path, "fs":
    mount(source, target, fstype, flags, data), "cgroup": the cgroup
    module makes it), source, target (absolute, normalised), fstype (None
    for a bind), flags (MS_*), data (str or None), propagation (MS_* or 0)
    and recursive (rbind)."""

    __slots__ = ("kind", "source", "target", "fstype", "flags", "data", "propagation",
                 "recursive")

    def __init__(self, kind, source, target, fstype, flags=0, data=None, propagation=0,
                 recursive=False):
        self.kind, self.source, self.target, self.fstype = kind, source, target, fstype
        self.flags, self.data, self.propagation, self.recursive = (flags, data, propagation,
                                                                   recursive)

    def __repr__(self):
        return f"MountPlan({self.kind!r}, {self.source!r}, {self.target!r}, {self.fstype!r})"


class Hook:
    """One hook: path (absolute, on the host), args, env, timeout (seconds or None)."""

    __slots__ = ("path", "args", "env", "timeout")

    def __init__(self, path, args=(), env=(), timeout=None):
        self.path, self.args, self.env, self.timeout = path, list(args), list(env), timeout

    def to_json(self):
        """The spec's object for it (for state.json)."""
        out = {"path": self.path, "args": self.args, "env": self.env}
        if self.timeout is not None:
            out["timeout"] = self.timeout
        return out


class Device:
    """A device node for the container, with native.OciDevice's attribute
    names (path, kind "c"|"b"|"p", major, minor, mode: permission bits,
    uid, gid), so that the runtime can hand it to the shim as it is or
    convert it field by field."""

    __slots__ = ("path", "kind", "major", "minor", "mode", "uid", "gid")

    def __init__(self, path, kind, major=0, minor=0, mode=0o666, uid=0, gid=0):
        self.path, self.kind, self.major, self.minor = path, kind, major, minor
        self.mode, self.uid, self.gid = mode, uid, gid

    def __repr__(self):
        return f"Device({self.path!r}, {self.kind!r}, {self.major}, {self.minor}, {self.mode:o})"


class Bundle:
    """A checked bundle.  See OCI.md B for the fields."""

    __slots__ = ("path", "config", "rootfs", "readonly_root", "process", "hostname",
                 "domainname", "mounts", "namespaces", "uid_mappings", "gid_mappings",
                 "devices", "resources", "cgroups_path", "masked", "readonly", "seccomp",
                 "sysctls", "rootfs_propagation", "hooks", "annotations", "warnings")

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields[name])


# ---------------------------------------------------------------- reading

def read_config(bundle):
    """The bytes of <bundle>/config.json: a regular file (not followed if
    a symlink, not a FIFO that would block us), at most MAX_CONFIG_BYTES."""
    path = os.path.join(bundle, DOC)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        why = "is a symbolic link" if e.errno == 40 else e.strerror   # ELOOP
        raise InvalidArgument(f"{path}: {why}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgument(f"{path}: not a regular file")
        if st.st_size > MAX_CONFIG_BYTES:
            raise InvalidArgument(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
        chunks, size = [], 0
        while size <= MAX_CONFIG_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_CONFIG_BYTES:   # it grew while we read
            raise InvalidArgument(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
        return b"".join(chunks)
    except OSError as e:
        raise InvalidArgument(f"{path}: {e.strerror}") from None
    finally:
        os.close(fd)


def decode(data):
    """config.json's bytes -> its top-level object."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as e:   # UnicodeDecodeError is a ValueError
        raise InvalidArgument(f"{DOC}: not valid JSON ({str(e)[:80]})") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{DOC}: must be a JSON object")
    return value


def load(bundle_dir):
    """Read and check <bundle_dir>/config.json -> Bundle."""
    bundle = os.path.abspath(bundle_dir)
    if not os.path.isdir(bundle):
        raise InvalidArgument(f"bundle {bundle_dir}: not a directory")
    return parse(decode(read_config(bundle)), bundle)


# ---------------------------------------------------------------- the members

def _root(value, bundle):
    where = f"{DOC}: root"
    if value is None:
        jf.fail(where, "is required")
    jf.obj(value, where)
    if value.get("path") is None:
        jf.fail(jf.key(where, "path"), "is required")
    path = jf.string(value["path"], jf.key(where, "path"), jf.PATH_MAX, empty=False)
    rootfs = os.path.realpath(os.path.join(bundle, path))   # relative: to the bundle
    try:
        st = os.stat(rootfs)
    except OSError as e:
        jf.fail(jf.key(where, "path"), f"{path[:80]!r}: {e.strerror}")
    if not stat.S_ISDIR(st.st_mode):
        jf.fail(jf.key(where, "path"), f"{path[:80]!r} is not a directory")
    if rootfs == "/":   # every mount and device of the config would land on the host's
        jf.fail(jf.key(where, "path"), f"{path[:80]!r} is the host's /")
    readonly = jf.boolean(jf.member(value, "readonly", False), jf.key(where, "readonly"))
    return rootfs, readonly


def _target(value, where):
    """A mount destination, normalised the way runc reads it: a relative
    one is taken relative to /, and '..' cannot climb above /."""
    if value is None:
        jf.fail(where, "is required")
    jf.string(value, where, jf.PATH_MAX, empty=False)
    target = posixpath.normpath("/" + value.lstrip("/"))
    if target == "/":
        jf.fail(where, "cannot be / (the root is root.path)")
    return target


def _mount(value, where, bundle, warnings):
    jf.obj(value, where)
    jf.unknown_keys(value, MOUNT_KEYS, where, warnings)
    target = _target(value.get("destination"), jf.key(where, "destination"))
    fstype = value.get("type")
    if fstype is not None:
        jf.string(fstype, jf.key(where, "type"), 64)
        if fstype and not _FSTYPE.match(fstype):
            jf.fail(jf.key(where, "type"), f"{fstype[:40]!r} is not a filesystem type")
    source = value.get("source")
    if source is not None:
        jf.string(source, jf.key(where, "source"), jf.PATH_MAX)
    opts = mountopts.parse(value.get("options"), jf.key(where, "options"))
    warnings.extend(opts.warnings)
    for name in ("uidMappings", "gidMappings"):
        if value.get(name) is not None:
            _id_mappings(value[name], jf.key(where, name))
            if value[name]:
                warnings.append(f"{jf.key(where, name)} is not applied: bocker-oci makes no"
                                f" idmapped mounts")
    if fstype == "bind" or opts.bind:
        if not source:
            jf.fail(jf.key(where, "source"), "is required for a bind mount")
        # relative to the bundle, as runc (which runs in it) reads it
        source = posixpath.normpath(os.path.join(bundle, source))
        return MountPlan("bind", source, target, None, opts.flags, opts.data, opts.propagation,
                         opts.recursive)
    if not fstype:
        jf.fail(jf.key(where, "type"), "is required (or a bind or rbind option)")
    kind = "cgroup" if fstype in ("cgroup", "cgroup2") else "fs"
    return MountPlan(kind, source or "none", target, fstype, opts.flags, opts.data,
                     opts.propagation, False)


def _id_mappings(value, where):
    out = []
    for i, entry in enumerate(jf.array(value, where, MAX_ID_MAPPINGS)):
        at = jf.item(where, i)
        jf.obj(entry, at)
        inside = jf.integer(entry.get("containerID"), jf.key(at, "containerID"), 0, ID_MAX)
        outside = jf.integer(entry.get("hostID"), jf.key(at, "hostID"), 0, ID_MAX)
        size = jf.integer(entry.get("size"), jf.key(at, "size"), 1, jf.U32)
        if inside + size > jf.U32 or outside + size > jf.U32:
            jf.fail(at, "the range goes past the last id (4294967294)")
        out.append((inside, outside, size))
    return out


def _namespaces(value, where):
    out = {}
    for i, entry in enumerate(jf.array(value, where, 16)):
        at = jf.item(where, i)
        jf.obj(entry, at)
        kind = jf.string(entry.get("type"), jf.key(at, "type"), 16)
        if kind not in NAMESPACES:
            jf.fail(jf.key(at, "type"), f"{kind!r} is not one of {', '.join(NAMESPACES)}")
        if kind in out:
            jf.fail(jf.key(at, "type"), f"the {kind} namespace is given twice")
        path = entry.get("path")
        if path is not None and path != "":    # "": Go's unset string, no path
            path = jf.abs_path(path, jf.key(at, "path"))
        out[kind] = path or None
    return out


def _hooks(value, where, warnings):
    jf.obj(value, where)
    jf.unknown_keys(value, HOOKS, where, warnings)
    out = {name: [] for name in HOOKS}
    for name in HOOKS:
        if value.get(name) is None:
            continue
        list_where = jf.key(where, name)
        for i, entry in enumerate(jf.array(value[name], list_where, 256)):
            at = jf.item(list_where, i)
            jf.obj(entry, at)
            jf.unknown_keys(entry, HOOK_KEYS, at, warnings)
            if entry.get("path") is None:
                jf.fail(jf.key(at, "path"), "is required")
            path = jf.abs_path(entry["path"], jf.key(at, "path"))
            args = jf.strings(jf.member(entry, "args", []), jf.key(at, "args"), jf.MAX_ARGV)
            env = jf.strings(jf.member(entry, "env", []), jf.key(at, "env"), jf.MAX_ARGV)
            timeout = entry.get("timeout")
            if timeout is not None:
                timeout = jf.integer(timeout, jf.key(at, "timeout"), 1, 1 << 31)
            out[name].append(Hook(path, args, env, timeout))
    return out


def _device(value, where, warnings):
    jf.obj(value, where)
    jf.unknown_keys(value, DEVICE_KEYS, where, warnings)
    if value.get("path") is None:
        jf.fail(jf.key(where, "path"), "is required")
    path = posixpath.normpath(jf.abs_path(value["path"], jf.key(where, "path")))
    if path == "/" or path.startswith("//"):
        jf.fail(jf.key(where, "path"), f"{path[:40]!r} is not a device path")
    kind = jf.string(value.get("type"), jf.key(where, "type"), 4)
    if kind not in DEVICE_KINDS:
        jf.fail(jf.key(where, "type"), f"{kind!r} is not one of c, b, u, p")
    kind = DEVICE_KINDS[kind]
    major = minor = 0
    if kind != "p":     # a FIFO has no numbers
        for name in ("major", "minor"):
            if value.get(name) is None:
                jf.fail(jf.key(where, name), f"is required for a '{kind}' device")
        major = jf.integer(value["major"], jf.key(where, "major"), 0, MAJOR_MAX)
        minor = jf.integer(value["minor"], jf.key(where, "minor"), 0, MINOR_MAX)
    mode = value.get("fileMode")
    # Go's os.FileMode: only the permission bits make the node's mode
    mode = 0o666 if mode is None else jf.integer(mode, jf.key(where, "fileMode"), 0,
                                                 jf.U32) & 0o7777
    uid = jf.integer(jf.member(value, "uid", 0), jf.key(where, "uid"), 0, ID_MAX)
    gid = jf.integer(jf.member(value, "gid", 0), jf.key(where, "gid"), 0, ID_MAX)
    return Device(path, kind, major, minor, mode, uid, gid)


def _devices(value, where, warnings):
    out, seen = [], set()
    for i, entry in enumerate(jf.array(value, where, 1024)):
        dev = _device(entry, jf.item(where, i), warnings)
        if dev.path in seen:
            jf.fail(jf.key(jf.item(where, i), "path"), f"{dev.path} is given twice")
        seen.add(dev.path)
        out.append(dev)
    out += [Device(path, "c", major, minor) for path, major, minor in DEFAULT_DEVICES
            if path not in seen]
    return out


def _resources(value, where, warnings):
    jf.obj(value, where)
    jf.unknown_keys(value, RESOURCES, where, warnings)
    for name, kind in RESOURCES.items():
        member = value.get(name)
        if member is None:
            continue
        if kind is list:
            jf.array(member, jf.key(where, name), 1024)
        else:
            jf.obj(member, jf.key(where, name))
    if value.get("unified") is not None:
        jf.string_map(value["unified"], jf.key(where, "unified"), 1024)
    return value


def _sysctls(value, where, namespaces):
    out = []
    jf.string_map(value, where, 1024)
    network = "bridge" if "network" in namespaces else "host"
    for k, v in value.items():
        at = jf.map_key(where, k)
        if "=" in k:
            jf.fail(at, "a sysctl name has no '='")
        try:
            entry = security.parse_sysctl(f"{k}={v}", network)
        except InvalidArgument as e:
            jf.fail(at, str(e))
        ipc = k in security.IPC_SYSCTLS or k.startswith("fs.mqueue.")
        if ipc and "ipc" not in namespaces:
            jf.fail(at, "needs an ipc namespace: it would change the host's")
        out.append(entry)
    return out


def _paths(value, where):
    return [jf.abs_path(p, jf.item(where, i)) for i, p in enumerate(jf.array(value, where))]


def _not_applied(value, where, warnings, why):
    if value is not None:
        jf.obj(value, where)
        warnings.append(f"{where} is not applied: {why}")


def _linux(value, namespaces_out, warnings):
    where = f"{DOC}: linux"
    value = {} if value is None else jf.obj(value, where)
    jf.unknown_keys(value, LINUX_KEYS, where, warnings)

    def at(name):
        return jf.key(where, name)

    out = {}
    namespaces = _namespaces(jf.member(value, "namespaces", []), at("namespaces"))
    namespaces_out.update(namespaces)
    for name, field in (("uid_mappings", "uidMappings"), ("gid_mappings", "gidMappings")):
        out[name] = _id_mappings(jf.member(value, field, []), at(field))
    mapped = out["uid_mappings"] or out["gid_mappings"]
    if "user" in namespaces and namespaces["user"] is None:
        if not (out["uid_mappings"] and out["gid_mappings"]):
            jf.fail(at("namespaces"), "a new user namespace needs linux.uidMappings and"
                                      " linux.gidMappings")
    elif "user" in namespaces and mapped:
        warnings.append(f"{at('uidMappings')} is not applied: the user namespace is joined"
                        f" ({namespaces['user']})")
    elif mapped:
        jf.fail(at("uidMappings"), "id mappings need a user namespace in linux.namespaces")
    out["sysctls"] = _sysctls(jf.member(value, "sysctl", {}), at("sysctl"), namespaces)
    resources = value.get("resources")
    out["resources"] = {} if resources is None else _resources(resources, at("resources"),
                                                               warnings)
    cgroups_path = value.get("cgroupsPath")
    out["cgroups_path"] = (None if cgroups_path is None else
                           jf.string(cgroups_path, at("cgroupsPath"), jf.PATH_MAX))
    out["devices"] = _devices(jf.member(value, "devices", []), at("devices"), warnings)
    seccomp = value.get("seccomp")
    if seccomp is not None:
        ocisec.parse_seccomp(seccomp, at("seccomp"), warnings)   # checked now, compiled later
    out["seccomp"] = seccomp
    prop = value.get("rootfsPropagation")
    out["rootfs_propagation"] = 0 if prop is None else mountopts.propagation(
        prop, at("rootfsPropagation"))
    out["masked"] = _paths(jf.member(value, "maskedPaths", []), at("maskedPaths"))
    out["readonly"] = _paths(jf.member(value, "readonlyPaths", []), at("readonlyPaths"))
    not_applied_label(jf.member(value, "mountLabel", ""), at("mountLabel"), warnings,
                      "SELinux")
    _not_applied(value.get("intelRdt"), at("intelRdt"), warnings,
                 "bocker-oci has no Intel RDT support")
    _not_applied(value.get("personality"), at("personality"), warnings,
                 "bocker-oci sets no personality")
    _not_applied(value.get("timeOffsets"), at("timeOffsets"), warnings,
                 "bocker-oci sets no time namespace offsets")
    return out


def _name(value, where, namespaces, key):
    if value is None:
        return None
    jf.string(value, where, MAX_HOSTNAME)
    if value and "uts" not in namespaces:
        jf.fail(where, f"setting the {key} needs a uts namespace: it would change the host's")
    return value or None


def parse(config, bundle):
    """A decoded config.json (a dict) of the bundle directory `bundle`
    -> Bundle; InvalidArgument, one line naming the field, if malformed."""
    jf.obj(config, DOC)
    warnings = []
    for k in sorted(set(config) - set(TOP_KEYS)):
        warnings.append(f"{DOC}: unknown member {k[:60]!r} is not applied")
    version = config.get("ociVersion")
    if version is None:
        jf.fail(f"{DOC}: ociVersion", "is required")
    jf.string(version, f"{DOC}: ociVersion", 80)
    if not _VERSION.match(version):
        jf.fail(f"{DOC}: ociVersion", f"{version[:40]!r} is not a 1.x.y version")
    for k, platform in OTHER_PLATFORMS.items():
        if config.get(k) is not None:
            jf.obj(config[k], f"{DOC}: {k}")
            warnings.append(f"{DOC}: {k} is not applied: it is for {platform}")
    rootfs, readonly_root = _root(config.get("root"), bundle)
    namespaces = {}
    linux = _linux(config.get("linux"), namespaces, warnings)
    process = config.get("process")
    if process is not None:
        process = parse_process(process)
    mounts = jf.array(jf.member(config, "mounts", []), f"{DOC}: mounts")
    mounts = [_mount(m, jf.item(f"{DOC}: mounts", i), bundle, warnings)
              for i, m in enumerate(mounts)]
    hooks = config.get("hooks")
    hooks = ({name: [] for name in HOOKS} if hooks is None else
             _hooks(hooks, f"{DOC}: hooks", warnings))
    annotations = config.get("annotations")
    annotations = {} if annotations is None else jf.string_map(annotations,
                                                               f"{DOC}: annotations")
    return Bundle(path=bundle, config=config, rootfs=rootfs, readonly_root=readonly_root,
                  process=process,
                  hostname=_name(config.get("hostname"), f"{DOC}: hostname", namespaces,
                                 "hostname"),
                  domainname=_name(config.get("domainname"), f"{DOC}: domainname", namespaces,
                                   "domainname"),
                  mounts=mounts, namespaces=namespaces, hooks=hooks, annotations=annotations,
                  warnings=warnings, **linux)
