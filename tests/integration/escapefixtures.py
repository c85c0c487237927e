"""Escape-suite support: the `escape-probe` image (busybox and the static
probe of probe.c), a pseudo-terminal session to run bocker in, and a
detached container that is removed whatever the test does.

    from escapefixtures import IMAGE, probe_binary, probe_image, detached  # noqa: F401
"""
import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import termios

import pytest

from bocker import hostsetup

from conftest import BOCKER, run_bocker

IMAGE = "escape-probe"
PROBE_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.c")


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory):
    """probe.c, compiled static (it runs in a rootfs with no libc)."""
    binary = str(tmp_path_factory.mktemp("probe") / "probe")
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary,
                    PROBE_SOURCE], check=True, capture_output=True, text=True, timeout=120)
    return binary


@pytest.fixture(scope="module")
def probe_image(paths, probe_binary):
    """The escape-probe image: busybox with /bin/probe.  Made once per
    module and removed at its end, so other modules see only their own
    images (the leak check runs after every test, before this teardown)."""
    work = tempfile.mkdtemp(prefix="bocker-probe-")
    try:
        rootfs = os.path.join(work, "rootfs")
        hostsetup.make_busybox_rootfs(rootfs)
        shutil.copy2(probe_binary, os.path.join(rootfs, "bin/probe"))
        run_bocker("init", rootfs, "--name", IMAGE, check=True)
    finally:
        shutil.rmtree(work)
    yield IMAGE
    run_bocker("rmi", IMAGE, check=True)


@contextlib.contextmanager
def detached(*args, name=None):
    """A container started with `bocker run -d ARGS`; yields its ID and
    removes it (-f) on the way out."""
    proc = run_bocker("run", "-d", *(["--name", name] if name else []), *args, check=True)
    cid = proc.stdout.strip()
    try:
        yield cid
    finally:
        run_bocker("rm", "-f", cid, timeout=60)


def in_pty_session(argv, timeout=60, pass_fds=()):
    """Run argv as the leader of a new session whose controlling terminal
    is a pty this test made (stdin is that pty; stdout and stderr are
    pipes), as a user's shell runs bocker from a terminal.  Returns the
    CompletedProcess; the pty is closed afterwards."""
    master, slave = os.openpty()

    def take_terminal():
        # after start_new_session's setsid(): make the pty ours
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=take_terminal, pass_fds=pass_fds)
        os.close(slave)
        slave = -1
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
            raise
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)


def bocker_argv(*args):
    """The argv of a bocker CLI call, for in_pty_session."""
    return [BOCKER, *args]
