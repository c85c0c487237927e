"""logs --since/--until over a log's records (no root): the window, tail
counted inside it, a partial last line kept back."""
import io
import os

from bocker.runtime import attach, records
from bocker.state import Paths

CID = "ps_0123456789ab"
LINES = [(1700000000.5, "stdout", "one"), (1700000001.5, "stderr", "two"),
         (1700000002.5, "stdout", "three"), (1700000003.5, "stdout", "four")]


def _log(tmp_path, partial=b""):
    paths = Paths(str(tmp_path))
    path = records.log_path(paths, CID)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        for ts, stream, text in LINES:
            f.write(attach._stamp(ts) + f" {stream} {text}\n".encode())
        f.write(partial)
    return paths


def _print(paths, **kw):
    out, err = io.BytesIO(), io.BytesIO()
    attach.print_log(paths, CID, stdout=out, stderr=err, **kw)
    return out.getvalue().decode(), err.getvalue().decode()


def test_since_until_and_tail(tmp_path):
    paths = _log(tmp_path)
    assert _print(paths) == ("one\nthree\nfour\n", "two\n")
    assert _print(paths, since=1700000001.5) == ("three\nfour\n", "two\n")
    assert _print(paths, until=1700000002.5) == ("one\n", "two\n")
    assert _print(paths, since=1700000001, until=1700000003) == ("three\n", "two\n")
    assert _print(paths, since=1700000001, tail=1) == ("four\n", "")
    assert _print(paths, since=1800000000) == ("", "")


def test_a_partial_last_line_waits(tmp_path):
    paths = _log(tmp_path, partial=attach._stamp(1700000004.5) + b" stdout fiv")
    assert _print(paths, since=1700000003) == ("four\n", "")
