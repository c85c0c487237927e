"""bocker.faults: the registry of fault points matches the code, and the
switch's value is parsed strictly (a misspelt step must not test nothing)."""
import ast
import pathlib
import subprocess
import sys

import pytest

from bocker import faults

PACKAGE = pathlib.Path(faults.__file__).resolve().parent
COMMANDS = {"run", "exec", "commit", "commit-into", "pull", "load", "rm", "setup", "teardown"}


def _points_in_source():
    """{step: [files]} for every faults.point("...") call in the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "point" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "faults"):
                arg = node.args[0]
                assert isinstance(arg, ast.Constant), f"{path}: a point's name is a literal"
                found.setdefault(arg.value, []).append(str(path))
    return found


def test_every_point_is_registered_and_every_registered_step_has_a_point():
    found = _points_in_source()
    assert set(found) == set(faults.STEPS), (
        f"in the code only: {sorted(set(found) - set(faults.STEPS))}; "
        f"in STEPS only: {sorted(set(faults.STEPS) - set(found))}")
    twice = {step: files for step, files in found.items() if len(files) > 1}
    assert not twice, f"one point per step name: {twice}"


def test_every_step_names_the_commands_that_reach_it():
    for step, commands in faults.STEPS.items():
        assert commands and set(commands) <= COMMANDS, step


def test_parse():
    assert faults._parse(None) is None
    assert faults._parse("") is None
    assert faults._parse("start.clone:kill") == ("start.clone", "kill")
    for bad in ("start.clone", "start.clone:explode", "no.such.step:fail", ":fail"):
        with pytest.raises(SystemExit):
            faults._parse(bad)


def test_unset_point_does_nothing_and_a_set_one_fails():
    faults.point("start.clone")  # BOCKER_FAULT is unset in the unit tests
    code = ("from bocker import faults\n"
            "try:\n    faults.point('start.clone')\nexcept faults.FaultInjected as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"BOCKER_FAULT": "start.clone:fail", "PYTHONPATH":
                              str(PACKAGE.parent)}).stdout
    assert out.strip() == "fault injected at start.clone"
    killed = subprocess.run([sys.executable, "-c", "from bocker import faults\n"
                             "faults.point('create.make_dir')"],
                            env={"BOCKER_FAULT": "create.make_dir:kill",
                                 "PYTHONPATH": str(PACKAGE.parent)})
    assert killed.returncode == -9
