"""One supervisor per container: its bocker-monitor is its parent whether
the run is attached or not, so killing the attached client (SIGKILL
included, at any moment of the start or the run) loses nothing: the
container keeps running under its monitor, its output keeps reaching its
log, its end is recorded, --rm removes it and what it held is released.
Also: stdin relay and Docker's StdinOnce, many clients at once, and a
client that never reads."""
import json
import os
import random
import signal
import socket
import subprocess

import pytest

from bocker.runtime import containers, protocol
from conftest import BOCKER, pids_whose_argv, wait_for

SCRIPT = "echo hi; sleep 1; echo bye"


def _new_ids(paths, before):
    return {c for c in os.listdir(paths.containers) if c.startswith("ps_")} - before


def _records_made(paths, before):
    return {c for c in _new_ids(paths, before)
            if os.path.exists(os.path.join(paths.container(c), "container.json"))}


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return [b""]


def _keepers_of(root):
    """PIDs of monitors and of the cleanups they exec, for this root."""
    def keeper(argv):
        named = any(a.startswith(root.encode()) for a in argv[1:])
        return named and (argv[0].endswith(b"bocker-monitor") or b"bocker.runtime.finish" in argv)

    return set(pids_whose_argv(keeper))


def _log(paths, cid):
    try:
        with open(os.path.join(paths.container(cid), "log"), "rb") as f:
            return [line.split(b" ", 2)[2] for line in f.read().splitlines()]
    except FileNotFoundError:
        return []


def _supervised_now(paths, cid):
    """A record that says running names a live bocker-monitor as its
    keeper; returns whether it said running."""
    try:
        record = containers.load(paths, cid)  # also finishes a record nobody keeps
    except containers.NoSuchContainer:
        return False
    st = record["State"]
    if not st.get("Running"):
        return False
    assert _cmdline(st["RunnerPid"])[0].endswith(b"bocker-monitor"), st
    return True


@pytest.mark.parametrize("remove", [True, False], ids=["rm", "keep"])
def test_killing_the_attached_client_at_any_moment_loses_nothing(paths, remove):
    """20 attached runs, each client SIGKILLed at a random moment from the
    moment its record exists (clone, network, go byte, running, its own
    cleanup): each container is then supervised and, in the end, fully
    cleaned (the conftest leak check: cgroups, leases, nft, veths,
    subvolumes, monitors), its record gone with --rm, else Exited with its
    code; one that ran logged its last line after its client died."""
    rng = random.Random(os.getpid())
    ids, ran_alone = [], 0
    for i in range(20):
        before = _new_ids(paths, set())
        args = ["run", *(["--rm"] if remove else []), "busybox", "sh", "-c", SCRIPT]
        client = subprocess.Popen([BOCKER, *args], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        seen = set()

        def record_made():
            seen.update(_records_made(paths, before))
            return seen

        assert wait_for(record_made, 30)
        # every other kill within the start itself (record to running: tens
        # of ms), the others anywhere up to its end and its own cleanup
        wait_for(lambda: client.poll() is not None, rng.uniform(0, 0.1 if i % 2 else 1.3))
        client.kill()
        client.wait()
        (cid,) = seen
        ids.append(cid)
        ran_alone += _supervised_now(paths, cid)
    assert ran_alone, "no client was killed while its container ran"

    def settled():
        containers.list_all(paths)  # finishes a start cut short before its clone
        return not _keepers_of(paths.root)

    assert wait_for(settled, 60)
    for cid in ids:
        if remove:
            assert not os.path.exists(paths.container(cid)), cid
            continue
        st = containers.load(paths, cid)["State"]
        log = _log(paths, cid)
        assert st["Status"] == "exited" and not st["Running"], (cid, st)
        if log:  # it ran: to its end, whenever its client died
            assert (log, st["ExitCode"]) == ([b"hi", b"bye"], 0), (cid, st, log)
        else:    # cut short before its go byte (125) or before its clone (unknown)
            assert st["ExitCode"] in (125, -1), (cid, st)
        containers.remove(paths, cid)


def test_a_removal_cut_short_is_ended_by_the_monitor(paths, bocker):
    """A --rm client killed in its own cleanup, after the record went and
    before the rootfs did (the random kills above found it): the monitor's
    finish sees a directory without a record and removes the rest."""
    cid = bocker("run", "-d", "--rm", "busybox", "sleep", "600", check=True).stdout.strip()
    pid = containers.load(paths, cid)["State"]["Pid"]
    os.unlink(os.path.join(paths.container(cid), "container.json"))  # as remove_dir does first
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not os.path.exists(paths.container(cid)), 30)
    assert wait_for(lambda: not _keepers_of(paths.root), 30)


def test_a_killed_clients_container_keeps_logging(paths, bocker):
    client = subprocess.Popen([BOCKER, "run", "--name", "orphaned", "busybox", "sh", "-c",
                               "echo start; sleep 0.5; for i in 1 2 3; do echo line$i; "
                               "sleep 0.1; done; exit 5"], stdout=subprocess.PIPE)
    try:
        assert client.stdout.readline() == b"start\n"
        client.kill()
        client.wait()
        assert bocker("wait", "orphaned", check=True).stdout == "5\n"
        assert bocker("logs", "orphaned", check=True).stdout == "start\nline1\nline2\nline3\n"
        assert wait_for(lambda: not _keepers_of(paths.root))
        assert "Exited (5)" in bocker("ps", "-a", check=True).stdout
    finally:
        client.stdout.close()
        bocker("rm", "-f", "orphaned")


