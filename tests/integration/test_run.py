"""bocker run against the real kernel: namespaces, pivot_root, cgroups."""
import json
import os
import stat
import subprocess
import time

import pytest

from conftest import BOCKER


def test_echo(bocker):
    proc = bocker("run", "--rm", "busybox", "echo", "foo")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "foo\n", "")


def test_uname(bocker):
    assert bocker("run", "--rm", "busybox", "uname").stdout == "Linux\n"


def test_command_is_pid_1(bocker):
    assert bocker("run", "--rm", "busybox", "cat", "/proc/self/stat").stdout.startswith("1 (cat)")


def test_ps_sees_only_the_container(bocker):
    lines = bocker("run", "--rm", "busybox", "ps", "-o", "pid,comm").stdout.split("\n")[1:]
    assert [line.split() for line in lines if line] == [["1", "ps"]]


def test_whitespace_command_runs_through_sh(bocker):
    assert bocker("run", "--rm", "busybox", "echo a && echo b").stdout == "a\nb\n"


def test_hostname_is_container_id(bocker, tmp_path):
    cidfile = tmp_path / "cid"
    out = bocker("run", "--rm", "--cidfile", str(cidfile), "busybox", "hostname").stdout
    assert out.strip() == cidfile.read_text()
    assert bocker("run", "--rm", "--hostname", "box", "busybox", "hostname").stdout == "box\n"


def test_etc_files_are_the_containers(bocker, paths):
    out = bocker("run", "--rm", "--hostname", "hh", "busybox", "cat", "/etc/hosts", "/etc/hostname")
    assert "hh" in out.stdout
    # the image itself was not altered
    from bocker.image import images
    root = images.rootfs(paths, images.resolve(paths, "busybox"))
    assert not os.path.exists(os.path.join(root, "etc/hostname"))


def test_cannot_see_host_root(bocker, tmp_path):
    marker = tmp_path / "bocker-host-marker"
    marker.write_text("host")
    proc = bocker("run", "--rm", "busybox", "ls", str(marker))
    assert proc.returncode != 0
    assert "host" not in proc.stdout


def test_mount_inside_is_invisible_outside(bocker, paths):
    proc = bocker("run", "--rm", "--privileged", "busybox", "sh", "-c",
                  "mount -t tmpfs bocker-inside /mnt && grep -c bocker-inside /proc/mounts")
    assert proc.stdout == "1\n", proc.stderr
    with open("/proc/self/mountinfo") as f:
        assert "bocker-inside" not in f.read()


def test_unprivileged_cannot_mount(bocker):
    proc = bocker("run", "--rm", "busybox", "mount", "-t", "tmpfs", "x", "/mnt")
    assert proc.returncode != 0


@pytest.mark.parametrize("code", [0, 1, 7, 255])
def test_exit_status_passes_through(bocker, code):
    assert bocker("run", "--rm", "busybox", "sh", "-c", f"exit {code}").returncode == code


def test_not_found_is_127_and_leaves_nothing(bocker):
    proc = bocker("run", "busybox", "no-such-command")
    assert proc.returncode == 127
    assert proc.stderr == "bocker: executable file not found: no-such-command\n"
    assert bocker("ps", "-aq").stdout == ""


def test_not_executable_is_126(bocker):
    proc = bocker("run", "--rm", "busybox", "/etc/passwd")
    assert proc.returncode == 126
    assert "Permission denied" in proc.stderr


def test_unknown_image(bocker):
    # --pull never: Docker's default (missing) would ask Docker Hub
    # (test_pull_verbs.py pulls from a loopback registry)
    proc = bocker("run", "--pull", "never", "nosuchimage", "true")
    # 125 as Docker's: the run never started
    assert (proc.returncode, proc.stderr) == (125, "bocker: No image named 'nosuchimage' exists\n")


def test_bad_workdir_is_125(bocker):
    # a missing one is made (Docker's); one below a file cannot be
    proc = bocker("run", "--rm", "-w", "/bin/sh/dir", "busybox", "true")
    assert proc.returncode == 125
    assert proc.stderr == ("bocker: cannot create the working directory '/bin/sh/dir': "
                           "Not a directory\n")


