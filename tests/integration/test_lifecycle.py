"""Detached containers and their lifecycle: monitor, exec, stop, kill,
wait, start, logs -f, -it, volumes."""
import json
import os
import signal
import subprocess
import time

import pexpect

from conftest import BOCKER
from conftest import wait_for as _wait_for


def _detach(bocker, *args):
    proc = bocker("run", "-d", *args, check=True)
    cid = proc.stdout.strip()
    assert cid.startswith("ps_")
    return cid


def test_detached_sleep_shows_up_in_ps(bocker, cleanup):
    cid = _detach(bocker, "busybox", "sleep", "30")
    cleanup.append(cid)
    row = next(r for r in bocker("ps", check=True).stdout.splitlines() if r.startswith(cid))
    assert " Up " in f" {row} "
    assert cid in bocker("ps", "-q", check=True).stdout.split()


def test_exec_sees_container_processes_only(bocker, cleanup):
    cid = _detach(bocker, "busybox", "sleep", "30")
    cleanup.append(cid)
    lines = bocker("exec", cid, "ps", "-o", "pid,comm", check=True).stdout.splitlines()[1:]
    assert [ln.split() for ln in lines] == [["1", "sleep"], [lines[1].split()[0], "ps"]]
    assert bocker("exec", cid, "hostname", check=True).stdout.strip() == cid
    assert bocker("exec", cid, "sh", "-c", "exit 5").returncode == 5
    assert bocker("exec", "-e", "X=y z", "-w", "/tmp", cid, "sh", "-c",
                  'echo "$X $(pwd)"', check=True).stdout == "y z /tmp\n"


def test_exec_messages(bocker, cleanup):
    proc = bocker("exec", "ps_000000000000", "true")
    assert (proc.returncode, proc.stderr) == (1, "bocker: No container named 'ps_000000000000' exists\n")
    bocker("run", "--name", "stopped", "busybox", "true", check=True)
    cleanup.append("stopped")
    proc = bocker("exec", "stopped", "true")
    assert (proc.returncode, proc.stderr) == (1, "bocker: Container 'stopped' exists but is not running\n")


def test_stop_after_grace_time_is_137(bocker, cleanup):
    # PID 1 survives SIGTERM (its handler only logs it), so stop must send
    # TERM first, give the grace time, then escalate to SIGKILL.  The wait
    # is interrupted by the signal at once, so the handler runs within the
    # grace time however loaded the machine is; the loop starts a new one.
    cid = _detach(bocker, "busybox", "sh", "-c",
                  "trap 'echo got TERM' TERM; echo ready; while :; do sleep 30 & wait; done")
    cleanup.append(cid)
    assert _wait_for(lambda: bocker("logs", cid).stdout == "ready\n")
    assert bocker("stop", "-t", "1", cid, check=True).stdout == f"{cid}\n"
    # stop returned after the end: the container is already recorded as
    # killed, TERM having been handled (not fatal) before the SIGKILL
    st = json.loads(bocker("inspect", cid, check=True).stdout)[0]["State"]
    assert (st["Running"], st["ExitCode"]) == (False, 137)
    assert bocker("logs", cid, check=True).stdout == "ready\ngot TERM\n"
    assert bocker("wait", cid, check=True).stdout == "137\n"
    assert "Exited (137)" in bocker("ps", "-a", check=True).stdout


