"""The README's Docker compatibility table is true.

Each row names a Docker command, bocker's support for it, and the command's
flags in three cells: yes, differs (each with how), no.  Checked against
bocker's own click commands: a flag said to work exists, a flag said not
to work does not, a command said missing is missing.  Where the Docker
client the table was written from is installed, every one of its flags is
in the row (so a row cannot leave a flag out).
"""
import os
import re
import shutil
import subprocess

import pytest

from bocker.cli.app import cli

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
SECTION = "## Docker compatibility"


def _rows():
    with open(README) as f:
        text = f.read()
    body = text[text.index(SECTION):]
    body = body[:body.index("\n## ", len(SECTION))]
    version = re.search(r"Docker ([0-9.]+) client", body).group(1)
    rows = []
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            rows.append(cells)
    return version, rows


def _flags(cell):
    """Every flag named in a cell: `-h/--hostname` gives both spellings."""
    out = []
    for span in re.findall(r"`([^`]+)`", cell):
        if span.startswith("-"):
            out.append(span.split("/"))
    return out


def _command(words):
    """bocker's click command for words (['volume', 'ls']), or None."""
    import click

    ctx = click.Context(cli)
    command = cli
    for word in words:
        if not isinstance(command, click.Group):
            return None
        command = command.get_command(ctx, word)
        if command is None:
            return None
    return command


def _opts(command):
    return {o for p in command.params for o in (p.opts + p.secondary_opts)} | {"--help"}


VERSION, ROWS = _rows()


def test_the_table_has_rows():
    assert len(ROWS) > 30


@pytest.mark.parametrize("row", ROWS, ids=[r[0].strip("`") for r in ROWS])
def test_row_matches_bockers_commands(row):
    name, support, yes, differs, no = row
    support = support.split(":")[0].split()[0]  # "differs: how", "no (why)"
    words = name.strip("`").split()
    command = _command(words)
    if support == "no":
        assert command is None, f"{name} exists, the table says no"
        assert not _flags(yes + differs)
        return
    assert support in ("yes", "differs"), support
    assert command is not None, f"{name} is missing, the table says {support}"
    have = _opts(command)
    for spellings in _flags(yes) + _flags(differs):
        for flag in spellings:
            assert flag in have, f"{name} {flag}: the table says it works"
    for spellings in _flags(no):
        for flag in spellings:
            assert flag not in have, f"{name} {flag}: the table says no, bocker has it"


def _docker_flags(words):
    text = subprocess.run(["docker", *words, "--help"], capture_output=True, text=True,
                          timeout=10).stdout
    flags = set()
    for line in text.splitlines():
        m = re.match(r"^\s+(?:(-\w), )?(--[\w-]+)", line)
        if m:
            flags.update(x for x in m.groups() if x)
    return flags - {"--help"}


def _docker_version():
    if not shutil.which("docker"):
        return None
    proc = subprocess.run(["docker", "--version"], capture_output=True, text=True, timeout=10)
    m = re.search(r"version ([0-9.]+)", proc.stdout)
    return m.group(1) if m else None


@pytest.mark.skipif(_docker_version() != VERSION,
                    reason=f"the table lists the Docker {VERSION} client's flags")
@pytest.mark.parametrize("row", ROWS, ids=[r[0].strip("`") for r in ROWS])
def test_row_lists_every_flag_docker_has(row):
    name, _, yes, differs, no = row
    listed = {f for spellings in _flags(yes + differs + no) for f in spellings}
    assert _docker_flags(name.strip("`").split()) == listed
