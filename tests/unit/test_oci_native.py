"""native.Oci, the shim's OCI mode as Python sees it (no root, no clone):
its defaults, the refusals before clone (Python's and the shim's own),
how a failed step names its object, the reports of a ready child, and
(hypothesis) any hostile Oci refused in one line or filled exactly."""
import errno
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bocker.errors import RunRefused
from bocker.kernel import native


def test_defaults():
    oci = native.Oci()
    assert (oci.mounts, oci.devices, oci.masked, oci.readonly, oci.gids, oci.join_ns) == (
        [], [], [], [], [], [])
    assert oci.caps == dict.fromkeys(native.CAP_SETS, 0)
    assert (oci.default_links, oci.umask, oci.no_new_privs, oci.rootfs_propagation,
            oci.domainname, oci.pidns_fd, oci.ready, oci.preserve_fds, oci.no_pivot) == (
        True, None, False, 0, None, -1, False, 0, False)
    assert native.Oci(caps={"ambient": 4}).caps["ambient"] == 4


def _spawn(oci):
    native.spawn("/nonexistent", ["true"], [], oci=oci)


@pytest.mark.parametrize("field, make", [
    ("mounts", lambda i: native.OciMount("tmpfs", f"/t{i}", "tmpfs")),
    ("devices", lambda i: native.OciDevice(f"/dev/d{i}", "c", 1, 3)),
    ("masked", lambda i: f"/proc/m{i}"),
    ("readonly", lambda i: f"/proc/r{i}"),
    ("gids", lambda i: i),
    ("join_ns", lambda i: (0, native.CLONE_NEWNET)),
])
def test_too_long_lists_are_refused_before_clone(field, make):
    limit = native.OCI_LIMITS[field]
    oci = native.Oci(**{field: [make(i) for i in range(limit)]})
    assert native._oci_refusal(oci) is None  # at the limit: no clone here, though
    setattr(oci, field, [make(i) for i in range(limit + 1)])
    with pytest.raises(RunRefused, match=f"too many .*: {limit + 1}, at most {limit}"):
        _spawn(oci)


@pytest.mark.parametrize("oci, message", [
    (native.Oci(join_ns=[(3, native.CLONE_NEWPID)]), "pidns_fd"),
    (native.Oci(join_ns=[(3, 0x1)]), "unknown namespace type"),
    (native.Oci(devices=[native.OciDevice("/dev/x", "s")]), "unknown type 's'"),
    (native.Oci(caps={"bogus": 1}), "unknown capability set 'bogus'"),
    (native.Oci(preserve_fds=-1), "preserve_fds"),
    (native.Oci(mounts=[native.OciMount("tmpfs", "run", "tmpfs")]),
     "mount target must be an absolute path: 'run'"),
    (native.Oci(mounts=[native.OciMount("data", "/data")]),
     "bind source must be an absolute path: 'data'"),
    (native.Oci(mounts=[native.OciMount(None, "/data")]), "bind source must be an absolute"),
    (native.Oci(devices=[native.OciDevice("dev/x")]), "device must be an absolute"),
    (native.Oci(masked=["proc/kcore"]), "masked path must be an absolute"),
    (native.Oci(readonly=[""]), "read-only path must be an absolute"),
    (native.Oci(masked=["/proc/a\0b"]), "NUL byte"),
    (native.Oci(domainname="a\0"), "NUL byte"),
    (native.Oci(mounts=[native.OciMount("tmpfs", "/\ud800", "tmpfs")]), "is not valid UTF-8"),
    (native.Oci(masked=["/proc/\udcff"]), "is not valid UTF-8"),
    (native.Oci(devices=[native.OciDevice("/\n", "")]), r"device '/\\n': unknown type"),
    (native.Oci(caps={"bounding": 1 << 64}), "capability mask out of range"),
    (native.Oci(caps={"ambient": -1}), "capability mask out of range"),
    (native.Oci(gids=[1 << 32]), "gid out of range"),
    (native.Oci(devices=[native.OciDevice("/dev/x", major=-1)]), "device /dev/x major out of"),
    (native.Oci(mounts=[native.OciMount("t", "/t", "tmpfs", flags=1 << 64)]), "mount flags"),
    (native.Oci(umask=0o1000), "umask out of range"),
    (native.Oci(umask="022"), "umask out of range"),
])
def test_bad_requests_are_refused(oci, message):
    with pytest.raises(RunRefused, match=message):
        _spawn(oci)


@pytest.mark.parametrize("flags, oci, kind", [
    (native.CLONE_NEWNET, native.Oci(join_ns=[(3, native.CLONE_NEWNET)]), "network"),
    (native.CLONE_NEWUSER, native.Oci(join_ns=[(3, native.CLONE_NEWUSER)]), "user"),
    (native.CLONE_NEWPID, native.Oci(pidns_fd=3), "pid"),
])
def test_a_namespace_both_joined_and_created_is_refused(flags, oci, kind):
    with pytest.raises(RunRefused, match=f"the {kind} namespace is both joined and created"):
        native.spawn("/nonexistent", ["true"], [], clone_flags=flags, oci=oci)


