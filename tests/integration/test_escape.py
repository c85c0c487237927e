"""The escape suite: each test attacks one confinement layer of a default
container from inside it, with the static probe of probe.c, and asserts
the exact refusal (the errno's name, or bocker's message and exit code).
Where it makes sense, a --privileged control shows the same probe
succeeds when the layer is off, so a test cannot pass because the probe
is broken.

Probes never harm the host: a kernel setting is only ever written with the
value it holds (read first), sysrq-trigger and irq files are opened and
never written, and the process-group and terminal attacks run only inside
a session and pseudo-terminal the test made for them.
"""
import os
import re
import subprocess

import pytest

from bocker.confine import capabilities

from conftest import BOCKER, run_bocker
from escapefixtures import (IMAGE, bocker_argv, detached, in_pty_session,  # noqa: F401
                            probe_binary, probe_image)


@pytest.fixture(autouse=True)
def remove_new_containers(paths):
    """Remove (-f) any container a test left, e.g. when an attack killed
    the bocker process that should have removed it; the leak check still
    sees what that cleanup could not undo."""
    before = set(run_bocker("ps", "-aq").stdout.split())
    yield
    for cid in set(run_bocker("ps", "-aq").stdout.split()) - before:
        run_bocker("rm", "-f", cid, timeout=60)


def probe(*args, run=(), timeout=60):
    """`bocker run --rm [run...] escape-probe probe ARGS`."""
    return run_bocker("run", "--rm", *run, IMAGE, "probe", *args, timeout=timeout)


def said(proc):
    """The probe's answer, with bocker's stderr for the assertion message."""
    return f"rc={proc.returncode} stdout={proc.stdout!r} stderr={proc.stderr!r}"


def host_read(path):
    with open(path) as f:
        return f.read()


def one_line_error(proc, *words):
    """bocker refused the run itself: exit 125, one line naming words."""
    lines = proc.stderr.splitlines()
    assert proc.returncode == 125, said(proc)
    assert len(lines) == 1 and lines[0].startswith("bocker: "), said(proc)
    for word in words:
        assert word in lines[0], said(proc)


# --------------------------------------------------- sysctls through /proc/sys

SYSCTL_FILES = ["/proc/sys/vm/swappiness", "/proc/sys/kernel/core_pattern"]


@pytest.mark.parametrize("path", SYSCTL_FILES)
def test_proc_sys_is_read_only(probe_image, path):
    """/proc/sys is read-only: the host's (not namespaced) settings cannot
    be written, not even with the value they hold."""
    before = host_read(path)
    proc = probe("rewrite", path)
    assert proc.stdout == "EROFS\n", said(proc)
    assert host_read(path) == before


@pytest.mark.parametrize("path", SYSCTL_FILES)
def test_proc_sys_privileged_control(probe_image, path):
    before = host_read(path)
    proc = probe("rewrite", path, run=["--privileged"])
    assert proc.stdout == "ok\n", said(proc)
    assert host_read(path) == before


# ------------------------------------------------------------------ --sysctl

@pytest.mark.parametrize("key,value,shown", [
    ("net.ipv4.ip_forward", "1", "1"),
    ("net.ipv4.ping_group_range", "0 1000", "0\t1000"),
    ("kernel.shmmax", "65536", "65536"),
    ("kernel.msgmax", "4096", "4096"),
    ("fs.mqueue.msg_max", "20", "20"),
])
def test_sysctl_namespaced_is_set(probe_image, key, value, shown):
    """A namespaced sysctl (net.*, IPC's kernel.shm*/msg*/sem, fs.mqueue.*)
    is set inside the container's own namespace."""
    path = "/proc/sys/" + key.replace(".", "/")
    before = host_read(path)
    proc = probe("read", path, "64", run=["--sysctl", f"{key}={value}"])
    assert proc.stdout == f"ok {len(shown) + 1}\n{shown}\n", said(proc)
    assert host_read(path) == before  # the host's own is untouched


