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
from bocker.runtime import attach, protocol, records

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
CSRC = os.path.join(ROOT, "csrc")
MONITOR = os.path.join(os.path.dirname(bocker.__file__), "bocker-monitor")


def _read(name):
    with open(os.path.join(CSRC, name)) as f:
        return f.read()


def _c_define(name):
    text = re.sub(r"/\*.*?\*/", "", _read("formats.h"), flags=re.S)  # comments
    found = re.findall(rf"^#define {name}\s+(.+?)\s*$", text.replace("\\\n", " "), re.M)
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


def _run_monitor(tmp_path, body, client=None, cleanup=()):
    """Run bocker-monitor over a process that runs body() with its stdout
    and stderr on the monitor's pipes (client: the monitor's end of a
    socket pair, its first client; cleanup: its cleanup command); return
    (exit.json, log bytes)."""
    log, exit_json = str(tmp_path / "log"), str(tmp_path / "exit.json")
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # becomes the monitor, parent of the "container"
        try:
            child = os.fork()
            if child == 0:
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                body()
                os._exit(0)
            os.close(out_w)
            os.close(err_w)
            fds = [out_r, err_r] + ([client] if client is not None else [])
            for fd in fds:
                os.set_inheritable(fd, True)
            os.execv(MONITOR, [MONITOR, str(child), "-1", str(out_r), str(err_r), "-1", "-1",
                               "-1", str(-1 if client is None else client), "-", log,
                               exit_json, "-", str(tmp_path / "attach"), *cleanup])
        finally:
            os._exit(99)
    for fd in (out_r, out_w, err_r, err_w):
        os.close(fd)
    if client is not None:
        os.close(client)
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


def _messages(sock, cleaned):
    """Every message the monitor sends on sock (a socket, closed here)
    until its exit message, answered with ATTACH_CLEANED (then EOF comes)
    if cleaned, else by hanging up."""
    msgs = []
    with sock:
        while True:
            msg = os.read(sock.fileno(), protocol.MSG_MAX)
            if not msg:
                return msgs
            msgs.append(protocol.decode(msg))
            if msgs[-1][0] == protocol.EXIT:
                if not cleaned:
                    return msgs
                os.write(sock.fileno(), protocol.CLEANED)


@pytest.mark.parametrize("cleaned", [True, False])
def test_monitor_speaks_the_attach_protocol(tmp_path, cleaned):
    """The first client gets the output as it comes, then the exit code
    once exit.json is written; the monitor runs its cleanup command only
    if that client did not say it cleaned up (formats.h's types are
    protocol.py's)."""
    import socket
    import threading

    for name in ("STDOUT", "STDERR", "LOST", "EXIT", "STDIN", "STDIN_EOF", "RESIZE", "DETACH",
                 "CLEANED"):
        assert _c_define("ATTACH_" + name).encode() == getattr(protocol, name)
    assert _c_define("ATTACH_DATA_MAX") == protocol.DATA_MAX
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    got = {}
    reader = threading.Thread(target=lambda: got.update(msgs=_messages(ours, cleaned)))
    reader.start()
    marker = tmp_path / "cleanup-ran"
    ended, _ = _run_monitor(tmp_path, _talk_then(lambda: os._exit(3)), theirs.detach(),
                            cleanup=["/bin/sh", "-c", f"touch {marker}"])
    reader.join(10)
    out = b"".join(v for k, v in got["msgs"] if k == protocol.STDOUT)
    err = b"".join(v for k, v in got["msgs"] if k == protocol.STDERR)
    assert (out, err, got["msgs"][-1]) == (b"hello\n", b"no newline", (protocol.EXIT, 3))
    assert ended["ExitCode"] == 3
    assert marker.exists() != cleaned


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