@pytest.mark.parametrize("options, message", [
    (dict(hostname="c"), "hostname or domainname needs a UTS namespace"),
    (dict(oci=native.Oci(domainname="d")), "hostname or domainname needs a UTS namespace"),
    (dict(sysctls=["net.ipv4.ip_forward=1"]), "sysctl net.ipv4.ip_forward needs the container's own network"),
    (dict(sysctls=["kernel.shmmax=1"], clone_flags=native.CLONE_NEWNET),
     "sysctl kernel.shmmax needs the container's own ipc namespace"),
    (dict(sysctls=["fs.mqueue.msg_max=1"]), "sysctl fs.mqueue.msg_max needs the container's own ipc"),
    (dict(sysctls=["kernel.core_pattern=|/x"], clone_flags=-1 & 0x7fffffff),
     "sysctl kernel.core_pattern is not namespaced"),
])
def test_what_would_change_the_host_is_refused(options, message):
    """As runc's validator: no hostname, domainname or sysctl written into
    a namespace the container shares with the host."""
    options.setdefault("oci", native.Oci())
    with pytest.raises(RunRefused, match=message):
        native.spawn("/nonexistent", ["true"], [], **options)


def test_a_joined_namespace_that_is_the_callers_is_not_the_containers_own():
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        oci = native.Oci(join_ns=[(fd, native.CLONE_NEWUTS)])
        with pytest.raises(RunRefused, match="UTS namespace of the container's own"):
            native.spawn("/nonexistent", ["true"], [], hostname="c", oci=oci)
        assert native._own_namespaces(oci, 0) == 0
        assert native._own_namespaces(native.Oci(join_ns=[(fd, native.CLONE_NEWNS)]), 0) == (
            native.CLONE_NEWNS)
    finally:
        os.close(fd)


def test_the_shim_refuses_too_long_oci_lists_too():
    """Past Python's check, shim_spawn itself refuses (E2BIG) before clone,
    and EINVAL for a PID namespace in join_ns."""
    out = native.ffi.new("struct shim_child *")
    for field, limit in (("n_mounts", native.lib.SHIM_OCI_MAX_MOUNTS),
                         ("n_devices", native.lib.SHIM_OCI_MAX_DEVICES),
                         ("n_masked", native.lib.SHIM_OCI_MAX_PATHS),
                         ("n_gids", native.lib.SHIM_OCI_MAX_GIDS),
                         ("n_join_ns", native.lib.SHIM_OCI_MAX_JOIN_NS)):
        oci = native.ffi.new("struct shim_oci *")
        setattr(oci, field, limit + 1)
        req = native.ffi.new("struct shim_spawn *", {"status_fd": -1, "oci": oci})
        assert native.lib.shim_spawn(req, out) == -errno.E2BIG, field
    ns = native.ffi.new("struct shim_oci_ns[]", [{"fd": 3, "nstype": native.CLONE_NEWPID}])
    oci = native.ffi.new("struct shim_oci *", {"join_ns": ns, "n_join_ns": 1})
    req = native.ffi.new("struct shim_spawn *", {"status_fd": -1, "oci": oci})
    assert native.lib.shim_spawn(req, out) == -errno.EINVAL


def _report(step, index, err=2):
    return native.Report(native.step_name(step), err, 5, index)


def test_a_failed_oci_step_names_its_object():
    oci = native.Oci(
        mounts=[native.OciMount("proc", "/proc", "proc"), native.OciMount("/srv/x", "/data")],
        devices=[native.OciDevice("/dev/fuse", "c", 10, 229)],
        masked=["/proc/kcore"], readonly=["/proc/sys"],
        join_ns=[(7, native.CLONE_NEWNET)])
    options = {"oci": oci}
    lib = native.lib
    assert native.step_object(_report(lib.STEP_OCI_MOUNTS, 1), options) == "/data"
    assert native.step_object(_report(lib.STEP_OCI_OPEN_BINDS, 1), options) == "/srv/x"
    assert native.step_object(_report(lib.STEP_OCI_OPEN_FS, 0), options) == "/proc"
    assert native.step_object(_report(lib.STEP_OCI_DEVICES, 0), options) == "/dev/fuse"
    assert native.step_object(_report(lib.STEP_OCI_OPEN_DEVICES, 0), options) == "/dev/fuse"
    assert native.step_object(_report(lib.STEP_MASK_PATHS, 0), options) == "/proc/kcore"
    assert native.step_object(_report(lib.STEP_READONLY_PATHS, 0), options) == "/proc/sys"
    assert native.step_object(_report(lib.STEP_JOIN_NS, 0), options) == "network namespace"
    # out of the list, no oci, a step over no list: nothing named
    assert native.step_object(_report(lib.STEP_OCI_MOUNTS, 2), options) is None
    assert native.step_object(_report(lib.STEP_OCI_MOUNTS, 0), {}) is None
    assert native.step_object(_report(lib.STEP_MASK_PATHS, 0), {}) is None
    assert native.step_object(_report(lib.STEP_PIVOT_ROOT, 0), options) is None


