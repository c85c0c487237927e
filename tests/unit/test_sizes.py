"""ps -s's count of what a container wrote: files whose ctime is not
older than the container, never through a symlink."""
import os
import time

from bocker.runtime import sizes


def test_counts_only_files_changed_since(tmp_path):
    old = tmp_path / "old"
    old.write_bytes(b"x" * 100)
    since = time.time() + 5  # everything made so far is "the image's"
    assert sizes.changed_bytes(str(tmp_path), since) == 0
    assert sizes.changed_bytes(str(tmp_path), time.time() - 5) == 100


def test_symlinks_are_counted_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"y" * 10000)
    root = tmp_path / "rootfs"
    (root / "d").mkdir(parents=True)
    os.symlink(str(outside), root / "d" / "link")
    (root / "d" / "f").write_bytes(b"z" * 7)
    total = sizes.changed_bytes(str(root), time.time() - 5)
    assert total == 7 + len(str(outside))


def test_a_missing_rootfs_is_none(tmp_path):
    assert sizes.changed_bytes(str(tmp_path / "gone"), 0) is None
