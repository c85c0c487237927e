"""containerd drives the OCI runtime under test (bocker-oci, or
$BOCKER_OCI_RUNTIME) through ctr and the runc shim v2 with BinaryName
(`ctr run --runc-binary`), the path a Kubernetes node takes: run, exit
codes, run -d + exec + ps + pause + kill + delete, -t through a pty,
memory limit.  containerd has its own root, state, sockets and mount
namespace; the fixture checks that nothing is left (oci_clients.py)."""
import pexpect
import pytest

from oci_clients import alive, cgroup_file, containerd_session, wait_for


@pytest.fixture
def containerd():
    with containerd_session() as c:
        yield c


def task_pid(containerd, cid):
    """The PID `ctr tasks ls` shows for task cid (RUNNING), or None."""
    for line in containerd.ctr("tasks", "ls").stdout.splitlines()[1:]:
        name, pid, status = line.split()
        if name == cid:
            return int(pid) if status == "RUNNING" else None
    return None


def task_status(containerd, cid):
    for line in containerd.ctr("tasks", "ls").stdout.splitlines()[1:]:
        name, _pid, status = line.split()
        if name == cid:
            return status
    return None


def read(path):
    with open(path) as f:
        return f.read().strip()


def test_run_rm_echo(containerd):
    proc = containerd.ctr(*containerd.run_args("t1", "--rm"), containerd.image, "t1", "echo", "hi")
    assert proc.stdout == "hi\n"
    assert containerd.ids("containers") == [] and containerd.ids("tasks") == []


