"""The bocker click group, its global options, and main(): the one place
where an error becomes a line on stderr and an exit code.

The commands live in containers.py, images.py, manage.py, groups.py (the
container/image/system groups, with prune.py's commands) and setup.py as
plain click commands (each imports the library it needs inside its body,
so `bocker run` pays only for what it uses); this module gathers them into the group,
importing a command's module only when that command runs (or for --help).
"""
import sys

import click

from bocker.errors import BockerError

# Docker's exit code when `docker run` itself fails (not the container's own
# code): an OSError or a plain BockerError out of a run (or a create) is
# bocker failing to start it.  A usage error is 125 in every command, as
# Docker's CLI exits for a bad flag.
OS_ERROR_EXIT = {"run": 125, "create": 125}
USAGE_EXIT = 125


class Session:
    """What every command gets as its click obj: the layout under the chosen
    root; and, for main(), the command that ran (its errors' exit code)."""

    def __init__(self):
        self.paths = None
        self.command = None


# The module of each command.  A command's module is imported when it runs,
# so a `bocker run` does not pay for defining the image and setup commands
# (tests/unit/test_cli_boundary.py checks this table against the modules).
COMMAND_MODULES = {
    "setup": "setup",
    **dict.fromkeys(("init", "images", "rmi", "tag", "history", "pull", "login", "logout",
                     "load", "save"), "images"),
    **dict.fromkeys(("cp", "diff", "export", "import"), "files"),
    "create": "create",
    **dict.fromkeys(("run", "exec", "stop", "kill", "wait", "start", "restart",
                     "attach", "ps", "logs", "inspect", "commit", "rm"), "containers"),
    **dict.fromkeys(("rename", "top", "stats", "port", "update", "pause", "unpause", "info",
                     "version", "events"), "manage"),
    # Docker's management groups, aliases of the commands above (and prune)
    **dict.fromkeys(("system", "container", "image"), "groups"),
    "volume": "volumes",
    **dict.fromkeys(("build", "builder"), "build"),
}


class BockerGroup(click.Group):
    """A click group whose main() maps every error to one line and a code,
    and whose commands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx, name):
        module = COMMAND_MODULES.get(name)
        if module is None:
            return None
        import importlib

        commands = importlib.import_module(f"bocker.cli.{module}").COMMANDS
        return _needing_root(next(c for c in commands if c.name == name))

    def main(self, args=None, prog_name=None, **extra):
        """Run the command line args (default sys.argv[1:]) and exit: 0, a
        container's own code, or the code of the error that ended it.

        click's usage errors exit 125 (Docker's), an interrupt 130, a
        BockerError its exit_code, an OSError 1; in `run` and `create`
        (OS_ERROR_EXIT) an OSError and a BockerError without a code of its
        own exit 125.  Other
        exceptions are bugs and keep their traceback.  CliRunner.invoke
        comes through here too, so tests see what a user sees.
        """
        args = _spell_trace(sys.argv[1:] if args is None else list(args))
        session = Session()
        try:
            code = super().main(args, prog_name=prog_name or "bocker",
                                standalone_mode=False, obj=session, **extra)
        except click.ClickException as e:
            e.show()
            if isinstance(e, click.UsageError):
                sys.exit(USAGE_EXIT)
            sys.exit(e.exit_code if e.exit_code != 1 else 2)
        except (click.exceptions.Abort, KeyboardInterrupt):
            sys.exit(130)
        except BockerError as e:
            _error_line(e)
            if e.exit_code == BockerError.exit_code:
                sys.exit(OS_ERROR_EXIT.get(session.command, e.exit_code))
            sys.exit(e.exit_code)
        except OSError as e:
            _error_line(e.strerror or e)
            sys.exit(OS_ERROR_EXIT.get(session.command, 1))
        # without standalone mode click returns ctx.exit()'s code (--help,
        # --version); the commands themselves return None
        sys.exit(code if isinstance(code, int) else 0)


class NeedsRoot(BockerError):
    """bocker run by another user: it mounts, clones namespaces and writes
    cgroups, none of which an unprivileged user may."""

    def __init__(self, exit_code):
        super().__init__("bocker needs root (it mounts filesystems, makes namespaces and "
                         "cgroups): run it as root or with sudo")
        self.exit_code = exit_code


def _needing_root(command):
    # The check runs when the command's body would, after click has parsed
    # its options: `bocker ps --help` and `bocker --version` still work for
    # anyone, everything else says why it cannot in one line.
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _needing_root(sub)
        return command
    body = command.callback
    if body is None or getattr(body, "needs_root", False):
        return command

    def checked(*args, **kwargs):
        import os

        if os.geteuid() != 0:
            raise NeedsRoot(OS_ERROR_EXIT.get(command.name, 1))
        return body(*args, **kwargs)

    checked.needs_root = True
    command.callback = checked
    return command


def _spell_trace(args):
    # click has no optional option values: --trace=json becomes --trace-format json
    return [("--trace-format=" + a.split("=", 1)[1]) if a.startswith("--trace=") else a
            for a in args]


def _error_line(message):
    from bocker.cli import output

    output.error(message)


@click.group(name="bocker", cls=BockerGroup,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", envvar="BOCKER_ROOT", default=None,
              help="bocker's btrfs root (default /var/bocker, or $BOCKER_ROOT).")
@click.option("--trace", "trace_mode", flag_value="text", default=None,
              help="Print every kernel step to stderr (--trace=json: one object per line).")
@click.option("--trace-format", "trace_mode", type=click.Choice(["text", "json"]), hidden=True)
@click.version_option(package_name="bocker")
@click.pass_context
def cli(ctx, root, trace_mode):
    """bocker: Docker's core verbs over btrfs, cgroups and namespaces."""
    from bocker import trace
    from bocker.state import Paths

    if trace_mode:
        trace.configure(trace_mode)
    else:
        trace.configure_from_env()
    session = ctx.ensure_object(Session)
    session.paths = Paths(root)
    # click has resolved the subcommand before it calls the group
    session.command = ctx.invoked_subcommand


def main():
    """Console entry point (`bocker`, `python -m bocker.cli`)."""
    cli.main()
