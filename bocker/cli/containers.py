"""The container commands: run, exec, stop, kill, wait, start, restart,
attach, ps, logs, inspect, commit, rm.

Plain click commands, gathered into the group by app.py; each gets the
click obj (its .paths is a bocker.state.Paths).  No logic here: parse,
call the library, print; errors go up to app.py's one boundary.
"""
import os
import sys

import click

from bocker.cli import output, runoptions
from bocker.errors import BockerError


# run's and create's: -h is --hostname (Docker's), so only --help is help
RUN_SETTINGS = {"allow_interspersed_args": False, "help_option_names": ["--help"]}


@click.command(context_settings=RUN_SETTINGS)
@click.option("-d", "--detach", is_flag=True, help="Run in the background; print the ID.")
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal.")
@runoptions.container_options
@click.option("--cidfile", type=click.Path(dir_okay=False), help="Write the container ID here.")
@click.option("--detach-keys", help="Keys that detach from the container (default ctrl-p,ctrl-q).")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(ctx, detach, interactive, tty, cidfile, detach_keys, image, command, **options):
    """Run COMMAND in a new container from IMAGE."""
    from bocker.runtime import containers, protocol

    if detach_keys:
        from bocker.errors import InvalidArgument, RunRefused

        try:  # refused before anything is made, as every run option
            protocol.parse_detach_keys(detach_keys)
        except InvalidArgument as e:
            raise RunRefused(str(e)) from None
    req = runoptions.request(image, command, options)
    cid_fd = [_create_cidfile(cidfile)] if cidfile else []

    def started(cid):
        if cid_fd:
            os.write(cid_fd[0], cid.encode())
            os.close(cid_fd.pop())
        if detach:
            click.echo(cid)

    try:
        code = containers.run(ctx.paths, req, detach=detach, tty=tty, interactive=interactive,
                              on_started=started, detach_keys=detach_keys)
    finally:
        if cid_fd:  # the run failed before its container started: the empty file is ours
            os.close(cid_fd.pop())
            os.unlink(cidfile)
    if not detach:
        sys.exit(code or 0)  # None: the user detached, it runs on


@click.command(context_settings=RUN_SETTINGS)
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin open (for start -a -i).")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal.")
@runoptions.container_options
@click.option("--cidfile", type=click.Path(dir_okay=False), help="Write the container ID here.")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def create(ctx, interactive, tty, cidfile, image, command, **options):
    """Create a container from IMAGE without starting it; print its ID
    (`bocker start` starts it)."""
    from bocker.runtime import start as start_path

    req = runoptions.request(image, command, options)
    cid_fd = _create_cidfile(cidfile) if cidfile else None
    try:
        cid = start_path.create_only(ctx.paths, req, tty=tty, interactive=interactive)
    except BaseException:
        if cid_fd is not None:
            os.close(cid_fd)
            os.unlink(cidfile)
        raise
    if cid_fd is not None:
        os.write(cid_fd, cid.encode())
        os.close(cid_fd)
    click.echo(cid)


def _create_cidfile(path):
    """--cidfile made before anything else, as Docker does: a file that
    exists already is refused (another container may own it)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise BockerError(f"container ID file found, make sure the other container isn't "
                          f"running or delete {path}") from None
    except OSError as e:
        raise BockerError(f"cannot create container ID file {path}: {e.strerror}") from None


@click.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run it in the background; return at once.")
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal.")
@click.option("-e", "--env", "env", multiple=True, help="KEY=VAL")
@click.option("--env-file", multiple=True, help="File of KEY=VAL lines.")
@click.option("-w", "--workdir", help="Working directory.")
@click.option("-u", "--user", help="UID[:GID] or NAME[:GROUP].")
@click.option("--privileged", is_flag=True,
              help="Every capability and no seccomp filter for this command.")
@click.argument("ref")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_cmd(ctx, detach, interactive, tty, env, env_file, workdir, user, privileged, ref,
             command):
    """Run COMMAND inside a running container."""
    from bocker.runtime import containers, spec

    env = [item for path in env_file for item in spec.parse_env_file(path)] + list(env)
    sys.exit(containers.exec_in(ctx.paths, ref, list(command), env=env, workdir=workdir,
                                user=user, tty=tty and not detach,
                                interactive=interactive and not detach, detach=detach,
                                privileged=privileged))


# stop's and restart's grace time, as Docker's -t (default: the
# container's --stop-timeout, else 10)
_grace_time = click.option("-t", "--time", "timeout", default=None, type=float,
                           help="Seconds to wait after the stop signal before SIGKILL "
                           "(default: its --stop-timeout, else 10).")


@click.command()
@_grace_time
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def stop(ctx, timeout, refs):
    """Stop running containers (SIGTERM, then SIGKILL)."""
    from bocker.runtime import containers

    # Docker echoes each argument as given once it is done
    output.each(refs, lambda ref: containers.stop(ctx.paths, ref, timeout) and click.echo(ref))


@click.command()
@click.option("-s", "--signal", "sig", default="KILL", show_default=True,
              help="Signal name or number.")
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def kill(ctx, sig, refs):
    """Send a signal to running containers."""
    from bocker import units
    from bocker.runtime import containers

    number = units.parse_signal(sig)
    output.each(refs, lambda ref: containers.kill(ctx.paths, ref, number) and click.echo(ref))


@click.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def wait(ctx, refs):
    """Wait for containers to exit; print their exit codes."""
    from bocker.runtime import containers

    output.each(refs, lambda ref: click.echo(containers.wait(ctx.paths, ref)))


@click.command()
@click.option("-a", "--attach", is_flag=True, help="Attach its output; exit with its code.")
@click.option("-i", "--interactive", is_flag=True, help="Attach its stdin too (implies -a).")
@click.option("--detach-keys", help="Keys that detach from the container (default ctrl-p,ctrl-q).")
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def start(ctx, attach, interactive, detach_keys, refs):
    """Start stopped containers again (detached, or -a attached)."""
    from bocker.runtime import containers, protocol

    if not (attach or interactive):
        output.each(refs, lambda ref: containers.start(ctx.paths, ref) and click.echo(ref))
        return
    if len(refs) > 1:
        raise BockerError("you cannot start and attach multiple containers at once")
    if detach_keys:
        protocol.parse_detach_keys(detach_keys)
    started = containers.start(ctx.paths, refs[0], attach=True, interactive=interactive)
    sys.exit(containers.wait_attached(ctx.paths, started, detach_keys=detach_keys) or 0)


@click.command()
@click.option("--detach-keys", help="Keys that detach from the container (default ctrl-p,ctrl-q).")
@click.option("--no-stdin", is_flag=True, help="Do not attach stdin.")
@click.option("--sig-proxy/--no-sig-proxy", default=True, show_default=True,
              help="Forward the signals we get to the container.")
@click.argument("ref")
@click.pass_obj
def attach(ctx, detach_keys, no_stdin, sig_proxy, ref):
    """Attach to a running container's stdio (detach: ctrl-p ctrl-q)."""
    from bocker.runtime import containers

    code = containers.attach(ctx.paths, ref, stdin=not no_stdin, sig_proxy=sig_proxy,
                             detach_keys=detach_keys)
    sys.exit(code or 0)