def test_stdin_is_relayed_and_its_end_closes_the_containers(bocker):
    data = os.urandom(3 << 20).hex()  # 6 MiB: more than every buffer on the way
    proc = bocker("run", "-i", "--rm", "busybox", "sh", "-c", "md5sum; echo after-eof",
                  input=data, check=True)
    import hashlib

    assert proc.stdout == f"{hashlib.md5(data.encode()).hexdigest()}  -\nafter-eof\n"


def test_stdin_once_a_killed_client_closes_the_containers_stdin(paths, bocker):
    client = subprocess.Popen([BOCKER, "run", "-i", "--name", "once", "busybox", "sh", "-c",
                               "cat; echo stdin-closed"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        client.stdin.write(b"abc\n")
        client.stdin.flush()
        assert client.stdout.readline() == b"abc\n"
        client.kill()
        client.wait()
        assert bocker("wait", "once", check=True).stdout == "0\n"
        assert bocker("logs", "once", check=True).stdout == "abc\nstdin-closed\n"
        assert wait_for(lambda: not _keepers_of(paths.root))
    finally:
        client.stdin.close()
        client.stdout.close()
        bocker("rm", "-f", "once")


def test_detached_interactive_stdin_stays_open_across_clients(bocker):
    """-di is not StdinOnce: a client's end of input, or its death, leaves
    the container's stdin open for the next."""
    cid = bocker("run", "-di", "busybox", "sh", "-c",
                 "read a; echo got-$a; read b; echo $a$b; exit 2", check=True).stdout.strip()
    try:
        first = subprocess.Popen([BOCKER, "attach", cid], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE)
        first.stdin.write(b"one\n")
        first.stdin.close()
        assert first.stdout.readline() == b"got-one\n"
        first.kill()
        first.wait()
        first.stdout.close()
        second = bocker("attach", cid, input="two\n", timeout=30)
        assert (second.stdout, second.returncode) == ("onetwo\n", 2), second.stderr
    finally:
        bocker("rm", "-f", cid)


def test_many_clients_at_once(bocker):
    cid = bocker("run", "-d", "busybox", "sh", "-c",
                 "for i in $(seq 30); do echo tick$i; sleep 0.1; done; exit 3",
                 check=True).stdout.strip()
    try:
        clients = [subprocess.Popen([BOCKER, "attach", "--no-stdin", cid],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for _ in range(8)]
        for proc in clients:
            out, err = proc.communicate(timeout=60)
            lines = out.decode().split()
            assert proc.returncode == 3, err
            # each saw the output from its attach on, in order, to the end
            assert lines and lines == [f"tick{i}" for i in range(31 - len(lines), 31)], lines
    finally:
        bocker("rm", "-f", cid)


def _attach_socket(paths, cid):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dir_fd = os.open(paths.container(cid), os.O_PATH)
    try:
        sock.connect(f"/proc/self/fd/{dir_fd}/{protocol.SOCKET_NAME}")
    finally:
        os.close(dir_fd)
    return sock


def test_a_client_that_never_reads_does_not_block_the_container(paths, bocker):
    """The monitor drops what a client cannot take, never waits for it: the
    container runs to its end and its log is complete."""
    cid = bocker("run", "-d", "busybox", "sh", "-c", "sleep 1; seq 1 200000",
                 check=True).stdout.strip()
    try:
        stuck = _attach_socket(paths, cid)  # never read
        assert bocker("wait", cid, timeout=60, check=True).stdout == "0\n"
        logged = bocker("logs", cid, check=True).stdout.split()
        assert logged == [str(i) for i in range(1, 200001)]
        stuck.close()
    finally:
        bocker("rm", "-f", cid)


def test_an_attached_run_whose_output_is_not_read_does_not_block_it(paths, tmp_path):
    """The run's own client stuck on a full stdout pipe: the container ends
    and its log is complete meanwhile; once read, the client says that it
    dropped output and returns the exit code."""
    cidfile = tmp_path / "cid"
    proc = subprocess.Popen([BOCKER, "run", "--cidfile", str(cidfile), "busybox", "sh", "-c",
                             "seq 1 300000; exit 4"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        # (run makes the file at once, as Docker; the ID comes once it runs)
        assert wait_for(lambda: cidfile.exists() and cidfile.read_text(), 30)
        cdir = paths.container(cidfile.read_text())
        exit_json = os.path.join(cdir, "exit.json")
        # the container ended though nobody read its output
        assert wait_for(lambda: os.path.exists(exit_json), 60)
        with open(exit_json) as f:
            assert json.load(f)["ExitCode"] == 4
        with open(os.path.join(cdir, "log"), "rb") as f:
            assert sum(1 for _ in f) == 300000
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 4
        if len(out.split()) < 300000:  # what this client missed, it was told about
            assert b"bytes of output were dropped" in err
    finally:
        proc.stdout.close()
        proc.stderr.close()
        if cidfile.exists() and cidfile.read_text():
            subprocess.run([BOCKER, "rm", "-f", cidfile.read_text()], capture_output=True)


def test_sigterm_to_the_client_is_forwarded_and_the_run_cleans_up(bocker):
    proc = subprocess.Popen([BOCKER, "run", "--rm", "busybox", "sh", "-c",
                             "trap 'echo got; exit 4' TERM; echo ready; "
                             "while :; do sleep 0.1; done"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout.read() == "got\n"
    assert proc.wait(timeout=10) == 4
    proc.stdout.close()
    assert bocker("ps", "-aq", check=True).stdout == ""  # --rm: removed before run returned
