"""The shim's OCI mode (native.spawn(oci=native.Oci(...))) against the real
kernel: a config's mounts in order, devices, masked and read-only paths,
the five capability sets, groups, umask, no_new_privs, names, joined
namespaces, preserved fds and the create-time ready gate.

Each test makes a busybox rootfs in its tmp_path, spawns one child (or
two) with no cgroup, reads what the container printed and reaps it.
"""
import contextlib
import os
import select
import shutil
import stat

import pytest

from bocker.kernel import native

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REC, MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 0x4000, 1 << 17, 1 << 18, 1 << 19, 1 << 20
MS_STRICTATIME = 1 << 24

NS = native.CLONE_NEWNS | native.CLONE_NEWPID | native.CLONE_NEWUTS | native.CLONE_NEWIPC
APPLETS = ("sh", "cat", "ls", "id", "mount", "grep", "echo", "stat", "readlink", "hostname",
           "sleep", "touch", "wc", "test", "head", "tr", "umask", "mkdir", "true", "tty", "pwd")


@pytest.fixture
def rootfs(tmp_path):
    """A busybox rootfs: /bin/busybox and its applets as symlinks."""
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    for name in APPLETS:
        (root / "bin" / name).symlink_to("busybox")
    return root


def base_mounts():
    """The usual first mounts of a config: /proc, a /dev tmpfs, devpts."""
    return [
        native.OciMount("proc", "/proc", "proc", flags=MS_NOSUID | MS_NODEV | MS_NOEXEC),
        native.OciMount("tmpfs", "/dev", "tmpfs", "mode=755,size=65536k",
                        flags=MS_NOSUID | MS_STRICTATIME),
        native.OciMount("devpts", "/dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620",
                        flags=MS_NOSUID | MS_NOEXEC),
    ]


NULL_DEVICE = native.OciDevice("/dev/null", "c", 1, 3, 0o666)


def run(rootfs, script, oci, clone_flags=NS, **options):
    """Spawn `sh -c script` in OCI mode; returns (reports, output, exit code)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        child = native.spawn(str(rootfs), ["sh", "-c", script], ["PATH=/bin"], oci=oci,
                             clone_flags=clone_flags, stdio=(-1, w, w), trace=True, **options)
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    try:
        reports = native.read_reports(child.status_fd)
        with os.fdopen(r, "rb", closefd=False) as f:
            out = f.read().decode(errors="replace")
        _, status = os.waitpid(child.pid, 0)
    finally:
        os.close(r)
        os.close(child.pidfd)
    return reports, out, native.exit_code(status)


def ok(rootfs, script, oci, **options):
    """run(), asserting that the container ran and exited 0; its output."""
    reports, out, code = run(rootfs, script, oci, **options)
    assert reports[-1][:2] == ("exec done", 0), reports[-3:]
    assert code == 0, out
    return out


def mountinfo(text):
    """{mount point: (per-mount options, optional fields, fs type, super
    options, source, major:minor)} of /proc/self/mountinfo text (a dict:
    in the order the kernel lists them, which is the order they were
    made)."""
    out = {}
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 6:
            continue
        fstype, source, super_opts = (right.split() + ["", "", ""])[:3]
        out[fields[4]] = (fields[5].split(","), fields[6:], fstype, super_opts, source, fields[2])
    return out


def test_mounts_are_made_in_order_with_their_flags(rootfs, tmp_path):
    """proc, a /dev tmpfs, devpts, read-only sysfs, mqueue, a read-only bind
    of a host directory and a bind of a host file: each at its target, in
    the config's order, and none of bocker's own (/dev/shm, nodev root)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data").write_text("from the host\n")
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("a file\n")
    oci = native.Oci(mounts=base_mounts() + [
        native.OciMount("sysfs", "/sys", "sysfs", flags=MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC),
        native.OciMount("mqueue", "/dev/mqueue", "mqueue", flags=MS_NOSUID | MS_NODEV | MS_NOEXEC),
        native.OciMount(str(shared), "/mnt/shared", flags=MS_RDONLY | MS_NOSUID, recursive=True),
        native.OciMount(str(hostfile), "/etc/hostfile", flags=MS_NODEV),
    ], devices=[NULL_DEVICE])
    out = ok(rootfs, "cat /proc/self/mountinfo; echo ---; cat /mnt/shared/data /etc/hostfile;"
             " (touch /mnt/shared/x) 2>/dev/null || echo bind-ro; test -e /dev/shm || echo no-shm",
             oci, clone_flags=NS | native.CLONE_NEWNET)
    info_text, _, rest = out.partition("---\n")
    info = mountinfo(info_text)
    assert {"/proc", "/dev", "/dev/pts", "/sys", "/dev/mqueue", "/mnt/shared",
            "/etc/hostfile"} <= set(info)
    assert info["/proc"][2] == "proc" and {"nosuid", "nodev", "noexec"} <= set(info["/proc"][0])
    assert info["/dev"][2] == "tmpfs" and "nodev" not in info["/dev"][0]
    assert info["/dev/pts"][2] == "devpts"
    assert info["/sys"][2] == "sysfs" and "ro" in info["/sys"][0]
    assert info["/dev/mqueue"][2] == "mqueue"
    assert {"ro", "nosuid"} <= set(info["/mnt/shared"][0])
    assert "nodev" in info["/etc/hostfile"][0] and "ro" not in info["/etc/hostfile"][0]
    assert "nodev" not in info["/"][0]     # bocker's own containers' root is nodev
    assert rest.splitlines() == ["from the host", "a file", "bind-ro", "no-shm"]
    assert not (shared / "x").exists()
    # mountinfo lists them in the config's order (runtime-tools checks it):
    # binds cloned before pivot_root are cloned again when attached
    wanted = [m.target for m in oci.mounts]
    assert [p for p in info if p in wanted] == wanted


