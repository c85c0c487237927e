"""kernel/procfs.py: a PID's state and start time, told from a recycled one
(a zombie's is tested with bocker-oci's state, tests/unit/test_oci_state.py)."""
import os
import subprocess

from bocker.kernel import procfs


def test_a_live_process_a_reaped_one_and_no_pid():
    me = os.getpid()
    state, start = procfs.stat(me)
    assert state in ("R", "S") and start == procfs.start_time(me) > 0
    assert procfs.alive(me, start) and not procfs.alive(me, start + 1)  # a recycled PID
    child = subprocess.Popen(["true"])
    child.wait()
    assert procfs.stat(child.pid) is None and procfs.start_time(child.pid) is None
    for bad in (0, -1, None, "1", 1.5):
        assert procfs.stat(bad) is None and not procfs.alive(bad, start)
