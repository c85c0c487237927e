"""The child's status reports: between clone and execve the child (C only)
writes one (step, errno, time) record per step to a CLOEXEC pipe; this
module reads them, traces them, and turns a failed step into Docker's
exit codes: 127 command not found, 126 cannot execute, 125 any other
step."""
import os

from bocker import trace
from bocker.errors import StartError


def check(status_fd, pid, argv, read_reports=None, options=None):
    """Read the child's step reports from status_fd (closing it); raise
    StartError for a failed step, naming what it failed on (a volume, a
    sysctl) from the spawn options."""
    if read_reports is None:
        from bocker.kernel.native import read_reports
    reports = read_reports(status_fd)
    if trace.enabled():
        _trace(reports, pid, argv)
    failure = decode(reports, argv, options)
    if failure:
        raise failure


def decode(reports, argv, options=None):
    """The StartError a list of (step, errno, ns[, index]) reports means, or
    None if no step failed (a failed step is the child's last report).
    The exit codes are csrc/formats.h's, through the shim."""
    from bocker.kernel import native

    failed = [r for r in reports if r[1]]
    if not failed:
        return None
    step, err = failed[-1][0], failed[-1][1]
    if step == "execve" and err == 2:
        return StartError(f"executable file not found: {argv[0]}", native.EXIT_NOT_FOUND)
    if step == "execve":
        return StartError(f"cannot execute {argv[0]}: {os.strerror(err)}",
                          native.EXIT_CANNOT_EXECUTE)
    what = (native.step_object(failed[-1], options or {})
            if len(failed[-1]) > 3 else None)  # a Report carries the index, a bare tuple not
    where = f"{step} {what}" if what else step
    return StartError(f"{where}: {os.strerror(err)}", native.EXIT_RUNTIME)


def _trace(reports, pid, argv):
    # each report marks the end of its step; a step began where the one
    # before it ended.  "exec done" closes the execve step.
    prev = None
    for report in reports:
        step, err, ns = report[0], report[1], report[2]
        if step == "exec done":
            trace.emit("execve", {"argv": argv}, prev, ns - prev, result="exec'd", pid=pid)
        elif not (step == "execve" and not err):  # its end comes as "exec done"
            trace.emit(step, {}, prev or ns, ns - (prev or ns), err=err, pid=pid)
        prev = ns
