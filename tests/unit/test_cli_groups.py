"""Docker's management groups (no root): every `docker container ...`,
`docker image ...`, `docker volume ...` and `docker system ...`
subcommand bocker has resolves, and a group's alias is the top-level
command itself (the same click command, or for inspect the same
callback with --type set)."""
import click
import pytest
from click.testing import CliRunner

from bocker.cli import app, groups

# Docker 24's subcommands of each group, and bocker's top-level command of
# each (None: bocker has none; the group's own for prune and df)
DOCKER = {
    "container": {
        "attach": "attach", "commit": "commit", "cp": "cp", "create": "create",
        "diff": "diff", "exec": "exec", "export": "export", "inspect": "inspect",
        "kill": "kill", "logs": "logs", "ls": "ps", "list": "ps", "ps": "ps",
        "pause": "pause", "port": "port", "prune": None, "rename": "rename",
        "restart": "restart", "rm": "rm", "remove": "rm", "run": "run", "start": "start",
        "stats": "stats", "stop": "stop", "top": "top", "unpause": "unpause",
        "update": "update", "wait": "wait",
    },
    "image": {
        "history": "history", "import": "import", "inspect": "inspect", "load": "load",
        "ls": "images", "list": "images", "prune": None, "pull": "pull", "rm": "rmi",
        "remove": "rmi", "save": "save", "tag": "tag", "build": "build",
    },
    "system": {"df": None, "events": "events", "info": "info", "prune": None},
}
NOT_IN_BOCKER = {("image", "push")}


def _ctx():
    return click.Context(app.cli, obj=app.Session())


def _group(name):
    return app.cli.get_command(_ctx(), name)


@pytest.mark.parametrize("group,sub,top", [(g, s, t) for g, subs in DOCKER.items()
                                           for s, t in subs.items()])
def test_every_docker_subcommand_resolves_and_is_the_top_level_one(group, sub, top):
    ctx = _ctx()
    grouped = _group(group).get_command(ctx, sub)
    assert grouped is not None, f"bocker {group} {sub}"
    assert sub in _group(group).list_commands(ctx)
    if top is None:
        return
    direct = app.cli.get_command(ctx, top)
    assert direct is not None and direct.name == top
    if sub == "inspect":  # the same body, restricted to the group's kind
        assert grouped.callback is direct.callback and grouped is not direct
        [kind] = [p for p in grouped.params if p.name == "kind"]
        assert kind.default == group
        assert [p for p in direct.params if p.name == "kind"][0].default not in DOCKER
    else:
        assert grouped is direct


def test_the_aliases_table_is_the_docker_table_above():
    for group in ("container", "image", "system"):
        assert {s: t for s, t in groups.ALIASES[group].items()} == \
            {s: t for s, t in DOCKER[group].items() if t is not None}


@pytest.mark.parametrize("group,sub", sorted(NOT_IN_BOCKER))
def test_what_bocker_lacks_is_a_usage_error(group, sub):
    result = CliRunner().invoke(app.cli, [group, sub, "--help"])
    assert result.exit_code == 125


def test_volume_subcommands_resolve():
    assert set(_group("volume").list_commands(_ctx())) >= {"create", "inspect", "ls",
                                                           "prune", "rm"}


@pytest.mark.parametrize("argv", [["ps"], ["container", "ls"], ["images"], ["image", "ls"],
                                  ["history"], ["image", "history"], ["info"],
                                  ["system", "info"]])
def test_an_alias_helps_as_its_command(argv):
    result = CliRunner().invoke(app.cli, [*argv, "--help"])
    assert result.exit_code == 0
    body = result.output.split("\n", 1)[1]  # all but the Usage line (names the path)
    top = {"container": "ps", "image": {"ls": "images"}.get(argv[-1], argv[-1]),
           "system": argv[-1]}.get(argv[0], argv[0])
    assert body == CliRunner().invoke(app.cli, [top, "--help"]).output.split("\n", 1)[1]


def test_the_group_inspects_only_its_kind(monkeypatch):
    from bocker.cli import containers

    seen = []
    monkeypatch.setattr(containers, "_inspect_one",
                        lambda paths, ref, kind, size: seen.append(kind) or {"Id": ref})
    monkeypatch.setattr("os.geteuid", lambda: 0)
    for argv, kind in ((["inspect"], None), (["container", "inspect"], "container"),
                       (["image", "inspect"], "image"),
                       (["image", "inspect", "--type", "container"], "container")):
        result = CliRunner().invoke(app.cli, ["--root", "/nonexistent", *argv, "x"])
        assert result.exit_code == 0, result.output
        assert seen.pop() == kind
