"""Test-only fault injection: BOCKER_FAULT=STEP:ACTION makes one named
step of a command fail or kill the process doing it.

    BOCKER_FAULT=start.clone:fail    the step raises FaultInjected (a
                                     BockerError: one line, exit 1)
    BOCKER_FAULT=start.clone:kill    the process SIGKILLs itself there

Each step calls point("name") first thing.  The variable is read once, at
import; unset, point() is a call, one global load and a comparison (46 ns
on the CI machine by `python -m timeit`, against 6 ns for `pass`: about
1.5 us over the thirty points a `bocker run` passes), so the points can
stay in the start path.

STEPS is the registry of every point and the commands whose runs reach
it (tests/integration/test_faults.py builds its matrix from it;
tests/unit/test_faults_registry.py checks it against the point() calls in
the source, so a new step cannot be missed).  A fault's environment is
inherited by what the command starts (a detached container's monitor
and its `python -m bocker.runtime.finish`), so finish.* steps fire there
too, as in a real crash of the cleanup.
"""
import os

from bocker.errors import BockerError

ACTIONS = ("fail", "kill")

# step -> the commands (as the test matrix runs them) that reach it
STEPS = {
    # create.create: the directory, snapshot, seccomp pin, id block, record
    "create.claim_name": ("run",),
    "create.make_dir": ("run",),
    "create.snapshot": ("run",),
    "create.pin_profile": ("run",),
    "create.allocate_ids": ("run",),
    "create.save_record": ("run",),
    # start.launch: one point at the top of each step function
    "start.user_and_env": ("run",),
    "start.make_workdir": ("run",),
    "start.lease_address": ("run",),
    "start.container_mounts": ("run",),
    "start.forget_previous_end": ("run",),
    "start.create_cgroup": ("run",),
    "start.open_child_fds": ("run",),
    "start.clone": ("run",),
    "start.close_child_ends": ("run",),
    "start.hand_over_userns": ("run",),
    "start.wire_network": ("run",),
    "start.let_it_exec": ("run",),
    "start.mark_running": ("run",),
    "start.started": ("run",),
    # run.run, attached: tee and wait, then finish
    "run.attach_and_wait": ("run",),
    "run.finish": ("run",),
    # finish.finish (the attached CLI's, or the monitor's exec of it)
    "finish.destroy_cgroup": ("run",),
    "finish.record_end": ("run",),
    "finish.release": ("run",),
    # exec_in.exec_in
    "exec_in.find_running": ("exec",),
    "exec_in.open_fds": ("exec",),
    "exec_in.spawn": ("exec",),
    "exec_in.check_reports": ("exec",),
    "exec_in.pump": ("exec",),
    "exec_in.wait": ("exec",),
    # lifecycle.commit, then images.create
    "lifecycle.commit": ("commit", "commit-into"),
    "images.make_dir": ("commit", "pull", "load", "setup"),
    "images.fill": ("commit", "pull", "load", "setup"),
    "images.write_record": ("commit", "pull", "load", "setup"),
    # images.replace_rootfs: commit CONTAINER IMAGE
    "images.replace_rootfs.snapshot": ("commit-into",),
    "images.replace_rootfs.swap": ("commit-into",),
    "images.replace_rootfs.write_record": ("commit-into",),
    "images.replace_rootfs.delete": ("commit-into",),
    # pull.pull / archive.load, then install.install and layer_store.add
    "pull.resolve": ("pull",),
    "pull.config": ("pull",),
    "archive.plan": ("load",),
    "install.pin": ("pull", "load"),
    "install.fetch_missing": ("pull", "load"),
    "install.apply": ("pull", "load"),
    "install.create_image": ("pull", "load"),
    "layer_store.extract": ("pull", "load"),
    "layer_store.write_record": ("pull", "load"),
    # lifecycle.remove (rm -f of a running container), store.remove_dir
    "lifecycle.remove.stop": ("rm",),
    "lifecycle.remove.destroy_cgroup": ("rm",),
    "lifecycle.remove.release_network": ("rm",),
    "lifecycle.remove.detach_veth": ("rm",),
    "lifecycle.remove.remove_dir": ("rm",),
    "lifecycle.remove.release_ids": ("rm",),
    "store.remove_dir.delete_rootfs": ("rm",),
    "store.remove_dir.delete_rest": ("rm",),
    # hostsetup.setup
    "setup.make_root": ("setup",),
    "setup.mkfs": ("setup",),
    "setup.loop_attach": ("setup",),
    "setup.mount": ("setup",),
    "setup.make_dirs": ("setup",),
    "setup.network": ("setup",),
    "setup.write_record": ("setup",),
    "setup.default_image": ("setup",),
    # hostsetup.teardown
    "teardown.remove_cgroup_parent": ("teardown",),
    "teardown.network": ("teardown",),
    "teardown.umount": ("teardown",),
    "teardown.unlink_backing": ("teardown",),
    "teardown.remove_root": ("teardown",),
    "teardown.unlink_record": ("teardown",),
}


class FaultInjected(BockerError):
    """The failure BOCKER_FAULT=STEP:fail asked for."""


def _parse(value):
    """(step, action) from BOCKER_FAULT's value, or None if unset."""
    if not value:
        return None
    step, _, action = value.rpartition(":")
    if step not in STEPS or action not in ACTIONS:
        # a misspelt step would silently test nothing: refuse it loudly
        raise SystemExit(f"bocker: BOCKER_FAULT={value!r}: not STEP:fail|kill "
                         "of a step in bocker.faults.STEPS")
    return step, action


_FAULT = _parse(os.environ.get("BOCKER_FAULT"))
_STEP = _FAULT[0] if _FAULT else None


def point(step):
    """A named step begins: fail or die here if BOCKER_FAULT names it."""
    if step != _STEP:
        return
    if _FAULT[1] == "kill":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    raise FaultInjected(f"fault injected at {step}")
