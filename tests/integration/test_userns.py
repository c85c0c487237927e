"""--userns=auto against the real kernel: container root is an unprivileged
host uid, the rootfs is an idmapped mount (not a chown), and the host's
own files stay out of the container root's reach."""
import json
import os
import select

import pytest

from bocker.confine import userns
from bocker.kernel import native
from bocker.runtime import containers, records, spec

AUTO = ("--userns=auto",)


def _inspect(bocker, ref):
    return json.loads(bocker("inspect", ref, check=True).stdout)[0]


def _host_uid_map(info):
    return info["HostConfig"]["UidMap"][0]["HostID"], info["HostConfig"]["GidMap"][0]["HostID"]


def _proc_ids(pid):
    """Real uid and gid of pid, as the host sees them."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0])


@pytest.fixture
def running(bocker):
    """Start a detached --userns=auto container; removed afterwards."""
    made = []

    def start(*args):
        cid = bocker("run", "-d", *AUTO, *args, "busybox", "sleep", "60", check=True).stdout.strip()
        made.append(cid)
        return _inspect(bocker, cid)

    yield start
    for cid in made:
        bocker("rm", "-f", cid)


def test_root_is_an_unprivileged_host_uid(bocker, paths, running):
    info = running()
    assert info["HostConfig"]["UsernsMode"] == "auto"
    uid, gid = _host_uid_map(info)
    assert uid >= userns.SIZE and gid >= userns.SIZE
    assert info["HostConfig"]["UidMap"] == [{"ContainerID": 0, "HostID": uid, "Size": 65536}]
    assert _proc_ids(info["State"]["Pid"]) == (uid, gid)
    out = bocker("exec", info["Id"], "sh", "-c",
                 "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map", check=True).stdout
    assert out.split() == ["0", "0", "0", str(uid), "65536", "0", str(gid), "65536"]
    assert userns.allocations(paths.userns)[uid] == info["Id"]


def test_exec_joins_the_user_namespace(bocker, running):
    info = running()
    pid1 = info["State"]["Pid"]
    out = bocker("exec", info["Id"], "readlink", "/proc/self/ns/user", check=True).stdout
    assert out.strip() == os.readlink(f"/proc/{pid1}/ns/user")
    assert out.strip() != os.readlink("/proc/self/ns/user")


def test_rootfs_is_idmapped_not_chowned(bocker, paths):
    bocker("run", "--name", "idm", *AUTO, "busybox", "sh", "-c",
           "stat -c %u:%g /bin/busybox; touch /made;"
           "mkdir /d && chown 7:8 /d; stat -c %u:%g /made /d", check=True)
    try:
        info = _inspect(bocker, "idm")
        assert bocker("logs", "idm").stdout.split() == ["0:0", "0:0", "7:8"]
        rootfs = os.path.join(paths.container(info["Id"]), "rootfs")
        # on disk: the image's ids, and what root in the container made is
        # owned by 0, not by the host uid the container ran as
        for rel, owner in (("bin/busybox", (0, 0)), ("made", (0, 0)), ("d", (7, 8))):
            st = os.lstat(os.path.join(rootfs, rel))
            assert (st.st_uid, st.st_gid) == owner, rel
    finally:
        bocker("rm", "idm", check=True)


def test_commit_of_a_userns_container(bocker):
    bocker("run", "--name", "ubuild", *AUTO, "busybox", "sh", "-c",
           "echo built > /made && chown 3:4 /made", check=True)
    new_id = None
    try:
        new_id = bocker("commit", "ubuild", "--name", "ucommitted:v1", check=True).stdout.split()[-1]
        # read back without a user namespace: the ids are as made inside
        out = bocker("run", "--rm", "--userns=host", "ucommitted:v1", "sh", "-c",
                     "cat /made; stat -c %u:%g /made", check=True).stdout
        assert out == "built\n3:4\n"
    finally:
        bocker("rm", "ubuild", check=True)
        if new_id:
            bocker("rmi", new_id, check=True)


def test_two_containers_get_disjoint_ranges(running):
    a, b = running(), running()
    for key in ("UidMap", "GidMap"):
        ra, rb = a["HostConfig"][key][0]["HostID"], b["HostConfig"][key][0]["HostID"]
        assert abs(ra - rb) >= userns.SIZE


def test_range_released_on_rm_and_on_autoremove(bocker, paths):
    cid = bocker("run", "-d", *AUTO, "busybox", "sleep", "60", check=True).stdout.strip()
    assert cid in userns.allocations(paths.userns).values()
    bocker("rm", "-f", cid, check=True)
    assert cid not in userns.allocations(paths.userns).values()
    before = userns.allocations(paths.userns)
    bocker("run", "--rm", *AUTO, "busybox", "true", check=True)
    assert userns.allocations(paths.userns) == before


def test_restart_keeps_its_range(bocker, paths):
    cid = bocker("run", "-d", *AUTO, "busybox", "true", check=True).stdout.strip()
    try:
        bocker("wait", cid, check=True)
        first = _inspect(bocker, cid)["HostConfig"]["UidMap"]
        bocker("start", cid, check=True)
        bocker("wait", cid, check=True)
        assert _inspect(bocker, cid)["HostConfig"]["UidMap"] == first
        assert list(userns.allocations(paths.userns).values()).count(cid) == 1
    finally:
        bocker("rm", "-f", cid, check=True)


def test_host_root_file_is_out_of_reach(bocker, tmp_path):
    """The escape control: a root-owned 0600 host file bound in is written
    by container root without a user namespace, and refused with one."""
    secret = tmp_path / "secret"
    secret.write_text("host\n")
    os.chmod(secret, 0o600)
    script = "echo container > /secret && echo wrote"
    plain = bocker("run", "--rm", "--userns=host", "-v", f"{secret}:/secret", "busybox",
                   "sh", "-c", script)
    assert plain.stdout == "wrote\n" and secret.read_text() == "container\n"
    secret.write_text("host\n")
    mapped = bocker("run", "--rm", *AUTO, "-v", f"{secret}:/secret", "busybox",
                    "sh", "-c", script + "; stat -c %u /secret; cat /secret")
    assert "wrote" not in mapped.stdout
    assert "Permission denied" in mapped.stderr
    assert mapped.stdout.split()[0] == "65534"  # the host's root is unmapped: nobody
    assert secret.read_text() == "host\n"


def test_devices_and_sys_in_userns(bocker):
    out = bocker("run", "--rm", *AUTO, "busybox", "sh", "-c",
                 "echo x > /dev/null && head -c 3 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c;"
                 "echo x > /dev/full || echo full-refused; ls /sys/class/net | sort | tr '\\n' ' ';"
                 "mknod /dev/x c 1 3 || echo mknod-refused; cat /etc/hostname > /dev/null && echo ok;"
                 "echo 127.0.0.2 extra >> /etc/hosts && echo hosts-writable")
    assert out.stdout.split() == ["3", "4", "full-refused", "eth0", "lo", "mknod-refused", "ok",
                                  "hosts-writable"], out.stderr


def test_tty_in_userns(bocker):
    import pexpect

    from conftest import BOCKER

    child = pexpect.spawn(BOCKER, ["run", "--rm", "-it", *AUTO, "busybox", "sh", "-c",
                                   "tty; id -u"], timeout=30, encoding="utf-8")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert child.before.split() == ["/dev/pts/0", "0"]


@pytest.mark.parametrize("extra,word", [("--privileged", "privileged"),
                                        ("--network=host", "network host")])
def test_refused_combinations(bocker, paths, extra, word):
    before = userns.allocations(paths.userns)
    proc = bocker("run", "--rm", *AUTO, extra, "busybox", "true")
    assert proc.returncode != 0 and word in proc.stderr and "--userns=host" in proc.stderr
    assert userns.allocations(paths.userns) == before


def test_environment_default_and_host_override(bocker):
    env = {"BOCKER_USERNS": "auto"}
    out = bocker("run", "--rm", "busybox", "cat", "/proc/self/uid_map", env=env, check=True)
    assert out.stdout.split()[:1] == ["0"] and out.stdout.split()[1] != "0"
    out = bocker("run", "--rm", "--userns=host", "busybox", "cat", "/proc/self/uid_map",
                 env=env, check=True)
    assert out.stdout.split() == ["0", "0", "4294967295"]


def test_failed_hand_over_kills_the_child_and_releases(paths, monkeypatch):
    """The child waits for its maps; if the parent's half fails, the
    start unwinds: the child is killed, its block released, no leak."""
    def broken(pid, which, idmap):
        raise OSError(22, f"write /proc/{pid}/{which}: refused by the test")

    monkeypatch.setattr(userns, "write_map", broken)
    before = userns.allocations(paths.userns)
    with pytest.raises(OSError, match="refused by the test"):
        containers.create_and_start(paths, spec.RunRequest("busybox", ["true"], userns="auto",
                                                           remove=True))
    assert userns.allocations(paths.userns) == before
    assert not [r for r in records.list_all(paths) if r["Spec"]["userns"] == "auto"
                and r["State"]["Status"] == "created"]


def test_child_gives_up_when_the_parent_goes_away(paths):
    """A child waiting for its id maps sees EOF if its parent dies first
    and exits without running anything (it holds no copy of the parent's
    end of the socket)."""
    import socket

    from bocker.image import images

    rootfs = images.rootfs(paths, images.resolve(paths, "busybox"))
    a, b = socket.socketpair()
    child = native.spawn(rootfs, ["true"], ["PATH=/bin"], trace=True,
                         clone_flags=native.CLONE_NEWNS | native.CLONE_NEWUSER,
                         userns_sock=b.fileno())
    a.close()
    b.close()
    try:
        assert select.select([child.pidfd], [], [], 10)[0], "child still waiting"
        _, status = os.waitpid(child.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 125
        assert native.read_reports(child.status_fd)[-1][:2] == ("wait for id maps", 125)
    finally:
        os.close(child.pidfd)


def test_confinement_holds_in_userns(bocker):
    """--read-only, the masked and read-only /proc paths and namespaced
    sysctls work the same inside a user namespace."""
    out = bocker("run", "--rm", *AUTO, "--read-only", "--sysctl", "net.ipv4.ip_forward=1",
                 "busybox", "sh", "-c",
                 "touch /x 2>/dev/null || echo rootfs-ro; wc -c < /proc/timer_list;"
                 "echo 1 > /proc/sys/kernel/panic 2>/dev/null || echo sys-ro;"
                 "cat /proc/sys/net/ipv4/ip_forward")
    assert out.stdout.split() == ["rootfs-ro", "0", "sys-ro", "1"], out.stderr
