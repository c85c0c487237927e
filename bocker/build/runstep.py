"""RUN: the step's command in a confined container whose rootfs is a
snapshot of the step's parent entry (runtime's create_and_start base=),
with the build's network, the config's Env, User and WorkingDir and the
build args in scope as environment.  Its output is streamed; on exit 0
the container's rootfs becomes the step's cache entry (store), and the
container is removed whatever happened."""
import contextlib
import os
import threading

from bocker.build.errors import BuildError


def run(paths, base_rootfs, argv, *, env, user, workdir, network, printer, store, what, line):
    """Run argv over a snapshot of base_rootfs; on success call
    store(container rootfs) and return what it returns.  A non-zero exit
    is a BuildError naming the step (what) and its line; nothing is
    stored and no container is left either way."""
    from bocker.runtime import lifecycle, spec, start
    from bocker.runtime.run import wait_attached

    if not argv or not argv[0]:
        raise BuildError("RUN needs a command", line=line)
    config = {"Env": list(env), "User": user or "", "WorkingDir": workdir or "/"}
    req = spec.RunRequest("bocker-build", argv[1:], entrypoint=argv[:1], network=network)
    out_fd = printer.output_fd()
    relay = None
    if out_fd is None:  # the printer shows the output itself (tty)
        relay = _Relay(printer)
        out_fd = relay.write_fd
    started = None
    try:
        started = start.create_and_start(paths, req, base=(base_rootfs, config))
        code = wait_attached(paths, started, out_fd, out_fd, -1)
        if relay:
            relay.finish(keep=code != 0)
        if code != 0:
            error = BuildError(f'building at STEP "{what}" (Dockerfile:{line}): exit status '
                               f'{code}')
            error.line = line  # (the message names it already, in buildah's words)
            raise error
        return store(os.path.join(paths.container(started.id), "rootfs"))
    finally:
        if relay:
            relay.finish(keep=True)
        if started is not None:
            with contextlib.suppress(Exception):
                lifecycle.remove(paths, started.id, force=True)


class _Relay:
    """A pipe whose read end a thread hands to printer.run_output."""

    def __init__(self, printer):
        self.printer = printer
        r, self.write_fd = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._pump, args=(r,), daemon=True)
        self._thread.start()
        self._done = False

    def _pump(self, r):
        try:
            while True:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                self.printer.run_output(chunk)
        finally:
            os.close(r)

    def finish(self, keep=False):
        """Close the write end, wait for the reader, fold the output."""
        if self._done:
            return
        self._done = True
        os.close(self.write_fd)
        self._thread.join()
        self.printer.run_finished(keep=keep)
