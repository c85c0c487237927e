"""podman (rootful, conmon, cgroupfs) drives the OCI runtime under test
(bocker-oci, or $BOCKER_OCI_RUNTIME) with a private root: run, exit
codes, run -d + exec + stop + rm, run -it through a pty, resource limits
in the container's cgroup, update, pause, rm -f.  The fixture checks that
nothing is left after each test (oci_clients.py)."""
import json
import os

import pexpect
import pytest

from oci_clients import alive, cgroup_file, podman_session, wait_for


@pytest.fixture
def podman():
    with podman_session() as p:
        yield p


def inspect(podman, cid):
    return json.loads(podman("inspect", cid).stdout)[0]


def read(path):
    with open(path) as f:
        return f.read().strip()


def test_run_rm_echo(podman):
    proc = podman(*podman.run_args("--rm", podman.image, "echo", "hi"))
    assert proc.stdout == "hi\n"
    assert podman("ps", "-aq").stdout == ""


def test_exit_code_propagates(podman):
    proc = podman(*podman.run_args("--rm", podman.image, "sh", "-c", "echo out; echo err >&2; exit 3"),
                  check=False)
    assert (proc.returncode, proc.stdout) == (3, "out\n")
    assert "err\n" in proc.stderr


def test_stdin_user_env_cwd(podman):
    """-i: stdin reaches the container; --user, -e, -w reach config.json's process."""
    proc = podman(*podman.run_args("-i", "--rm", "--user", "1000:1000", "-e", "FOO=bar",
                                   "-w", "/tmp", podman.image, "sh", "-c",
                                   "id -u; id -g; echo $FOO; pwd; cat"), input="from stdin\n")
    assert proc.stdout == "1000\n1000\nbar\n/tmp\nfrom stdin\n"


# podman's default capability set (containers.conf default_capabilities)
DEFAULT_CAPS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
                "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13,
                "SYS_CHROOT": 18, "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31}
STATUS = "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; hostname; " \
         "touch /probe 2>/dev/null && echo rw || echo ro"


def status_fields(text):
    lines = text.splitlines()
    fields = dict(line.split(":\t", 1) for line in lines[:-2])
    return fields, lines[-2], lines[-1]


def test_default_confinement(podman):
    """What podman's config.json asks for by default: its 14 capabilities,
    its seccomp profile, the short ID as hostname, a writable rootfs."""
    cid = podman(*podman.run_args("-d", podman.image, "sleep", "100")).stdout.strip()
    fields, hostname, rootfs = status_fields(podman("exec", cid, "sh", "-c", STATUS).stdout)
    mask = f"{sum(1 << bit for bit in DEFAULT_CAPS.values()):016x}"
    assert (fields["CapEff"], fields["CapBnd"]) == (mask, mask)
    assert (fields["NoNewPrivs"], fields["Seccomp"]) == ("0", "2")
    assert (hostname, rootfs) == (cid[:12], "rw")
    podman("rm", "--force", "--time", "0", cid)


# podman's maskedPaths that are files; the runtime masks those the kernel has
MASKED_FILES = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/latency_stats",
                "/proc/sched_debug")


def test_mounts_podman_asks_for(podman):
    """config.json's mounts, maskedPaths and readonlyPaths as podman writes
    them: its bind of /etc/hostname, /dev/shm, /dev/mqueue, read-only cgroup
    file systems (type "cgroup"), masked /proc files, /proc/sys read-only."""
    masked = [path for path in MASKED_FILES if os.path.exists(path)]
    assert masked
    script = ("cat /etc/hostname; echo; "
              "awk '{print $2, $3, substr($4, 1, 2)}' /proc/mounts | "
              "grep -E '^/(dev/shm|dev/mqueue|sys/fs/cgroup[^ ]*|proc|sys|dev/pts) '; "
              f"cat {' '.join(masked)} | wc -c; "
              "echo 1 2>/dev/null > /proc/sys/kernel/ns_last_pid && echo sys-rw || echo sys-ro")
    cid = podman(*podman.run_args("-d", podman.image, "sleep", "100")).stdout.strip()
    lines = podman("exec", cid, "sh", "-c", script).stdout.splitlines()
    assert lines[0] == cid[:12]
    mounts = set(lines[1:-2])
    assert {"/proc proc rw", "/dev/pts devpts rw", "/dev/mqueue mqueue rw",
            "/sys sysfs ro"} <= mounts, mounts
    assert any(m.startswith("/dev/shm ") for m in mounts)
    # the container's own cgroups, read-only: cgroup2 at /sys/fs/cgroup, or
    # (v1) a tmpfs there and each hierarchy below it
    cgroupfs = [m for m in mounts if m.split()[1] in ("cgroup", "cgroup2")]
    assert cgroupfs and all(m.startswith("/sys/fs/cgroup") and m.endswith(" ro")
                            for m in cgroupfs), mounts
    assert lines[-2:] == ["0", "sys-ro"]
    podman("rm", "--force", "--time", "0", cid)


def test_confinement_options(podman):
    """--cap-drop all, --security-opt no-new-privileges, --read-only, --hostname."""
    proc = podman(*podman.run_args("--rm", "--cap-drop", "all", "--read-only", "--hostname", "box",
                                   "--security-opt", "no-new-privileges", podman.image,
                                   "sh", "-c", STATUS))
    fields, hostname, rootfs = status_fields(proc.stdout)
    assert (fields["CapEff"], fields["CapBnd"]) == ("0" * 16, "0" * 16)
    assert (fields["NoNewPrivs"], fields["Seccomp"]) == ("1", "2")
    assert (hostname, rootfs) == ("box", "ro")


