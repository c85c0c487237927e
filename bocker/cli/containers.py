"""The container commands: run, exec, stop, kill, wait, start, restart,
attach, ps, logs, inspect, commit, rm (containers only, but an img_ ID);
create has a module of its own (create.py).

Plain click commands, gathered into the group by app.py; each gets the
click obj (its .paths is a bocker.state.Paths).  No logic here: parse,
call the library, print; errors go up to app.py's one boundary.
"""
import os
import sys

import click

from bocker.cli import boolflags, output, runoptions
from bocker.errors import BockerError


# run's and create's: -h is --hostname (Docker's), so only --help is help
RUN_SETTINGS = {"allow_interspersed_args": False, "help_option_names": ["--help"]}


@click.command(context_settings=RUN_SETTINGS, cls=boolflags.DockerBools,
               bool_flags=runoptions.BOOL_FLAGS)
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
    policy, platform = runoptions.take_pull(options)
    quiet = runoptions.take_quiet(options)
    req = runoptions.request(image, command, options)
    if detach and req.attach:
        from bocker.errors import RunRefused

        raise RunRefused("conflicting options: cannot specify both --attach and --detach")
    cid_fd = [_create_cidfile(cidfile)] if cidfile else []

    def started(cid):
        if cid_fd:
            os.write(cid_fd[0], cid.encode())
            os.close(cid_fd.pop())
        if detach:
            click.echo(cid)

    try:
        code = containers.run(ctx.paths, req, detach=detach, tty=tty, interactive=interactive,
                              on_started=started, detach_keys=detach_keys,
                              ensure_image=lambda ref: runoptions.ensure_image(
                                  ctx.paths, ref, policy, platform, quiet))
    finally:
        if cid_fd:  # the run failed before its container started: the empty file is ours
            os.close(cid_fd.pop())
            os.unlink(cidfile)
    if not detach:
        sys.exit(code or 0)  # None: the user detached, it runs on


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
@click.option("--detach-keys",
              help="Keys that detach from the command, which runs on (default with -it: "
              "ctrl-p,ctrl-q).")
@click.argument("ref")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_cmd(ctx, detach, interactive, tty, env, env_file, workdir, user, privileged,
             detach_keys, ref, command):
    """Run COMMAND inside a running container."""
    from bocker.runtime import containers, spec

    env = [item for path in env_file for item in spec.parse_env_file(path)] + list(env)
    sys.exit(containers.exec_in(ctx.paths, ref, list(command), env=env, workdir=workdir,
                                user=user, tty=tty and not detach,
                                interactive=interactive and not detach, detach=detach,
                                privileged=privileged, detach_keys=detach_keys))


# stop's and restart's grace time: Docker 28's -t/--timeout (and the older
# --time), default the container's --stop-timeout, else 10
_grace_time = click.option("-t", "--timeout", "--time", "timeout", default=None, type=float,
                           help="Seconds to wait after the stop signal before SIGKILL "
                                "(default: the container's --stop-timeout, else 10).")
_stop_signal = click.option("-s", "--signal", "sig", metavar="SIGNAL",
                            help="Signal to stop it with (default: its --stop-signal, "
                                 "else SIGTERM).")


def _signal_number(sig):
    """stop/restart -s as a number (None: the container's stop signal)."""
    from bocker import units

    return None if sig is None else units.parse_signal(sig)


@click.command()
@_grace_time
@_stop_signal
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def stop(ctx, timeout, sig, refs):
    """Stop running containers (SIGTERM, then SIGKILL)."""
    from bocker.runtime import containers

    number = _signal_number(sig)
    # Docker echoes each argument as given once it is done
    output.each(refs, lambda ref: containers.stop(ctx.paths, ref, timeout, number)
                and click.echo(ref))


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


@click.command(cls=boolflags.DockerBools, bool_flags=boolflags.bools("--sig-proxy"))
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
@_stop_signal
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def restart(ctx, timeout, sig, refs):
    """Stop containers (if running), then start them again."""
    from bocker.runtime import containers

    number = _signal_number(sig)
    output.each(refs, lambda ref: containers.restart(ctx.paths, ref, timeout, number)
                and click.echo(ref))


_filter = click.option("-f", "--filter", "filter_", multiple=True, metavar="KEY=VALUE",
                       help="Only those that match (repeatable; Docker's keys).")
