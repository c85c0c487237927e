"""bocker-oci's config.json parser without root: the configs runc, the
runtime-tools generator, podman 4.3 and containerd 1.6 write load; every
field is checked with a one-line error naming it; every member bocker
does not apply is a warning; mount options read as runc reads them; OCI
seccomp compiles through confine's compiler (libseccomp runs as any
user); and arbitrary JSON anywhere gives a Bundle or InvalidArgument,
never another exception."""
import copy
import json
import os
import re
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bocker.confine import capabilities, seccomp
from bocker.errors import InvalidArgument
from bocker.oci import config, mountopts, ocisec, process
from bocker.oci.mountopts import (MS_BIND, MS_NOATIME, MS_NODEV, MS_NOEXEC, MS_NOSUID,
                                  MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_SHARED,
                                  MS_SLAVE, MS_STRICTATIME, MS_UNBINDABLE)

FIXTURES = os.path.join(os.path.dirname(__file__), "oci_configs")
SHAPES = sorted(f for f in os.listdir(FIXTURES) if f.endswith(".json"))
ERRNO = seccomp.ACTIONS["SCMP_ACT_ERRNO"]
ALLOW = seccomp.ACTIONS["SCMP_ACT_ALLOW"]


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


@pytest.fixture
def bundle(tmp_path):
    """A bundle directory with an empty rootfs/."""
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def write(bundle, cfg):
    """Write cfg as the bundle's config.json and load it."""
    (bundle / "config.json").write_text(json.dumps(cfg))
    return config.load(str(bundle))


def minimal(**extra):
    """The smallest config that loads, plus extra top-level members."""
    cfg = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
           "process": {"args": ["sh"], "cwd": "/"}}
    cfg.update(extra)
    return cfg


def with_linux(**linux):
    return minimal(linux=linux)


def parse(bundle, cfg):
    return config.parse(cfg, str(bundle))


def refused(bundle, cfg):
    """The one-line message parse() refuses cfg with."""
    with pytest.raises(InvalidArgument) as e:
        parse(bundle, cfg)
    message = str(e.value)
    assert "\n" not in message
    return message


def shaped(name, bundle):
    """A fixture config whose root.path names the bundle's rootfs."""
    cfg = fixture(name)
    if os.path.isabs(cfg["root"]["path"]):
        cfg["root"]["path"] = str(bundle / "rootfs")
    return cfg


# ------------------------------------------------------------------ real shapes

@pytest.mark.parametrize("name", SHAPES)
def test_real_shapes_load_without_warnings(name, bundle):
    b = write(bundle, shaped(name, bundle))
    assert b.rootfs == os.path.realpath(bundle / "rootfs")
    assert b.path == str(bundle)
    assert b.warnings == [] and b.process.warnings == []
    assert b.process.args and b.process.cwd == "/"
    assert [m.target for m in b.mounts][:1] == ["/proc"]
    assert "mount" in b.namespaces and "pid" in b.namespaces
    assert {d.path for d in b.devices} >= {"/dev/null", "/dev/zero", "/dev/full", "/dev/tty",
                                           "/dev/random", "/dev/urandom"}


def test_runc_spec(bundle):
    b = write(bundle, fixture("runc-1.1-spec.json"))
    assert b.readonly_root and b.hostname == "runc" and b.process.terminal
    three = capabilities.mask(["AUDIT_WRITE", "KILL", "NET_BIND_SERVICE"])
    assert b.process.caps == dict(bounding=three, effective=three, permitted=three,
                                  ambient=three, inheritable=0)
    assert b.process.rlimits == [(7, 1024, 1024)] and b.process.no_new_privs
    assert b.namespaces == dict.fromkeys(["pid", "network", "ipc", "uts", "mount"])
    dev = b.mounts[1]
    assert (dev.kind, dev.source, dev.target, dev.fstype) == ("fs", "tmpfs", "/dev", "tmpfs")
    assert dev.flags == MS_NOSUID | MS_STRICTATIME and dev.data == "mode=755,size=65536k"
    cg = b.mounts[-1]
    assert cg.kind == "cgroup" and cg.flags == MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME \
        | MS_RDONLY
    assert "/proc/kcore" in b.masked and "/proc/sys" in b.readonly
    assert b.resources == {"devices": [{"allow": False, "access": "rwm"}]}
    assert b.hooks == {name: [] for name in config.HOOKS}
    assert b.seccomp is None and b.sysctls == [] and b.rootfs_propagation == 0


def test_runc_rootless_spec(bundle):
    b = write(bundle, fixture("runc-1.1-spec-rootless.json"))
    assert "user" in b.namespaces and "network" not in b.namespaces
    assert b.uid_mappings == [(0, 0, 1)] and b.gid_mappings == [(0, 0, 1)]
    sys = [m for m in b.mounts if m.target == "/sys"][0]
    assert (sys.kind, sys.source, sys.recursive, sys.fstype) == ("bind", "/sys", True, None)
    assert sys.flags == MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY


def test_podman_shape(bundle):
    b = write(bundle, shaped("podman-4.3.json", bundle))
    p = b.process
    assert (p.uid, p.gid, p.umask, p.oom_score_adj) == (0, 0, 0o22, 0)
    assert p.gids == [0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27]
    assert p.rlimits == [(7, 1048576, 1048576), (6, 4194304, 4194304)]
    assert p.caps["inheritable"] == 0 and p.caps["ambient"] == 0
    assert p.caps["bounding"] == capabilities.mask(
        "CHOWN DAC_OVERRIDE FOWNER FSETID KILL NET_BIND_SERVICE SETFCAP SETGID SETPCAP SETUID"
        " SYS_CHROOT".split())
    assert b.namespaces["network"].startswith("/run/netns/") and b.namespaces["pid"] is None
    hosts = [m for m in b.mounts if m.target == "/etc/hosts"][0]
    assert hosts.kind == "bind" and hosts.source.endswith("/userdata/hosts")
    assert not hosts.recursive and hosts.propagation == MS_PRIVATE | MS_REC
    shm = [m for m in b.mounts if m.target == "/dev/shm"][0]
    assert shm.flags == MS_NOSUID | MS_NOEXEC | MS_NODEV
    assert b.sysctls == ["net.ipv4.ping_group_range=0 0"]
    assert b.cgroups_path.startswith("machine.slice:libpod:")
    assert b.annotations["io.container.manager"] == "libpod"
    assert b.seccomp["defaultErrnoRet"] == 38