def test_missing_command_is_127(podman):
    """podman maps the runtime's "not found" create error to 127, as for runc."""
    proc = podman(*podman.run_args("--rm", podman.image, "/no/such/binary"), check=False)
    assert proc.returncode == 127, proc.stderr
    assert podman("ps", "-aq").stdout == ""


def test_detached_exec_stop_rm(podman):
    cid = podman(*podman.run_args("-d", podman.image, "sleep", "100")).stdout.strip()
    state = inspect(podman, cid)["State"]
    assert state["Running"] and state["Pid"] > 0
    pid = state["Pid"]
    # exec joins the container: its PID namespace (sleep is 1) and its cgroup
    proc = podman("exec", cid, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /proc/self/cgroup")
    lines = proc.stdout.splitlines()
    assert lines[0] == "sleep 100 "
    assert any(line.endswith(f"{podman.cgroup_parent}/libpod-{cid}") for line in lines[1:]), lines
    proc = podman("exec", cid, "sh", "-c", "exit 7", check=False)
    assert proc.returncode == 7
    podman("stop", "--time", "1", cid)
    state = inspect(podman, cid)["State"]
    assert state["Status"] == "exited" and not state["Running"]
    assert not alive(pid)
    podman("rm", cid)
    assert podman("ps", "-aq").stdout == ""


def test_init_then_start(podman):
    """`podman init` is the runtime's create alone: the process waits for
    `start` (its PID is known and alive) and runs only then."""
    cid = podman("create", "--network", "none", "--cgroup-parent", podman.cgroup_parent,
                 podman.image, "sh", "-c", "echo started; exit 6").stdout.strip()
    podman("init", cid)
    state = inspect(podman, cid)["State"]
    assert state["Status"] == "initialized" and alive(state["Pid"])
    assert podman("logs", cid).stdout == ""
    proc = podman("start", "--attach", cid, check=False)
    assert (proc.returncode, proc.stdout) == (6, "started\n")
    podman("rm", cid)


def test_rm_force_of_a_created_container(podman):
    """podman rm -f of an initialized container: `delete --force` of a
    created one (allowed by the spec only with --force)."""
    cid = podman("create", "--network", "none", "--cgroup-parent", podman.cgroup_parent,
                 podman.image, "sleep", "100").stdout.strip()
    podman("init", cid)
    pid = inspect(podman, cid)["State"]["Pid"]
    podman("rm", "--force", "--time", "0", cid)
    assert wait_for(lambda: not alive(pid), 20)
    assert podman("ps", "-aq").stdout == ""


def test_run_it_through_a_pty(podman):
    child = podman.spawn(*podman.run_args("-it", "--rm", podman.image, "sh"))
    try:
        child.expect_exact("# ")
        child.sendline("tty; stty size; echo $((6 * 7))")
        child.expect(r"/dev/pts/\d+\r\n24 80\r\n42\r\n")
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 5
    assert podman("ps", "-aq").stdout == ""


def test_exec_it_through_a_pty(podman):
    cid = podman(*podman.run_args("-d", podman.image, "sleep", "100")).stdout.strip()
    child = podman.spawn("exec", "-it", cid, "sh")
    try:
        child.expect_exact("# ")
        child.sendline("tty; tr '\\0' ' ' < /proc/1/cmdline; echo; exit 4")
        child.expect(r"/dev/pts/\d+\r\nsleep 100 \r\n")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 4
    podman("rm", "--force", "--time", "0", cid)


def test_limits_in_the_containers_cgroup(podman):
    cid = podman(*podman.run_args("-d", "--memory", "64m", "--pids-limit", "50",
                                  podman.image, "sleep", "100")).stdout.strip()
    pid = inspect(podman, cid)["State"]["Pid"]
    memory = cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max")
    pids = cgroup_file(pid, "pids", "pids.max", "pids.max")
    assert f"{podman.cgroup_parent}/libpod-{cid}" in memory
    assert read(memory) == str(64 << 20)
    assert read(pids) == "50"
    # podman update -> `runtime update --resources=FILE`
    podman("update", "--memory", "128m", cid)
    assert read(memory) == str(128 << 20)
    podman("rm", "--force", "--time", "0", cid)


def test_pause_unpause(podman):
    cid = podman(*podman.run_args("-d", podman.image, "sleep", "100")).stdout.strip()
    podman("pause", cid)
    assert inspect(podman, cid)["State"]["Status"] == "paused"
    freezer = cgroup_file(inspect(podman, cid)["State"]["Pid"], "freezer", "freezer.state",
                          "cgroup.freeze")
    assert read(freezer) in ("FROZEN", "1")
    podman("unpause", cid)
    assert inspect(podman, cid)["State"]["Status"] == "running"
    assert read(freezer) in ("THAWED", "0")
    assert podman("exec", cid, "true").returncode == 0
    podman("rm", "--force", "--time", "0", cid)


def test_rm_force_of_a_running_container(podman):
    cid = podman(*podman.run_args("-d", podman.image, "sleep", "100")).stdout.strip()
    pid = inspect(podman, cid)["State"]["Pid"]
    podman("rm", "--force", "--time", "0", cid)
    assert wait_for(lambda: not alive(pid), 20)
    assert podman("ps", "-aq").stdout == ""
