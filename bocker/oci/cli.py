"""`bocker-oci`: runc's command line over bocker's shim.

This module parses and prints only; main() is the one place an error
becomes a line (stderr and the --log) and an exit code: 0 ok, 1 any
error (usage included, as runc), and for `run` and `exec` the
container process's own code (128+N if signal N ended it).
"""
import json
import os
import sys

import click

from bocker.errors import BockerError, InvalidArgument
from bocker.oci import log
from bocker.oci.state import Root

_NO_INTERSPERSE = {"allow_interspersed_args": False}


class Session:
    """What every verb gets: the state root."""

    def __init__(self):
        self.root = None


pass_session = click.make_pass_decorator(Session, ensure=True)


def _version(ctx, _param, value):
    if value and not ctx.resilient_parsing:
        from bocker.oci.features import version_text

        click.echo(version_text())
        ctx.exit(0)


@click.group(name="bocker-oci", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", default="/run/bocker-oci", show_default=True,
              help="Directory of the containers' state.")
@click.option("--log", "log_path", default=None, help="Log file (default: none, errors on stderr).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--log-level", default=None, hidden=True)
@click.option("--debug", is_flag=True, help="Log debug lines.")
@click.option("--systemd-cgroup", is_flag=True,
              help="Not supported: bocker-oci drives cgroupfs only.")