@pytest.mark.parametrize("bind_first", [True, False])
def test_mounts_follow_the_config_order(rootfs, tmp_path, bind_first):
    """Binds (cloned before pivot_root) and new mounts are attached in one
    sequence, the config's: of two at one target the later is seen, and a
    bind into an earlier tmpfs lands on that tmpfs."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "from-bind").write_text("")
    stack = [native.OciMount(str(src), "/mnt/s"), native.OciMount("tmpfs", "/mnt/s", "tmpfs")]
    oci = native.Oci(mounts=base_mounts() + (stack if bind_first else stack[::-1]) + [
        native.OciMount("tmpfs", "/mnt/t", "tmpfs"), native.OciMount(str(src), "/mnt/t/in")])
    out = ok(rootfs, "ls /mnt/s; echo -; ls /mnt/t/in; grep -c ' /mnt/t/in ' /proc/self/mountinfo",
             oci)
    assert out.split() == (["-"] if bind_first else ["from-bind", "-"]) + ["from-bind", "1"]
    assert not (rootfs / "mnt" / "t" / "in").exists()  # made on the tmpfs, not the rootfs


def test_a_later_mount_sits_on_an_earlier_one(rootfs):
    """/dev/pts's parent mount is the /dev tmpfs mounted before it."""
    out = ok(rootfs, "cat /proc/self/mountinfo", native.Oci(mounts=base_mounts()))
    ids = {line.split()[4]: (line.split()[0], line.split()[1]) for line in out.splitlines()}
    assert ids["/dev/pts"][1] == ids["/dev"][0]


def test_bind_target_through_an_absolute_symlink_stays_inside(rootfs, tmp_path):
    """An image's absolute symlink /evil -> /etc makes a mount target
    /evil/...: it is resolved inside the container (its own /etc), never
    the host's /etc, for a file target, a directory target and a tmpfs."""
    (rootfs / "evil").symlink_to("/etc")
    tag = f"bocker-oci-shim-test-{os.getpid()}"
    src = tmp_path / "src"
    src.write_text("payload\n")
    oci = native.Oci(mounts=base_mounts() + [
        native.OciMount(str(src), f"/evil/{tag}-file"),
        native.OciMount("tmpfs", f"/evil/{tag}-dir/sub", "tmpfs"),
    ])
    try:
        out = ok(rootfs, f"cat /etc/{tag}-file; grep -c ' /etc/{tag}-dir/sub ' /proc/self/mountinfo",
                 oci)
        assert out.split() == ["payload", "1"]
        assert (rootfs / "etc" / f"{tag}-file").is_file()
        assert (rootfs / "etc" / f"{tag}-dir" / "sub").is_dir()
        assert not os.path.lexists(f"/etc/{tag}-file")
        assert not os.path.lexists(f"/etc/{tag}-dir")
    finally:  # only if the test failed: what an escape would have left
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"/etc/{tag}-file")
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(f"/etc/{tag}-dir")


def test_magic_link_target_is_refused(rootfs):
    """A target reached through /proc/self/... (a magic link, which can
    name a file outside the container) is refused, naming the mount."""
    (rootfs / "evil").symlink_to("/proc/self/cwd")
    oci = native.Oci(mounts=base_mounts() + [native.OciMount("tmpfs", "/evil/x", "tmpfs")])
    reports, _, code = run(rootfs, "true", oci)
    assert reports[-1][:2] == ("mount", 40)  # ELOOP
    assert native.step_object(reports[-1], {"oci": oci}) == "/evil/x"
    assert code == native.EXIT_RUNTIME


@pytest.mark.parametrize("case", ["mount target", "device", "cwd", "dev links"])
def test_nothing_is_made_through_a_host_process_root(rootfs, tmp_path, case):
    """In the host's PID namespace (no CLONE_NEWPID) the config's /proc
    shows every host process's root (here: this test's, the host's /).
    An image symlink through it must not let a mount target, a device,
    the cwd or /dev's links be made on the host: each path is walked with
    no magic link."""
    host = tmp_path / "host"
    host.mkdir()
    (rootfs / "evil").symlink_to(f"/proc/{os.getpid()}/root{host}")
    options, mounts, devices = {}, base_mounts()[:1], []
    if case == "mount target":
        mounts.append(native.OciMount("tmpfs", "/evil/made/sub", "tmpfs"))
    elif case == "device":
        devices.append(native.OciDevice("/evil/made", "c", 1, 3))
    elif case == "cwd":
        options["cwd"] = "/evil/made"
    else:
        (rootfs / "dev").symlink_to(f"/proc/{os.getpid()}/root{host}")
    reports, _, code = run(rootfs, "true", native.Oci(mounts=mounts, devices=devices),
                           clone_flags=native.CLONE_NEWNS | native.CLONE_NEWUTS, **options)
    assert reports[-1][1] == 40, reports[-3:]  # ELOOP
    assert code == native.EXIT_RUNTIME
    assert os.listdir(host) == []