def _refused_sysctls():
    swappiness = host_read("/proc/sys/vm/swappiness").strip()
    return [
        "kernel.core_pattern=x",
        "vm.swappiness=1",
        # a namespaced prefix does not make a path out of /proc/sys/net
        # (the value is the host's own, should a broken check write it)
        f"net.ipv4/../../vm/swappiness={swappiness}",
        f"net.ipv4.../../vm.swappiness={swappiness}",
        "kernel.hostname_bogus=1",
        "net.ipv4.ip_forward",  # no value
    ]


@pytest.mark.parametrize("setting", _refused_sysctls())
def test_sysctl_not_namespaced_is_refused(probe_image, setting):
    """Anything else is refused before the container starts, with one line
    naming the setting and exit 125, and the host keeps its values."""
    before = {p: host_read(p) for p in SYSCTL_FILES}
    proc = probe("sleep", "0", run=["--sysctl", setting])
    one_line_error(proc, setting.split("=")[0].split("/")[0])
    assert {p: host_read(p) for p in SYSCTL_FILES} == before


def test_sysctl_net_refused_with_host_network(probe_image):
    """With --network host, net.* is the host's own: refused too."""
    before = host_read("/proc/sys/net/ipv4/ip_forward")
    proc = probe("sleep", "0", run=["--network", "host", "--sysctl",
                                    f"net.ipv4.ip_forward={before.strip()}"])
    one_line_error(proc, "net.ipv4.ip_forward")
    assert host_read("/proc/sys/net/ipv4/ip_forward") == before


# ------------------------------------------------------------- masked paths

