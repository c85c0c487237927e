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


def test_image_leftovers_are_those_of_dead_creators_or_without_a_record(tmp_path):
    from bocker.image import images, install, layer_store
    from bocker.state import Paths

    paths = Paths(str(tmp_path))
    dead, me = _dead_pid(), os.getpid()
    made = {
        paths.images: [f".tmp-{dead}-img_0123456789ab", f".tmp-{me}-img_0123456789ac",
                       "img_0123456789ad", "img_0123456789ae"],
        paths.layers: [f".tmp-{dead}-00aa", f".tmp-{me}-00bb", "a" * 64, "b" * 64],
        os.path.join(paths.root, "tmp"): [f"pull-{dead}-x1", f"pull-{me}-x2"],
    }
    for parent, names in made.items():
        for name in names:
            os.makedirs(os.path.join(parent, name))
    for record in (os.path.join(paths.images, "img_0123456789ae", "image.json"),
                   os.path.join(paths.layers, "b" * 64, "layer.json")):
        with open(record, "w") as f:
            f.write("{}")
    assert images.prune_leftovers(paths) == [f".tmp-{dead}-img_0123456789ab", "img_0123456789ad"]
    assert layer_store.prune_leftovers(paths) == [f".tmp-{dead}-00aa", "a" * 64]
    assert install.prune_leftovers(paths) == [f"pull-{dead}-x1"]
    # a live creator's work and whole entries stay
    assert sorted(os.listdir(paths.images)) == [f".tmp-{me}-img_0123456789ac", "img_0123456789ae"]
    assert sorted(os.listdir(paths.layers)) == [f".tmp-{me}-00bb", "b" * 64]
    assert os.listdir(os.path.join(paths.root, "tmp")) == [f"pull-{me}-x2"]
