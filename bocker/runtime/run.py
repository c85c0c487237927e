"""`bocker run` as one library call, used by the CLI, the tests and the
benchmarks alike: create and start, then (attached) relay, wait and
finish."""
from bocker import faults
from bocker.runtime.attached import attach_and_wait
from bocker.runtime.finish import finish
from bocker.runtime.start import create_and_start


def run(paths, req, stdout_fd=1, stderr_fd=2, *, stdin_fd=0, detach=False, tty=False,
        interactive=False, on_started=None, detach_keys=None, ensure_image=None):
    # (req.attach: -a's streams; req.sig_proxy: --sig-proxy; see wait_attached)
    """Run a container from req.

    Attached: relay its output to stdout_fd/stderr_fd (and, -i, stdin_fd
    to it), wait, release it, and return its exit status (128+N for
    signal N); None if the user detached with the detach keys.
    Detached (its monitor keeps it): return None once it runs.
    on_started(container_id), if given, is called once it runs (the CLI
    writes --cidfile and prints a detached container's ID there).
    ensure_image(image_ref), if given, is called once the request's
    options are checked and before anything is made: `run --pull` (the
    CLI's runoptions.ensure_image) pulls the image there.
    """
    checked = None
    if ensure_image is not None:
        from bocker.runtime import create

        checked = create.check_request(req)  # a refused option says so before any pull
        ensure_image(req.image)
    started = create_and_start(paths, req, detach=detach, tty=tty, interactive=interactive,
                               checked=checked)
    if on_started:
        on_started(started.id)
    if detach:
        return None
    faults.point("run.attach_and_wait")
    if req.attach:  # -a: only the streams it names are relayed
        stdout_fd = stdout_fd if "stdout" in req.attach else -1
        stderr_fd = stderr_fd if "stderr" in req.attach else -1
        stdin_fd = stdin_fd if "stdin" in req.attach else -1
    return wait_attached(paths, started, stdout_fd, stderr_fd, stdin_fd, detach_keys,
                         sig_proxy=req.sig_proxy)


def wait_attached(paths, started, stdout_fd=1, stderr_fd=2, stdin_fd=0, detach_keys=None,
                  sig_proxy=True):
    """Relay an attached start until its container exits, release what it
    held here (finish: as fast as in-process can be; the monitor is told it
    need not) and return its exit code; None if the user detached.  If we
    die or fail on the way, the monitor does the cleanup instead.  An fd
    of -1 is not relayed; sig_proxy False: our signals stay ours."""
    try:
        code = attach_and_wait(paths, started, stdout_fd, stderr_fd, stdin_fd, detach_keys,
                               sig_proxy)
        if code is not None:
            faults.point("run.finish")
            finish(paths, started.id)  # exit.json is the monitor's, OOM included
            started.cleaned()
        return code
    finally:
        started.close()