MASKED_FILES = ["/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug"]
MASKED_DIRS = ["/proc/acpi", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"]


def _on_host(path):
    # the container's /proc and /sys are fresh instances of the host kernel's
    if not os.path.exists(path):
        pytest.skip(f"{path}: not on this kernel")


@pytest.mark.parametrize("path", MASKED_FILES)
def test_masked_file(probe_image, path):
    """Docker's masked files are /dev/null: they read as empty."""
    _on_host(path)
    proc = run_bocker("run", "--rm", IMAGE, "sh", "-c",
                      f"probe stat {path}; probe read {path} 4096")
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("chr 1:3 "), said(proc)
    assert lines[1] == "ok 0", said(proc)


@pytest.mark.parametrize("path", MASKED_DIRS)
def test_masked_dir(probe_image, path):
    """Docker's masked directories are an empty read-only tmpfs."""
    _on_host(path)
    proc = run_bocker("run", "--rm", IMAGE, "sh", "-c",
                      f"probe stat {path}; probe ls {path}; probe write {path}/x y")
    assert proc.stdout == "dir tmpfs ro\nEROFS\n", said(proc)


def test_masked_paths_privileged_control(probe_image):
    """--privileged masks nothing: the same paths are the kernel's own."""
    present = [p for p in MASKED_FILES + MASKED_DIRS if os.path.exists(p)]
    script = "; ".join(f"probe stat {p}" for p in present)
    proc = run_bocker("run", "--rm", "--privileged", IMAGE, "sh", "-c", script)
    kinds = [line.split()[:2] for line in proc.stdout.splitlines()]
    expected = [["dir" if os.path.isdir(p) else "reg",
                 "sysfs" if p.startswith("/sys/") else "proc"] for p in present]
    assert kinds == expected, said(proc)
    if os.listdir("/sys/firmware"):
        listing = run_bocker("run", "--rm", "--privileged", IMAGE, "probe", "ls",
                             "/sys/firmware").stdout.split()
        assert sorted(listing) == sorted(os.listdir("/sys/firmware"))


# ----------------------------------------------------------- read-only paths

READ_ONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
# opened for writing, never written
NEVER_WRITTEN = ["/proc/sysrq-trigger", "/proc/irq/default_smp_affinity"]


@pytest.mark.parametrize("path", READ_ONLY)
def test_read_only_proc_path(probe_image, path):
    _on_host(path)
    proc = probe("stat", path)
    assert re.fullmatch(r"(dir|reg) proc ro\n", proc.stdout), said(proc)


@pytest.mark.parametrize("path", NEVER_WRITTEN)
def test_open_for_writing_is_erofs(probe_image, path):
    _on_host(path)
    proc = probe("open", path, "w")
    assert proc.stdout == "EROFS\n", said(proc)


@pytest.mark.parametrize("path", NEVER_WRITTEN)
def test_open_for_writing_privileged_control(probe_image, path):
    _on_host(path)
    proc = probe("open", path, "w", run=["--privileged"])
    assert proc.stdout == "ok\n", said(proc)


# --------------------------------------------------------------- caller's fds

def _with_fd_9(argv):
    """Run argv as a shell's `argv 9</` would: with an extra fd 9, not
    close-on-exec, open on the host's /."""
    return subprocess.run(["sh", "-c", 'exec "$@" 9</', "sh", *argv], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def host_marker(tmp_path):
    """A host file the container must not reach, by its path relative to /."""
    marker = tmp_path / "host-marker"
    marker.write_text("host secret\n")
    return str(marker).lstrip("/")


def test_run_gets_no_caller_fd(probe_image, host_marker):
    proc = _with_fd_9(bocker_argv("run", "--rm", IMAGE, "probe", "fds"))
    assert (proc.returncode, proc.stdout) == (0, ""), said(proc)
    proc = _with_fd_9(bocker_argv("run", "--rm", IMAGE, "cat", f"/proc/self/fd/9/{host_marker}"))
    assert proc.returncode == 1 and "No such file or directory" in proc.stderr, said(proc)
    assert "host secret" not in proc.stdout


def test_detached_run_gets_no_caller_fd(probe_image, host_marker):
    proc = _with_fd_9(bocker_argv("run", "-d", IMAGE, "sh", "-c",
                                  f"probe fds; cat /proc/self/fd/9/{host_marker}; echo rc=$?"))
    cid = proc.stdout.strip()
    assert proc.returncode == 0, said(proc)
    run_bocker("wait", cid, check=True)
    logs = run_bocker("logs", cid)
    assert logs.stdout == "rc=1\n" and "No such file or directory" in logs.stderr, said(logs)


def test_start_gets_no_caller_fd(probe_image, host_marker):
    cid = run_bocker("run", "-d", IMAGE, "sh", "-c",
                     f"probe fds; cat /proc/self/fd/9/{host_marker}; echo rc=$?",
                     check=True).stdout.strip()
    run_bocker("wait", cid, check=True)
    proc = _with_fd_9(bocker_argv("start", cid))
    assert proc.returncode == 0, said(proc)
    run_bocker("wait", cid, check=True)
    logs = run_bocker("logs", cid)  # both starts' output
    assert logs.stdout == "rc=1\nrc=1\n", said(logs)
    assert "host secret" not in logs.stdout


def test_exec_gets_no_caller_fd(probe_image, host_marker):
    with detached(IMAGE, "probe", "sleep") as cid:
        proc = _with_fd_9(bocker_argv("exec", cid, "probe", "fds"))
        assert (proc.returncode, proc.stdout) == (0, ""), said(proc)
        proc = _with_fd_9(bocker_argv("exec", cid, "cat", f"/proc/self/fd/9/{host_marker}"))
        assert proc.returncode == 1 and "No such file or directory" in proc.stderr, said(proc)


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_workdir_cannot_go_through_a_caller_fd(probe_image, host_marker, verb):
    """The fds are closed before the child resolves anything the container
    (or its user) names: a working directory of /proc/self/fd/9 would
    otherwise be the caller's directory on the host (runc's
    CVE-2024-21626)."""
    command = ["-w", "/proc/self/fd/9", IMAGE, "probe", "read", host_marker, "64"]
    if verb == "run":  # (--network none: see test_workdir_cannot_go_through_bockers_own_fds)
        proc = _with_fd_9(bocker_argv("run", "--rm", "--network", "none", *command))
    else:
        with detached(IMAGE, "probe", "sleep") as cid:
            proc = _with_fd_9(bocker_argv("exec", *command[:2], cid, *command[3:]))
    assert "host secret" not in proc.stdout, said(proc)
    # (run makes a missing -w in the child, walking no magic link: mkdir cwd)
    assert proc.returncode == 125, said(proc)
    assert proc.stderr in ("bocker: chdir: No such file or directory\n",
                           "bocker: mkdir cwd: No such file or directory\n"), said(proc)


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_workdir_cannot_go_through_bockers_own_fds(probe_image, verb):
    """Nor through the fds bocker itself holds in the child (cgroup, output
    pipes, ...): by the time it resolves the working directory only the
    ones it still needs are open, its status pipe and the go pipe of a
    run, and those are pipes (chdir says ENOTDIR) not directories."""
    def attempt(n, cid=None):
        args = ["-w", f"/proc/self/fd/{n}"]
        if cid:
            return run_bocker("exec", *args, cid, "probe", "fds")
        # --network none: a child that fails this early may be gone before
        # bocker opens its network namespace, whose ENOENT would hide the
        # chdir report (a bocker bug of its own, not this test's subject)
        return run_bocker("run", "--rm", "--network", "none", *args, IMAGE, "probe", "fds")

    if verb == "run":
        results = [attempt(n) for n in range(3, 20)]
    else:
        with detached(IMAGE, "probe", "sleep") as cid:
            results = [attempt(n, cid) for n in range(3, 20)]
    # run makes a missing -w in the child first (mkdir cwd), walking no
    # magic link at all: an fd still open there is refused as a link
    # (ELOOP), whatever it is, so none can lead out
    refused = {"bocker: chdir: No such file or directory\n": "closed",
               "bocker: mkdir cwd: No such file or directory\n": "closed",
               "bocker: chdir: Not a directory\n": "open",
               "bocker: mkdir cwd: Too many levels of symbolic links\n": "a link"}
    kinds = [refused.get(p.stderr) if p.returncode == 125 else said(p) for p in results]
    allowed = {"closed", "a link"} if verb == "run" else {"closed", "open"}
    assert set(kinds) <= allowed, [said(p) for p in results if p.stderr not in refused]
    assert kinds.count("open") <= 2, [n for n, k in enumerate(kinds, 3) if k == "open"]


# ------------------------------------------- the caller's terminal and group

def _sid(proc):
    m = re.fullmatch(r"sid=(\d+) pgrp=(\d+) pid=(\d+) tty=(\w+)\n", proc.stdout)
    assert m, said(proc)
    sid, pgrp, pid, tty = m.groups()
    return int(sid), int(pgrp), int(pid), tty


def test_run_has_own_session_and_no_terminal(probe_image):
    """Run from a terminal (no -t), the container leads a session of its
    own: it is not in the caller's session or process group and has no
    controlling terminal (getsid would be 0: a leader outside its PID
    namespace, i.e. the caller)."""
    proc = in_pty_session(bocker_argv("run", "--rm", IMAGE, "probe", "sid"))
    sid, pgrp, pid, tty = _sid(proc)
    assert (sid, pgrp, tty) == (pid, pid, "ENXIO"), said(proc)


def test_exec_has_own_session_and_no_terminal(probe_image):
    with detached(IMAGE, "probe", "sleep") as cid:
        proc = in_pty_session(bocker_argv("exec", cid, "probe", "sid"))
    sid, pgrp, pid, tty = _sid(proc)
    assert (sid, pgrp, tty) == (pid, pid, "ENXIO"), said(proc)


def test_start_has_own_session_and_no_terminal(probe_image):
    cid = run_bocker("run", "-d", IMAGE, "probe", "sid", check=True).stdout.strip()
    run_bocker("wait", cid, check=True)
    proc = in_pty_session(bocker_argv("start", cid))
    assert proc.returncode == 0, said(proc)
    run_bocker("wait", cid, check=True)
    lines = run_bocker("logs", cid).stdout.splitlines(keepends=True)
    assert len(lines) == 2
    for line in lines:
        sid, pgrp, pid, tty = _sid(subprocess.CompletedProcess([], 0, line, ""))
        assert (sid, pgrp, tty) == (pid, pid, "ENXIO"), line


# A shell (not interactive: no job control) runs bocker in its own process
# group, as `sh script` would; the container signals its process group.
SHELL = ('trap "echo shell-got-USR1" USR1; "$0" "$@"; echo rc=$?')


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_kill_process_group_reaches_only_the_container(probe_image, verb):
    """kill(0, SIGUSR1) inside signals the container's own process group:
    neither the bocker CLI (SIGUSR1 would kill it) nor the caller's shell
    sees it, and bocker returns the container's exit code."""
    # the container's own shell ignores USR1: only the host side could die
    command = ["sh", "-c", "trap '' USR1; probe kill-pgrp USR1; exit 7"]
    if verb == "run":
        with_shell = ["sh", "-c", SHELL, BOCKER, "run", "--rm", IMAGE, *command]
        proc = in_pty_session(with_shell)
    else:
        with detached(IMAGE, "probe", "sleep") as cid:
            proc = in_pty_session(["sh", "-c", SHELL, BOCKER, "exec", cid, *command])
    assert proc.stdout == "sent\nrc=7\n", said(proc)


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_tiocsti_cannot_reach_the_callers_terminal(probe_image, verb):
    """Without -t, stdin is not a terminal, and /dev/tty (the controlling
    terminal) does not open: nothing can be typed into the caller's shell."""
    if verb == "run":
        proc = in_pty_session(bocker_argv("run", "--rm", IMAGE, "probe", "ioctl-tiocsti"))
    else:
        with detached(IMAGE, "probe", "sleep") as cid:
            proc = in_pty_session(bocker_argv("exec", cid, "probe", "ioctl-tiocsti"))
    assert proc.stdout == "stdin=ENOTTY tty=ENXIO\n", said(proc)


# ---------------------------------------------------------- the exec window

EXECS = 100


def test_exec_never_shows_a_host_process(probe_image):
    """`bocker exec` forks the host's bocker process into the container's
    PID namespace before it execs the container's program.  The container's
    PID 1 watches every new pid's /proc/PID/exe as fast as it can while
    EXECS execs run: each open must be refused (the child is non-dumpable
    until execve) or give the container's own program; never the host's
    interpreter, its environment or its fds.  (Each exec'd command sleeps
    a little so the watcher sees every one.)"""
    with detached(IMAGE, "probe", "proc-scan") as cid:
        for _ in range(EXECS):
            proc = run_bocker("exec", cid, "sleep", "0.02")
            assert proc.returncode == 0, said(proc)
        run_bocker("stop", "-t", "10", cid, check=True)
        logs = run_bocker("logs", cid).stdout
    escapes = [line for line in logs.splitlines() if line.startswith("escape ")]
    assert not escapes, f"{len(escapes)} of {EXECS} execs showed a host process: {escapes[0]}"
    m = re.search(r"^pids=(\d+) denied=(\d+) contained=(\d+) escapes=0$", logs, re.M)
    assert m, logs
    # the watcher saw (nearly) every exec: a test that saw none proves nothing
    assert int(m.group(1)) >= EXECS * 0.9, logs


def test_proc_peek_of_a_container_process(probe_image):
    """A container process may look at another one of the same container
    (the control for the exec window: the probe can see what it may)."""
    with detached(IMAGE, "probe", "sleep") as cid:
        proc = run_bocker("exec", cid, "probe", "proc-peek", "1")
    assert proc.stdout == "exe=ok environ=ok fd=ok\n", said(proc)


# --------------------------------------------------------- pids and rlimits

def _forked(proc):
    m = re.fullmatch(r"forked=(\d+) err=(\w+)\n", proc.stdout)
    assert m, said(proc)
    return int(m.group(1)), m.group(2)


def test_fork_bomb_stops_at_default_pids_limit(probe_image):
    """A default container holds at most 2048 processes: the probe (one)
    and 2047 children, then fork says EAGAIN."""
    assert _forked(probe("forkbomb", "2500", timeout=120)) == (2047, "EAGAIN")


def test_pids_limit_follows_the_flag(probe_image):
    assert _forked(probe("forkbomb", "2500", run=["--pids-limit", "100"])) == (99, "EAGAIN")


def test_pids_limit_minus_one_is_no_limit(probe_image):
    """--pids-limit -1 lifts the default (the probe still stops at 2500)."""
    proc = probe("forkbomb", "2500", run=["--pids-limit", "-1"], timeout=120)
    assert _forked(proc) == (2500, "none")


@pytest.mark.parametrize("flag,resource,shown", [
    ("nofile=64:64", "NOFILE", "64 64"),
    ("nofile=100:200", "NOFILE", "100 200"),
    ("nofile=128", "NOFILE", "128 128"),
    ("core=0", "CORE", "0 0"),
    ("nproc=50:60", "NPROC", "50 60"),
])
def test_ulimit(probe_image, flag, resource, shown):
    proc = probe("rlimit", resource, run=["--ulimit", flag])
    assert proc.stdout == shown + "\n", said(proc)


@pytest.mark.parametrize("flag", ["bogus=1", "nofile=200:100", "nofile=x", "nofile"])
def test_ulimit_refused(probe_image, flag):
    one_line_error(probe("rlimit", "NOFILE", run=["--ulimit", flag]), flag.split("=")[0])


# ------------------------------------------------------------- capabilities

def _caps(proc):
    fields = dict(line.split(":\t") for line in proc.stdout.splitlines())
    assert set(fields) == {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}, said(proc)
    return {k: int(v, 16) for k, v in fields.items()}


def _expect(eff):
    return {"CapInh": 0, "CapPrm": eff, "CapEff": eff, "CapBnd": eff, "CapAmb": 0}


DEFAULT = capabilities.mask(capabilities.DEFAULT)


def test_default_capabilities(probe_image):
    """Docker's default set less MKNOD; nothing inheritable or ambient."""
    assert DEFAULT & (1 << 27) == 0
    assert _caps(probe("caps")) == _expect(DEFAULT)


def test_exec_gets_the_same_capabilities(probe_image):
    with detached(IMAGE, "probe", "sleep") as cid:
        assert _caps(run_bocker("exec", cid, "probe", "caps")) == _expect(DEFAULT)


def test_privileged_keeps_every_capability(probe_image):
    with open("/proc/self/status") as f:
        ours = int(re.search(r"^CapBnd:\t(\w+)$", f.read(), re.M).group(1), 16)
    caps = _caps(probe("caps", run=["--privileged"]))
    assert (caps["CapEff"], caps["CapBnd"], caps["CapAmb"]) == (ours, ours, 0)


def test_cap_drop_all(probe_image):
    assert _caps(probe("caps", run=["--cap-drop", "ALL"])) == _expect(0)


@pytest.mark.parametrize("name", ["SYS_PTRACE", "CAP_SYS_PTRACE", "sys_ptrace", "cap_sys_ptrace"])
def test_cap_add_any_spelling(probe_image, name):
    assert _caps(probe("caps", run=["--cap-add", name])) == _expect(DEFAULT | 1 << 19)


def test_cap_drop_one_and_add_after_drop_all(probe_image):
    assert _caps(probe("caps", run=["--cap-drop", "chown"])) == _expect(DEFAULT & ~1)
    only_kill = probe("caps", run=["--cap-drop", "ALL", "--cap-add", "KILL"])
    assert _caps(only_kill) == _expect(1 << 5)


def test_exec_keeps_the_containers_capabilities(probe_image):
    with detached("--cap-drop", "ALL", "--cap-add", "NET_ADMIN", IMAGE, "probe", "sleep") as cid:
        assert _caps(run_bocker("exec", cid, "probe", "caps")) == _expect(1 << 12)


@pytest.mark.parametrize("flag", ["--cap-add", "--cap-drop"])
def test_unknown_capability_refused(probe_image, flag):
    one_line_error(probe("caps", run=[flag, "SYS_BOGUS"]), "SYS_BOGUS")


# ------------------------------------------------------------- --read-only

WRITES = "for p in /x /tmp/x /dev/shm/x /data/x /run/x; do probe write $p y; done"


def test_read_only_rootfs(probe_image, tmp_path):
    """--read-only: / (and /tmp, which is part of it) gives EROFS; /dev/shm,
    volumes and --tmpfs mounts stay writable, as under Docker."""
    proc = run_bocker("run", "--rm", "--read-only", "-v", f"{tmp_path}:/data", "--tmpfs",
                      "/run", IMAGE, "sh", "-c", WRITES)
    assert proc.stdout == "EROFS\nEROFS\nok\nok\nok\n", said(proc)
    assert (tmp_path / "x").read_text() == "y"


def test_writable_rootfs_control(probe_image, tmp_path):
    proc = run_bocker("run", "--rm", "-v", f"{tmp_path}:/data", "--tmpfs", "/run",
                      IMAGE, "sh", "-c", WRITES)
    assert proc.stdout == "ok\n" * 5, said(proc)
