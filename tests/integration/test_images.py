"""init / images / rm on a real loop btrfs."""
import os
import stat

import pytest

from bocker.image import images
from bocker.kernel import store


@pytest.fixture
def tree(tmp_path):
    """A directory with a symlink, a hard link, a setuid file and a fifo."""
    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    (d / "file").write_text("hello\n")
    os.link(d / "file", d / "hardlink")
    os.symlink("file", d / "symlink")
    (d / "suid").write_text("#!/bin/sh\n")
    os.chmod(d / "suid", 0o4755)
    os.mkfifo(d / "fifo")
    os.chown(d / "sub", 1234, 5678)
    return d


def test_init_keeps_special_files(bocker, paths, tree):
    out = bocker("init", str(tree), "--name", "special:v1", check=True).stdout
    assert out.startswith("Created: img_")
    image_id = out.split()[1]
    try:
        root = images.rootfs(paths, image_id)
        assert store.is_subvolume(root)
        assert open(os.path.join(root, "file")).read() == "hello\n"
        st_file, st_link = os.stat(os.path.join(root, "file")), os.stat(os.path.join(root, "hardlink"))
        assert st_file.st_ino == st_link.st_ino and st_file.st_nlink == 2
        assert os.readlink(os.path.join(root, "symlink")) == "file"
        assert stat.S_IMODE(os.stat(os.path.join(root, "suid")).st_mode) == 0o4755
        assert stat.S_ISFIFO(os.lstat(os.path.join(root, "fifo")).st_mode)
        sub = os.stat(os.path.join(root, "sub"))
        assert (sub.st_uid, sub.st_gid) == (1234, 5678)
        # metadata lives beside the rootfs, never inside it
        assert os.path.exists(os.path.join(paths.image(image_id), "image.json"))
        assert not os.path.exists(os.path.join(root, "image.json"))
    finally:
        bocker("rm", image_id, check=True)


def test_images_lists_source_and_name(bocker, tree):
    image_id = bocker("init", str(tree), "--name", "listed", check=True).stdout.split()[1]
    try:
        out = bocker("images", check=True).stdout.splitlines()
        assert out[0].split()[:2] == ["IMAGE_ID", "SOURCE"]
        row = next(line for line in out if line.startswith(image_id))
        assert str(tree) in row and "listed:latest" in row
        assert image_id in bocker("images", "-q", check=True).stdout.split()
    finally:
        assert bocker("rmi", "listed").stdout == f"Removed: {image_id}\n"


def test_missing_directory(bocker):
    proc = bocker("init", "/nonexistent/dir")
    assert proc.returncode == 1
    assert proc.stderr == "bocker: No directory named '/nonexistent/dir' exists\n"


def test_unknown_image(bocker):
    proc = bocker("rm", "img_000000000000")
    assert proc.returncode == 1
    assert "No image named 'img_000000000000' exists" in proc.stderr


def test_prefix_and_ambiguity(bocker, tree):
    a = bocker("init", str(tree), check=True).stdout.split()[1]
    b = bocker("init", str(tree), check=True).stdout.split()[1]
    try:
        common = os.path.commonprefix([a, b])
        proc = bocker("rmi", common)
        assert proc.returncode == 1 and "ambiguous" in proc.stderr
        assert a in proc.stderr and b in proc.stderr
        others = [i for i in bocker("images", "-q", check=True).stdout.split() if i != a]
        unique = next(a[:n] for n in range(len(common) + 1, len(a) + 1)
                      if not any(o.startswith(a[:n]) for o in others))
        assert bocker("rmi", unique).stdout == f"Removed: {a}\n"
    finally:
        for i in (a, b):
            bocker("rmi", i)


def test_default_busybox_image(paths):
    names = [n for r in images.list_all(paths) for n in r["names"]]
    assert "busybox:latest" in names
    root = images.rootfs(paths, images.resolve(paths, "busybox"))
    assert os.path.islink(os.path.join(root, "bin/sh"))
    assert stat.S_IMODE(os.stat(os.path.join(root, "tmp")).st_mode) == 0o1777
