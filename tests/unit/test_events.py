"""The event log: shape, bounds, rotation, and that writing never fails a command."""
import json
import os

from hypothesis import given, strategies as st

from bocker import events
from bocker.state import Paths


def test_emit_appends_docker_shaped_line(tmp_path):
    paths = Paths(str(tmp_path))
    events.emit(paths, "container", "die", "ps_abc", {"name": "web", "exitCode": 3})
    events.emit(paths, "image", "tag", "img_1", {"name": "alpine:x"})
    lines = (tmp_path / "events.log").read_bytes().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["Type"] == "container" and first["Action"] == "die"
    assert first["Actor"] == {"ID": "ps_abc", "Attributes": {"name": "web", "exitCode": "3"}}
    assert first["scope"] == "local" and first["time"] == first["timeNano"] // 10**9
    assert [e["Action"] for e in events.read(paths)] == ["die", "tag"]


def test_emit_never_raises(tmp_path, capsys):
    paths = Paths(str(tmp_path / "missing" / "root"))  # no such directory
    events.emit(paths, "container", "start", "ps_x")  # a warning, not an error
    assert capsys.readouterr().err == \
        "bocker: cannot write the event log: No such file or directory\n"
    events.container(paths, {"Config": "not a dict"}, "start")  # a record not ours: no event
    assert "cannot write the event log" in capsys.readouterr().err


@given(st.dictionaries(st.text(max_size=600), st.text(max_size=2000), max_size=80),
       st.text(max_size=1000))
def test_lines_are_bounded_and_parse_back(attributes, action):
    line = events.encode(events.event("container", action, "ps_x", attributes))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert len(line) <= events.MAX_LINE
    assert events.parse_line(line[:-1])["Action"] == action[:events.MAX_VALUE]


def test_rotation_keeps_the_newer_half(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "MAX_SIZE", 4096)
    paths = Paths(str(tmp_path))
    for i in range(200):
        events.emit(paths, "container", "start", f"ps_{i}")
    assert os.path.getsize(tmp_path / "events.log") <= 4096
    got = events.read(paths)
    ids = [e["Actor"]["ID"] for e in got if e["Type"] == "container"]
    assert ids[-1] == "ps_199" and "ps_0" not in ids
    assert ids == sorted(ids, key=lambda s: int(s[3:]))  # order kept across the cut
    assert any(e["Action"] == "log-rotation" for e in got)


def test_malformed_lines_are_skipped():
    data = b'{"Type":"container"}\nnot json\n[1]\n' + events.encode(
        events.event("image", "pull", "alpine"))
    assert [e["Action"] for e in events.parse_lines(data)] == ["pull"]
