"""bocker setup and its teardown, beyond the session fixture's own use."""
import os

import pytest

from bocker import hostsetup
from bocker.errors import BockerError
from bocker.state import Paths


def test_failed_setup_leaves_nothing(tmp_path):
    root = tmp_path / "root"
    paths = Paths(str(root))
    bridge = f"bkf{os.getpid() % 100000}"  # ours alone, whoever else runs this test
    with pytest.raises(BockerError) as e:  # fails after mkfs, loop and mount
        hostsetup.setup(paths, size="256M", bridge=bridge, subnet="10.0.0.0/31",
                        log=lambda *_: None)
    assert "too small" in str(e.value)
    assert not root.exists()
    assert not (tmp_path / "root.btrfs").exists()
    assert not (tmp_path / "root.setup.json").exists()
    with open("/proc/self/mountinfo") as f:
        assert str(root) not in f.read()
    assert bridge not in os.listdir("/sys/class/net")


def test_teardown_of_what_was_never_set_up(tmp_path):
    with pytest.raises(BockerError) as e:
        hostsetup.teardown(Paths(str(tmp_path / "never")), [], log=lambda *_: None)
    assert "was not set up by bocker" in str(e.value)


def test_setup_is_idempotent(paths, bocker):
    out = bocker("setup", check=True).stdout
    assert "Mounted" not in out and "Created" not in out  # nothing new to make
    assert bocker("run", "--rm", "busybox", "true").returncode == 0


def test_setup_of_a_root_whose_parents_do_not_exist(tmp_path, monkeypatch):
    # teardown removes its cgroup parent: one of its own, not the session's
    monkeypatch.setenv("BOCKER_CGROUP_PARENT", f"bocker-parents-{os.getpid()}")
    root = tmp_path / "a" / "b" / "root"
    paths = Paths(str(root))
    bridge = f"bkg{os.getpid() % 100000}"
    try:
        hostsetup.setup(paths, size="256M", bridge=bridge,
                        subnet=f"10.192.{os.getpid() % 250}.0/24", default_image=False,
                        log=lambda *_: None)
        assert os.path.ismount(root)
    finally:
        if (tmp_path / "a" / "b" / "root.setup.json").exists():
            hostsetup.teardown(paths, [], log=lambda *_: None)
    assert not root.exists() and not (tmp_path / "a" / "b" / "root.setup.json").exists()
    assert bridge not in os.listdir("/sys/class/net")
