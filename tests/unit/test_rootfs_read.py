"""rootfs_read and the user lookup built on it: a container's files read by
the host are regular files, resolved inside the rootfs, and bounded."""
import os
import threading

import pytest

from bocker.errors import InvalidArgument
from bocker.kernel import rootfs_read
from bocker.runtime import spec

HOST_LINE = "nobody:x:4242:4242:host:/host:/bin/sh\n"


@pytest.fixture
def host_passwd(tmp_path):
    path = tmp_path / "host" / "passwd"
    path.parent.mkdir()
    path.write_text(HOST_LINE)
    return path


def _rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    return root


def test_fifo_is_refused_without_blocking(tmp_path):
    root = _rootfs(tmp_path)
    os.mkfifo(root / "etc" / "passwd")
    done = []
    t = threading.Thread(target=lambda: done.append(pytest.raises(
        rootfs_read.UnsafeFile, rootfs_read.read_file, str(root), "etc/passwd", 100)),
        daemon=True)
    t.start()
    t.join(10)
    assert done and "a FIFO, not a regular file" in str(done[0].value)
    with pytest.raises(InvalidArgument, match="/etc/passwd: a FIFO"):
        spec.resolve_user(str(root), "nobody")


@pytest.mark.parametrize("how", ["absolute", "relative", "etc"])
def test_symlinks_resolve_inside(tmp_path, host_passwd, how):
    root = _rootfs(tmp_path)
    if how == "etc":
        os.rmdir(root / "etc")
        os.symlink("../" * 30 + str(host_passwd.parent).lstrip("/"), root / "etc")
    else:
        target = str(host_passwd) if how == "absolute" else "../" * 30 + str(host_passwd)[1:]
        os.symlink(target, root / "etc" / "passwd")
    with pytest.raises(FileNotFoundError):
        rootfs_read.read_file(str(root), "etc/passwd", 1 << 20)
    with pytest.raises(InvalidArgument, match="unable to find user nobody"):
        spec.resolve_user(str(root), "nobody")
    # What the link means inside the rootfs is what is read.
    inside = root / str(host_passwd).lstrip("/")
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_text("nobody:x:7:8:in:/in:/bin/sh\n")
    assert spec.resolve_user(str(root), "nobody") == (7, 8, "/in")


def test_dotdot_path_stays_inside(tmp_path, host_passwd):
    root = _rootfs(tmp_path)
    with pytest.raises(FileNotFoundError):
        rootfs_read.read_file(str(root), "../host/passwd", 100)


def test_size_cap(tmp_path):
    root = _rootfs(tmp_path)
    with open(root / "etc" / "passwd", "wb") as f:
        f.write(b"root:x:0:0::/root:/bin/sh\n")
        f.truncate(100 << 20)
    with pytest.raises(rootfs_read.UnsafeFile, match="larger than 10 bytes"):
        rootfs_read.read_file(str(root), "etc/passwd", 10)
    with pytest.raises(InvalidArgument, match="/etc/passwd: larger than"):
        spec.resolve_user(str(root), "root")


def test_directory_and_missing(tmp_path):
    root = _rootfs(tmp_path)
    (root / "etc" / "passwd").mkdir()
    with pytest.raises(InvalidArgument, match="a directory"):
        spec.resolve_user(str(root), "nobody")
    os.rmdir(root / "etc" / "passwd")
    assert spec.resolve_user(str(root), "1000") == (1000, 1000, "/")


def test_junk_lines_are_skipped(tmp_path):
    root = _rootfs(tmp_path)
    (root / "etc" / "passwd").write_bytes(
        b"\xff\xfe junk\nnobody:x:abc:1::/:/bin/sh\nnobody:x:\xd9\xa3:1::/:x\n"
        b"nobody:x:99999999999:1::/:x\nnobody:x:65534:65534::/nonexistent:/bin/sh\n")
    (root / "etc" / "group").write_text("g:x:notanumber:\ng:x:12:\n")
    assert spec.resolve_user(str(root), "nobody:g") == (65534, 12, "/nonexistent")