_format = click.option("--format", "fmt", metavar="TEMPLATE",
                       help="A Go template ('table ...' aligned, 'json' one object a line).")
_no_trunc = click.option("--no-trunc", is_flag=True, help="Do not cut the output short.")


@click.command()
@click.option("-a", "--all", "show_all", is_flag=True, help="Show stopped containers too.")
@click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
@_filter
@_format
@_no_trunc
@click.option("-n", "--last", "last", type=click.IntRange(min=-1), default=-1,
              help="The N last created containers (all states).")
@click.option("-l", "--latest", is_flag=True, help="The last created container (all states).")
@click.option("-s", "--size", "size", is_flag=True,
              help="Show what each container wrote to its rootfs (and its image's size).")
@click.pass_obj
def ps(ctx, show_all, quiet, filter_, fmt, no_trunc, last, latest, size):
    """List containers, newest first (running ones; -a for all)."""
    from bocker.runtime import containers

    records = sorted(containers.list_all(ctx.paths, on_broken=output.warn),
                     key=lambda r: r["Created"], reverse=True)
    limit = 1 if latest else last if last > 0 else None
    if filter_:
        from bocker.cli import filters

        wanted = filters.parse(filter_, filters.CONTAINER_KEYS)
        match = filters.containers(wanted, records, lambda ref: _image_id(ctx.paths, ref))
        show_all = show_all or "status" in wanted
        records = [r for r in records if match(r)]
    if not (show_all or limit):
        records = [r for r in records if r["State"].get("Running") or r["State"].get("Restarting")]
    records = records[:limit] if limit else records
    if quiet:
        for r in records:
            click.echo(r["Id"])
        return
    from bocker.cli import listing

    template, table_ = output.listing_format(fmt or "")
    sizer = _sizer(ctx.paths) if size or (template and ".Size" in template) else None
    rows = [listing.ContainerRow(r, trunc=not no_trunc, size=sizer) for r in records]
    if template:
        output.print_template(template, rows, listing.PS_HEADERS, table_)
        return
    table = [("CONTAINER_ID", "COMMAND", "IMAGE", "STATUS", "ADDRESS", "PORTS", "NAME")
             + (("SIZE",) if size else ())]
    for row in rows:
        table.append((row.ID, row.command_column(), row.Image, row.Status, row.Address,
                      row.Ports, row.Names) + ((row.Size,) if size else ()))
    output.table(table)


def _image_id(paths, ref):
    """The image ID ref names, or None (ancestor= of a missing image matches none)."""
    from bocker.image import images

    try:
        return images.resolve(paths, ref)
    except BockerError:
        return None


def _sizer(paths):
    """record -> (SizeRw, SizeRootFs), each image's size read once."""
    from bocker.image import images
    from bocker.runtime import sizes

    image_sizes = {}

    def size_of(record):
        image_id = record.get("Image")
        if image_id not in image_sizes:
            try:
                image_sizes[image_id] = images.load(paths, image_id).get("size", 0)
            except (BockerError, ValueError):
                image_sizes[image_id] = 0
        return sizes.container_sizes(paths, record, image_sizes[image_id])
    return size_of


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the container exits.")
@click.option("-n", "--tail", default="all", help="Only the last N lines.")
@click.option("--since", metavar="TIME",
              help="Only lines since TIME (RFC 3339, a Unix timestamp, or 10m ago).")
@click.option("--until", metavar="TIME", help="Only lines before TIME (same forms).")
@click.option("-t", "--timestamps", is_flag=True, help="Prefix each line with its time.")
@click.option("--details", is_flag=True,
              help="Accepted as Docker's: bocker's logs have no extra attributes "
              "(--log-opt), so the output is the same.")
@click.argument("ref")
@click.pass_obj
def logs(ctx, follow, tail, since, until, timestamps, details, ref):
    """Print a container's log (stdout and stderr kept apart)."""
    from bocker import units
    from bocker.runtime import attach, containers

    lines = units.parse_tail(tail)
    window = {}
    if since or until:
        from bocker.cli import timeparse

        window = {"since": timeparse.parse(since, "--since") if since else None,
                  "until": timeparse.parse(until, "--until") if until else None}
    cid = containers.resolve(ctx.paths, ref)
    attach.print_log(ctx.paths, cid, follow=follow, timestamps=timestamps, tail=lines,
                     running=lambda: containers.load(ctx.paths, cid)["State"].get("Running"),
                     **window)


