"""`system prune`, `system df`, `container prune`, `image prune`: what no
live record owns, removed after a confirmation (or -f), each removal
printed in Docker's shapes; the library is bocker.runtime.prune and
bocker.image.prune.  The commands are subcommands only: groups.py puts
them in the system, container and image groups."""
import sys

import click

from bocker.errors import BockerError

_force = click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")


def _confirm(force, what):
    """True to go ahead: with -f, or when the user on our terminal says y.
    Without a terminal there is nobody to ask: refused (use -f)."""
    if force:
        return True
    if not sys.stdin.isatty():
        raise BockerError("prune removes things for good: confirm on a terminal, or pass -f")
    click.echo(f"WARNING! This will remove {what}.")
    click.echo("Are you sure you want to continue? [y/N] ", nl=False)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _section(title, lines):
    if lines:
        click.echo(f"{title}:")
        for line in lines:
            click.echo(line)
        click.echo("")


def _total(size):
    from bocker.units import human_size

    click.echo(f"Total reclaimed space: {human_size(size)}")


def _images_in_use(paths):
    from bocker.runtime import records

    return {r["Image"] for r in records.list_all(paths)}


_all_images = click.option("-a", "--all", "all_images", is_flag=True,
                           help="Every unused image, not only dangling ones.")


def _image_what(all_images):
    return ("all images without at least one container associated to them" if all_images
            else "all dangling images")


@click.command(name="prune")
@_all_images
@click.option("--volumes", is_flag=True, help="Anonymous volumes no container uses, too.")
@_force
@click.pass_obj
def system_prune(ctx, all_images, volumes, force):
    """Remove stopped containers, unused images and layers, and what crashes left."""
    from bocker.image import prune as image_prune
    from bocker.runtime import prune
    from bocker.volume import volumes as volume_store

    what = (f"all stopped containers, {'anonymous volumes not used by a container, ' if volumes else ''}"
            f"{_image_what(all_images)}, unused layers, and "
            "the cgroups, leases and id blocks of containers that no longer exist")
    if not _confirm(force, what):
        return
    cids, csize = prune.prune_containers(ctx.paths)
    vols, vsize = volume_store.prune(ctx.paths) if volumes else ([], 0)
    imgs, isize = image_prune.prune(ctx.paths, _images_in_use(ctx.paths), all_images)
    _section("Deleted Containers", cids)
    _section("Deleted Volumes", vols)
    _section("Deleted Images", [f"deleted: {i}" for i in imgs])
    entries, bsize = image_prune.prune_build_cache(ctx.paths)
    _section("Deleted build cache objects", [k[:25] for k in entries])
    _section("Released leftovers", prune.prune_leftovers(ctx.paths)
             + image_prune.prune_leftovers(ctx.paths)
             + volume_store.prune_leftovers(ctx.paths))
    _total(csize + vsize + isize + bsize)


@click.command(name="df")
@click.pass_obj
def system_df(ctx):
    """Show the images' and containers' disk use (apparent sizes)."""
    from bocker.cli import output
    from bocker.runtime import prune
    from bocker.units import human_size

    rows = [("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE")]
    for kind, (total, active, size, free) in prune.disk_usage(ctx.paths).items():
        share = f" ({100 * free // size}%)" if size else ""
        rows.append((kind, total, active, human_size(size), human_size(free) + share))
    output.table(rows)


@click.command(name="prune")
@_force
@click.pass_obj
def container_prune(ctx, force):
    """Remove every stopped container."""
    from bocker.runtime import prune

    if not _confirm(force, "all stopped containers"):
        return
    cids, size = prune.prune_containers(ctx.paths)
    _section("Deleted Containers", cids)
    _total(size)


@click.command(name="prune")
@_all_images
@_force
@click.pass_obj
def image_prune_cmd(ctx, all_images, force):
    """Remove dangling images (-a: every image no container uses) and unused layers."""
    from bocker.image import prune as image_prune

    if not _confirm(force, _image_what(all_images)):
        return
    imgs, size = image_prune.prune(ctx.paths, _images_in_use(ctx.paths), all_images)
    _section("Deleted Images", [f"deleted: {i}" for i in imgs])
    entries, cache_size = image_prune.prune_build_cache(ctx.paths)
    _section("Deleted build cache objects", [k[:25] for k in entries])
    _section("Released leftovers", image_prune.prune_leftovers(ctx.paths))
    _total(size + cache_size)


# (group, subcommand) -> command, for groups.py
SUBCOMMANDS = {("system", "prune"): system_prune, ("system", "df"): system_df,
               ("container", "prune"): container_prune, ("image", "prune"): image_prune_cmd}
