"""The filesystem commands: cp, diff, export, import.

Plain click commands, gathered into the group by app.py; each gets the
click obj (its .paths is a bocker.state.Paths).  No logic here: parse,
call the library (runtime.cp, runtime.fsdiff, runtime.export,
image.importing), print; errors go up to app.py's one boundary.
"""
import os
import sys

import click

from bocker.errors import BockerError


def _record(paths, ref):
    from bocker.runtime import records

    return records.load(paths, records.resolve(paths, ref))


@click.command()
@click.option("-a", "--archive", is_flag=True, help="Keep owners (uid/gid) of the files.")
@click.option("-L", "--follow-link", "follow", is_flag=True,
              help="Copy what a symlink SRC points to (inside the container).")
@click.option("-q", "--quiet", is_flag=True,
              help="Accepted as Docker's: bocker's cp prints no progress to suppress.")
@click.argument("src")
@click.argument("dest")
@click.pass_obj
def cp(ctx, archive, follow, quiet, src, dest):
    """Copy files between a container and the host: CONTAINER:SRC DEST or
    SRC CONTAINER:DEST ('-': a tar stream on stdout or stdin)."""
    from bocker.runtime import cp as copying

    direction, ref, inside, local = copying.check_args(src, dest)
    record = _record(ctx.paths, ref)
    if direction == "out":
        if local == "-" and sys.stdout.isatty():
            raise BockerError("cowardly refusing to write a tar stream to a terminal")
        sys.stdout.flush()
        copying.copy_out(ctx.paths, record, inside, local, archive=archive, follow=follow,
                         stdout=sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        copying.copy_in(ctx.paths, record, local, inside, archive=archive, follow=follow,
                        stdin=sys.stdin.buffer)


@click.command()
@click.argument("ref", metavar="CONTAINER")
@click.pass_obj
def diff(ctx, ref):
    """Show what a container changed in its filesystem (A, C, D)."""
    from bocker.errors import NoSuchImage
    from bocker.image import images
    from bocker.runtime import fsdiff

    record = _record(ctx.paths, ref)
    try:
        images.load(ctx.paths, record["Image"])
    except NoSuchImage:
        raise BockerError(f"container '{ref}': its image {record['Image']} was removed, "
                          f"there is nothing to compare with") from None
    rootfs = os.path.join(ctx.paths.container(record["Id"]), "rootfs")
    for kind, path in fsdiff.changes(rootfs, images.rootfs(ctx.paths, record["Image"])):
        click.echo(f"{kind} {path}")


@click.command()
@click.option("-o", "--output", "output_path", metavar="FILE", help="Write to FILE, not stdout.")
@click.argument("ref", metavar="CONTAINER")
@click.pass_obj
def export(ctx, output_path, ref):
    """Export a container's filesystem as a tar archive."""
    from bocker.runtime import export as exporting

    record = _record(ctx.paths, ref)
    if not output_path:
        if sys.stdout.isatty():
            raise BockerError("cowardly refusing to save to a terminal: use -o or redirect")
        sys.stdout.flush()
        exporting.export(ctx.paths, record, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    # 0600: the archive holds whatever the container holds, secrets too
    tmp = f"{output_path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            exporting.export(ctx.paths, record, out)
        os.rename(tmp, output_path)
    except BaseException:
        os.unlink(tmp)
        raise


@click.command("import")
@click.option("-m", "--message", help="The image's history comment.")
@click.option("-c", "--change", "changes", multiple=True, metavar="INSTRUCTION",
              help="Dockerfile instruction for the image's config: CMD, ENTRYPOINT, ENV, "
              "EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR.")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Only this host's platform: the tarball's files are taken as the host's "
              "(a bocker image has one platform).")
@click.argument("source", metavar="FILE|-")
@click.argument("repository", metavar="[REPOSITORY[:TAG]]", required=False)
@click.pass_obj
def import_cmd(ctx, message, changes, platform, source, repository):
    """Create an image from a tarball (a file, or '-' for stdin)."""
    from bocker.image import changes as changing
    from bocker.image import importing, platforms, tags

    if platform:
        platforms.require(platforms.host_platform(), platform, "this host")
    for change in changes:  # refused before the tarball is read
        changing.parse(change)
    name = tags.check_name(repository) if repository else None
    if source == "-":
        image_id = importing.import_tar(ctx.paths, sys.stdin.buffer, "-", name, message,
                                        changes)
    else:
        try:
            f = open(source, "rb")
        except OSError as e:
            raise BockerError(f"{source}: {e.strerror}") from None
        with f:
            image_id = importing.import_tar(ctx.paths, f, os.path.abspath(source), name,
                                            message, changes)
    click.echo(image_id)


COMMANDS = [cp, diff, export, import_cmd]