@click.command()
@click.option("-f", "--format", "fmt", metavar="TEMPLATE",
              help="A Go template run on each object ('json': the JSON).")
@click.option("--type", "kind", type=click.Choice(["container", "image"]),
              help="Look only for this kind of object.")
@click.option("-s", "--size", is_flag=True, help="Add SizeRw and SizeRootFs of containers.")
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def inspect(ctx, fmt, kind, size, refs):
    """Show containers or images as JSON (Docker's shape), or -f TEMPLATE of each."""
    template = None
    if fmt and fmt != "json":
        from bocker.cli import gotemplate

        template = gotemplate.Template(fmt)  # a bad template fails before any lookup
    found = []
    failed = output.each_collect(refs, lambda ref: found.append(
        _inspect_one(ctx.paths, ref, kind, size)))
    # none found: only the error lines (Docker adds a "[]")
    output.print_inspected(found, failed, template, json_if_none_found=False)


def _inspect_one(paths, ref, kind, size):
    """Docker's inspect JSON of the container or image ref names."""
    from bocker.errors import Ambiguous, NoSuchContainer, NoSuchImage, NotFound
    from bocker.image import images
    from bocker.runtime import containers, inspectview

    if kind != "image":
        try:
            record = containers.load(paths, containers.resolve(paths, ref))
        except (NoSuchContainer, Ambiguous):  # a prefix of two containers may be one image's
            if kind == "container":
                raise
        else:
            try:
                image = images.load(paths, record["Image"])
            except (BockerError, ValueError):
                image = None  # removed since (rmi -f): the view does without
            if size:
                record = dict(record)
                record["SizeRw"], record["SizeRootFs"] = _sizer(paths)(record)
            return inspectview.container(record, image)
    try:
        return inspectview.image(images.load(paths, images.resolve(paths, ref)))
    except NoSuchImage:
        if kind == "image":
            raise
        raise NotFound(f"No container or image named '{ref}' exists") from None


@click.command(cls=boolflags.DockerBools, bool_flags=boolflags.bools("-p/--pause"))
@click.argument("container")
@click.argument("image", required=False)
@click.option("--name", help="NAME[:TAG] for a new image.")
@click.option("-a", "--author", help='Author (e.g. "Jane Doe <jane@example.com>").')
@click.option("-m", "--message", help="Commit message (the image's Comment).")
@click.option("-c", "--change", "changes", multiple=True, metavar="INSTRUCTION",
              help="Dockerfile instruction for the image's config: CMD, ENTRYPOINT, ENV, "
              "EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR.")
@click.option("-p", "--pause/--no-pause", default=True,
              help="Freeze a running container during the commit (default true; "
              "-p=false: do not).")
@click.pass_obj
def commit(ctx, container, image, name, author, message, changes, pause):
    """Save a container's filesystem as an image (IMAGE: replace its content)."""
    from bocker.runtime import containers

    removed, created = containers.commit(ctx.paths, container, image, name, author=author,
                                         message=message, changes=changes, pause=pause)
    if removed:
        click.echo(f"Removed: {removed}")
    click.echo(f"Created: {created}")


@click.command()
@click.option("-f", "--force", is_flag=True,
              help="Kill a running container first; a missing one is no error.")
@click.option("-v", "--volumes", is_flag=True,
              help="Remove its anonymous volumes too (named volumes stay).")
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def rm(ctx, force, volumes, refs):
    """Remove containers (by ID, prefix or name); an img_ ID removes that image."""
    from bocker.errors import NoSuchContainer
    from bocker.runtime import containers

    def one(ref):
        if ref.startswith("img_"):  # p8952/bocker's form: only an explicit image ID
            from bocker.image import removal

            for line in removal.remove(ctx.paths, ref, force=force):
                click.echo(line)
            return
        try:
            removed = containers.remove(ctx.paths, ref, force=force, volumes=volumes)
        except NoSuchContainer:
            if force:  # Docker: rm -f of a missing container is no error
                return
            raise
        click.echo(f"Removed: {removed}")

    output.each(refs, one)


COMMANDS = [run, exec_cmd, stop, kill, wait, start, restart, attach, ps, logs, inspect, commit,
            rm]