def test_propagation(rootfs):
    """Each mount's propagation, and the rootfs's, as mountinfo shows them."""
    oci = native.Oci(mounts=base_mounts() + [
        native.OciMount("tmpfs", "/mnt/shared", "tmpfs", propagation=MS_SHARED),
        native.OciMount("tmpfs", "/mnt/unbindable", "tmpfs", propagation=MS_UNBINDABLE),
        native.OciMount("tmpfs", "/mnt/private", "tmpfs", propagation=MS_PRIVATE),
    ], rootfs_propagation=MS_SHARED)
    info = mountinfo(ok(rootfs, "cat /proc/self/mountinfo", oci))
    assert any(f.startswith("shared:") for f in info["/mnt/shared"][1])
    assert "unbindable" in info["/mnt/unbindable"][1]
    assert not [f for f in info["/mnt/private"][1] if f != "-"]
    assert any(f.startswith("shared:") for f in info["/"][1])


def test_devices(rootfs):
    """Each device node with its type, numbers, mode and owner; an existing
    file at a device's path is replaced, missing parents made."""
    (rootfs / "etc" / "existing").write_text("not a device\n")
    oci = native.Oci(mounts=base_mounts(), devices=[
        native.OciDevice("/dev/zero", "c", 1, 5, 0o604, uid=1000, gid=1001),
        native.OciDevice("/dev/sub/blk", "b", 7, 200, 0o600),
        native.OciDevice("/dev/fifo", "p", 0, 0, 0o620, uid=5, gid=6),
        native.OciDevice("/etc/existing", "c", 1, 3, 0o666),
    ])
    out = ok(rootfs, "stat -c '%n %F %t %T %a %u %g' /dev/zero /dev/sub/blk /dev/fifo"
             " /etc/existing; head -c 4 /dev/zero | wc -c", oci)
    assert out.splitlines() == [
        "/dev/zero character special file 1 5 604 1000 1001",
        "/dev/sub/blk block special file 7 c8 600 0 0",
        "/dev/fifo fifo 0 0 620 5 6",
        "/etc/existing character special file 1 3 666 0 0",
        "4",
    ]
    # the node went into the rootfs itself (not under a mount): on the host
    # it is the device now
    assert stat.S_ISCHR(os.lstat(rootfs / "etc" / "existing").st_mode)


def test_default_devices(rootfs):
    """native.default_devices(): the spec's six, usable as they are."""
    oci = native.Oci(mounts=base_mounts(), devices=native.default_devices())
    out = ok(rootfs, "stat -c '%n %t %T %a' /dev/null /dev/zero /dev/full /dev/random"
             " /dev/urandom /dev/tty; head -c 3 /dev/urandom | wc -c", oci)
    assert out.splitlines() == ["/dev/null 1 3 666", "/dev/zero 1 5 666", "/dev/full 1 7 666",
                                "/dev/random 1 8 666", "/dev/urandom 1 9 666",
                                "/dev/tty 5 0 666", "3"]


def test_a_failed_device_names_its_path(rootfs):
    """A device that cannot be made (a directory in the way) fails at
    "mknod", and step_object names its path."""
    (rootfs / "etc" / "adir").mkdir()
    oci = native.Oci(mounts=base_mounts(), devices=[NULL_DEVICE,
                                                    native.OciDevice("/etc/adir", "c", 1, 3)])
    reports, _, code = run(rootfs, "true", oci)
    assert reports[-1][:2] == ("mknod", 21)  # EISDIR
    assert native.step_object(reports[-1], {"oci": oci}) == "/etc/adir"
    assert code == native.EXIT_RUNTIME


def test_masked_and_readonly_paths(rootfs):
    """The config's lists, with kernfs.c's semantics (a file under
    /dev/null, a directory under an empty tmpfs, a missing path skipped);
    bocker's own defaults are not applied."""
    oci = native.Oci(mounts=base_mounts() + [
        native.OciMount("sysfs", "/sys", "sysfs", flags=MS_RDONLY)],
        devices=[NULL_DEVICE],
        masked=["/proc/timer_list", "/sys/kernel", "/proc/no-such-file"],
        readonly=["/proc/sys", "/proc/no-such-dir"])
    out = ok(rootfs, "head -c 16 /proc/timer_list | wc -c; ls /sys/kernel | wc -l;"
             " (echo 1 > /proc/sys/kernel/panic) 2>/dev/null || echo sys-ro;"
             " ls /sys/firmware | wc -l", oci,
             clone_flags=NS | native.CLONE_NEWNET)
    masked, empty, ro, firmware = out.split()
    assert (masked, empty, ro) == ("0", "0", "sys-ro")
    assert int(firmware) > 0  # masked by bocker's defaults, not by this config


def _status(out):
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_KILL, CAP_NET_BIND_SERVICE, CAP_NET_RAW = 0, 1, 5, 10, 13


