"""The child's status reports: between clone and execve the child (C only)
writes one (step, errno, time) record per step to a CLOEXEC pipe; this
module reads them, traces them, and turns a failed step into Docker's
exit codes: 127 command not found, 126 cannot execute, 125 any other
step."""
import os

from bocker import trace
from bocker.errors import StartError


def check(status_fd, pid, argv, read_reports=None):
    """Read the child's step reports from status_fd (closing it); raise
    StartError for a failed step."""
    if read_reports is None:
        from bocker.kernel.native import read_reports
    reports = read_reports(status_fd)
    if trace.enabled():
        _trace(reports, pid, argv)
    failure = decode(reports, argv)
    if failure:
        raise failure


def decode(reports, argv):
    """The StartError a list of (step, errno, ns) reports means, or None if
    no step failed (a failed step is the child's last report).
    """
    failed = [r for r in reports if r[1]]
    if not failed:
        return None
    step, err, _ = failed[-1]
    if step == "execve" and err == 2:
        return StartError(f"executable file not found: {argv[0]}", 127)
    if step == "execve":
        return StartError(f"cannot execute {argv[0]}: {os.strerror(err)}", 126)
    return StartError(f"{step}: {os.strerror(err)}", 125)


def _trace(reports, pid, argv):
    # each report marks the end of its step; a step began where the one
    # before it ended.  "exec done" closes the execve step.
    prev = None
    for step, err, ns in reports:
        if step == "exec done":
            trace.emit("execve", {"argv": argv}, prev, ns - prev, result="exec'd", pid=pid)
        elif not (step == "execve" and not err):  # its end comes as "exec done"
            trace.emit(step, {}, prev or ns, ns - (prev or ns), err=err, pid=pid)
        prev = ns
