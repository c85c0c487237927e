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
