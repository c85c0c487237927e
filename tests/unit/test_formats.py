"""What C and Python share has one definition (csrc/formats.h, csrc/shim.h)
and this test fails if either side drifts from it: the exit-code rules,
the step names, the exit.json fields and the log records that the real
bocker-monitor writes (run here without root, over a process of the
test's own), and the mount limit."""
import ast
import glob
import json
import os
import re
import signal

import pytest

import bocker
from bocker import ids, state
from bocker.errors import RunRefused
from bocker.kernel import native
from bocker.runtime import attach, records

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
CSRC = os.path.join(ROOT, "csrc")
MONITOR = os.path.join(os.path.dirname(bocker.__file__), "bocker-monitor")


def _read(name):
    with open(os.path.join(CSRC, name)) as f:
        return f.read()


def _c_define(name):
    found = re.findall(rf"^#define {name}\s+(.+?)\s*$", _read("formats.h").replace("\\\n", " "),
                       re.M)
    assert len(found) == 1, name
    return ast.literal_eval(found[0])


def _exit_enum():
    return {m[0]: int(m[1]) for m in re.findall(r"\bSHIM_EXIT_(\w+) = (\d+)", _read("formats.h"))}


def test_exit_codes_are_formats_h_ones():
    assert _exit_enum() == {"RUNTIME": 125, "CANNOT_EXECUTE": 126, "NOT_FOUND": 127,
                            "SIGNAL_BASE": 128}
    for name, value in _exit_enum().items():
        assert getattr(native, "EXIT_" + name) == value


def test_c_spells_no_exit_code_of_its_own():
    """Every exit status the shim and monitor choose goes through formats.h:
    no bare 125..128 in an _exit, a return from main or a signal sum."""
    for path in glob.glob(os.path.join(CSRC, "*.c")):
        with open(path) as f:
            text = f.read()
        assert not re.findall(r"_exit\(\s*[1-9]\d*\s*\)|return 12[5-8];|128 \+", text), path
    child = _read("child.c")
    assert "_exit(err == ENOENT ? SHIM_EXIT_NOT_FOUND : SHIM_EXIT_CANNOT_EXECUTE)" in child
    assert "_exit(SHIM_EXIT_RUNTIME)" in _read("internal.h")  # the STEP macro


def _status_of(how):
    """The wait status of a child of ours that ends by how()."""
    pid = os.fork()
    if pid == 0:
        how()
        os._exit(0)
    return os.waitpid(pid, 0)[1]


def _kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def test_python_exit_code_rule():
    base = _exit_enum()["SIGNAL_BASE"]
    assert native.exit_code(_status_of(_kill_self)) == base + signal.SIGKILL
    assert native.exit_code(_status_of(lambda: os._exit(3))) == 3


def _run_monitor(tmp_path, body):
    """Run bocker-monitor over a process that runs body() with its stdout
    and stderr on the monitor's pipes; return (exit.json, log bytes)."""
    log, exit_json = str(tmp_path / "log"), str(tmp_path / "exit.json")
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # becomes the monitor, parent of the "container"
        try:
            if os.fork() == 0:
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                body()
                os._exit(0)
            os.close(out_w)
            os.close(err_w)
            os.set_inheritable(out_r, True)
            os.set_inheritable(err_r, True)
            os.execv(MONITOR, [MONITOR, str(out_r), str(err_r), log, exit_json, "-"])
        finally:
            os._exit(99)
    for fd in (out_r, out_w, err_r, err_w):
        os.close(fd)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    with open(exit_json) as f:
        ended = json.load(f)
    with open(log, "rb") as f:
        return ended, f.read()


def _talk_then(end):
    def body():
        os.write(1, b"hello\n")
        os.write(2, b"no newline")
        end()
    return body


def test_monitor_exit_json_is_what_python_reads(tmp_path):
    """The monitor's exit code for a signal and for an exit is Python's
    for the same wait status, and records.refresh folds its fields in."""
    killed, _ = _run_monitor(tmp_path, _talk_then(_kill_self))
    assert killed["ExitCode"] == native.exit_code(_status_of(_kill_self))
    exited, _ = _run_monitor(tmp_path, _talk_then(lambda: os._exit(7)))
    assert exited["ExitCode"] == 7
    fields = re.findall(r'"(\w+)": ', _c_define("EXIT_JSON_FORMAT"))
    assert list(killed) == fields
    paths = state.Paths(str(tmp_path / "root"))
    cid = ids.new_id("ps")
    os.makedirs(paths.container(cid))
    with open(records.exit_path(paths, cid), "w") as f:
        json.dump(killed, f)
    record = {"Id": cid, "State": {"Running": True, "Pid": 0}}
    st = records.refresh(paths, record)["State"]
    assert (st["Status"], st["ExitCode"], st["OOMKilled"]) == ("exited", 137, False)
    assert abs(records.parse_iso(st["FinishedAt"]) - records.parse_iso(records.now_iso())) < 60