def test_capability_sets_of_a_non_root_user(rootfs):
    """uid 1000 keeps exactly the ambient set across execve (as effective
    and permitted too), and the bounding and inheritable sets given."""
    bounding = (1 << CAP_CHOWN) | (1 << CAP_KILL) | (1 << CAP_NET_BIND_SERVICE) | (1 << CAP_NET_RAW)
    inheritable = (1 << CAP_KILL) | (1 << CAP_NET_BIND_SERVICE)
    ambient = 1 << CAP_NET_BIND_SERVICE
    oci = native.Oci(mounts=base_mounts(), caps=dict(
        bounding=bounding, effective=bounding, permitted=bounding,
        inheritable=inheritable, ambient=ambient))
    st = _status(ok(rootfs, "cat /proc/self/status", oci, uid=1000, gid=1000))
    assert int(st["CapBnd"], 16) == bounding
    assert int(st["CapInh"], 16) == inheritable
    assert int(st["CapAmb"], 16) == ambient
    assert int(st["CapPrm"], 16) == ambient
    assert int(st["CapEff"], 16) == ambient
    assert st["Uid"].split()[0] == "1000" and st["Gid"].split()[0] == "1000"
    assert st["NoNewPrivs"] == "0"


def test_capability_sets_of_root(rootfs):
    """Root's permitted and effective sets after execve are its bounding
    set (the file capability rules for root); nothing is ambient."""
    bounding = (1 << CAP_CHOWN) | (1 << CAP_DAC_OVERRIDE)
    oci = native.Oci(mounts=base_mounts(), caps=dict(
        bounding=bounding, effective=1 << CAP_CHOWN, permitted=bounding))
    st = _status(ok(rootfs, "cat /proc/self/status", oci))
    assert [int(st[k], 16) for k in ("CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb")] == [
        bounding, bounding, bounding, 0, 0]


def test_groups_umask_and_no_new_privs(rootfs):
    """Additional gids, the umask and no_new_privs, as the process sees them."""
    oci = native.Oci(mounts=base_mounts(), gids=[10, 20, 3000], umask=0o077,
                     no_new_privs=True)
    out = ok(rootfs, "grep -E '^(Groups|NoNewPrivs):' /proc/self/status; umask", oci,
             uid=1000, gid=1000)
    lines = out.splitlines()
    assert lines[0].split(":")[1].split() == ["10", "20", "3000"]
    assert lines[1].split() == ["NoNewPrivs:", "1"]
    assert lines[2] == "0077"


def test_hostname_and_domainname(rootfs):
    oci = native.Oci(mounts=base_mounts(), domainname="example.org")
    out = ok(rootfs, "hostname; cat /proc/sys/kernel/domainname", oci, hostname="ctr")
    assert out.split() == ["ctr", "example.org"]


def test_join_a_network_namespace_by_fd(rootfs):
    """join_ns: the container is in the namespace the fd names."""
    netns = native.new_netns()
    try:
        oci = native.Oci(mounts=base_mounts(), join_ns=[(netns, native.CLONE_NEWNET)])
        out = ok(rootfs, "readlink /proc/self/ns/net", oci)
        assert out.strip() == f"net:[{os.fstat(netns).st_ino}]"
    finally:
        os.close(netns)


def test_sysctl_in_a_joined_network_namespace(rootfs):
    """A net.* sysctl in a joined network namespace (not the caller's) is
    written there, not on the host."""
    netns = native.new_netns()
    try:
        oci = native.Oci(mounts=base_mounts(), join_ns=[(netns, native.CLONE_NEWNET)])
        out = ok(rootfs, "cat /proc/sys/net/ipv4/ip_default_ttl", oci,
                 sysctls=["net.ipv4.ip_default_ttl=42"])
        assert out.strip() == "42"
        with open("/proc/sys/net/ipv4/ip_default_ttl") as f:
            assert f.read().strip() != "42"
    finally:
        os.close(netns)


def test_sysctls_are_not_written_through_a_symlinked_proc(rootfs):
    """With proc mounted elsewhere and the image's /proc a symlink to it,
    a sysctl write follows no symlink: ELOOP, nothing written."""
    (rootfs / "proc").symlink_to("/otherproc")
    oci = native.Oci(mounts=[native.OciMount("proc", "/otherproc", "proc")])
    reports, _, code = run(rootfs, "true", oci, clone_flags=NS | native.CLONE_NEWNET,
                           sysctls=["net.ipv4.ip_default_ttl=42"])
    assert reports[-1][:2] == ("write sysctls", 40)
    assert code == native.EXIT_RUNTIME