def test_containerd_shape(bundle):
    b = write(bundle, fixture("containerd-1.6.json"))
    assert b.hostname is None and b.cgroups_path == "/default/test1"
    assert b.process.no_new_privs and b.process.gids[:2] == [0, 1]
    assert [m.target for m in b.mounts][-1] == "/run"
    assert "/sys/devices/virtual/powercap" in b.masked


@pytest.mark.parametrize("rootless", [False, True])
def test_default_spec_loads(bundle, rootless):
    spec = config.default_spec(rootless=rootless)
    b = write(bundle, spec)
    assert b.process.args == ["sh"] and b.process.terminal and b.readonly_root
    assert b.warnings == []
    # nor does the runtime cut a set of it (ambient caps need inheritable ones)
    from bocker.oci import caps
    assert caps.raisable(b.process.caps)["ambient"] == b.process.caps["ambient"] == 0
    kinds = ["pid", "ipc", "uts", "mount", "cgroup"] + (["user"] if rootless else ["network"])
    assert sorted(b.namespaces) == sorted(kinds)
    if rootless:
        assert b.uid_mappings == [(0, os.getuid(), 1)]
        assert all("gid=5" not in (m.data or "") for m in b.mounts)
    assert config.default_spec() == config.default_spec()   # a fresh dict each time
    assert config.default_spec() is not config.default_spec()


# ------------------------------------------------------------------ reading the file

def test_config_must_be_a_regular_file(bundle, tmp_path):
    (tmp_path / "elsewhere.json").write_text(json.dumps(minimal()))
    os.symlink(tmp_path / "elsewhere.json", bundle / "config.json")
    with pytest.raises(InvalidArgument, match="symbolic link"):
        config.load(str(bundle))
    os.unlink(bundle / "config.json")
    os.mkfifo(bundle / "config.json")    # open must not block on it
    with pytest.raises(InvalidArgument, match="not a regular file"):
        config.load(str(bundle))
    os.unlink(bundle / "config.json")
    with pytest.raises(InvalidArgument, match="No such file"):
        config.load(str(bundle))
    with pytest.raises(InvalidArgument, match="not a directory"):
        config.load(str(bundle / "nothing"))


def test_config_size_bound(bundle):
    big = minimal(annotations={"a": "x" * (config.MAX_CONFIG_BYTES + 1)})
    with pytest.raises(InvalidArgument, match="larger than"):
        write(bundle, big)