@click.option("--rootless", default="auto", hidden=True, help="Ignored.")
@click.option("--criu", default=None, hidden=True, help="Ignored.")
@click.option("-v", "--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_version, help="Show the version and exit.")
@click.pass_context
def main_group(ctx, root, log_path, log_format, log_level, debug, systemd_cgroup, rootless,
               criu):
    """bocker-oci: an OCI runtime (runc's command line) on bocker's shim."""
    log.configure(log_path, log_format, debug or log_level == "debug")
    log.debug(f"bocker-oci {' '.join(sys.argv[1:])}")
    if systemd_cgroup:
        raise BockerError("--systemd-cgroup is not supported: bocker-oci manages cgroups "
                          "through cgroupfs (configure your client's cgroup manager as "
                          "cgroupfs)")
    ctx.ensure_object(Session).root = Root(root)


# ------------------------------------------------------------- lifecycle

def _create_options(f):
    for option in reversed([
        click.option("--bundle", "-b", default=".", help="The bundle directory."),
        click.option("--console-socket", default=None,
                     help="A unix socket the pty master is sent to (process.terminal)."),
        click.option("--pid-file", default=None, help="Write the init's PID here."),
        click.option("--no-pivot", is_flag=True, help="MS_MOVE + chroot, not pivot_root."),
        click.option("--no-new-keyring", is_flag=True,
                     help="Keep the caller's session keyring (default: a new one)."),
        click.option("--preserve-fds", type=click.IntRange(0, 1 << 16), default=0,
                     help="Pass fds 3..3+N-1 to the container."),
    ]):
        f = option(f)
    return f


@main_group.command()
@_create_options
@click.option("--detach", "-d", is_flag=True, hidden=True, help="Accepted: create detaches.")
@click.argument("container_id")
@pass_session
def create(session, container_id, bundle, console_socket, pid_file, no_pivot, no_new_keyring,
           preserve_fds, detach):
    """Create a container; it waits for `start`."""
    from bocker.oci import launch

    launch.create(session.root, container_id, bundle, pid_file=pid_file,
                  console_socket=console_socket, no_pivot=no_pivot, preserve_fds=preserve_fds,
                  new_keyring=not no_new_keyring)


@main_group.command()
@click.argument("container_id")
@pass_session
def start(session, container_id):
    """Start a created container."""
    from bocker.oci import control

    control.start(session.root, container_id)


@main_group.command()
@_create_options
@click.option("--detach", "-d", is_flag=True, help="Return once it runs.")
@click.option("--keep", is_flag=True, help="Do not delete it after it exits.")
@click.argument("container_id")
@pass_session
def run(session, container_id, bundle, console_socket, pid_file, no_pivot, no_new_keyring,
        preserve_fds, detach, keep):
    """Create and start a container; without --detach wait for it and exit
    with its status (then delete it, unless --keep)."""
    from bocker.oci import console, control, execute, launch

    created = launch.create(session.root, container_id, bundle, pid_file=pid_file,
                            console_socket=console_socket, no_pivot=no_pivot,
                            preserve_fds=preserve_fds, relay_console=not detach,
                            new_keyring=not no_new_keyring)
    try:
        master = console.receive_master(created.console) if created.console >= 0 else -1
        control.start(session.root, container_id)
    except BaseException:
        control.delete(session.root, container_id, force=True)
        os.waitpid(created.pid, 0)
        raise
    if detach:
        return 0
    if master >= 0:
        console.relay(master)
    code = execute.wait_forwarding(created.pid, created.pidfd)
    if not keep:
        control.delete(session.root, container_id, force=True)
    return code


@main_group.command()
@click.argument("container_id")
@pass_session
def state(session, container_id):
    """Print the container's state (runtime spec JSON)."""
    from bocker.oci import control

    click.echo(json.dumps(control.spec_state(session.root, container_id), indent=2))


@main_group.command()
@click.option("--all", "-a", "all_processes", is_flag=True,
              help="Signal every process of the container's cgroup.")
@click.argument("container_id")
@click.argument("signal_name", default="SIGTERM")
@pass_session
def kill(session, container_id, signal_name, all_processes):
    """Send a signal (name or number, default SIGTERM) to the container."""
    from bocker import units
    from bocker.oci import control

    control.kill(session.root, container_id, units.parse_signal(signal_name), all_processes)


@main_group.command()
@click.option("--force", "-f", is_flag=True, help="Kill it first if it is not stopped.")
@click.argument("container_id")
@pass_session
def delete(session, container_id, force):
    """Delete a stopped container."""
    from bocker.oci import control

    control.delete(session.root, container_id, force)


@main_group.command(name="exec", context_settings=_NO_INTERSPERSE)
@click.option("--console-socket", default=None)
@click.option("--cwd", default=None)
@click.option("--env", "-e", multiple=True)
@click.option("--tty", "-t", is_flag=True)
@click.option("--user", "-u", default=None, help="uid[:gid]")
@click.option("--additional-gids", "-g", multiple=True)
@click.option("--process", "-p", "process_file", default=None, help="process.json ('-': stdin)")
@click.option("--detach", "-d", is_flag=True)
@click.option("--pid-file", default=None)
@click.option("--process-label", default=None, hidden=True)
@click.option("--apparmor", default=None, hidden=True)
@click.option("--no-new-privs", is_flag=True)
@click.option("--cap", "-c", multiple=True)
@click.option("--preserve-fds", type=click.IntRange(0, 1 << 16), default=0)
@click.option("--cgroup", multiple=True, hidden=True)
@click.option("--ignore-paused", is_flag=True, hidden=True)
@click.argument("container_id")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_session
def exec_(session, container_id, command, console_socket, cwd, env, tty, user,
          additional_gids, process_file, detach, pid_file, process_label, apparmor,
          no_new_privs, cap, preserve_fds, cgroup, ignore_paused):
    """Run a process in a created or running container."""
    from bocker.oci import execute

    for name, value in (("--process-label", process_label), ("--apparmor", apparmor)):
        if value:
            log.warning(f"exec {name} is not applied (no LSM on this host)")
    if cgroup:
        log.warning("exec --cgroup is not applied: the process joins the container's cgroup")
    req = execute.ExecRequest(args=command, process_file=process_file, cwd=cwd, env=env,
                              user=user, additional_gids=additional_gids, caps=cap, tty=tty,
                              no_new_privs=no_new_privs)
    return execute.exec_in(session.root, container_id, req, detach=detach, pid_file=pid_file,
                           console_socket=console_socket, preserve_fds=preserve_fds)


@main_group.command()
@click.argument("container_id")
@pass_session
def pause(session, container_id):
    """Freeze every process of the container."""
    from bocker.oci import control

    control.pause(session.root, container_id)


@main_group.command()
@click.argument("container_id")
@pass_session
def resume(session, container_id):
    """Thaw a paused container."""
    from bocker.oci import control

    control.resume(session.root, container_id)


# ------------------------------------------------------------- resources

def _update_options(f):
    from bocker.oci.updateflags import FLAGS

    for option, _, _, _ in reversed(FLAGS):
        f = click.option("--" + option.replace("_", "-"), option, default=None)(f)
    return f


@main_group.command()
@click.option("--resources", "-r", "resources_file", default=None,
              help="linux.resources JSON ('-': stdin).")
@_update_options
@click.option("--l3-cache-schema", default=None, hidden=True)
@click.option("--mem-bw-schema", default=None, hidden=True)
@click.argument("container_id")
@pass_session
def update(session, container_id, resources_file, l3_cache_schema, mem_bw_schema, **flags):
    """Change the container's cgroup limits."""
    from bocker.oci import control

    from bocker.oci import updateflags

    if l3_cache_schema or mem_bw_schema:
        raise InvalidArgument("update: Intel RDT is not supported")
    resources = updateflags.read_resources(resources_file) if resources_file else {}
    control.update(session.root, container_id, updateflags.merge(resources, flags))


# ------------------------------------------------------------- reads

@main_group.command(context_settings=_NO_INTERSPERSE)
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.argument("container_id")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@pass_session
def ps(session, container_id, fmt, ps_args):
    """The container's processes (json: their PIDs; table: `ps` lines)."""
    from bocker.oci import control

    pids = control.pids(session.root, container_id)
    if fmt == "json":
        if ps_args:
            raise InvalidArgument("ps: arguments for ps(1) do not go with --format json")
        click.echo(json.dumps(pids))
        return
    from bocker.oci import tables

    for line in tables.ps_lines(pids, list(ps_args) or ["-ef"]):
        click.echo(line)


@main_group.command(name="list")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--quiet", "-q", is_flag=True, help="IDs only.")
@pass_session
def list_(session, fmt, quiet):
    """The containers under --root."""
    from bocker.oci import control

    items = control.listing(session.root)
    if quiet:
        for item in items:
            click.echo(item["id"])
    elif fmt == "json":
        click.echo(json.dumps([{k: v for k, v in item.items() if k != "annotations"}
                               for item in items]))
    else:
        from bocker.oci import tables

        for line in tables.list_lines(items):
            click.echo(line)


@main_group.command()
def features():
    """What this runtime supports (runtime spec features JSON)."""
    from bocker.oci.features import features as document

    click.echo(json.dumps(document(), indent=2))


@main_group.command()
@click.option("--bundle", "-b", default=".", help="Where to write config.json.")
@click.option("--rootless", is_flag=True, help="Not supported.")
def spec(bundle, rootless):
    """Write a default config.json (runc's, with args ["sh"])."""
    from bocker.oci import config as oci_config

    if rootless:
        raise InvalidArgument("spec --rootless is not supported: bocker-oci runs as root")
    path = os.path.join(bundle, "config.json")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise BockerError(f"File {path} exists. Remove it first") from None
    except OSError as e:
        raise BockerError(f"{path}: {e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        json.dump(oci_config.default_spec(), f, indent=2)
        f.write("\n")


# ------------------------------------------------------------- main

def _os_error_text(e):
    if e.filename is not None:
        return f"{e.filename}: {e.strerror}"
    return e.strerror or str(e)


def main(args=None):
    """Console entry point (`bocker-oci`, `python -m bocker.oci.cli`)."""
    try:
        code = main_group.main(args, prog_name="bocker-oci", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        log.error(e.format_message())
        sys.exit(1)
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.exit(130)
    except BockerError as e:
        log.error(str(e))
        sys.exit(1)
    except OSError as e:
        log.error(_os_error_text(e))
        sys.exit(1)
    except Exception as e:  # a bug: one line for the caller, the traceback in the --debug log
        import traceback

        log.debug(traceback.format_exc())
        log.error(f"internal error: {type(e).__name__}: {e}")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
