"""The benchmark suite still runs: `python -m benchmarks --quick` exits 0
and writes its JSON and PNG.  No timing is asserted here, ever: timing
claims live in benchmarks/, and a loaded CI machine must not fail tests."""
import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="the benchmarks need root"),
]


def _processes():
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def test_quick_run_writes_json_and_png(tmp_path):
    pytest.importorskip("matplotlib")
    before = _processes()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--runs", "3", "--warmup", "1",
         "--trace-runs", "1", "--out", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    jsons = list(tmp_path.glob("*.json"))
    pngs = list(tmp_path.glob("*.png"))
    assert len(jsons) == 1 and len(pngs) == 1, os.listdir(tmp_path)
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads(jsons[0].read_text())
    # The shape of the record, not its numbers.
    for key in ("machine", "versions", "method", "systems", "skipped", "targets"):
        assert key in record
    assert {t["status"] for t in record["targets"]} <= {"met", "not met", "unknown"}
    assert "targets" in out.stdout
    # Nothing the suite started is still running (other helpers' processes
    # may come and go, so only look for the suite's own names).
    left = []
    for pid in _processes() - before:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "benchmarks.nsrunner" in cmd or "-bench-" in cmd:
            left.append(cmd)
    assert not left


def test_no_temp_files_left(tmp_path):
    """The workspace (rootfs, bundle, floor binary) is removed on exit."""
    import tempfile
    before = set(os.listdir(tempfile.gettempdir()))
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--runs", "1", "--warmup", "0",
         "--only", "floor", "--out", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    after = set(os.listdir(tempfile.gettempdir()))
    assert not [n for n in after - before if n.startswith("bkb-")]
