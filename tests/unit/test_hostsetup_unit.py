"""Teardown's refusals, which come before anything is undone (no root)."""
import json

import pytest

from bocker import hostsetup
from bocker.errors import BockerError
from bocker.state import Paths


def test_teardown_refuses_while_a_container_runs(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    record = tmp_path / "root.setup.json"
    record.write_text(json.dumps({"root": str(root), "created_root": True}))
    records = [{"Id": "ps_000000000001", "State": {"Running": False}},
               {"Id": "ps_000000000002", "State": {"Running": True}}]
    with pytest.raises(BockerError) as e:
        hostsetup.teardown(Paths(str(root)), records, log=lambda *_: None)
    assert str(e.value) == "containers are running (ps_000000000002): stop them first"
    assert record.exists() and root.is_dir()  # nothing undone


def test_hostsetup_does_not_import_the_runtime():
    # setup sits below the runtime; hostsetup only reads the records it is given
    with open(hostsetup.__file__) as f:
        imports = [ln.strip() for ln in f if ln.strip().startswith(("import ", "from "))]
    assert imports and not [ln for ln in imports if "runtime" in ln]


def test_teardown_refuses_while_a_container_waits_to_restart(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "root.setup.json").write_text(json.dumps({"root": str(root)}))
    records = [{"Id": "ps_000000000003", "State": {"Running": False, "Restarting": True}}]
    with pytest.raises(BockerError) as e:
        hostsetup.teardown(Paths(str(root)), records, log=lambda *_: None)
    assert str(e.value) == "containers are running (ps_000000000003): stop them first"


def test_a_reboot_is_a_boot_id_other_than_the_recorded_one(tmp_path):
    paths = Paths(str(tmp_path / "root"))
    record = tmp_path / "root.setup.json"
    assert not hostsetup.rebooted(paths)  # never set up
    record.write_text(json.dumps({"root": paths.root}))
    assert not hostsetup.rebooted(paths)  # set up before boot IDs were kept
    hostsetup.remember_boot(paths)
    assert json.loads(record.read_text())["boot_id"] == hostsetup.boot_id()
    assert not hostsetup.rebooted(paths)  # this boot's setup ran already
    record.write_text(json.dumps({"root": paths.root, "boot_id": "an-earlier-boot"}))
    assert hostsetup.rebooted(paths)


def test_boot_unit_text_and_names(monkeypatch):
    from bocker import bootunit

    monkeypatch.setenv("BOCKER_CGROUP_PARENT", "bocker-x")
    text = bootunit.unit_text("/srv/bocker", python="/usr/bin/python3").splitlines()
    assert "ExecStart=/usr/bin/python3 -m bocker.cli --root /srv/bocker setup" in text
    assert "Environment=BOCKER_CGROUP_PARENT=bocker-x" in text
    assert {"Type=oneshot", "RemainAfterExit=yes", "WantedBy=multi-user.target",
            "After=local-fs.target network.target", "RequiresMountsFor=/srv"} <= set(text)
    assert bootunit.unit_name("/var/bocker") == "bocker-setup.service"
    assert bootunit.unit_name("/srv/bocker") != bootunit.unit_name("/srv/bocker2")
    for bad in ("/srv/my root", "/srv/100%", "/srv/a\nExecStart=/bin/evil", '/srv/"x"'):
        with pytest.raises(BockerError) as e:
            bootunit.unit_text(bad, python="/usr/bin/python3")
        assert "\n" not in str(e.value) and "systemd unit" in str(e.value)