def test_join_a_pid_namespace(rootfs, tmp_path):
    """pidns_fd: the container is born in another container's PID
    namespace (the parent enters it for the clone), not as its PID 1."""
    first = native.spawn(str(rootfs), ["sleep", "1000"], ["PATH=/bin"], clone_flags=NS,
                         oci=native.Oci(mounts=base_mounts()))
    try:
        assert native.read_reports(first.status_fd)[-1][:2] == ("exec done", 0)
        pidns = os.open(f"/proc/{first.pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            oci = native.Oci(mounts=base_mounts(), pidns_fd=pidns)
            out = ok(rootfs, "readlink /proc/self/ns/pid; echo $$; ls /proc | grep -c '^1$'",
                     oci, clone_flags=NS & ~native.CLONE_NEWPID)
            ino, mypid, has_init = out.split()
            assert ino == f"pid:[{os.fstat(pidns).st_ino}]"
            assert mypid != "1" and has_init == "1"
        finally:
            os.close(pidns)
    finally:
        native.pidfd_send_signal(first.pidfd, 9)
        os.waitpid(first.pid, 0)
        os.close(first.pidfd)


def test_ready_then_gate(rootfs, tmp_path):
    """create's flow: with ready the child reports "wait for parent" ok
    (untraced too), closes its status pipe and waits on the gate FIFO;
    the command runs only once a byte is written."""
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo, 0o600)
    gate = os.open(fifo, os.O_RDWR | os.O_CLOEXEC)
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        child = native.spawn(str(rootfs), ["sh", "-c", "echo ran"], ["PATH=/bin"], clone_flags=NS,
                             oci=native.Oci(mounts=base_mounts(), ready=True), go_fd=gate,
                             stdio=(-1, w, w))
    finally:
        os.close(gate)
        os.close(w)
    try:
        reports = native.read_reports(child.status_fd)
        assert [rep[:2] for rep in reports] == [("wait for parent", 0)]
        assert os.waitpid(child.pid, os.WNOHANG) == (0, 0)   # created, waiting
        assert not select.select([r], [], [], 0)[0]           # nothing ran yet
        start = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        os.write(start, b"0")
        os.close(start)
        with os.fdopen(r, "rb", closefd=False) as f:
            assert f.read() == b"ran\n"
        _, status = os.waitpid(child.pid, 0)
        assert native.exit_code(status) == 0
    finally:
        os.close(r)
        os.close(child.pidfd)


@pytest.mark.parametrize("argv0, err, code", [
    ("no-such-command", 2, native.EXIT_NOT_FOUND),
    ("/etc/plain", 13, native.EXIT_CANNOT_EXECUTE),
])
def test_ready_fails_for_a_command_that_cannot_run(rootfs, argv0, err, code):
    """At ready time (before the gate), argv[0] must resolve along the
    container's PATH to something executable: else "execve" fails then."""
    (rootfs / "etc" / "plain").write_text("not a program\n")
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    try:
        child = native.spawn(str(rootfs), [argv0], ["PATH=/bin"], clone_flags=NS, go_fd=go_r,
                             oci=native.Oci(mounts=base_mounts(), ready=True))
    finally:
        os.close(go_r)
    try:
        reports = native.read_reports(child.status_fd)
        assert reports[-1][:2] == ("execve", err)
        _, status = os.waitpid(child.pid, 0)
        assert native.exit_code(status) == code
    finally:
        os.close(go_w)
        os.close(child.pidfd)


@contextlib.contextmanager
def fds_at(mapping):
    """Put each fd of {target: (fd, inheritable)} at its target number for
    the block, then put back what was there."""
    saved = {}
    for target in mapping:
        try:
            saved[target] = os.dup(target)
        except OSError:
            saved[target] = None
    try:
        for target, (fd, inheritable) in mapping.items():
            os.dup2(fd, target, inheritable=inheritable)
        yield
    finally:
        for target, old in saved.items():
            if old is None:
                os.close(target)
            else:
                os.dup2(old, target, inheritable=os.get_inheritable(old))
                os.close(old)


