"""Docker's run/create/exec/start flags against the real kernel (issue 15):
-h, -c, Docker's no-limit defaults, -m 1.5g/0, --memory-swap,
--cpuset-cpus, --shm-size, -w making its directory, labels, the stop
signal and timeout, --init, --group-add, --pid/--ipc/--uts host,
generated names, start of a running container, create, exec -d,
exec --env-file, exec --privileged and the 125 of a usage error."""
import os
import re

import pytest

from conftest import wait_for
from runfixtures import cgroup_file as _cgroup, detached as _detached, inspect as _inspect
from bocker.kernel import cgroups

UNLIMITED = 1 << 62  # v1 shows "no limit" as 2^63 - a page; anything this large is none


def _v1():
    return cgroups.driver().version == 1


# ------------------------------------------------------------ -h, --help, 125

def test_h_is_the_hostname_and_help_is_long_only(bocker):
    assert bocker("run", "--rm", "-h", "myhost", "busybox", "hostname").stdout == "myhost\n"
    help_ = bocker("run", "--help")
    assert help_.returncode == 0 and "-h, --hostname" in help_.stdout
    assert bocker("-h").returncode == 0  # the group keeps -h for help
    assert "-h, --hostname" in bocker("create", "--help", check=True).stdout


@pytest.mark.parametrize("argv", [["run", "--bogus", "busybox"], ["ps", "--bogus"],
                                  ["stop"], ["exec", "--nope", "x", "true"],
                                  ["create", "--cpu-shares", "x", "busybox"]])
def test_usage_errors_exit_125(bocker, argv):
    proc = bocker(*argv)
    assert proc.returncode == 125, proc.stderr


# ------------------------------------------------------------ limits

def test_no_limits_unless_asked(bocker, cleanup):
    env = {k: "" for k in ("BOCKER_MEM_LIMIT", "BOCKER_CPU_SHARE")}
    cid = bocker("run", "-d", "busybox", "sleep", "60", env=env, check=True).stdout.strip()
    cleanup.append(cid)
    host = _inspect(bocker, cid)["HostConfig"]
    assert (host["Memory"], host["CpuShares"], host["MemorySwap"]) == (0, 0, 0)
    if _v1():
        assert int(_cgroup(cid, "memory", "memory.limit_in_bytes")) > UNLIMITED
        assert _cgroup(cid, "cpu", "cpu.shares") == "1024"  # the kernel's, never written
    else:
        assert _cgroup(cid, "memory", "memory.max") == "max"


def test_env_limits_still_honoured(bocker, cleanup):
    cid = bocker("run", "-d", "busybox", "sleep", "60", check=True,
                 env={"BOCKER_MEM_LIMIT": "64", "BOCKER_CPU_SHARE": "300"}).stdout.strip()
    cleanup.append(cid)
    host = _inspect(bocker, cid)["HostConfig"]
    assert (host["Memory"], host["CpuShares"], host["MemorySwap"]) == (64 << 20, 300, 128 << 20)
    if _v1():
        assert _cgroup(cid, "memory", "memory.limit_in_bytes") == str(64 << 20)
        assert _cgroup(cid, "cpu", "cpu.shares") == "300"