def test_stop_with_term_handler_exits_cleanly(bocker, cleanup):
    cid = _detach(bocker, "busybox", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    cleanup.append(cid)
    time.sleep(0.2)
    bocker("stop", cid, check=True)
    assert bocker("wait", cid, check=True).stdout == "0\n"


def test_kill_with_signal_and_wait(bocker, cleanup):
    cid = _detach(bocker, "busybox", "sh", "-c", "trap 'exit 9' USR1; while :; do sleep 0.1; done")
    cleanup.append(cid)
    time.sleep(0.2)
    bocker("kill", "-s", "USR1", cid, check=True)
    assert bocker("wait", cid, check=True).stdout == "9\n"
    proc = bocker("kill", cid)
    assert proc.returncode == 1 and "is not running" in proc.stderr


def test_logs_follow_streams_lines(bocker, cleanup):
    cid = _detach(bocker, "busybox", "sh", "-c",
                  "for i in 1 2 3; do echo line$i; sleep 0.3; done; echo err >&2")
    cleanup.append(cid)
    follow = subprocess.Popen([BOCKER, "logs", "-f", cid], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    first = follow.stdout.readline()
    assert first == b"line1\n"
    out, err = follow.communicate(timeout=20)  # ends when the container exits
    assert out == b"line2\nline3\n" and err == b"err\n"
    tail = bocker("logs", "--tail", "2", cid, check=True)  # the last two lines of both streams
    assert (tail.stdout, tail.stderr) == ("line3\n", "err\n")
    stamped = bocker("logs", "-t", cid, check=True).stdout.splitlines()
    assert len(stamped) == 3 and stamped[0].endswith("Z line1") and stamped[0][:4].isdigit()


def test_detached_survives_sigkill_of_cli(bocker, cleanup, paths):
    # the CLI that started the container is SIGKILLed right after printing the ID
    proc = subprocess.Popen([BOCKER, "run", "-d", "busybox", "sh", "-c",
                             "sleep 1; echo late; exit 3"], stdout=subprocess.PIPE)
    cid = proc.stdout.readline().decode().strip()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cleanup.append(cid)
    assert bocker("wait", cid, check=True).stdout == "3\n"
    assert bocker("logs", cid, check=True).stdout == "late\n"
    assert _wait_for(lambda: json.loads(bocker("inspect", cid).stdout)[0]["State"]["FinishedAt"]
                     != "0001-01-01T00:00:00Z")


def test_run_rm_detached_removes_itself(bocker):
    cid = _detach(bocker, "--rm", "busybox", "true")
    assert _wait_for(lambda: cid not in bocker("ps", "-aq").stdout)


def test_start_a_stopped_container(bocker, cleanup):
    bocker("run", "--name", "again", "busybox", "sh", "-c", "echo run; exit 2")
    cleanup.append("again")
    assert bocker("start", "again", check=True).stdout == "again\n"
    assert bocker("wait", "again", check=True).stdout == "2\n"
    assert bocker("logs", "again", check=True).stdout == "run\nrun\n"


def test_rm_running_needs_force(bocker):
    cid = _detach(bocker, "busybox", "sleep", "30")
    proc = bocker("rm", cid)
    assert proc.returncode == 1 and "running" in proc.stderr
    assert bocker("rm", "-f", cid, check=True).stdout == f"Removed: {cid}\n"


def test_fifty_detached_start_list_stop(bocker):
    ids = [_detach(bocker, "busybox", "sleep", "60") for _ in range(50)]
    try:
        listed = set(bocker("ps", "-q", check=True).stdout.split())
        assert set(ids) <= listed
        assert bocker("stop", "-t", "0", *ids, check=True).stdout.split() == ids
    finally:
        bocker("rm", "-f", *ids)
    assert not set(ids) & set(bocker("ps", "-aq").stdout.split())


def test_attached_signals_are_forwarded(bocker):
    proc = subprocess.Popen([BOCKER, "run", "--rm", "busybox", "sh", "-c",
                             "trap 'echo got; exit 4' TERM; echo ready; while :; do sleep 0.1; done"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout.read() == "got\n"
    assert proc.wait(timeout=10) == 4


def test_interactive_stdin(bocker):
    assert bocker("run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z",
                  input="hello\n").stdout == "HELLO\n"
    # without -i, stdin is /dev/null
    assert bocker("run", "--rm", "busybox", "cat", input="ignored\n").stdout == ""


def test_tty_session(paths):
    child = pexpect.spawn(BOCKER, ["run", "-it", "--rm", "busybox", "sh"], timeout=15,
                          env={**os.environ, "TERM": "dumb"})
    child.setwinsize(33, 111)
    child.expect("# ")
    child.sendline("stty size; tty; echo $((6*7))")
    child.expect("42")
    assert b"33 111" in child.before and b"/dev/pts/0" in child.before
    child.setwinsize(44, 100)  # SIGWINCH reaches the container
    child.sendline("stty size")
    child.expect("44 100")
    child.sendline("sleep 30")
    time.sleep(0.5)
    child.sendcontrol("c")  # Ctrl-C reaches the container's foreground job
    child.expect("# ")
    child.sendline("exit 3")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3


def test_exec_tty(bocker, cleanup):
    cid = _detach(bocker, "busybox", "sleep", "30")
    cleanup.append(cid)
    child = pexpect.spawn(BOCKER, ["exec", "-it", cid, "sh"], timeout=15, env=dict(os.environ))
    child.expect("# ")
    child.sendline("tty; exit 4")
    child.expect(pexpect.EOF)
    assert b"/dev/pts/" in child.before
    child.close()
    assert child.exitstatus == 4


def test_volumes(bocker, tmp_path):
    data = tmp_path / "data"
    created = tmp_path / "made-by-bocker"
    data.mkdir()
    (data / "in").write_text("from host\n")
    out = bocker("run", "--rm", "-v", f"{data}:/data", "-v", f"{created}:/new",
                 "busybox", "sh", "-c", "cat /data/in; echo out > /data/out; ls -d /new",
                 check=True).stdout
    assert out == "from host\n/new\n"
    assert (data / "out").read_text() == "out\n"  # writes survive the container
    assert created.is_dir()
    proc = bocker("run", "--rm", "-v", f"{data}:/data:ro", "busybox", "sh", "-c",
                  "echo x > /data/nope")
    assert proc.returncode != 0 and "Read-only file system" in proc.stderr
    assert not (data / "nope").exists()


def test_tmpfs(bocker):
    out = bocker("run", "--rm", "--tmpfs", "/scratch", "busybox", "sh", "-c",
                 "grep ' /scratch ' /proc/mounts | cut -d' ' -f3", check=True).stdout
    assert out == "tmpfs\n"


def test_bad_volume_spec(bocker):
    proc = bocker("run", "--rm", "-v", "relative-only", "busybox", "true")
    assert proc.returncode == 125 and "invalid volume" in proc.stderr
    assert bocker("ps", "-aq").stdout == ""


def test_failed_mount_names_its_target(bocker, tmp_path):
    """The child's report carries which mount failed, and the message names
    it: /etc/hostname is a file (bocker's own, bound first), so no
    directory can be made under it."""
    proc = bocker("run", "--rm", "-v", f"{tmp_path}:/etc/hostname/sub", "busybox", "true")
    assert proc.returncode == 125
    assert proc.stderr == "bocker: move_mount volumes /etc/hostname/sub: Not a directory\n"
    proc = bocker("run", "--rm", "--tmpfs", "/etc/hosts/t", "busybox", "true")
    assert (proc.returncode, proc.stderr) == (125, "bocker: mount tmpfs /etc/hosts/t:"
                                                   " Not a directory\n")
    assert bocker("ps", "-aq").stdout == ""


def test_more_mounts_than_the_shim_takes_are_refused(bocker, tmp_path):
    """Past native.MAX_BINDS mounts (with the container's three /etc files)
    a run is refused with one line, never started with some dropped."""
    from bocker.kernel import native

    volumes = [a for i in range(native.MAX_BINDS - 2) for a in ("-v", f"{tmp_path}:/v{i}")]
    proc = bocker("run", "--rm", *volumes, "busybox", "true")
    assert proc.returncode == 125
    assert proc.stderr == (f"bocker: too many mounts: {native.MAX_BINDS + 1} (volumes, tmpfs"
                           f" and the container's /etc files), at most {native.MAX_BINDS}\n")
    assert bocker("ps", "-aq").stdout == ""
    out = bocker("run", "--rm", *volumes[2:], "busybox", "sh", "-c", "ls -d /v1 /v60",
                 check=True).stdout
    assert out == "/v1\n/v60\n"  # exactly MAX_BINDS: all of them made


def test_tty_run_survives_sighup_and_cleans_up(bocker):
    """A closed terminal (SIGHUP to bocker) is forwarded to the container;
    bocker stays to reap it and release its cgroup and address."""
    child = pexpect.spawn(BOCKER, ["run", "-it", "--name", "hup", "busybox", "sh", "-c",
                                   "trap 'exit 7' HUP; echo ready; while :; do sleep 0.1; done"],
                          timeout=15, env=dict(os.environ))
    try:
        child.expect("ready")
        child.kill(signal.SIGHUP)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 7
        assert "Exited (7)" in bocker("ps", "-a", check=True).stdout
    finally:
        bocker("rm", "-f", "hup")
