"""The pure parts of truthful state and prune: who is a keeper-less
record, what image prune picks, how ps says an unseen end."""
import os
import subprocess

from bocker.cli import output
from bocker.image.prune import unused
from bocker.runtime.records import UNKNOWN_EXIT, keeper_gone, proc_start_time


def _dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_keeper_gone_needs_both_the_container_and_its_keeper_dead():
    me, t = os.getpid(), proc_start_time(os.getpid())
    dead = _dead_pid()
    running = {"Running": True, "Status": "running"}
    assert keeper_gone(dict(running, Pid=dead, PidStartTime=1, RunnerPid=dead, RunnerStartTime=1))
    # container alive, keeper gone: it is running, and left so
    assert not keeper_gone(dict(running, Pid=me, PidStartTime=t, RunnerPid=dead))
    # keeper alive (writing exit.json, running finish): it will finish it
    assert not keeper_gone(dict(running, Pid=dead, RunnerPid=me, RunnerStartTime=t))
    # a recycled PID is not the keeper
    assert keeper_gone(dict(running, Pid=dead, RunnerPid=me, RunnerStartTime=t - 1))


def test_keeper_gone_for_created_and_exited_records():
    me, t = os.getpid(), proc_start_time(os.getpid())
    assert keeper_gone({"Status": "created", "RunnerPid": _dead_pid(), "RunnerStartTime": 5})
    assert not keeper_gone({"Status": "created", "RunnerPid": me, "RunnerStartTime": t})
    assert not keeper_gone({"Status": "created"})  # an older bocker's: nobody to ask
    assert not keeper_gone({"Status": "exited", "Running": False, "RunnerPid": _dead_pid()})


def test_zombie_is_not_alive():
    from bocker.runtime.records import alive

    proc = subprocess.Popen(["true"])
    t = proc_start_time(proc.pid)
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
    assert t is not None and not alive(proc.pid, t)
    proc.wait()


def test_image_prune_picks_dangling_unless_all():
    imgs = [{"id": "img_a", "names": []}, {"id": "img_b", "names": ["x:1"]},
            {"id": "img_c"}, {"id": "img_d", "names": []}]
    used = {"img_d"}
    assert [r["id"] for r in unused(imgs, used)] == ["img_a", "img_c"]
    assert [r["id"] for r in unused(imgs, used, all_images=True)] == ["img_a", "img_b", "img_c"]


def test_status_of_an_unseen_end():
    assert output.status({"Status": "exited", "ExitCode": UNKNOWN_EXIT}) == "Exited (unknown)"
    assert output.status({"Status": "exited", "ExitCode": 255}) == "Exited (255)"