def test_env_workdir_user(bocker):
    out = bocker("run", "--rm", "-e", "GREETING=hi there", "-w", "/tmp", "-u", "65534",
                 "busybox", "sh", "-c", 'echo "$GREETING"; pwd; id -u').stdout
    assert out == "hi there\n/tmp\n65534\n"


def test_no_new_privileges_and_caps(bocker):
    status = bocker("run", "--rm", "busybox", "cat", "/proc/self/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["NoNewPrivs"].strip() == "1"
    assert int(fields["CapBnd"], 16) & (1 << 21) == 0  # no CAP_SYS_ADMIN


def test_devices(bocker):
    out = bocker("run", "--rm", "busybox", "sh", "-c",
                 "ls /dev; head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo ok").stdout
    names = set(out.split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx"} <= names
    assert "sda" not in names and "vda" not in names
    assert out.endswith("4\nok\n")


def test_network_none_has_only_lo(bocker):
    out = bocker("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net").stdout
    assert out.split() == ["lo"]


def test_network_host_is_the_hosts_network_namespace(bocker):
    # the namespace's identity, not a listing of links other test sessions
    # may be adding or removing meanwhile
    out = bocker("run", "--rm", "--network", "host", "busybox", "readlink", "/proc/self/ns/net",
                 check=True).stdout.strip()
    assert out == os.readlink("/proc/self/ns/net")
    own = bocker("run", "--rm", "--network", "none", "busybox", "readlink", "/proc/self/ns/net",
                 check=True).stdout.strip()
    assert own.startswith("net:[") and own != out


def _cgroup_file(cid, controller, name):
    from bocker.kernel import cgroups
    cg = cgroups.driver()
    if cg.version == 2:
        return os.path.join(cg._dir(cid), name)
    return os.path.join(cg._dir(controller, cid), name)


def test_limits_are_written_while_running(bocker, tmp_path):
    cidfile = tmp_path / "cid"
    proc = subprocess.Popen([BOCKER, "run", "--rm", "--cidfile", str(cidfile), "-m", "64m",
                             "--pids-limit", "20", "--cpus", "0.5", "--cpu-shares", "256",
                             "busybox", "sleep", "3"])
    try:
        for _ in range(200):
            if cidfile.exists() and cidfile.read_text():
                break
            time.sleep(0.01)
        cid = cidfile.read_text()
        from bocker.kernel import cgroups
        if cgroups.driver().version == 1:
            assert open(_cgroup_file(cid, "memory", "memory.limit_in_bytes")).read().strip() == str(64 << 20)
            assert open(_cgroup_file(cid, "pids", "pids.max")).read().strip() == "20"
            assert open(_cgroup_file(cid, "cpu", "cpu.cfs_quota_us")).read().strip() == "50000"
            assert open(_cgroup_file(cid, "cpu", "cpu.shares")).read().strip() == "256"
            procs = open(_cgroup_file(cid, "memory", "cgroup.procs")).read().split()
        else:
            assert open(_cgroup_file(cid, "memory", "memory.max")).read().strip() == str(64 << 20)
            assert open(_cgroup_file(cid, "pids", "pids.max")).read().strip() == "20"
            assert open(_cgroup_file(cid, "cpu", "cpu.max")).read().split() == ["50000", "100000"]
            procs = open(_cgroup_file(cid, "memory", "cgroup.procs")).read().split()
        assert len(procs) == 1
    finally:
        assert proc.wait(timeout=30) == 0


def test_memory_hog_is_oom_killed(bocker, tmp_path):
    cidfile = tmp_path / "cid"
    proc = bocker("run", "--cidfile", str(cidfile), "-m", "16m", "busybox",
                  "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
    cid = cidfile.read_text()
    try:
        assert proc.returncode == 137
        info = json.loads(bocker("inspect", cid, check=True).stdout)[0]
        assert info["State"]["OOMKilled"] is True
        assert info["State"]["ExitCode"] == 137
        assert info["HostConfig"]["Memory"] == 16 << 20
    finally:
        bocker("rm", cid, check=True)


def test_fork_loop_stops_at_pids_limit(bocker):
    loop = "for i in $(seq {}); do sleep 30 & done; set -- /proc/[0-9]*; echo $#"
    # under the limit: the shell and its four sleeps
    assert bocker("run", "--rm", "--pids-limit", "6", "busybox", "sh", "-c",
                  loop.format(4)).stdout == "5\n"
    # over it: the seventh process cannot be forked
    proc = bocker("run", "--rm", "--pids-limit", "6", "busybox", "sh", "-c", loop.format(15))
    assert proc.returncode != 0 and "can't fork" in proc.stderr


def test_logs_equal_output(bocker):
    proc = bocker("run", "--name", "logged", "busybox", "sh", "-c",
                  "echo one; echo two >&2; printf 'three'")
    try:
        assert proc.stdout == "one\nthree" and proc.stderr == "two\n"
        logs = bocker("logs", "logged", check=True)
        assert logs.stdout == "one\nthree\n" and logs.stderr == "two\n"
    finally:
        bocker("rm", "logged", check=True)


def test_ps_and_inspect(bocker):
    bocker("run", "--name", "listed", "-e", "A=1", "busybox", "sh", "-c", "exit 3")
    try:
        rows = bocker("ps", "-a", check=True).stdout.splitlines()
        assert rows[0].split() == ["CONTAINER_ID", "COMMAND", "IMAGE", "STATUS", "ADDRESS", "PORTS", "NAME"]
        row = next(r for r in rows if r.endswith("listed"))
        assert "Exited (3)" in row and "busybox" in row
        assert "listed" not in bocker("ps", check=True).stdout
        info = json.loads(bocker("inspect", "listed", check=True).stdout)[0]
        assert info["Name"] == "/listed" and info["State"]["ExitCode"] == 3
        assert "A=1" in info["Config"]["Env"]
        assert info["Config"]["Cmd"] == ["sh", "-c", "exit 3"]
        assert info["HostConfig"]["CpuShares"] == 0  # Docker's default: none written
    finally:
        bocker("rm", "listed", check=True)


def test_commit_then_run_sees_file(bocker):
    bocker("run", "--name", "builder", "busybox", "sh", "-c", "echo built > /made", check=True)
    new_id = None
    try:
        out = bocker("commit", "builder", "--name", "committed:v1", check=True).stdout
        new_id = out.split()[-1]
        assert bocker("run", "--rm", "committed:v1", "cat", "/made").stdout == "built\n"
    finally:
        bocker("rm", "builder", check=True)
        if new_id:
            bocker("rmi", new_id, check=True)


def test_commit_replaces_image_keeping_id(bocker, tmp_path):
    (tmp_path / "t").mkdir()
    image_id = bocker("init", str(tmp_path / "t"), check=True).stdout.split()[1]
    bocker("run", "--name", "b2", "busybox", "sh", "-c", "echo v2 > /v", check=True)
    try:
        out = bocker("commit", "b2", image_id, check=True).stdout
        assert out == f"Removed: {image_id}\nCreated: {image_id}\n"
        # the container's whole tree (busybox included) is now the image's
        assert bocker("run", "--rm", image_id, "cat", "/v").stdout == "v2\n"
    finally:
        bocker("rm", "b2", check=True)
        bocker("rmi", image_id, check=True)


def test_rm_unknown_container(bocker):
    proc = bocker("rm", "ps_000000000000")
    assert proc.returncode == 1 and "No container named 'ps_000000000000' exists" in proc.stderr


def test_duplicate_name_rejected(bocker):
    bocker("run", "--name", "dup", "busybox", "true", check=True)
    try:
        proc = bocker("run", "--name", "dup", "busybox", "true")
        assert proc.returncode == 125 and "already in use" in proc.stderr  # Docker's conflict
    finally:
        bocker("rm", "dup", check=True)


def test_no_device_access_beyond_dev(bocker, tmp_path):
    """A device node in an image (or made inside) cannot be opened: the
    rootfs and volumes are nodev and CAP_MKNOD is dropped."""
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    os.mknod(tree / "hostnull", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    vol = tmp_path / "vol"
    vol.mkdir()
    os.mknod(vol / "volnull", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    image = bocker("init", str(tree), check=True).stdout.split()[1]
    try:
        busybox = os.path.realpath("/bin/busybox")
        proc = bocker("run", "--rm", "-v", f"{busybox}:/bin/busybox:ro", "-v", f"{vol}:/vol",
                      image, "/bin/busybox", "sh", "-c",
                      "/bin/busybox cat /hostnull; echo $?; /bin/busybox cat /vol/volnull; echo $?;"
                      " /bin/busybox mknod /sda b 8 0; echo $?")
        assert proc.stdout == "1\n1\n1\n", proc.stderr
        assert proc.stderr.count("Permission denied") == 2
        assert "Operation not permitted" in proc.stderr
    finally:
        bocker("rmi", image, check=True)


def test_full_registry_reference_finds_short_name(bocker):
    assert bocker("run", "--rm", "docker.io/library/busybox:latest", "echo", "ok").stdout == "ok\n"
    proc = bocker("run", "--rm", "--pull", "never", "docker.io/library/nosuch", "true")
    assert proc.stderr == "bocker: No image named 'docker.io/library/nosuch' exists\n"


def test_child_failing_before_parent_says_go(paths, monkeypatch, capfd, tmp_path):
    """The child can fail a step before the parent writes its go byte: the
    write then meets EPIPE, and the child's report must still win (click
    would turn a stray EPIPE into a silent exit 1)."""
    from bocker.errors import StartError
    from bocker.runtime import containers, spec

    real_write = os.write

    def late_go(fd, data):
        if data == b"g":
            time.sleep(0.2)  # the child reaches its mkdir and dies meanwhile
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", late_go)
    with pytest.raises(StartError) as e:
        # the working directory is made by the child, below a read-only
        # bind: its mkdir fails
        containers.run(paths, spec.RunRequest("busybox", ["true"], workdir="/vol/no/such",
                                              volumes=[f"{tmp_path}:/vol:ro"], remove=True))
    assert (e.value.exit_code, str(e.value)) == (125, "mkdir cwd: Read-only file system")


def test_child_never_execs_if_parent_goes_away_before_go(paths):
    """If bocker dies between clone and its go byte, the child must see EOF
    and exit without running the command (it must not hold the write end
    of its own go pipe)."""
    import select

    from bocker.image import images
    from bocker.kernel import native

    rootfs = images.rootfs(paths, images.resolve(paths, "busybox"))
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    child = native.spawn(rootfs, ["true"], ["PATH=/bin"], go_fd=go_r,
                         clone_flags=native.CLONE_NEWNS | native.CLONE_NEWPID, trace=True)
    os.close(go_r)
    os.close(go_w)  # what the parent's death does to its end
    try:
        assert select.select([child.pidfd], [], [], 10)[0], "child still waiting"
        _, status = os.waitpid(child.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 125
        reports = native.read_reports(child.status_fd)
        assert reports[-1][:2] == ("wait for parent", 125)  # ECANCELED
    finally:
        os.close(child.pidfd)


def test_seccomp_filter(bocker):
    """New namespaces (even a user namespace, which needs no capability),
    keyrings and the like are refused; --privileged has no filter."""
    out = bocker("run", "--rm", "busybox", "sh", "-c",
                 "grep '^Seccomp:' /proc/self/status; unshare -U true; echo userns=$?;"
                 " unshare -n true; echo netns=$?; (true &); wait; echo fork=$?").stdout
    assert out.splitlines() == ["Seccomp:\t2", "userns=1", "netns=1", "fork=0"]
    priv = bocker("run", "--rm", "--privileged", "busybox", "grep", "^Seccomp:",
                  "/proc/self/status", check=True).stdout
    assert priv == "Seccomp:\t0\n"