@pytest.mark.parametrize("text, match", [
    ("[]", "must be a JSON object"), ("", "not valid JSON"), ("{", "not valid JSON"),
    ("\xff", "not valid JSON"), ("[" * 100000, "not valid JSON"), ("1e999", "JSON object"),
])
def test_config_must_be_a_json_object(bundle, text, match):
    (bundle / "config.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(InvalidArgument, match=match):
        config.load(str(bundle))


# ------------------------------------------------------------------ top level

@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0+dirty", "1.0.0-rc5"])
def test_versions_accepted(bundle, version):
    assert parse(bundle, minimal(ociVersion=version))


@pytest.mark.parametrize("version, match", [
    ("2.0.0", "not a 1.x.y"), ("1.0", "not a 1.x.y"), ("0.9.9", "not a 1.x.y"),
    (1.0, "must be a string"), (None, "is required"), ("1.0.0\n", "not a 1.x.y"),
])
def test_versions_refused(bundle, version, match):
    msg = refused(bundle, minimal(ociVersion=version))
    assert msg.startswith("config.json: ociVersion: ") and match in msg


def test_root(bundle, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    os.symlink(other, bundle / "link")
    assert parse(bundle, minimal(root={"path": "link"})).rootfs == str(other)   # realpath'd
    assert parse(bundle, minimal(root={"path": str(other)})).rootfs == str(other)
    (bundle / "file").write_text("")
    assert "is not a directory" in refused(bundle, minimal(root={"path": "file"}))
    assert "No such file" in refused(bundle, minimal(root={"path": "nope"}))
    assert "is the host's /" in refused(bundle, minimal(root={"path": "/usr/.."}))
    assert refused(bundle, minimal(root=None)) == "config.json: root: is required"
    assert refused(bundle, minimal(root={})) == "config.json: root.path: is required"
    assert refused(bundle, minimal(root={"path": "rootfs", "readonly": 1})) == \
        "config.json: root.readonly: must be true or false"


def test_the_error_names_the_field(bundle):
    cfg = fixture("runc-1.1-spec.json")
    cfg["mounts"][3]["destination"] = 5
    assert refused(bundle, cfg) == "config.json: mounts[3].destination: must be a string"
    cfg = fixture("runc-1.1-spec.json")
    cfg["process"]["capabilities"]["ambient"][1] = None
    assert refused(bundle, cfg) == \
        "config.json: process.capabilities.ambient[1]: must be a string"
    cfg = fixture("runc-1.1-spec.json")
    cfg["linux"]["maskedPaths"][2] = "proc/kcore"
    assert refused(bundle, cfg).startswith("config.json: linux.maskedPaths[2]: must be an"
                                           " absolute path")


def test_strings_without_nul_and_valid(bundle):
    assert "NUL" in refused(bundle, minimal(hostname="a\0b", linux={"namespaces": [
        {"type": "uts"}]}))
    assert "UTF-8" in refused(bundle, minimal(process={"args": ["\ud800"], "cwd": "/"}))


def test_unknown_and_foreign_members_are_warnings(bundle):
    cfg = minimal(solaris={}, windows={"layerFolders": []}, vm={}, zos={}, extra=1)
    cfg["linux"] = {"newThing": {}}
    warnings = parse(bundle, cfg).warnings
    assert "config.json: unknown member 'extra' is not applied" in warnings
    assert "config.json: linux: unknown member 'newThing' is not applied" in warnings
    for k, platform in (("solaris", "Solaris"), ("windows", "Windows"), ("zos", "z/OS"),
                        ("vm", "virtual machines")):
        assert f"config.json: {k} is not applied: it is for {platform}" in warnings


@pytest.mark.parametrize("member, value", [
    ("intelRdt", {"closID": "x"}), ("personality", {"domain": "LINUX32"}),
    ("timeOffsets", {"monotonic": {"secs": 1}}),
])
def test_linux_members_not_applied(bundle, member, value):
    warnings = parse(bundle, with_linux(**{member: value})).warnings
    assert len(warnings) == 1 and warnings[0].startswith(f"config.json: linux.{member} is not"
                                                         f" applied")
    assert "must be an object" in refused(bundle, with_linux(**{member: []}))


@pytest.mark.parametrize("lsm, present, where", [
    ("AppArmor", False, "process.apparmorProfile"), ("AppArmor", True, "process.apparmorProfile"),
    ("SELinux", False, "process.selinuxLabel"), ("SELinux", True, "linux.mountLabel"),
])
def test_lsm_labels_are_warnings(bundle, monkeypatch, lsm, present, where):
    monkeypatch.setattr(process, "host_has_apparmor", lambda: present)
    monkeypatch.setattr(process, "host_has_selinux", lambda: present)
    cfg = minimal()
    section, name = where.split(".")
    cfg.setdefault(section, {})[name] = "some_label"
    b = parse(bundle, cfg)
    got = b.warnings + b.process.warnings
    why = f"bocker-oci applies no {lsm} labels" if present else f"this host has no {lsm}"
    assert got == [f"config.json: {where} 'some_label' is not applied: {why}"]
    cfg[section][name] = ""                    # empty: nothing asked, nothing said
    b = parse(bundle, cfg)
    assert b.warnings + b.process.warnings == []


def test_this_hosts_lsms_are_read_from_the_kernel():
    assert process.host_has_apparmor() == os.path.isdir("/sys/kernel/security/apparmor")
    assert process.host_has_selinux() == os.path.isdir("/sys/fs/selinux")


def test_hostname_needs_uts(bundle):
    assert refused(bundle, minimal(hostname="x")) == \
        "config.json: hostname: setting the hostname needs a uts namespace: it would change" \
        " the host's"
    ok = minimal(hostname="x", domainname="d", linux={"namespaces": [{"type": "uts"}]})
    b = parse(bundle, ok)
    assert (b.hostname, b.domainname) == ("x", "d")
    assert "longer than 64" in refused(bundle, minimal(hostname="x" * 65, linux={
        "namespaces": [{"type": "uts"}]}))


def test_annotations(bundle):
    assert parse(bundle, minimal(annotations={"a.b": "c"})).annotations == {"a.b": "c"}
    assert refused(bundle, minimal(annotations={"a": 1})) == \
        "config.json: annotations['a']: must be a string"
    assert refused(bundle, minimal(annotations=[])) == \
        "config.json: annotations: must be an object"


# ------------------------------------------------------------------ namespaces and ids

def test_namespaces(bundle):
    b = parse(bundle, with_linux(namespaces=[{"type": "pid"}, {"type": "network",
                                                                "path": "/proc/1/ns/net"},
                                             {"type": "time"}, {"type": "cgroup", "path": ""}]))
    assert b.namespaces == {"pid": None, "network": "/proc/1/ns/net", "time": None,
                            "cgroup": None}
    assert "given twice" in refused(bundle, with_linux(namespaces=[{"type": "pid"},
                                                                   {"type": "pid"}]))
    assert refused(bundle, with_linux(namespaces=[{"type": "pidx"}])).startswith(
        "config.json: linux.namespaces[0].type: 'pidx' is not one of")
    assert "absolute" in refused(bundle, with_linux(namespaces=[{"type": "ipc",
                                                                 "path": "ns/ipc"}]))


def test_user_namespace_needs_mappings(bundle):
    maps = {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}
    b = parse(bundle, with_linux(namespaces=[{"type": "user"}], **maps))
    assert b.uid_mappings == [(0, 100000, 65536)] == b.gid_mappings
    assert "needs linux.uidMappings" in refused(bundle, with_linux(namespaces=[
        {"type": "user"}], uidMappings=maps["uidMappings"]))
    assert "need a user namespace" in refused(bundle, with_linux(**maps))
    joined = parse(bundle, with_linux(namespaces=[{"type": "user", "path": "/proc/1/ns/user"}],
                                      **maps))
    assert "the user namespace is joined" in joined.warnings[0]
    assert parse(bundle, with_linux(namespaces=[{"type": "user", "path": "/proc/1/ns/user"}]))


@pytest.mark.parametrize("entry, match", [
    ({"containerID": 0, "hostID": 0, "size": 0}, "size: must be an integer from 1"),
    ({"containerID": -1, "hostID": 0, "size": 1}, "containerID: must be an integer"),
    ({"containerID": 0, "hostID": 4294967290, "size": 10}, "past the last id"),
    ({"containerID": 0, "hostID": 0}, "size: must be an integer"),
    ({"containerID": 0, "hostID": 0, "size": 1.5}, "size: must be an integer"),
])
def test_id_mapping_ranges(bundle, entry, match):
    cfg = with_linux(namespaces=[{"type": "user"}], uidMappings=[entry],
                     gidMappings=[{"containerID": 0, "hostID": 0, "size": 1}])
    msg = refused(bundle, cfg)
    assert msg.startswith("config.json: linux.uidMappings[0]") and match in msg


# ------------------------------------------------------------------ sysctl, paths, devices

def test_sysctls(bundle):
    ns = [{"type": "network"}, {"type": "ipc"}]
    b = parse(bundle, with_linux(namespaces=ns, sysctl={"net.ipv4.ip_forward": "1",
                                                        "kernel.shmmax": "1024"}))
    assert b.sysctls == ["net.ipv4.ip_forward=1", "kernel.shmmax=1024"]
    assert "not namespaced" in refused(bundle, with_linux(namespaces=ns, sysctl={
        "kernel.core_pattern": "|/x"}))
    assert "the host's network" in refused(bundle, with_linux(sysctl={
        "net.ipv4.ip_forward": "1"}))
    assert "needs an ipc namespace" in refused(bundle, with_linux(sysctl={
        "kernel.shmmax": "1"}))
    assert "no '='" in refused(bundle, with_linux(namespaces=ns, sysctl={
        "net.ipv4.ip_forward=0,net.x": "1"}))


def test_devices(bundle):
    b = parse(bundle, with_linux(devices=[
        {"path": "/dev/test1", "type": "c", "major": 10, "minor": 666, "fileMode": 432,
         "uid": 0, "gid": 0},
        {"path": "/dev/test2", "type": "b", "major": 8, "minor": 666, "fileMode": 0o20660},
        {"path": "/dev/test3", "type": "p", "major": 8, "minor": 666},
        {"path": "/dev/../dev/fuse", "type": "u", "major": 10, "minor": 229, "uid": 5, "gid": 6},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600},
    ]))
    got = {d.path: (d.kind, d.major, d.minor, d.mode, d.uid, d.gid) for d in b.devices}
    assert got["/dev/test1"] == ("c", 10, 666, 0o660, 0, 0)
    assert got["/dev/test2"] == ("b", 8, 666, 0o660, 0, 0)       # the type bits dropped
    assert got["/dev/test3"] == ("p", 0, 0, 0o666, 0, 0)         # a FIFO has no numbers
    assert got["/dev/fuse"] == ("c", 10, 229, 0o666, 5, 6)
    assert got["/dev/null"] == ("c", 1, 3, 0o600, 0, 0)          # the config's wins
    assert got["/dev/zero"] == ("c", 1, 5, 0o666, 0, 0)          # the spec's defaults
    assert len(b.devices) == 10
    for attr in ("path", "kind", "major", "minor", "mode", "uid", "gid"):
        assert hasattr(b.devices[0], attr)


@pytest.mark.parametrize("dev, match", [
    ({"path": "/dev/x", "type": "x", "major": 1, "minor": 1}, "type: 'x' is not one of"),
    ({"path": "dev/x", "type": "c", "major": 1, "minor": 1}, "path: must be an absolute"),
    ({"path": "/dev/x", "type": "c", "minor": 1}, "major: is required"),
    ({"path": "/dev/x", "type": "c", "major": 4096, "minor": 1}, "major: must be an integer"),
    ({"path": "/dev/x", "type": "c", "major": 1, "minor": 1 << 20}, "minor: must be an integer"),
    ({"path": "/dev/x", "type": "c", "major": 1, "minor": 1, "uid": -1}, "uid: must be"),
    ({"path": "/dev/x", "type": "c", "major": 1, "minor": 1, "fileMode": "0666"}, "fileMode"),
    ({"path": "/", "type": "c", "major": 1, "minor": 1}, "not a device path"),
])
def test_devices_refused(bundle, dev, match):
    msg = refused(bundle, with_linux(devices=[dev]))
    assert msg.startswith("config.json: linux.devices[0]") and match in msg


def test_device_members_not_applied(bundle):
    b = parse(bundle, with_linux(devices=[{"path": "/dev/x", "type": "c", "major": 1,
                                           "minor": 1, "access": "rwm"}]))
    assert b.warnings == ["config.json: linux.devices[0]: unknown member 'access' is not"
                          " applied"]


def test_duplicate_devices_refused(bundle):
    dev = {"path": "/dev/x", "type": "c", "major": 1, "minor": 1}
    assert "given twice" in refused(bundle, with_linux(devices=[dev, dev]))


def test_resources_top_level_checked_raw_kept(bundle):
    res = {"memory": {"limit": 1 << 20}, "pids": {"limit": 10}, "unified": {"io.weight": "10"},
           "devices": [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}
    b = parse(bundle, with_linux(resources=res))
    assert b.resources == res and b.warnings == []
    assert refused(bundle, with_linux(resources={"memory": []})) == \
        "config.json: linux.resources.memory: must be an object"
    assert refused(bundle, with_linux(resources={"unified": {"a": 1}})) == \
        "config.json: linux.resources.unified['a']: must be a string"
    b = parse(bundle, with_linux(resources={"quantum": {}}))
    assert b.warnings == ["config.json: linux.resources: unknown member 'quantum' is not applied"]


def test_rootfs_propagation_and_cgroups_path(bundle):
    for name, flags in mountopts.PROPAGATION.items():
        assert parse(bundle, with_linux(rootfsPropagation=name)).rootfs_propagation == flags
    assert parse(bundle, with_linux(rootfsPropagation="")).rootfs_propagation == 0
    assert "is not one of" in refused(bundle, with_linux(rootfsPropagation="recursive"))
    assert parse(bundle, with_linux(cgroupsPath="/a/b")).cgroups_path == "/a/b"
    assert parse(bundle, minimal()).cgroups_path is None
    assert "must be a string" in refused(bundle, with_linux(cgroupsPath=["a"]))


# ------------------------------------------------------------------ hooks

def test_hooks(bundle):
    hooks = {"prestart": [{"path": "/bin/true", "args": ["true", "x"], "env": ["A=1"],
                           "timeout": 5}],
             "poststop": [{"path": "/bin/false"}], "createRuntime": [],
             "onSunday": [{"path": "/x"}]}
    b = parse(bundle, minimal(hooks=hooks))
    (pre,) = b.hooks["prestart"]
    assert (pre.path, pre.args, pre.env, pre.timeout) == ("/bin/true", ["true", "x"], ["A=1"], 5)
    assert pre.to_json() == hooks["prestart"][0]
    assert b.hooks["poststop"][0].timeout is None and b.hooks["startContainer"] == []
    assert b.warnings == ["config.json: hooks: unknown member 'onSunday' is not applied"]
    assert "absolute" in refused(bundle, minimal(hooks={"poststart": [{"path": "true"}]}))
    assert refused(bundle, minimal(hooks={"poststart": [{"path": "/x", "timeout": 0}]})) \
        .startswith("config.json: hooks.poststart[0].timeout: must be an integer from 1")
    b = parse(bundle, minimal(hooks={"poststart": [{"path": "/x", "when": "now"}]}))
    assert b.warnings == ["config.json: hooks.poststart[0]: unknown member 'when' is not"
                          " applied"]


# ------------------------------------------------------------------ process

def test_process_fields(bundle):
    proc = {"terminal": True, "consoleSize": {"height": 24, "width": 80},
            "user": {"uid": 1000, "gid": 100, "umask": 0o027, "additionalGids": [5, 6]},
            "args": ["/bin/sh", "-c", "x"], "env": ["A=1", "B="], "cwd": "/work",
            "capabilities": {"bounding": ["CAP_SYS_ADMIN", "CAP_KILL"],
                             "effective": ["CAP_KILL"], "inheritable": []},
            "rlimits": [{"type": "RLIMIT_CORE", "soft": 0, "hard": 2 ** 64 - 1}],
            "noNewPrivileges": True, "oomScoreAdj": -1000}
    p = config.parse_process(proc)
    assert (p.args, p.env, p.cwd, p.uid, p.gid, p.gids, p.umask) == (
        ["/bin/sh", "-c", "x"], ["A=1", "B="], "/work", 1000, 100, [5, 6], 0o027)
    assert p.caps == dict(bounding=capabilities.mask(["SYS_ADMIN", "KILL"]),
                          effective=capabilities.mask(["KILL"]), inheritable=0, permitted=0,
                          ambient=0)
    assert p.rlimits == [(4, 0, 2 ** 64 - 1)]
    assert (p.no_new_privs, p.oom_score_adj, p.terminal, p.console_size) == (
        True, -1000, True, (24, 80))
    assert p.warnings == []


def test_process_defaults():
    p = config.parse_process({"args": ["sh"], "cwd": "/"})
    assert (p.uid, p.gid, p.gids, p.umask, p.rlimits, p.oom_score_adj) == (0, 0, [], None, [],
                                                                          None)
    assert (p.no_new_privs, p.terminal, p.console_size, p.env) == (False, False, (0, 0), [])
    # no capabilities object: what the kernel leaves root (everything, none inheritable)
    full = ocisec.all_caps()
    assert p.caps == dict(bounding=full, effective=full, permitted=full, inheritable=0,
                          ambient=0)
    user = config.parse_process({"args": ["sh"], "cwd": "/", "user": {"uid": 1}})
    assert user.caps == dict(bounding=full, effective=0, permitted=0, inheritable=0,
                             ambient=0)


@pytest.mark.parametrize("change, match", [
    ({"args": []}, "process.args: must name the program"),
    ({"args": None}, "process.args: is required"),
    ({"args": "sh"}, "process.args: must be an array"),
    ({"cwd": "work"}, "process.cwd: must be an absolute path"),
    ({"cwd": None}, "process.cwd: is required"),
    ({"env": ["A"]}, "process.env[0]: must be NAME=VALUE"),
    ({"env": ["=1"]}, "process.env[0]: must be NAME=VALUE"),
    ({"user": {"uid": 2 ** 32 - 1}}, "process.user.uid: must be an integer"),
    ({"user": {"gid": "0"}}, "process.user.gid: must be an integer"),
    ({"user": {"umask": 0o1000}}, "process.user.umask: must be an integer from 0 to 511"),
    ({"user": {"additionalGids": [True]}}, "process.user.additionalGids[0]: must be an int"),
    ({"rlimits": [{"type": "RLIMIT_TEST", "soft": 1, "hard": 1}]}, "unknown rlimit"),
    ({"rlimits": [{"type": "RLIMIT_CPU", "soft": 2, "hard": 1}]}, "soft limit 2 above"),
    ({"rlimits": [{"type": "RLIMIT_CPU", "soft": 1, "hard": 1}] * 2}, "given twice"),
    ({"rlimits": [{"type": "RLIMIT_CPU", "soft": 1, "hard": 2 ** 64}]}, "hard: must be"),
    ({"oomScoreAdj": 1001}, "process.oomScoreAdj: must be an integer from -1000 to 1000"),
    ({"terminal": "yes"}, "process.terminal: must be true or false"),
    ({"consoleSize": {"height": 70000}}, "process.consoleSize.height: must be"),
    ({"capabilities": {"bounding": "CAP_KILL"}}, "process.capabilities.bounding: must be an"),
    ({"noNewPrivileges": 1}, "process.noNewPrivileges: must be true or false"),
])
def test_process_refused(change, match):
    proc = {"args": ["sh"], "cwd": "/"}
    proc.update(change)
    with pytest.raises(InvalidArgument) as e:
        config.parse_process(proc)
    assert str(e.value).startswith("config.json: ") and match in str(e.value)


def test_exec_process_file_names_its_own_document():
    with pytest.raises(InvalidArgument) as e:
        config.parse_process({"args": ["sh"], "cwd": 1}, where="process.json")
    assert str(e.value) == "process.json.cwd: must be a string"


def test_process_members_not_applied(monkeypatch):
    monkeypatch.setattr(process, "host_has_apparmor", lambda: False)
    p = config.parse_process({"args": ["sh"], "cwd": "/", "scheduler": {"policy": "SCHED_RR"},
                              "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0},
                              "apparmorProfile": "p", "commandLine": "x", "sleep": 1,
                              "user": {"username": "bob"}})
    assert p.warnings == [
        "config.json: process: unknown member 'sleep' is not applied",
        "config.json: process.user.username is not applied: it is for Windows",
        "config.json: process.commandLine is not applied: it is for Windows",
        "config.json: process.apparmorProfile 'p' is not applied: this host has no AppArmor",
        "config.json: process.scheduler is not applied: bocker-oci sets no scheduling policy",
        "config.json: process.ioPriority is not applied: bocker-oci sets no I/O priority"]


def test_unknown_capabilities_are_warnings_and_skipped(monkeypatch):
    caps = ["CAP_KILL", "CAP_TEST", "cap_chown", "CAP_CHECKPOINT_RESTORE"]
    p = config.parse_process({"args": ["sh"], "cwd": "/", "capabilities": {"bounding": caps}})
    assert p.caps["bounding"] == capabilities.mask(["KILL", "CHECKPOINT_RESTORE"])
    assert p.warnings == [
        "config.json: process.capabilities.bounding[1]: unknown capability 'CAP_TEST' skipped",
        "config.json: process.capabilities.bounding[2]: unknown capability 'cap_chown' skipped"]
    monkeypatch.setattr(ocisec, "last_cap", lambda: 39)    # a 5.8 kernel
    p = config.parse_process({"args": ["sh"], "cwd": "/", "capabilities": {"bounding": caps}})
    assert p.caps["bounding"] == capabilities.mask(["KILL"])
    assert p.warnings[-1] == ("config.json: process.capabilities.bounding[3]:"
                              " CAP_CHECKPOINT_RESTORE is not known to this kernel: skipped")


def test_rlimit_names_are_confines():
    assert ocisec.RLIMITS["RLIMIT_NOFILE"] == 7 and ocisec.RLIMITS["RLIMIT_RTTIME"] == 15
    assert len(ocisec.RLIMITS) == 16


# ------------------------------------------------------------------ mounts

def mount_of(bundle, entry):
    return parse(bundle, minimal(mounts=[entry])).mounts[0]


def test_mount_destinations_normalised(bundle):
    for dest, want in (("/a/b/", "/a/b"), ("a/b", "/a/b"), ("/../../etc", "/etc"),
                       ("//x//y", "/x/y"), ("/a/./b/../c", "/a/c")):
        assert mount_of(bundle, {"destination": dest, "type": "tmpfs"}).target == want
    for dest, match in (("/", "cannot be /"), ("..", "cannot be /"), ("", "must not be empty"),
                        (None, "is required"), (["/x"], "must be a string")):
        assert match in refused(bundle, minimal(mounts=[{"destination": dest, "type": "tmpfs"}]))


def test_bind_mounts(bundle):
    m = mount_of(bundle, {"destination": "/mnt", "source": "data", "options": ["rbind", "ro"]})
    assert (m.kind, m.source, m.fstype, m.recursive, m.flags) == (
        "bind", str(bundle / "data"), None, True, MS_RDONLY)     # relative to the bundle
    m = mount_of(bundle, {"destination": "/mnt", "type": "bind", "source": "/etc"})
    assert (m.kind, m.source, m.recursive) == ("bind", "/etc", False)
    m = mount_of(bundle, {"destination": "/mnt", "type": "none", "source": "/etc",
                          "options": ["bind", "shared"]})
    assert (m.kind, m.propagation, m.flags & MS_BIND) == ("bind", MS_SHARED, 0)
    assert "source: is required for a bind" in refused(bundle, minimal(mounts=[
        {"destination": "/mnt", "type": "bind"}]))


def test_filesystem_and_cgroup_mounts(bundle):
    m = mount_of(bundle, {"destination": "/tmp", "type": "tmpfs"})
    assert (m.kind, m.source, m.fstype, m.flags, m.data) == ("fs", "none", "tmpfs", 0, None)
    m = mount_of(bundle, {"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "x"})
    assert (m.kind, m.fstype) == ("cgroup", "cgroup2")
    assert "type: is required" in refused(bundle, minimal(mounts=[{"destination": "/x"}]))
    assert "not a filesystem type" in refused(bundle, minimal(mounts=[
        {"destination": "/x", "type": "../tmpfs"}]))


def test_mount_members_not_applied(bundle):
    b = parse(bundle, minimal(mounts=[{"destination": "/x", "type": "tmpfs", "weird": 1,
                                       "options": ["tmpcopyup"],
                                       "uidMappings": [{"containerID": 0, "hostID": 1,
                                                        "size": 1}]}]))
    assert b.warnings == [
        "config.json: mounts[0]: unknown member 'weird' is not applied",
        "config.json: mounts[0].options[0] 'tmpcopyup' is not applied: bocker-oci does no"
        " copying the contents under a tmpfs up into it",
        "config.json: mounts[0].uidMappings is not applied: bocker-oci makes no idmapped mounts"]
    assert b.mounts[0].data is None


# ------------------------------------------------------------------ the mount option table

@pytest.mark.parametrize("option, flag", [
    ("ro", MS_RDONLY), ("nosuid", MS_NOSUID), ("nodev", MS_NODEV), ("noexec", MS_NOEXEC),
    ("sync", mountopts.MS_SYNCHRONOUS), ("dirsync", mountopts.MS_DIRSYNC),
    ("remount", mountopts.MS_REMOUNT), ("mand", mountopts.MS_MANDLOCK),
    ("noatime", MS_NOATIME), ("nodiratime", mountopts.MS_NODIRATIME),
    ("relatime", MS_RELATIME), ("strictatime", MS_STRICTATIME),
    ("rro", MS_RDONLY), ("rnosuid", MS_NOSUID), ("nosymfollow", mountopts.MS_NOSYMFOLLOW),
])
def test_option_sets_its_flag_and_its_opposite_clears_it(option, flag):
    opposite = {"ro": "rw", "nosuid": "suid", "nodev": "dev", "noexec": "exec", "sync": "async",
                "mand": "nomand", "noatime": "atime", "nodiratime": "diratime",
                "relatime": "norelatime", "strictatime": "nostrictatime", "rro": "rrw",
                "rnosuid": "rsuid", "nosymfollow": "symfollow"}
    got = mountopts.parse([option], "m")
    assert (got.flags, got.data, got.propagation, got.bind) == (flag, None, 0, False)
    if option in opposite:
        assert mountopts.parse([option, opposite[option]], "m").flags == 0
        assert mountopts.parse([opposite[option], option], "m").flags == flag


def test_option_table_covers_runcs_names():
    names = ("ro rw suid nosuid dev nodev exec noexec sync async dirsync remount mand nomand"
             " atime noatime diratime nodiratime relatime norelatime strictatime nostrictatime"
             " bind rbind private rprivate shared rshared slave rslave unbindable runbindable")
    for name in names.split():
        got = mountopts.parse([name], "m")
        assert got.data is None and got.warnings == [], name


@pytest.mark.parametrize("option, prop", [
    ("private", MS_PRIVATE), ("rprivate", MS_PRIVATE | MS_REC), ("shared", MS_SHARED),
    ("rshared", MS_SHARED | MS_REC), ("slave", MS_SLAVE), ("rslave", MS_SLAVE | MS_REC),
    ("unbindable", MS_UNBINDABLE), ("runbindable", MS_UNBINDABLE | MS_REC),
])
def test_propagation_options(option, prop):
    got = mountopts.parse(["nodev", option], "m")
    assert (got.propagation, got.flags) == (prop, MS_NODEV)
    assert mountopts.parse([option, "rshared"], "m").propagation == MS_SHARED | MS_REC


def test_bind_options_and_data():
    got = mountopts.parse(["bind", "ro", "mode=755", "size=1k", "", "rbind"], "m")
    assert (got.bind, got.recursive, got.flags, got.data) == (True, True, MS_RDONLY,
                                                              "mode=755,size=1k")
    assert mountopts.parse(["bind"], "m").recursive is False
    assert mountopts.parse(None, "m").flags == 0


@pytest.mark.parametrize("options, match", [
    (["ro,exec"], "m[0]: must be one option"), ("ro", "m: must be an array"),
    ([1], "m[0]: must be a string"), (["a" * 4000, "b" * 100], "longer than 4095"),
    (["ro"] * 257, "more than 256"),
])
def test_options_refused(options, match):
    with pytest.raises(InvalidArgument, match=re.escape(match)):
        mountopts.parse(options, "m")


# ------------------------------------------------------------------ seccomp

SMALL = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
         "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
         "syscalls": [{"names": ["read", "write", "exit_group", "execve"],
                       "action": "SCMP_ACT_ALLOW"},
                      {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                      {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                       "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                      {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                       "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                                 "op": "SCMP_CMP_MASKED_EQ"}]}]}


def insns(blob):
    assert blob and len(blob) % 8 == 0
    return [struct.unpack("<HBBI", blob[i:i + 8]) for i in range(0, len(blob), 8)]


def test_small_oci_profile_compiles():
    profile = ocisec.parse_seccomp(SMALL, "config.json: linux.seccomp")
    default, arches, rules, _ = seccomp.plan(profile, set(), "x86_64", "6.1.0")
    assert default == ERRNO | 38 and arches == ["x86_64", "x86"]
    assert ("mkdir", ERRNO | 13, ()) in rules and ("read", ALLOW, ()) in rules
    program = insns(config.compile_seccomp(SMALL, 0))
    returns = {k for code, _, _, k in program if code == 0x06}      # BPF_RET | BPF_K
    assert {ERRNO | 38, ERRNO | 13, ALLOW} <= returns
    assert config.compile_seccomp(None, 0) is None


@pytest.mark.parametrize("name", ["runtime-tools-default.json", "podman-4.3.json"])
def test_real_profiles_compile(name, bundle):
    b = parse(bundle, shaped(name, bundle))
    blob = config.compile_seccomp(b.seccomp, b.process.caps["bounding"])
    assert len(insns(blob)) > 50


def test_seccomp_flags_and_listener_are_warnings(bundle):
    sec = dict(SMALL, flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"],
               listenerPath="/run/seccomp.sock", listenerMetadata="x")
    b = parse(bundle, with_linux(seccomp=sec))
    assert b.warnings == [
        "config.json: linux.seccomp.flags[0] SECCOMP_FILTER_FLAG_LOG is not applied",
        "config.json: linux.seccomp.listenerPath is not applied: bocker-oci has no seccomp"
        " notify listener",
        "config.json: linux.seccomp.listenerMetadata is not applied: bocker-oci has no seccomp"
        " notify listener"]
    assert b.seccomp is sec                         # the raw object, compiled later
    b = parse(bundle, with_linux(seccomp=dict(SMALL, archMap=[])))
    assert b.warnings == ["config.json: linux.seccomp: unknown member 'archMap' is not"
                          " applied"]
    assert config.compile_seccomp(sec, 0)


@pytest.mark.parametrize("change, match", [
    ({"defaultAction": None}, "linux.seccomp: defaultAction is missing"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "defaultAction 'SCMP_ACT_NOTIFY' is not one of"),
    ({"flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}, "linux.seccomp.flags[0]: unknown flag"),
    ({"architectures": ["SCMP_ARCH_Z80"]}, "unknown architecture"),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "when": 1}]},
     "syscalls[0]: unknown key 'when'"),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]},
     "errnoRet goes only with"),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]},
     "syscalls[0].args[0].index"),
    ({"syscalls": [{"names": ["Read!"], "action": "SCMP_ACT_ALLOW"}]}, "bad entry"),
])
def test_seccomp_refused_naming_the_field(bundle, change, match):
    sec = dict(SMALL, **change)
    sec = {k: v for k, v in sec.items() if v is not None}
    msg = refused(bundle, with_linux(seccomp=sec))
    assert msg.startswith("config.json: linux.seccomp") and match in msg


