"""Log records: an attached run (attach.LogWriter) splits output into
records exactly as a detached one (csrc/monitor.c, its cap in
csrc/formats.h) does, and each record is bounded, so a line without end
cannot grow the bocker process."""
import io
import os
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bocker.runtime import attach
from bocker.state import Paths

CAP = attach.LINE_MAX_BYTES
FORMATS_H = os.path.join(os.path.dirname(__file__), "..", "..", "csrc", "formats.h")


def test_monitor_and_python_share_the_cap():
    with open(FORMATS_H) as f:
        found = re.findall(r"^#define LINE_MAX_BYTES (\d+)$", f.read(), re.M)
    assert found == [str(CAP)]


def monitor_model(chunks):
    """monitor.c's pump(), line for line: a fixed buffer of CAP bytes that
    each read fills as far as it can."""
    data = b"".join(chunks)
    out, buf, pos = [], b"", 0
    sizes = iter(len(c) for c in chunks)
    while True:
        want = next(sizes, len(data) - pos) or 1
        n = min(want, CAP - len(buf), len(data) - pos)
        if n == 0 and pos == len(data):
            if buf:
                out.append(buf)
            return out
        buf += data[pos:pos + n]
        pos += n
        start = 0
        for i, byte in enumerate(buf):
            if byte == 0x0A:
                out.append(buf[start:i])
                start = i + 1
        if start == 0 and len(buf) == CAP:
            out.append(buf)
            start = len(buf)
        buf = buf[start:]


SEGMENT = st.tuples(st.sampled_from([0, 1, 7, CAP - 2, CAP - 1, CAP, CAP + 1, 2 * CAP + 3]),
                    st.booleans())


def _output(segments):
    return b"".join(b"x" * n + (b"\n" if nl else b"") for n, nl in segments)


def _chunks(data, cuts):
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def _records(log_path):
    with open(log_path, "rb") as f:
        return [line.split(b" ", 2)[2][:-1] for line in f]


@settings(max_examples=60, deadline=None)
@given(st.lists(SEGMENT, max_size=6), st.lists(st.integers(0, 6 * CAP), max_size=8))
def test_records_match_the_monitor_whatever_the_chunks(tmp_path_factory, segments, cuts):
    data = _output(segments)
    chunks = _chunks(data, cuts)
    path = str(tmp_path_factory.mktemp("log") / "log")
    writer = attach.LogWriter(path)
    for chunk in chunks:
        writer.feed(b"stdout", chunk)
        assert len(writer.partial[b"stdout"]) < CAP  # never more than a record held
    writer.close()
    got = _records(path)
    assert got == monitor_model(chunks or [b""])
    assert all(len(r) <= CAP and b"\n" not in r for r in got)


@settings(max_examples=40, deadline=None)
@given(st.lists(SEGMENT, max_size=6).map(lambda s: s + [(3, True)]))
def test_logs_give_back_the_output(tmp_path_factory, segments):
    data = _output(segments)
    root = tmp_path_factory.mktemp("root")
    paths, cid = Paths(str(root)), "ps_0123456789ab"
    os.makedirs(paths.container(cid))
    writer = attach.LogWriter(os.path.join(paths.container(cid), "log"))
    for i in range(0, len(data), 4096):
        writer.feed(b"stdout", data[i:i + 4096])
    writer.close()
    out, err = io.BytesIO(), io.BytesIO()
    attach.print_log(paths, cid, stdout=out, stderr=err)
    assert out.getvalue() == data and err.getvalue() == b""


def test_tail_counts_records(tmp_path):
    paths, cid = Paths(str(tmp_path)), "ps_0123456789ab"
    os.makedirs(paths.container(cid))
    writer = attach.LogWriter(os.path.join(paths.container(cid), "log"))
    writer.feed(b"stdout", b"".join(b"%d\n" % i for i in range(1000)))
    writer.feed(b"stderr", b"partial")
    writer.close()
    out, err = io.BytesIO(), io.BytesIO()
    attach.print_log(paths, cid, tail=2, stdout=out, stderr=err)
    assert (out.getvalue(), err.getvalue()) == (b"999\n", b"partial\n")
    out = io.BytesIO()
    attach.print_log(paths, cid, tail=0, stdout=out, stderr=err)
    assert out.getvalue() == b""