def test_preserve_fds(rootfs):
    """fds 3 and 4 reach the command (4 was CLOEXEC), fd 6 (past them)
    does not, nor fd 5, in the range but the start's own (pidns_fd, and
    inheritable)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with fds_at({3: (w, True), 4: (w, False), 5: (pidns, True), 6: (w, True)}):
            child = native.spawn(
                str(rootfs), ["sh", "-c", "echo three >&3; echo four >&4;"
                              " for f in 3 4 5 6; do test -e /proc/$$/fd/$f && echo fd$f; done;"
                              " true"],
                ["PATH=/bin"], clone_flags=NS & ~native.CLONE_NEWPID, stdio=(-1, out_w, out_w),
                oci=native.Oci(mounts=base_mounts(), preserve_fds=3, pidns_fd=5))
        os.close(w)
        os.close(out_w)
        w = out_w = None
        assert native.read_reports(child.status_fd)[-1][:2] == ("exec done", 0)
        with os.fdopen(r, "rb", closefd=False) as f:
            assert f.read() == b"three\nfour\n"
        with os.fdopen(out_r, "rb", closefd=False) as f:
            assert f.read().split() == [b"fd3", b"fd4"]
        _, status = os.waitpid(child.pid, 0)
        os.close(child.pidfd)
        assert native.exit_code(status) == 0
    finally:
        os.close(pidns)
        for fd in (r, w, out_r, out_w):
            if fd is not None:
                os.close(fd)


SCMP_ACT_ALLOW, SCMP_ACT_ERRNO = 0x7FFF0000, 0x00050000


@pytest.mark.parametrize("no_new_privs", [False, True])
def test_seccomp_with_every_capability_dropped(rootfs, no_new_privs):
    """Without no_new_privs the filter is installed while the child still
    has CAP_SYS_ADMIN (it could not be once every capability is gone);
    with it, after the drop.  Either way the container runs under it."""
    prog = native.seccomp_compile(SCMP_ACT_ALLOW, [], [
        ("mkdir", SCMP_ACT_ERRNO | 1, []), ("mkdirat", SCMP_ACT_ERRNO | 1, [])],
        ["mkdir", "mkdirat"], 1 << 16)
    oci = native.Oci(mounts=base_mounts(), no_new_privs=no_new_privs)  # caps: none
    out = ok(rootfs, "grep -E '^(CapEff|Seccomp):' /proc/self/status;"
             " mkdir /x 2>/dev/null || echo refused", oci, seccomp_filter=prog)
    assert out.split() == ["CapEff:", "0000000000000000", "Seccomp:", "2", "refused"]


USERNS_BASE = 1 << 28   # far from bocker's pool (1 << 27 ...) and real users


def chown_tree(root, uid, gid):
    """lchown everything under root (and root) to uid:gid."""
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def hand_over_maps(pid, sock, base):
    """The runtime's half of an OCI user namespace start: the child's id
    maps (0-65535 -> base...), then one byte without an fd."""
    for which in ("uid_map", "gid_map"):
        fd = os.open(f"/proc/{pid}/{which}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, f"0 {base} 65536\n".encode())
        finally:
            os.close(fd)
    os.write(sock, b"m")


def test_user_namespace(rootfs, tmp_path):
    """With CLONE_NEWUSER the child waits for its maps (one byte, no fd),
    becomes the namespace's root, makes proc and sysfs before pivot_root
    (the kernel refuses them after), binds the host's device nodes
    (mknod is refused) and the config's bind mounts."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "data").write_text("bound\n")
    chown_tree(rootfs, USERNS_BASE, USERNS_BASE)
    a, b = native.unix_pair()
    r, w = os.pipe2(os.O_CLOEXEC)
    oci = native.Oci(mounts=base_mounts() + [
        native.OciMount("sysfs", "/sys", "sysfs", flags=MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC),
        native.OciMount("mqueue", "/dev/mqueue", "mqueue"),
        native.OciMount(str(src), "/mnt/src", flags=MS_RDONLY, recursive=True),
    ], devices=[NULL_DEVICE, native.OciDevice("/dev/zero", "c", 1, 5, 0o666)],
        masked=["/proc/timer_list"], readonly=["/proc/sys"],
        caps=dict(bounding=1 << CAP_CHOWN, effective=1 << CAP_CHOWN, permitted=1 << CAP_CHOWN))
    try:
        child = native.spawn(str(rootfs), ["sh", "-c",
                             "id -u; cat /proc/self/uid_map; stat -c '%t %T' /dev/null /dev/zero;"
                             " cat /mnt/src/data; ls /sys | grep -c kernel;"
                             " wc -c < /proc/timer_list; grep CapEff /proc/self/status"],
                             ["PATH=/bin"], clone_flags=NS | native.CLONE_NEWUSER | native.CLONE_NEWNET,
                             oci=oci, userns_sock=b, stdio=(-1, w, w), trace=True)
    finally:
        os.close(b)
        os.close(w)
    try:
        hand_over_maps(child.pid, a, USERNS_BASE)
        reports = native.read_reports(child.status_fd)
        with os.fdopen(r, "rb", closefd=False) as f:
            out = f.read().decode()
        _, status = os.waitpid(child.pid, 0)
        assert reports[-1][:2] == ("exec done", 0), (reports[-3:], out)
        assert native.exit_code(status) == 0, out
        lines = out.splitlines()
        assert lines[0] == "0"
        assert lines[1].split() == ["0", str(USERNS_BASE), "65536"]
        assert lines[2:] == ["1 3", "1 5", "bound", "1", "0", "CapEff:\t0000000000000001"]
    finally:
        os.close(a)
        os.close(r)
        os.close(child.pidfd)


@pytest.mark.parametrize("own_netns", [True, False])
def test_user_namespace_mounts_keep_the_config_order(rootfs, own_netns):
    """In a user namespace every new mount is made before pivot_root, in
    config order, with its source (runtime-tools compares mountinfo's
    order and sources with the config's); without a network namespace
    of its own, sysfs (refused there) is the host's /sys bound instead."""
    chown_tree(rootfs, USERNS_BASE, USERNS_BASE)
    a, b = native.unix_pair()
    r, w = os.pipe2(os.O_CLOEXEC)
    oci = native.Oci(mounts=base_mounts() + [
        native.OciMount("shm", "/dev/shm", "tmpfs", "mode=1777,size=65536k"),
        native.OciMount("sysfs", "/sys", "sysfs", flags=MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC),
    ])
    flags = NS | native.CLONE_NEWUSER | (native.CLONE_NEWNET if own_netns else 0)
    try:
        child = native.spawn(str(rootfs), ["cat", "/proc/self/mountinfo"], ["PATH=/bin"],
                             clone_flags=flags, oci=oci, userns_sock=b, stdio=(-1, w, w))
    finally:
        os.close(b)
        os.close(w)
    try:
        hand_over_maps(child.pid, a, USERNS_BASE)
        assert native.read_reports(child.status_fd)[-1][:2] == ("exec done", 0)
        with os.fdopen(r, "rb", closefd=False) as f:
            info = mountinfo(f.read().decode())
        _, status = os.waitpid(child.pid, 0)
        assert native.exit_code(status) == 0
    finally:
        os.close(a)
        os.close(r)
        os.close(child.pidfd)
    points = [m.target for m in oci.mounts]
    assert [p for p in info if p in points] == points
    assert [info[m.target][4] for m in oci.mounts[:4]] == ["proc", "tmpfs", "devpts", "shm"]
    assert info["/sys"][2] == "sysfs" and "ro" in info["/sys"][0]
    host = os.stat("/sys").st_dev
    assert (info["/sys"][5] == f"{os.major(host)}:{os.minor(host)}") != own_netns