def test_exit_code_propagates(containerd):
    proc = containerd.ctr(*containerd.run_args("t1", "--rm"), containerd.image, "t1",
                          "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (proc.returncode, proc.stdout) == (3, "out\n")
    assert "err\n" in proc.stderr
    assert containerd.ids("containers") == []


def test_create_failure_reaches_ctr(containerd):
    """The shim builds its error from the runtime's --log (JSON lines): the
    runtime's own words naming the missing binary reach ctr; then the
    shim's `delete --force` of the half-made container leaves nothing."""
    c = containerd
    proc = c.ctr(*c.run_args("t1", "--rm"), c.image, "t1", "/no/such", check=False)
    assert proc.returncode == 1
    assert "OCI runtime create failed" in proc.stderr and '"/no/such"' in proc.stderr, proc.stderr
    assert c.ids("containers") == [] and c.ids("tasks") == []


def test_env_and_cwd(containerd):
    """--env and --cwd reach config.json's process (ctr never closes the
    container's stdin at its own EOF, so no stdin test here)."""
    c = containerd
    proc = c.ctr(*c.run_args("t1", "--rm", "--env", "FOO=bar", "--cwd", "/tmp"), c.image, "t1",
                 "sh", "-c", "echo $FOO; pwd; id -u")
    assert proc.stdout == "bar\n/tmp\n0\n"


# containerd's default capability set (oci.WithDefaultSpec): the same 14 as podman's
DEFAULT_CAPS = (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31)
STATUS = "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; " \
         "touch /probe 2>/dev/null && echo rw || echo ro"


def test_confinement(containerd):
    """ctr's default spec (14 capabilities, noNewPrivileges, no seccomp, a
    writable rootfs), then --seccomp, --read-only, --allow-new-privs."""
    c = containerd
    mask = f"{sum(1 << bit for bit in DEFAULT_CAPS):016x}"
    out = c.ctr(*c.run_args("t1", "--rm"), c.image, "t1", "sh", "-c", STATUS).stdout
    assert out == f"CapEff:\t{mask}\nNoNewPrivs:\t1\nSeccomp:\t0\nrw\n"
    out = c.ctr(*c.run_args("t2", "--rm", "--seccomp", "--read-only", "--allow-new-privs"),
                c.image, "t2", "sh", "-c", STATUS).stdout
    assert out == f"CapEff:\t{mask}\nNoNewPrivs:\t0\nSeccomp:\t2\nro\n"


def test_detached_exec_ps_pause_kill_delete(containerd):
    c = containerd
    c.ctr(*c.run_args("t1", "-d"), c.image, "t1", "sleep", "100")
    pid = task_pid(c, "t1")
    assert pid and alive(pid)
    # exec joins the container (sleep is its PID 1) and its cgroup
    proc = c.ctr(*c.exec_args("x1"), "t1", "sh", "-c",
                 "tr '\\0' ' ' < /proc/1/cmdline; echo; cat /proc/self/cgroup")
    lines = proc.stdout.splitlines()
    assert lines[0] == "sleep 100 "
    assert any(line.endswith(f"{c.cgroup_parent}/t1") for line in lines[1:]), lines
    proc = c.ctr(*c.exec_args("x2"), "t1", "sh", "-c", "exit 7", check=False)
    assert proc.returncode == 7
    # `ctr tasks ps` -> `runtime ps --format json`: the host PIDs
    pids = [int(line.split()[0]) for line in c.ctr("tasks", "ps", "t1").stdout.splitlines()[1:]]
    assert pids == [pid]
    c.ctr("tasks", "pause", "t1")
    assert task_status(c, "t1") == "PAUSED"
    freezer = cgroup_file(pid, "freezer", "freezer.state", "cgroup.freeze")
    assert read(freezer) in ("FROZEN", "1")
    c.ctr("tasks", "resume", "t1")
    assert task_status(c, "t1") == "RUNNING"
    c.ctr("tasks", "kill", "--signal", "SIGKILL", "t1")
    assert wait_for(lambda: task_status(c, "t1") == "STOPPED", 20)
    assert not alive(pid)
    c.ctr("tasks", "delete", "t1")
    c.ctr("containers", "delete", "t1")
    assert c.ids("containers") == [] and c.ids("tasks") == []


def test_kill_with_sigterm(containerd):
    """ctr's default signal; sh traps it, so the runtime must deliver it."""
    c = containerd
    c.ctr(*c.run_args("t1", "-d"), c.image, "t1", "sh", "-c",
          "trap 'exit 9' TERM; while :; do sleep 1; done")
    assert task_pid(c, "t1")
    c.ctr("tasks", "kill", "t1")
    assert wait_for(lambda: task_status(c, "t1") == "STOPPED", 20)
    proc = c.ctr("tasks", "delete", "t1")
    assert "exit code 9" in proc.stderr      # ctr warns of a non-zero status
    c.ctr("containers", "delete", "t1")


def test_run_tty_through_a_pty(containerd):
    c = containerd
    child = c.spawn(*c.run_args("t1", "--rm", "-t"), c.image, "t1", "sh")
    try:
        child.expect_exact("# ")
        child.sendline("tty; echo $((6 * 7))")
        # ctr's own terminal and the container's both turn \n into \r\n
        child.expect(r"/dev/pts/\d+\r+\n42\r+\n")
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 5
    assert c.ids("containers") == []


def test_exec_tty_through_a_pty(containerd):
    c = containerd
    c.ctr(*c.run_args("t1", "-d"), c.image, "t1", "sleep", "100")
    child = c.spawn(*c.exec_args("x1", "-t"), "t1", "sh")
    try:
        child.expect_exact("# ")
        child.sendline("tty; exit 4")
        child.expect(r"/dev/pts/\d+\r+\n")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 4
    c.ctr("tasks", "kill", "--signal", "SIGKILL", "t1")
    assert wait_for(lambda: task_status(c, "t1") == "STOPPED", 20)
    c.ctr("tasks", "delete", "t1")
    c.ctr("containers", "delete", "t1")


def test_memory_limit_in_the_containers_cgroup(containerd):
    c = containerd
    c.ctr(*c.run_args("t1", "-d", "--memory-limit", str(64 << 20)), c.image, "t1", "sleep", "100")
    pid = task_pid(c, "t1")
    memory = cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max")
    assert f"{c.cgroup_parent}/t1" in memory
    assert read(memory) == str(64 << 20)
    c.ctr("tasks", "delete", "--force", "t1")
    c.ctr("containers", "delete", "t1")