def _dict_keys(node):
    return {k.value for k in node.keys if isinstance(k, ast.Constant)}


def test_python_writes_the_exit_json_fields():
    """Every Python dict that records how a container ended (the attached
    run's exit.json, a new record's State) carries exit.json's fields."""
    fields = set(re.findall(r'"(\w+)": ', _c_define("EXIT_JSON_FORMAT")))
    seen = 0
    for path in glob.glob(os.path.join(ROOT, "bocker", "**", "*.py"), recursive=True):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict) and {"ExitCode", "FinishedAt"} <= _dict_keys(node):
                seen += 1
                assert fields <= _dict_keys(node), (path, node.lineno)
    assert seen >= 2


def test_monitor_log_records_parse_as_pythons(tmp_path):
    _, log = _run_monitor(tmp_path, _talk_then(lambda: os._exit(0)))
    parsed = [attach.parse_log_line(line) for line in log.splitlines()]
    assert sorted((s, t) for _, s, t in parsed) == [("stderr", b"no newline"),
                                                    ("stdout", b"hello")]
    assert all(records.parse_iso(stamp) for stamp, _, _ in parsed)
    assert {_c_define("LOG_STDOUT"), _c_define("LOG_STDERR")} == {"stdout", "stderr"}
    assert _c_define("LOG_RECORD_HEAD") == "%s %s "
    assert _c_define("LINE_MAX_BYTES") == attach.LINE_MAX_BYTES
    writer_log = tmp_path / "py-log"
    writer = attach.LogWriter(str(writer_log))
    writer.feed(b"stdout", b"hello\n")
    writer.close()
    ((_, stream, text),) = [attach.parse_log_line(line)
                            for line in writer_log.read_bytes().splitlines()]
    assert (stream, text) == ("stdout", b"hello")


def _step_names():
    names = [native.step_name(i) for i in range(1, native.lib.STEP_LAST)]
    assert "unknown step" not in names and len(set(names)) == len(names)
    return set(names)


def test_python_names_only_real_steps():
    """Python keeps no list of step names: the ones it maps (the phases of
    the benchmarks, the steps whose report names an object) all exist."""
    from benchmarks import phases

    names = _step_names()
    assert set(phases.CHILD_STEPS) <= names
    assert set(native._INDEXED_STEPS) <= names
    assert native.step_name(native.lib.STEP_LAST) == "unknown step"


def test_report_index_names_the_mount(tmp_path):
    """A report's index comes through read_reports and names the mount."""
    r, w = os.pipe()
    rec = native.ffi.new("struct shim_report *", {"step": native.lib.STEP_MOVE_BINDS,
                                                  "err": 2, "index": 1, "ns": 5})
    os.write(w, bytes(native.ffi.buffer(rec)))
    os.close(w)
    (report,) = native.read_reports(r)
    assert report == ("move_mount volumes", 2, 5, 1)
    mounts = [native.Mount("/a", "/etc/hosts"), native.Mount("/tmp/x", "/data")]
    assert native.step_object(report, {"mounts": mounts}) == "/data"
    assert native.step_object(report._replace(index=2), {"mounts": mounts}) is None
    assert native.step_object(report._replace(step="pivot_root"), {"mounts": mounts}) is None


def test_more_mounts_than_the_shim_takes_are_refused():
    limit = int(re.search(r"SHIM_MAX_BINDS = (\d+)", _read("shim.h")).group(1))
    assert native.MAX_BINDS == limit
    mounts = [native.Mount(None, f"/t{i}") for i in range(limit + 1)]
    with pytest.raises(RunRefused, match=f"too many mounts: {limit + 1} .* at most {limit}"):
        native.spawn("/nonexistent", ["true"], [], mounts=mounts)


def test_the_shim_refuses_more_mounts_too():
    """Past Python's check, the shim itself refuses (E2BIG) before clone,
    never truncating the list."""
    import errno

    req = native.ffi.new("struct shim_spawn *")
    req.n_mounts, req.status_fd = native.MAX_BINDS + 1, -1
    out = native.ffi.new("struct shim_child *")
    assert native.lib.shim_spawn(req, out) == -errno.E2BIG