def test_user_namespace_child_gives_up_without_maps(rootfs):
    """EOF on the user namespace socket (the runtime went away) ends the
    child at "wait for id maps" without running anything."""
    a, b = native.unix_pair()
    child = native.spawn(str(rootfs), ["true"], ["PATH=/bin"], trace=True,
                         clone_flags=NS | native.CLONE_NEWUSER, userns_sock=b,
                         oci=native.Oci(mounts=base_mounts()))
    os.close(a)
    os.close(b)
    try:
        assert native.read_reports(child.status_fd)[-1][:2] == ("wait for id maps", 125)
        _, status = os.waitpid(child.pid, 0)
        assert native.exit_code(status) == native.EXIT_RUNTIME
    finally:
        os.close(child.pidfd)


def test_a_missing_cwd_is_made(rootfs):
    """process.cwd that the image lacks is made (as runc does), before a
    read-only root is."""
    out = ok(rootfs, "pwd; stat -c %a .", native.Oci(mounts=base_mounts()),
             cwd="/work/dir", readonly_rootfs=True)
    assert out.split() == ["/work/dir", "755"]
    assert (rootfs / "work" / "dir").is_dir()


def test_no_pivot(rootfs, tmp_path):
    """--no-pivot: the rootfs moved onto / and chrooted into; the
    container sees its own files only."""
    oci = native.Oci(mounts=base_mounts(), no_pivot=True)
    (rootfs / "etc" / "marker").write_text("inside\n")
    out = ok(rootfs, f"cat /etc/marker; test -e {tmp_path} || echo no-host; cat /proc/self/mountinfo",
             oci)
    lines = out.splitlines()
    assert lines[:2] == ["inside", "no-host"]
    assert mountinfo("\n".join(lines[2:]))["/"][3]  # / is a mount of its own


def test_readonly_root_without_nodev(rootfs):
    """readonly_rootfs in OCI mode: / is read-only, and not nodev (a
    config's device nodes live on it)."""
    oci = native.Oci(mounts=base_mounts(), devices=[NULL_DEVICE,
                                                    native.OciDevice("/etc/null2", "c", 1, 3)])
    out = ok(rootfs, "(touch /x) 2>/dev/null || echo ro; echo hi > /etc/null2 && echo dev-ok;"
             " cat /proc/self/mountinfo", oci, readonly_rootfs=True)
    lines = out.splitlines()
    assert lines[:2] == ["ro", "dev-ok"]
    opts = mountinfo("\n".join(lines[2:]))["/"][0]
    assert "ro" in opts and "nodev" not in opts


def test_exec_into_a_container_with_oci_credentials(rootfs):
    """exec (join_pidfd) with oci: the container's namespaces, and the
    process's own caps, gids, umask and no_new_privs; no mounts made."""
    first = native.spawn(str(rootfs), ["sleep", "1000"], ["PATH=/bin"], clone_flags=NS,
                         hostname="first", oci=native.Oci(mounts=base_mounts()))
    try:
        assert native.read_reports(first.status_fd)[-1][:2] == ("exec done", 0)
        oci = native.Oci(mounts=[native.OciMount("tmpfs", "/never", "tmpfs")], gids=[7],
                         umask=0o027, no_new_privs=True,
                         caps=dict(bounding=1 << CAP_KILL, effective=1 << CAP_KILL,
                                   permitted=1 << CAP_KILL))
        out = ok(rootfs, "hostname; umask; grep -E '^(Groups|NoNewPrivs|CapBnd):' /proc/self/status;"
                 " test -e /never || echo no-mount", oci, join_pidfd=first.pidfd)
        assert out.split() == ["first", "0027", "Groups:", "7", "CapBnd:", "0000000000000020",
                               "NoNewPrivs:", "1", "no-mount"]
    finally:
        native.pidfd_send_signal(first.pidfd, 9)
        os.waitpid(first.pid, 0)
        os.close(first.pidfd)