def test_a_failed_oci_step_message():
    """reports.decode puts the step and its object in one line."""
    from bocker.runtime import reports

    oci = native.Oci(mounts=[native.OciMount("tmpfs", "/run", "tmpfs")])
    err = reports.decode([_report(native.lib.STEP_OCI_MOUNTS, 0, err=errno.ELOOP)], ["sh"],
                         {"oci": oci})
    assert str(err) == f"mount /run: {os.strerror(errno.ELOOP)}"


def _read(records):
    r, w = os.pipe()
    for step, err in records:
        rec = native.ffi.new("struct shim_report *", {"step": step, "err": err, "index": -1})
        os.write(w, bytes(native.ffi.buffer(rec)))
    os.close(w)
    return [rep[:2] for rep in native.read_reports(r)]


def test_reports_of_a_ready_child_end_at_the_gate():
    """A ready child closes its pipe after "wait for parent": that is the
    last entry (created), with no "exec done" after it; a child that
    went on to execve still ends with "exec done"."""
    lib = native.lib
    assert _read([(lib.STEP_WAIT_GO, 0)]) == [("wait for parent", 0)]
    assert _read([(lib.STEP_WAIT_GO, 0), (lib.STEP_EXECVE, 0)]) == [
        ("wait for parent", 0), ("execve", 0), ("exec done", 0)]
    assert _read([(lib.STEP_EXECVE, errno.ENOENT)]) == [("execve", errno.ENOENT)]


# ------------------------------------------------- hostile values, hypothesis

def mostly(good, bad):
    """good nine times in ten, else bad: every field hostile now and then,
    and still whole requests that pass, so both branches are reached."""
    return st.integers(0, 9).flatmap(lambda n: good if n else bad)


_ints = mostly(st.integers(0, (1 << 32) - 1),
               st.one_of(st.integers(-(1 << 65), -1), st.integers(1 << 32, 1 << 65),
                         st.sampled_from([(1 << 64) - 1, 1 << 64])))
_text = st.text(st.characters(blacklist_characters="\0"), max_size=6)
_paths = mostly(_text.map(lambda t: "/" + t), st.one_of(st.none(), st.text(max_size=6)))
_strings = mostly(st.one_of(st.none(), _text), st.text(max_size=4))
_mounts = st.builds(native.OciMount, _paths, _paths,
                    st.one_of(st.none(), st.just("tmpfs"), _strings), _strings, _ints, _ints)
_devices = st.builds(native.OciDevice, _paths, mostly(st.sampled_from("cbpu"), st.text(max_size=2)),
                     _ints, _ints, _ints, _ints, _ints)
_ocis = st.builds(native.Oci, mounts=st.lists(_mounts, max_size=3),
                  devices=st.lists(_devices, max_size=2),
                  masked=st.lists(_paths, max_size=2), readonly=st.lists(_paths, max_size=2),
                  caps=st.dictionaries(mostly(st.sampled_from(native.CAP_SETS), st.text(max_size=3)),
                                       mostly(st.integers(0, (1 << 64) - 1), _ints), max_size=5),
                  gids=st.lists(_ints, max_size=3),
                  umask=mostly(st.one_of(st.none(), st.integers(0, 0o777)), _ints),
                  rootfs_propagation=_ints, domainname=_strings)


@settings(max_examples=300, deadline=None)
@given(_ocis)
def test_any_oci_is_refused_in_one_line_or_filled_exactly(oci):
    """What a config can put in an Oci either becomes a RunRefused before
    any clone, or fills struct shim_oci field for field: never another
    exception, never a value cut short."""
    keep = []
    try:
        req = native._request(keep, "/r", ["x"], [], clone_flags=native.CLONE_NEWUTS, oci=oci)
    except RunRefused as e:
        assert "\n" not in str(e)
        return
    o = req.oci
    assert o.n_mounts == len(oci.mounts) and o.n_devices == len(oci.devices)
    for i, m in enumerate(oci.mounts):
        assert native.ffi.string(o.mounts[i].target).decode() == m.target
        assert (o.mounts[i].flags, o.mounts[i].propagation) == (m.flags, m.propagation)
    for i, d in enumerate(oci.devices):
        got = o.devices[i]
        assert native.ffi.string(got.path).decode() == d.path
        assert (got.major, got.minor, got.mode, got.uid, got.gid) == (
            d.major, d.minor, d.mode, d.uid, d.gid)
    assert [native.ffi.string(o.masked[i]).decode() for i in range(o.n_masked)] == oci.masked
    assert [o.gids[i] for i in range(o.n_gids)] == oci.gids
    assert [getattr(o, f"cap_{name}") for name in native.CAP_SETS] == [
        oci.caps[name] for name in native.CAP_SETS]
    assert o.umask == (-1 if oci.umask is None else oci.umask)
