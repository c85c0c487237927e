"""The end of a container: finish() releases what an exited container
held (cgroup, address, published ports, user-namespace ids, and with --rm
its directory) and records how it ended.

`python -m bocker.runtime.finish ROOT CONTAINER_ID` is what a container's
monitor execs once the container has exited and exit.json is written, when
no attached client is there to call finish() itself (run -d, or a client
that was killed or detached).
"""
import os
import sys

from bocker import events, faults, state, trace
from bocker.confine import userns
from bocker.errors import CorruptRecord
from bocker.kernel import cgroups, store
from bocker.runtime import names, networking, records


def finish(paths, cid, code=None):
    """Release what an exited container held and record how it ended.

    Called by the attached bocker process or by the container's monitor
    (which wrote exit.json already; code, if given, replaces it); safe to
    call twice and on a container being removed.
    """
    faults.point("finish.destroy_cgroup")
    cg = cgroups.driver()
    # (read before the group goes; only a caller's code needs it: else
    # exit.json is the monitor's, which read the counter itself)
    oom = cg.oom_killed(cid) if code is not None else False
    with trace.span("cgroup remove", name=cid, driver=f"v{cg.version}"):
        cg.destroy(cid)
    with records.locked(paths, cid) as here:
        try:
            record = records.read_stored(paths, cid)
        except FileNotFoundError:
            if here:  # a removal cut short (its record goes first): end it
                _finish_removal(paths, cid)
            return
        except CorruptRecord:
            return  # not ours to rewrite: `rm -f` removes it and what it holds
        faults.point("finish.record_end")
        if code is not None:
            ended = {"ExitCode": code, "FinishedAt": records.now_iso(), "OOMKilled": oom}
            with records.unless_full():
                state.write_json(records.exit_path(paths, cid), ended, durable=False)
        ends_now = record["State"].get("Running")  # else a second call: recorded already
        cut_short = record["State"].get("Status") == "created"
        record = records.refresh(paths, record)
        if cut_short:
            _end_of_a_cut_start(paths, record)
        if ends_now or cut_short:
            _died(paths, record)
        removed = _release_and_keep_or_remove(paths, record)
        if ends_now and record["Spec"].get("restart", "no") != "no":
            from bocker.runtime import restarter  # (imported only for a policy)

            restarter.after_exit(paths, record)  # decides; a restart waits in its own process
    if removed and record.get("Mounts"):  # --rm: its anonymous volumes too, as Docker's
        from bocker.volume import volumes

        volumes.remove_anonymous(paths, record["Mounts"])  # (outside its lock: volumes.py)


def _died(paths, record):
    """The die event (Docker's, with exitCode), once per end."""
    st = record["State"]
    extra = {"exitCode": st.get("ExitCode", 0)}
    if st.get("OOMKilled"):
        events.container(paths, record, "oom")
    events.container(paths, record, "die", **extra)


def _end_of_a_cut_start(paths, record):
    """A record still "created" at its end: its starter died between the
    clone and marking it running (so the monitor, with no client left, runs
    this finish).  What the start got is named by its lease; how it ended
    by exit.json, if the monitor wrote it."""
    _settings_from_lease(paths, record)
    ended = _seen_end(paths, record["Id"]) or {
        "ExitCode": records.UNKNOWN_EXIT, "FinishedAt": records.now_iso(), "OOMKilled": False}
    record["State"].update(Running=False, Status="exited", Pid=0, **ended)


def _finish_removal(paths, cid):
    # Its directory without its record: a --rm's (or an rm's) removal was
    # killed after deleting the record (an attached client killed in its
    # own cleanup: the monitor's finish comes next).  Nothing else makes
    # one: a create writes the record before any monitor exists.
    from bocker.runtime import lifecycle

    lifecycle.remove_by_id(paths, cid)