def test_join_a_user_namespace(rootfs):
    """join_ns with a user namespace: it is joined first, the namespaces
    to create are made inside it (so it owns them: /proc can be mounted),
    and the child becomes its root after pivot_root."""
    chown_tree(rootfs, USERNS_BASE, USERNS_BASE)
    a, b = native.unix_pair()
    try:
        first = native.spawn(str(rootfs), ["sleep", "1000"], ["PATH=/bin"], userns_sock=b,
                             clone_flags=NS | native.CLONE_NEWUSER,
                             oci=native.Oci(mounts=base_mounts()))
    finally:
        os.close(b)
    try:
        hand_over_maps(first.pid, a, USERNS_BASE)
        assert native.read_reports(first.status_fd)[-1][:2] == ("exec done", 0)
        user = os.open(f"/proc/{first.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        pidns = os.open(f"/proc/{first.pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            oci = native.Oci(mounts=base_mounts(), join_ns=[(user, native.CLONE_NEWUSER)],
                             pidns_fd=pidns, devices=[NULL_DEVICE])
            out = ok(rootfs, "id -u; readlink /proc/self/ns/user; readlink /proc/self/ns/mnt;"
                     " stat -c '%t %T' /dev/null", oci,
                     clone_flags=native.CLONE_NEWNS | native.CLONE_NEWUTS)
            uid, userns, mntns, dev = out.splitlines()
            assert (uid, dev) == ("0", "1 3")
            assert userns == f"user:[{os.fstat(user).st_ino}]"
            assert mntns != os.readlink(f"/proc/{first.pid}/ns/mnt")
        finally:
            os.close(user)
            os.close(pidns)
    finally:
        os.close(a)
        native.pidfd_send_signal(first.pidfd, 9)
        os.waitpid(first.pid, 0)
        os.close(first.pidfd)


def test_new_user_namespace_joins_the_hosts_network_namespace(rootfs):
    """CLONE_NEWUSER with a network namespace to join that the host's user
    namespace owns: the child could not setns there (no capability over
    it), so it is born in it (the parent's thread enters it for the
    clone) and the caller's thread is back in its own afterwards."""
    chown_tree(rootfs, USERNS_BASE, USERNS_BASE)
    netns = native.new_netns()
    mine = os.readlink("/proc/thread-self/ns/net")
    a, b = native.unix_pair()
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        child = native.spawn(str(rootfs), ["readlink", "/proc/self/ns/net"], ["PATH=/bin"],
                             clone_flags=NS | native.CLONE_NEWUSER, userns_sock=b,
                             stdio=(-1, w, w), oci=native.Oci(
                                 mounts=base_mounts(), join_ns=[(netns, native.CLONE_NEWNET)]))
    finally:
        os.close(b)
        os.close(w)
    try:
        assert os.readlink("/proc/thread-self/ns/net") == mine
        hand_over_maps(child.pid, a, USERNS_BASE)
        assert native.read_reports(child.status_fd)[-1][:2] == ("exec done", 0)
        with os.fdopen(r, "rb", closefd=False) as f:
            assert f.read().decode().strip() == f"net:[{os.fstat(netns).st_ino}]"
        _, status = os.waitpid(child.pid, 0)
        assert native.exit_code(status) == 0
    finally:
        os.close(a)
        os.close(r)
        os.close(netns)
        os.close(child.pidfd)


def read_pty(master):
    """Everything a pty's master gets until its last slave closes (EIO);
    closes master."""
    out = b""
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the last slave closed
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    return out


def test_console_from_the_configs_devpts(rootfs):
    """console_sock in OCI mode: the pty comes from the devpts the config
    mounted at /dev/pts, its master is sent over the socket, the command's
    stdio is the pty, and /dev/console is the pty too (bound over it)."""
    import socket

    a, b = native.unix_pair()
    try:
        child = native.spawn(str(rootfs), ["sh", "-c", "tty; stat -c '%F %t %T' /dev/console;"
                                           " echo done"], ["PATH=/bin"],
                             clone_flags=NS, console_sock=b, console_size=(24, 80),
                             oci=native.Oci(mounts=base_mounts()))
    finally:
        os.close(b)
    sock = socket.socket(fileno=a)
    try:
        _, fds, _, _ = socket.recv_fds(sock, 1, 1)
        assert len(fds) == 1
        master = fds[0]
        assert native.read_reports(child.status_fd)[-1][:2] == ("exec done", 0)
        out = read_pty(master)
        _, status = os.waitpid(child.pid, 0)
        assert native.exit_code(status) == 0
        assert out.decode().split("\r\n") == [
            "/dev/pts/0", "character special file 88 0", "done", ""]
    finally:
        sock.close()
        os.close(child.pidfd)


def test_readonly_root_keeps_the_host_mounts_flags(rootfs, tmp_path):
    """A rootfs whose host mount is nosuid stays nosuid when
    made read-only (a remount without the flag would clear it)."""
    base = tmp_path / "nosuid"
    base.mkdir()
    native.mount(str(rootfs), str(base), None, 0x1000)               # MS_BIND
    try:
        native.mount(None, str(base), None, 0x1000 | 0x20 | MS_NOSUID)  # MS_REMOUNT
        out = ok(base, "cat /proc/self/mountinfo", native.Oci(mounts=base_mounts()),
                 readonly_rootfs=True)
        opts = mountinfo(out)["/"][0]
        assert "ro" in opts and "nosuid" in opts
    finally:
        native.umount(str(base), 2)                                   # MNT_DETACH


def test_an_exec_with_a_console_leaves_the_containers_console(rootfs):
    """exec -t: the exec'd process gets a pty of the container's devpts,
    and the container's /dev/console stays what it was."""
    import socket

    oci = native.Oci(mounts=base_mounts())
    first = native.spawn(str(rootfs), ["sleep", "1000"], ["PATH=/bin"], clone_flags=NS, oci=oci)
    a, b = native.unix_pair()
    sock = socket.socket(fileno=a)
    try:
        assert native.read_reports(first.status_fd)[-1][:2] == ("exec done", 0)
        try:
            child = native.spawn(str(rootfs), ["sh", "-c", "tty; test -e /dev/console || echo none"],
                                 ["PATH=/bin"], join_pidfd=first.pidfd, console_sock=b, oci=oci)
        finally:
            os.close(b)
        _, fds, _, _ = socket.recv_fds(sock, 1, 1)
        master = fds[0]
        assert native.read_reports(child.status_fd)[-1][:2] == ("exec done", 0)
        out = read_pty(master)
        os.waitpid(child.pid, 0)
        os.close(child.pidfd)
        assert out.split() == [b"/dev/pts/0", b"none"]
    finally:
        sock.close()
        native.pidfd_send_signal(first.pidfd, 9)
        os.waitpid(first.pid, 0)
        os.close(first.pidfd)
