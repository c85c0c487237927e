"""Docker's management command groups as aliases: `bocker container ls`
is `bocker ps`, `bocker image rm` is `bocker rmi`, `bocker system info`
is `bocker info` (`container inspect` and `image inspect` are inspect
with its --type set); and the prune commands (cli/prune.py), which exist only
inside their group.

Each subcommand is resolved when it runs (or for --help), through the
top-level group's own lazy table (app.COMMAND_MODULES), so `bocker run`
imports none of this and a group imports only the command it runs.  A
subcommand whose top-level command this build lacks is left out.
"""
import click

# group -> {subcommand: top-level command name}; "prune" and "df" are
# the prune module's own (prune.SUBCOMMANDS)
ALIASES = {
    "container": {
        "ls": "ps", "ps": "ps", "list": "ps", "run": "run", "create": "create",
        "start": "start", "stop": "stop", "restart": "restart", "kill": "kill", "rm": "rm",
        "remove": "rm", "exec": "exec", "logs": "logs", "inspect": "inspect", "top": "top",
        "stats": "stats", "port": "port", "rename": "rename", "pause": "pause",
        "unpause": "unpause", "update": "update", "wait": "wait", "attach": "attach",
        "cp": "cp", "diff": "diff", "export": "export", "commit": "commit",
    },
    "image": {
        "ls": "images", "list": "images", "rm": "rmi", "remove": "rmi", "pull": "pull",
        "tag": "tag", "history": "history", "inspect": "inspect", "import": "import",
        "save": "save", "load": "load", "build": "build",
    },
    "system": {"info": "info", "events": "events"},
    # "volume": cli/volumes.py's group is a top-level command of its own
}
HELP = {"container": "Manage containers.", "image": "Manage images.",
        "system": "Manage bocker: disk use, pruning, info, events."}


class AliasGroup(click.Group):
    """A group whose subcommands are other commands, found when used."""

    def _own(self):
        from bocker.cli import prune

        return {sub: cmd for (group, sub), cmd in prune.SUBCOMMANDS.items()
                if group == self.name}

    def _top(self, ctx):
        # the bocker group: its get_command imports a command's module on use
        return ctx.find_root().command

    def list_commands(self, ctx):
        from bocker.cli import app

        names = [sub for sub, top in ALIASES[self.name].items() if top in app.COMMAND_MODULES]
        own = ("prune", "df") if self.name == "system" else ("prune",) \
            if self.name in ("container", "image") else ()
        return sorted(set(names) | set(own))

    def get_command(self, ctx, name):
        if name in ("prune", "df"):
            command = self._own().get(name)
            if command is not None:
                from bocker.cli import app

                return app._needing_root(command)
            return None
        top = ALIASES[self.name].get(name)
        if top is None:
            return None
        command = self._top(ctx).get_command(ctx, top)
        if name == "inspect" and command is not None:
            return _of_kind(command, self.name)
        return command


def _of_kind(command, kind):
    """`container inspect` / `image inspect`: the inspect command (its own
    callback) with --type set to the group's kind, as Docker's look only
    for that kind (a container named like an image is not shown)."""
    import copy

    params = []
    for param in command.params:
        if param.name == "kind":
            param = copy.copy(param)
            param.default = kind
        params.append(param)
    grouped = copy.copy(command)
    grouped.params = params
    return grouped


def _group(name):
    return AliasGroup(name=name, help=HELP[name])


container = _group("container")
image = _group("image")
system = _group("system")

COMMANDS = [container, image, system]