@click.command()
@_grace_time
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def restart(ctx, timeout, refs):
    """Stop containers (if running), then start them again."""
    from bocker.runtime import containers

    output.each(refs, lambda ref: containers.restart(ctx.paths, ref, timeout) and click.echo(ref))


@click.command()
@click.option("-a", "--all", "show_all", is_flag=True, help="Show stopped containers too.")
@click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
@click.pass_obj
def ps(ctx, show_all, quiet):
    """List containers (running ones; -a for all)."""
    from bocker.runtime import containers

    records = [r for r in containers.list_all(ctx.paths, on_broken=output.warn)
               if show_all or r["State"].get("Running") or r["State"].get("Restarting")]
    if quiet:
        for r in records:
            click.echo(r["Id"])
        return
    rows = [("CONTAINER_ID", "COMMAND", "IMAGE", "STATUS", "ADDRESS", "PORTS", "NAME")]
    for r in records:
        net = r.get("NetworkSettings") or {}
        rows.append((r["Id"], output.shorten(" ".join(r["Config"]["Cmd"]), 30),
                     r.get("ImageName") or r["Image"], output.status(r["State"]),
                     net.get("IPAddress", "") if r["State"].get("Running") else "",
                     output.ports(net.get("Ports") or {}), r["Name"]))
    output.table(rows)


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the container exits.")
@click.option("--tail", default="all", help="Only the last N lines.")
@click.option("-t", "--timestamps", is_flag=True, help="Prefix each line with its time.")
@click.argument("ref")
@click.pass_obj
def logs(ctx, follow, tail, timestamps, ref):
    """Print a container's log (stdout and stderr kept apart)."""
    from bocker import units
    from bocker.runtime import attach, containers

    lines = units.parse_tail(tail)
    cid = containers.resolve(ctx.paths, ref)
    attach.print_log(ctx.paths, cid, follow=follow, timestamps=timestamps, tail=lines,
                     running=lambda: containers.load(ctx.paths, cid)["State"].get("Running"))


@click.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def inspect(ctx, refs):
    """Show containers or images as JSON."""
    import json

    from bocker.errors import Ambiguous, NoSuchContainer, NoSuchImage, NotFound
    from bocker.image import images
    from bocker.runtime import containers

    out = []
    for ref in refs:
        try:
            out.append(containers.load(ctx.paths, containers.resolve(ctx.paths, ref)))
        except (NoSuchContainer, Ambiguous):  # a prefix of two containers may be one image's
            try:
                out.append(images.load(ctx.paths, images.resolve(ctx.paths, ref)))
            except NoSuchImage:
                raise NotFound(f"No container or image named '{ref}' exists") from None
    click.echo(json.dumps(out, indent=4))


@click.command()
@click.argument("container")
@click.argument("image", required=False)
@click.option("--name", help="NAME[:TAG] for a new image.")
@click.pass_obj
def commit(ctx, container, image, name):
    """Save a container's filesystem as an image (IMAGE: replace its content)."""
    from bocker.runtime import containers

    removed, created = containers.commit(ctx.paths, container, image, name)
    if removed:
        click.echo(f"Removed: {removed}")
    click.echo(f"Created: {created}")


@click.command()
@click.option("-f", "--force", is_flag=True, help="Kill a running container first.")
@click.option("-v", "--volumes", is_flag=True,
              help="Remove its anonymous volumes too (named volumes stay).")
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def rm(ctx, force, volumes, refs):
    """Remove containers or images (by ID, prefix or name)."""
    from bocker.errors import NoSuchContainer
    from bocker.image import images
    from bocker.runtime import containers

    def one(ref):
        if ref.startswith("img_"):
            removed = images.remove(ctx.paths, ref)
        else:
            try:
                removed = containers.remove(ctx.paths, ref, force=force, volumes=volumes)
            except NoSuchContainer as e:
                try:
                    removed = images.remove(ctx.paths, ref)
                except BockerError:
                    raise e from None
        click.echo(f"Removed: {removed}")

    output.each(refs, one)


COMMANDS = [run, create, exec_cmd, stop, kill, wait, start, restart, attach, ps, logs, inspect, commit,
            rm]
