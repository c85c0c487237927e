"""`bocker attach`, `run -dit`, `start -a`/`-i` and the detach keys, driven
through a real pty (pexpect) where a terminal is involved."""
import os
import signal
import subprocess
import time

import pexpect

from conftest import BOCKER, wait_for


def _spawn(*args, rows=24, cols=80):
    return pexpect.spawn(BOCKER, list(args), timeout=20, env={**os.environ, "TERM": "dumb"},
                         dimensions=(rows, cols))


def _prompt(term):
    """Wait for a shell's prompt: an attach sees none that was printed
    before it came, and a shell flushes what was typed before its line
    editor started, so press Enter until one comes."""
    for _ in range(20):
        term.sendline("")
        if term.expect(["# ", pexpect.TIMEOUT], timeout=1) == 0:
            return
    raise AssertionError("no shell prompt")


def _status(bocker, cid):
    return next((r for r in bocker("ps", "-a", check=True).stdout.splitlines()
                 if r.startswith(cid) or r.endswith(" " + cid)), "")


def test_attach_to_a_dit_shell_resize_and_detach(bocker):
    cid = bocker("run", "-dit", "busybox", "sh", check=True).stdout.strip()
    try:
        term = _spawn("attach", cid, rows=30, cols=100)
        _prompt(term)
        term.sendline("echo $((6*7)); stty size; tty")
        term.expect("42")
        term.expect("30 100")
        term.expect("/dev/pts/0")
        term.setwinsize(41, 123)  # SIGWINCH: the client sends the new size
        time.sleep(0.3)
        term.sendline("stty size")
        term.expect("41 123")
        term.sendcontrol("p")
        term.sendcontrol("q")
        term.expect(pexpect.EOF)
        term.close()
        assert term.exitstatus == 0
        assert " Up " in _status(bocker, cid)  # detaching left it running
        again = _spawn("attach", cid)
        _prompt(again)
        again.sendline("echo back; exit 5")
        again.expect("back")
        again.expect(pexpect.EOF)
        again.close()
        assert again.exitstatus == 5
        assert wait_for(lambda: "Exited (5)" in _status(bocker, cid))
        assert "back" in bocker("logs", cid, check=True).stdout
    finally:
        bocker("rm", "-f", cid)


def test_run_it_detaches_with_the_keys_and_the_monitor_cleans_up(bocker, paths):
    term = _spawn("run", "-it", "--rm", "--name", "leaver", "busybox", "sh")
    try:
        term.expect("# ")
        term.sendline("echo inside")
        term.expect("inside")
        term.sendcontrol("p")
        term.sendcontrol("q")
        term.expect(pexpect.EOF)
        term.close()
        assert term.exitstatus == 0
        assert " Up " in _status(bocker, "leaver")
        again = _spawn("attach", "leaver")
        _prompt(again)
        again.sendline("exit 3")
        again.expect(pexpect.EOF)
        again.close()
        assert again.exitstatus == 3
        # nobody attached ran the cleanup: the monitor did, --rm included
        assert wait_for(lambda: "leaver" not in bocker("ps", "-a").stdout)
    finally:
        bocker("rm", "-f", "leaver")


def test_custom_detach_keys(bocker):
    cid = bocker("run", "-dit", "busybox", "sh", check=True).stdout.strip()
    try:
        term = _spawn("attach", "--detach-keys", "ctrl-a,x", cid)
        _prompt(term)
        term.sendcontrol("p")  # not the keys now: passed on (and harmless to sh)
        term.sendcontrol("q")
        term.sendline("echo still-here")
        term.expect("still-here")
        term.sendcontrol("a")
        term.send("x")
        term.expect(pexpect.EOF)
        term.close()
        assert term.exitstatus == 0 and " Up " in _status(bocker, cid)
    finally:
        bocker("rm", "-f", cid)


def test_bad_detach_keys_are_refused(bocker):
    proc = bocker("run", "--rm", "--detach-keys", "ctrl-", "busybox", "true")
    assert proc.returncode == 125 and "invalid detach keys" in proc.stderr
    assert bocker("ps", "-aq", check=True).stdout == ""


def test_attaching_to_a_stopped_container_is_refused(bocker):
    bocker("run", "--name", "done", "busybox", "true", check=True)
    try:
        proc = bocker("attach", "done")
        assert proc.returncode == 1
        assert proc.stderr.strip().endswith(
            "You cannot attach to a stopped container, start it first")
    finally:
        bocker("rm", "done")


def test_start_a_returns_the_exit_code_and_shows_the_output(bocker):
    bocker("run", "--name", "again", "busybox", "sh", "-c", "echo ran; exit 6")
    try:
        proc = bocker("start", "-a", "again")
        assert (proc.stdout, proc.returncode) == ("ran\n", 6)
        assert "Exited (6)" in _status(bocker, "again")
        assert bocker("logs", "again", check=True).stdout == "ran\nran\n"
    finally:
        bocker("rm", "-f", "again")


def test_start_ai_relays_stdin(bocker):
    bocker("run", "-i", "--name", "echoer", "busybox", "sh", "-c", "cat; echo end",
           input="first\n", check=True)
    try:
        proc = bocker("start", "-ai", "echoer", input="second\n")
        assert (proc.stdout, proc.returncode) == ("second\nend\n", 0)
        assert bocker("start", "-a", "echoer", input="ignored\n").stdout == "end\n"
    finally:
        bocker("rm", "-f", "echoer")


def test_run_dt_has_a_pty_and_logs_it(bocker):
    cid = bocker("run", "-dt", "busybox", "sh", "-c", "tty; stty size",
                 check=True).stdout.strip()
    try:
        assert bocker("wait", cid, check=True).stdout == "0\n"
        assert bocker("logs", cid, check=True).stdout.split("\n")[0] == "/dev/pts/0"
    finally:
        bocker("rm", "-f", cid)


def test_attach_forwards_signals_unless_told_not_to(bocker):
    cid = bocker("run", "-d", "busybox", "sh", "-c",
                 "trap 'echo term; exit 9' TERM; echo up; while :; do sleep 0.1; done",
                 check=True).stdout.strip()
    try:
        assert wait_for(lambda: "up" in bocker("logs", cid).stdout)
        quiet = subprocess.Popen([BOCKER, "attach", "--no-sig-proxy", cid],
                                 stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        quiet.send_signal(signal.SIGTERM)  # kills the client only
        quiet.wait(timeout=10)
        assert " Up " in _status(bocker, cid)
        proxy = subprocess.Popen([BOCKER, "attach", cid], stdout=subprocess.PIPE)
        time.sleep(0.5)
        proxy.send_signal(signal.SIGTERM)
        assert proxy.stdout.read() == b"term\n"
        assert proxy.wait(timeout=10) == 9
        proxy.stdout.close()
    finally:
        bocker("rm", "-f", cid)


def test_attach_no_stdin_sends_nothing(bocker):
    cid = bocker("run", "-di", "busybox", "sh", "-c", "read line; echo got-$line",
                 check=True).stdout.strip()
    try:
        proc = subprocess.Popen([BOCKER, "attach", "--no-stdin", cid], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        proc.stdin.write(b"never\n")
        proc.stdin.close()
        time.sleep(0.5)
        assert proc.poll() is None  # still attached, the container still waits
        proc.kill()
        proc.wait()
        proc.stdout.close()
        assert bocker("attach", cid, input="real\n", timeout=30).stdout == "got-real\n"
    finally:
        bocker("rm", "-f", cid)
