"""`volume create/ls/inspect/rm/prune`: the CLI of bocker.volume."""
import json

import click

from bocker.cli import output
from bocker.errors import BockerError


def _pairs(items, what):
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise BockerError(f"invalid {what} '{item}': use KEY=VALUE")
        out[key] = value
    return out


@click.group(name="volume")
def volume():
    """Named and anonymous volumes (btrfs subvolumes)."""


@volume.command(name="create")
@click.argument("name", required=False)
@click.option("-l", "--label", "labels", multiple=True, help="KEY=VALUE label.")
@click.option("-o", "--opt", "opts", multiple=True,
              help="Driver option (none supported: bocker's local driver).")
@click.option("-d", "--driver", default="local", help="Only 'local'.")
@click.pass_obj
def create(ctx, name, labels, opts, driver):
    """Create a volume (a generated name without NAME) and print its name."""
    from bocker.volume import names, volumes

    if driver != "local":
        raise BockerError(f"volume driver '{driver}' is not supported (only local)")
    made, _ = volumes.create(ctx.paths, name or names.anonymous(),
                             labels=_pairs(labels, "label"), options=_pairs(opts, "option"))
    click.echo(made["Name"])


@volume.command(name="ls")
@click.option("-q", "--quiet", is_flag=True, help="Only the names.")
@click.option("-f", "--filter", "filters", multiple=True,
              help="name=, label=KEY[=VALUE], label!=, dangling=true|false, driver=.")
@click.option("--format", "fmt", help="Go template subset: {{.Name}}, {{json .}}, table.")
@click.pass_obj
def ls(ctx, quiet, filters, fmt):
    """List volumes."""
    from bocker.volume import listing, usage, volumes

    wanted = listing.parse_filters(filters)
    used = usage.all_used(ctx.paths) if any(k == "dangling" for k, _ in wanted) else set()
    vols = [v for v in volumes.list_all(ctx.paths) if listing.matches(v, wanted, used)]
    if quiet:
        for v in vols:
            click.echo(v["Name"])
    elif fmt:
        if fmt.startswith("table"):
            click.echo(listing.header(fmt))
        for v in vols:
            click.echo(listing.render(fmt, v))
    else:
        output.table([("DRIVER", "VOLUME NAME")] + [(v["Driver"], v["Name"]) for v in vols])


@volume.command(name="inspect")
@click.option("-f", "--format", "fmt", help="Go template subset: {{.Mountpoint}}, {{json .}}.")
@click.argument("names_", metavar="VOLUME...", nargs=-1, required=True)
@click.pass_obj
def inspect(ctx, fmt, names_):
    """Docker's JSON of each volume (a missing one says so; the rest print)."""
    from bocker.volume import listing, volumes

    found = []

    def one(name):
        found.append(volumes.load(ctx.paths, name))

    try:
        output.each(names_, one)
    finally:
        if fmt:
            for v in found:
                click.echo(listing.render(fmt, v))
        else:
            click.echo(json.dumps(found, indent=4))


@volume.command(name="rm")
@click.option("-f", "--force", is_flag=True, help="A missing volume is not an error.")
@click.argument("names_", metavar="VOLUME...", nargs=-1, required=True)
@click.pass_obj
def rm(ctx, force, names_):
    """Remove volumes no container uses."""
    from bocker.volume import volumes

    def one(name):
        if volumes.remove(ctx.paths, name, force=force):
            click.echo(name)

    output.each(names_, one)


@volume.command(name="prune")
@click.option("-a", "--all", "everything", is_flag=True,
              help="Every unused volume, not only anonymous ones.")
@click.option("--filter", "filters", multiple=True, help="label=KEY[=VALUE], label!=...")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def prune(ctx, everything, filters, force):
    """Remove unused anonymous volumes (-a: every unused volume)."""
    from bocker.cli.prune import _confirm, _section, _total
    from bocker.volume import listing, volumes

    wanted = listing.parse_filters(filters)
    what = "all local volumes not used by at least one container" if everything else \
        "all anonymous local volumes not used by at least one container"
    if not _confirm(force, what):
        return
    removed, size = volumes.prune(ctx.paths, everything,
                                  keep=lambda v: not listing.matches(v, wanted, set()))
    _section("Deleted Volumes", removed)
    _section("Released leftovers", volumes.prune_leftovers(ctx.paths))
    _total(size)


COMMANDS = [volume]
