"""RUN: the step's command in a confined container whose rootfs is a
snapshot of the step's parent entry (runtime's create_and_start base=),
with the build's network, the config's Env, User and WorkingDir and the
build args in scope as environment.  Its output is streamed; on exit 0
the container's rootfs becomes the step's cache entry (store), and the
container is removed whatever happened."""
import contextlib
import errno
import os
import stat
import threading

from bocker.build.errors import BuildError
from bocker.errors import BockerError
from bocker.kernel import native

_BENEATH_NO_LINKS = (native.RESOLVE_BENEATH | native.RESOLVE_NO_SYMLINKS
                     | native.RESOLVE_NO_MAGICLINKS)


def run(paths, base_rootfs, argv, *, env, user, workdir, network, printer, store, what, line):
    """Run argv over a snapshot of base_rootfs; on success call
    store(container rootfs) and return what it returns.  A non-zero exit
    is a BuildError naming the step (what) and its line; nothing is
    stored and no container is left either way."""
    from bocker.runtime import lifecycle, spec, start
    from bocker.runtime.attached import attach_and_wait
    from bocker.runtime.finish import finish

    if not argv or not argv[0]:
        raise BuildError("RUN needs a command", line=line)
    config = {"Env": list(env), "User": user or "", "WorkingDir": workdir or "/"}
    # remove: should this build be killed, the container's monitor removes
    # it once it has ended (while we wait, our finish below does)
    req = spec.RunRequest("bocker-build", argv[1:], entrypoint=argv[:1], network=network,
                          remove=True)
    out_fd = printer.output_fd()
    relay = None
    if out_fd is None:  # the printer shows the output itself (tty)
        relay = _Relay(printer)
        out_fd = relay.write_fd
    started = None
    stubs = missing_stubs(base_rootfs)
    try:
        try:
            started = start.create_and_start(paths, req, base=(base_rootfs, config))
        except BuildError:
            raise
        except BockerError as e:  # (a USER the rootfs lacks, no network set up...)
            error = BuildError(f'building at STEP "{what}" (Dockerfile:{line}): {e}')
            error.line = line
            raise error from None
        # our signals stay ours: a Ctrl-C ends the build (and the RUN with it,
        # below), not only a RUN whose PID 1 might ignore it
        code = attach_and_wait(paths, started, out_fd, out_fd, -1, None, False)
        if relay:
            relay.finish(keep=code != 0)
        stored = None
        if code == 0:  # the monitor leaves the ended container to us until our finish
            rootfs = os.path.join(paths.container(started.id), "rootfs")
            remove_stubs(rootfs, stubs)
            stored = store(rootfs)
        finish(paths, started.id)  # released and (remove) gone
        started.cleaned()
        started = None
        if code != 0:
            error = BuildError(f'building at STEP "{what}" (Dockerfile:{line}): exit status '
                               f'{code}')
            error.line = line  # (the message names it already, in buildah's words)
            raise error
        return stored
    finally:
        if relay:
            relay.finish(keep=True)
        if started is not None:  # cut short: kill and remove it here
            with contextlib.suppress(Exception):
                lifecycle.remove(paths, started.id, force=True)
            started.close()


# The mount points a start makes when the rootfs lacks them (csrc/mounts.c
# make_target, kernfs.c): empty stubs a RUN must not leave in the image
# (BuildKit removes its own too).  Deepest first.
STUBS = ("etc/hosts", "etc/hostname", "etc/resolv.conf", "etc", "proc", "dev", "sys")


def missing_stubs(rootfs):
    """The STUBS rootfs lacks (before the RUN)."""
    return [p for p in STUBS if _lstat_in(rootfs, p) is None]


def remove_stubs(rootfs, stubs):
    """Remove those of stubs the start made: an empty regular file or an
    empty directory now at that path (never following a symlink: the
    rootfs is the RUN's, hostile)."""
    for path in stubs:
        parent, _, name = path.rpartition("/")
        dfd = _open_dir_in(rootfs, parent)
        if dfd is None:
            continue
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                os.unlink(name, dir_fd=dfd)
            elif stat.S_ISDIR(st.st_mode):
                with contextlib.suppress(OSError):  # not empty: the RUN's own
                    os.rmdir(name, dir_fd=dfd)
        except FileNotFoundError:
            pass
        finally:
            os.close(dfd)


def _open_dir_in(rootfs, rel):
    """An O_PATH fd of the directory rel under rootfs, resolved beneath it
    without following any symlink (one openat2); None if it is not a
    directory there."""
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return native.openat2(root, rel or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                              _BENEATH_NO_LINKS)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    finally:
        os.close(root)


def _lstat_in(rootfs, rel):
    parent, _, name = rel.rpartition("/")
    dfd = _open_dir_in(rootfs, parent)
    if dfd is None:
        return None
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    finally:
        os.close(dfd)


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