def _release_and_keep_or_remove(paths, record):
    """Give back the ended container's address, guard entries and ports;
    then remove it (--rm, with its id block) or save its record.  True
    if it was removed."""
    faults.point("finish.release")
    networking.release(paths, record)
    if record["Spec"].get("remove"):
        remove_dir(paths.container(record["Id"]))
        userns.release(paths.userns, record["Id"])
        names.release(paths, record["Id"], record["Name"])
        events.container(paths, record, "destroy")
        return True
    with records.unless_full():
        records.save(paths, record)
    return False


def reap_orphan(paths, cid):
    """Finish a container whose keeper is gone (records.keeper_gone): its
    end is recorded (exit.json's code if the keeper wrote it, else
    records.UNKNOWN_EXIT) and what it held is released (cgroup, with
    anything left in it; address lease, guard entries and published ports;
    with --rm its directory and id block).  Under the container's lock,
    and only if the record still says so, so of many commands finding it
    at once exactly one does the work."""
    with records.locked(paths, cid):
        try:
            record = records.read_stored(paths, cid)
        except FileNotFoundError:
            return
        st = record["State"]
        if not records.keeper_gone(st):
            return  # finished by someone else meanwhile
        if st.get("Status") == "created" and monitor_serves(paths, cid):
            return  # its creator died after the clone: the monitor will finish it
        with trace.span("cgroup remove", name=cid, reason="keeper gone"):
            cgroups.driver().destroy(cid)
        # a start cut short (or a restart's, restarter.py): what it got is in the leases
        cut_short = st.get("Status") in ("created", "restarting")
        record = records.refresh(paths, record)
        if cut_short:
            _settings_from_lease(paths, record)
            st.update(_seen_end(paths, cid))  # a detached one's monitor may have seen it end
        st.update(Running=False, Status="exited", Pid=0, Restarting=False)
        if not st.get("FinishedAt"):  # nobody saw it end: say so, not when
            st.update(ExitCode=records.UNKNOWN_EXIT,
                      Error="the process in charge of the container disappeared")
        _died(paths, record)
        removed = _release_and_keep_or_remove(paths, record)
    if removed and record.get("Mounts"):
        from bocker.volume import volumes

        volumes.remove_anonymous(paths, record["Mounts"])


def _seen_end(paths, cid):
    """exit.json's fields ({} if there is none): refresh reads it only for
    a record saved running, but a start killed after its clone leaves a
    created record whose monitor still wrote how it ended."""
    try:
        return state.read_json(records.exit_path(paths, cid))
    except (FileNotFoundError, ValueError):
        return {}


def monitor_serves(paths, cid):
    """True if a monitor listens on the container's attach socket: it will
    record the container's end and release what it held."""
    import socket

    from bocker.runtime.protocol import SOCKET_NAME

    try:
        dir_fd = os.open(paths.container(cid), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as probe:
            probe.connect(f"/proc/self/fd/{dir_fd}/{SOCKET_NAME}")
        return True  # (a client that sent no input: its going away closes nothing)
    except OSError:
        return False
    finally:
        os.close(dir_fd)


def _settings_from_lease(paths, record):
    # A start killed after its lease (and maybe its guard entries and
    # ports) but before the record was marked running: name them so that
    # networking.release gives them back (each release is a no-op if the
    # start never got that far).
    from bocker.net import ipam

    ips = [ip for ip, owner in ipam.leases(paths.leases).items() if owner == record["Id"]]
    if ips:
        spec = record["Spec"]
        record["NetworkSettings"] = {"IPAddress": ips[0], "Guarded": True,
                                     "MacAddress": spec.get("mac_address") or ipam.mac_for(ips[0]),
                                     "Ports": {"any": []} if spec.get("ports") or spec.get(
                                         "publish_all") else {}}


def remove_dir(cdir):
    """Delete a container's directory (its rootfs snapshot included)."""
    store.remove_dir(cdir, "container.json")


def main(argv):
    """Entry point; exits 0 even when there is nothing left to release."""
    from bocker.state import Paths

    root, cid, *placed = argv  # placed: a --cgroup-parent (the monitor's argv)
    if placed:
        cgroups.place(cid, placed[0])
    finish(Paths(root), cid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
