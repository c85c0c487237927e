"""The end of a container: finish() releases what an exited container
held (cgroup, address, published ports, user-namespace ids, and with --rm
its directory) and records how it ended.

`python -m bocker.runtime.finish ROOT CONTAINER_ID` is what a detached
container's monitor execs once the container has exited and exit.json is
written; the attached bocker process calls finish() itself.
"""
import sys

from bocker import state, trace
from bocker.confine import userns
from bocker.kernel import cgroups, store
from bocker.runtime import networking, records


def finish(paths, cid, code=None):
    """Release what an exited container held and record how it ended.

    Called by the attached bocker process (with the exit code) or by the
    detached container's monitor (which wrote exit.json already); safe to
    call twice and on a container being removed.
    """
    cg = cgroups.driver()
    oom = cg.oom_killed(cid)
    with trace.span("cgroup remove", name=cid, driver=f"v{cg.version}"):
        cg.destroy(cid)
    with state.locked(paths.lock):
        try:
            record = records.read_stored(paths, cid)
        except FileNotFoundError:
            return  # removed meanwhile: nothing left to record
        if code is not None:
            ended = {"ExitCode": code, "FinishedAt": records.now_iso(), "OOMKilled": oom}
            state.write_json(records.exit_path(paths, cid), ended, durable=False)
        record = records.refresh(paths, record)
        networking.release(paths, record)
        if record["Spec"].get("remove"):
            remove_dir(paths.container(cid))
            userns.release(paths.userns, cid)
        else:
            records.save(paths, record)


def remove_dir(cdir):
    """Delete a container's directory (its rootfs snapshot included)."""
    store.remove_dir(cdir, "container.json")


def main(argv):
    """Entry point; exits 0 even when there is nothing left to release."""
    from bocker.state import Paths

    root, cid = argv
    finish(Paths(root), cid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
