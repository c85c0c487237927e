"""`bocker run` as one library call, used by the CLI, the tests and the
benchmarks alike: create and start, then (attached) stream, wait and
finish."""
from bocker import faults
from bocker.runtime.attached import attach_and_wait
from bocker.runtime.finish import finish
from bocker.runtime.start import create_and_start


def run(paths, req, stdout_fd=1, stderr_fd=2, *, stdin_fd=0, detach=False, tty=False,
        interactive=False, on_started=None):
    """Run a container from req.

    Attached: stream its output to stdout_fd/stderr_fd and its log, wait,
    release it, and return its exit status (128+N for signal N).
    Detached (its monitor keeps it): return None once it runs.
    on_started(container_id), if given, is called once it runs (the CLI
    writes --cidfile and prints a detached container's ID there).
    """
    started = create_and_start(paths, req, detach=detach, tty=tty, interactive=interactive)
    if on_started:
        on_started(started.id)
    if detach:
        return None
    faults.point("run.attach_and_wait")
    code = attach_and_wait(paths, started, stdout_fd, stderr_fd, stdin_fd)
    faults.point("run.finish")
    finish(paths, started.id, code)
    return code