# ------------------------------------------------------------------ hypothesis

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.floats(allow_nan=True), st.text(max_size=12),
    st.sampled_from(["/", "/dev/x", "rootfs", "bind", "rbind", "ro", "c", "p", "user", "pid",
                     "uts", "network", "SCMP_ACT_ERRNO", "SCMP_ACT_ALLOW", "SCMP_CMP_EQ",
                     "CAP_SYS_ADMIN", "RLIMIT_NOFILE", "1.0.2", "a=b", "net.ipv4.ip_forward",
                     "", "\0", "\ud800", "rprivate", "tmpfs", "cgroup"]),
    st.sampled_from([0, 1, -1, 6, 4095, 4096, 1 << 20, (1 << 32) - 1, 1 << 32, (1 << 64) - 1,
                     1 << 64]))
json_values = st.recursive(
    json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


def paths_of(node, prefix=()):
    """Every path (keys and indexes) into a JSON document."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths_of(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths_of(v, prefix + (i,))


def replaced(doc, path, value):
    doc = copy.deepcopy(doc)
    if not path:
        return value
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


def removed(doc, path):
    doc = copy.deepcopy(doc)
    node = doc
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return doc


BASES = {name: fixture(name) for name in SHAPES}
for _name in ("podman-4.3.json",):
    BASES[_name]["root"]["path"] = "rootfs"
BASE_PATHS = [(name, p) for name, doc in BASES.items() for p in paths_of(doc)]


def bundle_or_refusal(tmp_dir, doc):
    """parse(doc): a Bundle, or None for InvalidArgument; anything else fails the test."""
    try:
        b = config.parse(doc, tmp_dir)
    except InvalidArgument as e:
        assert "\n" not in str(e)
        return None
    assert isinstance(b, config.Bundle)
    for w in b.warnings + (b.process.warnings if b.process else []):
        assert isinstance(w, str) and "\n" not in w
    return b


@pytest.fixture(scope="module")
def hyp_bundle(tmp_path_factory):
    d = tmp_path_factory.mktemp("hyp")
    (d / "rootfs").mkdir()
    return str(d)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(BASE_PATHS), json_values)
def test_any_value_in_any_field(hyp_bundle, where, value):
    name, path = where
    b = bundle_or_refusal(hyp_bundle, replaced(BASES[name], path, value))
    if b is not None and b.seccomp is not None:
        try:
            config.compile_seccomp(b.seccomp, 0)
        except InvalidArgument:
            pass


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([(n, p) for n, p in BASE_PATHS if p]))
def test_any_field_removed(hyp_bundle, where):
    name, path = where
    bundle_or_refusal(hyp_bundle, removed(BASES[name], path))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(config.TOP_KEYS + ("extra",)), json_values, max_size=8),
       st.dictionaries(st.sampled_from(config.LINUX_KEYS), json_values, max_size=6))
def test_arbitrary_documents(hyp_bundle, top, linux):
    doc = dict(top, ociVersion="1.0.2", root={"path": "rootfs"})
    bundle_or_refusal(hyp_bundle, doc)
    bundle_or_refusal(hyp_bundle, dict(doc, linux=linux))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_process_object(value):
    for doc in (value, {"args": ["sh"], "cwd": "/", "user": value},
                {"args": ["sh"], "cwd": "/", "capabilities": value},
                {"args": ["sh"], "cwd": "/", "rlimits": value}):
        try:
            assert isinstance(config.parse_process(doc), config.Process)
        except InvalidArgument as e:
            assert "\n" not in str(e)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_file_content(hyp_bundle, data):
    path = os.path.join(hyp_bundle, "config.json")
    with open(path, "wb") as f:
        f.write(data)
    try:
        loaded = config.load(hyp_bundle)
    except InvalidArgument as e:
        assert "\n" not in str(e)   # one line
    else:
        assert isinstance(loaded, config.Bundle)
    finally:
        os.unlink(path)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(sorted(mountopts.FLAGS) + sorted(mountopts.BINDS)
                                          + sorted(mountopts.PROPAGATION)
                                          + sorted(mountopts.RECURSIVE_FLAGS)
                                          + ["mode=755", "tmpcopyup"]), json_values),
                max_size=8))
def test_any_mount_options(options):
    try:
        got = mountopts.parse(options, "m")
    except InvalidArgument:
        return
    assert got.flags & (MS_BIND | MS_REC) == 0
    assert got.data is None or "\0" not in got.data


def test_namespace_flags_are_the_kernels():
    from bocker.kernel import native

    for kind, name in (("pid", "PID"), ("network", "NET"), ("mount", "NS"), ("ipc", "IPC"),
                       ("uts", "UTS"), ("user", "USER"), ("cgroup", "CGROUP")):
        assert config.NAMESPACE_FLAGS[kind] == getattr(native, f"CLONE_NEW{name}")
    assert config.NAMESPACE_FLAGS["time"] == 0x80


def run_filtered(blob, action):
    """action() in a forked child under the BPF program blob (no root:
    no_new_privs lets any process install a filter); its exit code."""
    import ctypes

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(blob, len(blob))
    prog = Prog(len(blob) // 8, ctypes.cast(buf, ctypes.c_char_p))
    pid = os.fork()
    if pid == 0:
        code = 100
        try:
            if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(prog), 0, 0):
                os._exit(101)            # PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP FILTER
            code = action()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_compiled_oci_profile_acts_in_the_kernel(tmp_path):
    """The program made from an OCI profile does what the profile says:
    errnoRet reaches the caller, an argument condition picks calls."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 13},
                            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                             "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}]}
    blob = config.compile_seccomp(profile, 0)

    def mkdir():
        try:
            os.mkdir(tmp_path / "d")
        except OSError as e:
            return e.errno
        return 0

    def kill(sig):
        def call():
            try:
                os.kill(os.getpid(), sig)
            except OSError as e:
                return e.errno
            return 0
        return call

    assert run_filtered(blob, mkdir) == 13 and not (tmp_path / "d").exists()
    assert run_filtered(blob, kill(0)) == 1                 # signal 0: refused
    assert run_filtered(blob, kill(28)) == 0                # SIGWINCH: allowed
    assert run_filtered(config.compile_seccomp({"defaultAction": "SCMP_ACT_ALLOW"}, 0),
                        mkdir) == 0