def test_c_fractional_m_and_memory_swap(bocker, cleanup):
    cid = _detached(bocker, cleanup, "-c", "256", "-m", "1.5g", "--memory-swap", "2g",
                    "busybox", "sleep", "60")
    host = _inspect(bocker, cid)["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["CpuShares"]) == (3 << 29, 2 << 30, 256)
    if _v1():
        assert _cgroup(cid, "memory", "memory.limit_in_bytes") == str(3 << 29)
        assert _cgroup(cid, "memory", "memory.memsw.limit_in_bytes") == str(2 << 30)
        assert _cgroup(cid, "cpu", "cpu.shares") == "256"


def test_memory_swap_unlimited_and_m_0(bocker, cleanup):
    cid = _detached(bocker, cleanup, "-m", "64m", "--memory-swap", "-1",
                    "busybox", "sleep", "60")
    zero = _detached(bocker, cleanup, "-m", "0", "busybox", "sleep", "60")
    assert _inspect(bocker, zero)["HostConfig"]["Memory"] == 0
    if _v1():
        assert int(_cgroup(cid, "memory", "memory.memsw.limit_in_bytes")) > UNLIMITED
        assert int(_cgroup(zero, "memory", "memory.limit_in_bytes")) > UNLIMITED


@pytest.mark.parametrize("argv, message", [
    (["--memory-swap", "1g"], "always set the memory limit"),
    (["-m", "64m", "--memory-swap", "32m"], "should be larger than the memory limit"),
    (["--cpuset-cpus", "0-x"], "invalid --cpuset-cpus"),
    (["--cpuset-cpus", "4095"], "this host has CPUs"),
    (["--shm-size", "0"], "invalid size"),
    (["--stop-signal", "NOPE"], "invalid signal"),
    (["-l", "=x"], "invalid label"),
    (["--pid", "container:x"], "only 'host'"),
    (["--uts", "host", "-h", "x"], "conflicting options"),
    (["--group-add", "no group"], "invalid --group-add"),
])
def test_refused_before_anything_is_made(bocker, argv, message):
    proc = bocker("run", "--rm", *argv, "busybox", "true")
    assert proc.returncode == 125 and message in proc.stderr, proc.stderr


def test_cpuset_cpus(bocker):
    out = bocker("run", "--rm", "--cpuset-cpus", "0", "busybox",
                 "grep", "Cpus_allowed_list", "/proc/self/status", check=True).stdout
    assert out.split() == ["Cpus_allowed_list:", "0"]


def test_shm_size(bocker):
    def shm(*args):
        out = bocker("run", "--rm", *args, "busybox", "grep", " /dev/shm ", "/proc/mounts",
                     check=True).stdout
        return re.findall(r"size=(\d+)k", out)[-1]  # the top one: what /dev/shm is

    assert shm() == "65536"
    assert shm("--shm-size", "128m") == "131072"


# ------------------------------------------------------------ -w, --entrypoint

def test_workdir_is_made(bocker):
    out = bocker("run", "--rm", "-w", "/made/here", "busybox", "sh", "-c",
                 "pwd; stat -c '%u %g %a' .", check=True).stdout
    assert out == "/made/here\n0 0 755\n"


def test_workdir_through_a_symlink_stays_inside(bocker, cleanup, tmp_path):
    target = tmp_path / "outside"          # the host path an escape would make
    bocker("run", "--name", "rf-linker", "busybox", "ln", "-s", str(target), "/esc",
           check=True)
    cleanup.append("rf-linker")
    image = bocker("commit", "rf-linker", "--name", "rf-linked", check=True).stdout
    image_id = image.split()[-1]
    try:
        out = bocker("run", "--rm", "-w", "/esc/sub", "rf-linked", "sh", "-c",
                     "pwd; test -d /esc/sub && echo made", check=True).stdout
        # (pwd resolves /esc: the container's own path of the directory)
        assert out == f"{target}/sub\nmade\n"
        assert not target.exists()             # made in the container's own tree
    finally:
        bocker("rm", "-f", "rf-linker")
        bocker("rmi", image_id)


def test_workdir_under_a_file_is_refused(bocker):
    proc = bocker("run", "--rm", "-w", "/bin/sh/x", "busybox", "true")
    assert proc.returncode == 125 and "cannot create the working directory" in proc.stderr


def test_entrypoint_empty_clears_it(bocker):
    assert bocker("run", "--rm", "--entrypoint", "", "busybox", "echo", "hi",
                  check=True).stdout == "hi\n"


# ------------------------------------------------------------ labels, stop

def test_labels(bocker, cleanup, tmp_path):
    f = tmp_path / "labels"
    f.write_text("# mine\nfrom=file\nboth=file\n")
    cid = _detached(bocker, cleanup, "-l", "a=1", "--label", "both=flag", "--label", "empty",
                    "--label-file", str(f), "busybox", "sleep", "60")
    labels = _inspect(bocker, cid)["Config"]["Labels"]
    assert labels == {"a": "1", "both": "flag", "empty": "", "from": "file"}


def test_stop_signal_is_used_by_stop_and_restart(bocker, cleanup):
    script = "trap 'exit 7' USR1; while :; do sleep 0.1; done"
    cid = _detached(bocker, cleanup, "--stop-signal", "USR1", "busybox", "sh", "-c", script)
    assert _inspect(bocker, cid)["Config"]["StopSignal"] == "USR1"
    bocker("stop", cid, check=True)
    assert _inspect(bocker, cid)["State"]["ExitCode"] == 7
    bocker("restart", cid, check=True)     # started again; restart stops it the same way
    bocker("stop", cid, check=True)
    assert _inspect(bocker, cid)["State"]["ExitCode"] == 7


def test_stop_timeout_is_used(bocker, cleanup):
    cid = _detached(bocker, cleanup, "--stop-timeout", "1", "busybox", "sh", "-c",
                    "trap '' TERM; while :; do sleep 0.1; done")
    assert _inspect(bocker, cid)["Config"]["StopTimeout"] == 1
    bocker("stop", cid, check=True, timeout=8)  # 1 s, not 10: else the timeout kills it
    assert _inspect(bocker, cid)["State"]["ExitCode"] == 137


# ------------------------------------------------------------ --init

def _ps(bocker, cid):
    """[(stat, args)] of the container's processes."""
    out = bocker("exec", cid, "ps", "-o", "stat,args", check=True).stdout
    return [tuple(line.split(None, 1)) for line in out.splitlines()[1:] if line.strip()]


def _zombies(bocker, cid):
    return [p for p in _ps(bocker, cid) if p[0].startswith("Z")]


@pytest.mark.parametrize("init", [True, False])
def test_init_reaps_orphans(bocker, cleanup, init):
    # the subshell's `sleep 1` is orphaned to PID 1 while it runs; it ends
    # after sh has exec'd `sleep 100`, which (PID 1 without --init) never
    # reaps it
    cid = _detached(bocker, cleanup, *(["--init"] if init else []), "busybox", "sh", "-c",
                    "(sleep 1 &); exec sleep 100")
    # (seen running first, so that its end is what is checked below)
    assert wait_for(lambda: any(a == "sleep 1" for _, a in _ps(bocker, cid)))
    orphan_ended = lambda: not any(a == "sleep 1" and not st.startswith("Z")  # noqa: E731
                                   for st, a in _ps(bocker, cid))
    assert wait_for(orphan_ended)
    if init:
        cmdline = bocker("exec", cid, "cat", "/proc/1/cmdline", check=True).stdout
        assert cmdline.split("\0")[:3] == ["/dev/init", "--", "sh"]
        assert _zombies(bocker, cid) == []
    else:
        assert _zombies(bocker, cid) != []


def test_init_forwards_signals_and_exits_with_the_code(bocker, cleanup):
    cid = _detached(bocker, cleanup, "--init", "busybox", "sh", "-c",
                    "trap 'exit 9' TERM; while :; do sleep 0.1; done")
    bocker("stop", cid, check=True)
    assert _inspect(bocker, cid)["State"]["ExitCode"] == 9
    assert _inspect(bocker, cid)["HostConfig"]["Init"] is True
    assert bocker("run", "--rm", "--init", "busybox", "sh", "-c", "exit 3").returncode == 3


def test_init_binary_is_read_only(bocker):
    proc = bocker("run", "--rm", "--init", "busybox", "sh", "-c", "echo x > /dev/init")
    assert proc.returncode != 0 and "Read-only" in proc.stderr


# ------------------------------------------------------------ ids, namespaces

def test_group_add(bocker):
    out = bocker("run", "--rm", "--group-add", "1234", "--group-add", "77", "busybox",
                 "id", "-G", check=True).stdout
    assert set(out.split()) == {"0", "1234", "77"}
    proc = bocker("run", "--rm", "--group-add", "nosuchgroup", "busybox", "true")
    assert proc.returncode == 125 and "unable to find group nosuchgroup" in proc.stderr


def _caps(bocker, *args):
    out = bocker("run", "--rm", *args, "busybox", "grep", "CapEff", "/proc/self/status",
                 check=True).stdout
    return out.split()[1]


def test_pid_host_sees_host_processes_with_default_confinement(bocker):
    with open("/proc/1/comm") as f:
        host_init = f.read()
    assert bocker("run", "--rm", "--pid", "host", "busybox", "cat", "/proc/1/comm",
                  check=True).stdout == host_init
    assert _caps(bocker, "--pid", "host") == _caps(bocker)
    # root in the container lacks CAP_SYS_PTRACE: the host's init (all caps)
    # cannot be read or entered
    proc = bocker("run", "--rm", "--pid", "host", "busybox", "cat", "/proc/1/environ")
    assert proc.returncode != 0 and "Permission denied" in proc.stderr
    proc = bocker("run", "--rm", "--pid", "host", "busybox", "ls", "/proc/1/root/")
    assert proc.returncode != 0


def _gone(pid):
    """Whether host PID pid no longer runs a sleep (gone, a zombie, or reused)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return True
    comm, rest = text.split("(", 1)[1].rsplit(")", 1)
    return comm != "sleep" or rest.split()[0] in ("Z", "X")


def test_pid_host_container_ends_with_its_pid_1(bocker):
    # No PID namespace of its own: PID 1's exit kills nothing else, and a
    # process left behind holds the output open.  The container has ended
    # all the same (Docker's, containerd's rule) and the rest is killed
    # with its cgroup, so `run` returns and nothing outlives it.
    proc = bocker("run", "--rm", "--pid", "host", "busybox", "sh", "-c",
                  "sleep 300 & echo $!", timeout=60)
    assert proc.returncode == 0, proc.stderr
    pid = int(proc.stdout.split()[0])
    assert wait_for(lambda: _gone(pid))  # killed with its cgroup (reaped by its new parent)


def test_pid_host_detached_rm_f_returns_and_kills_the_rest(bocker, cleanup):
    cid = _detached(bocker, cleanup, "--pid", "host", "busybox", "sh", "-c",
                    "sleep 300 & echo $!; exec sleep 300")
    # its first log line: the orphan's host PID
    assert wait_for(lambda: bocker("logs", cid, check=True).stdout.split())
    orphan = int(bocker("logs", cid, check=True).stdout.split()[0])
    # SIGTERM ends PID 1 (a sleep exec'd by sh, no PID 1 protection here),
    # never the orphan: before the fix rm -f waited for it (300 s)
    assert bocker("rm", "-f", cid, timeout=60).returncode == 0
    assert wait_for(lambda: _gone(orphan))


def test_ipc_and_uts_host(bocker):
    def ns(kind, *args):
        return bocker("run", "--rm", *args, "busybox", "readlink", f"/proc/self/ns/{kind}",
                      check=True).stdout.strip()

    assert ns("ipc", "--ipc", "host") == os.readlink("/proc/self/ns/ipc")
    assert ns("ipc") != os.readlink("/proc/self/ns/ipc")
    assert ns("uts", "--uts", "host") == os.readlink("/proc/self/ns/uts")
    before = os.uname().nodename
    out = bocker("run", "--rm", "--uts", "host", "busybox", "hostname", check=True).stdout
    assert out.strip() == before == os.uname().nodename  # never renamed


# ------------------------------------------------------------ names, start, create

def test_generated_names(bocker, cleanup):
    a = _detached(bocker, cleanup, "busybox", "sleep", "60")
    b = _detached(bocker, cleanup, "busybox", "sleep", "60")
    names = [_inspect(bocker, c)["Name"] for c in (a, b)]
    # inspect's Name is Docker's: "/" then the name
    assert all(re.fullmatch(r"/[a-z]+_[a-z]+[0-9]?", n) for n in names), names
    assert names[0] != names[1]
    assert _inspect(bocker, names[0][1:])["Id"] == a  # the name finds it


def test_start_of_a_running_container_is_a_no_op(bocker, cleanup):
    cid = _detached(bocker, cleanup, "busybox", "sleep", "60")
    pid = _inspect(bocker, cid)["State"]["Pid"]
    proc = bocker("start", cid)
    assert (proc.returncode, proc.stdout) == (0, cid + "\n")
    assert _inspect(bocker, cid)["State"]["Pid"] == pid


def test_create_then_start(bocker, cleanup):
    proc = bocker("create", "--name", "rf-created", "-l", "k=v", "busybox", "sh", "-c",
                  "echo started; exit 4", check=True)
    cid = proc.stdout.strip()
    cleanup.append(cid)
    info = _inspect(bocker, cid)
    assert info["State"]["Status"] == "created" and info["Config"]["Labels"] == {"k": "v"}
    assert info["Name"] == "/rf-created"
    # a later command does not take it for a crashed create
    assert _inspect(bocker, cid)["State"]["Status"] == "created"
    proc = bocker("start", "-a", "rf-created")
    assert (proc.returncode, proc.stdout) == (4, "started\n")


def test_create_refusal_exits_125(bocker):
    assert bocker("create", "-m", "1x", "busybox").returncode == 125


# ------------------------------------------------------------ exec

def test_exec_detached_env_file_and_privileged(bocker, cleanup, tmp_path):
    cid = _detached(bocker, cleanup, "busybox", "sleep", "60")
    proc = bocker("exec", "-d", cid, "sh", "-c", "sleep 1; touch /done; sleep 60")
    assert (proc.returncode, proc.stdout) == (0, "")
    assert wait_for(lambda: bocker("exec", cid, "test", "-e", "/done").returncode == 0)
    f = tmp_path / "env"
    f.write_text("A=from-file\n# no\nB=2\n")
    out = bocker("exec", "--env-file", str(f), "-e", "B=3", cid, "sh", "-c", "echo $A $B",
                 check=True).stdout
    assert out == "from-file 3\n"

    def caps(*args):
        out = bocker("exec", *args, cid, "grep", "CapEff", "/proc/self/status", check=True)
        return int(out.stdout.split()[1], 16)

    assert caps("--privileged") & ~caps() and caps("--privileged") & (1 << 21)  # SYS_ADMIN


def test_inspect_shows_the_host_config(bocker, cleanup):
    cid = _detached(bocker, cleanup, "--cpuset-cpus", "0", "--shm-size", "1m", "--init",
                    "--group-add", "5", "--pid", "host", "busybox", "sleep", "60")
    host = _inspect(bocker, cid)["HostConfig"]
    assert (host["CpusetCpus"], host["ShmSize"], host["Init"], host["GroupAdd"],
            host["PidMode"], host["IpcMode"]) == ("0", 1 << 20, True, ["5"], "host", "private")

