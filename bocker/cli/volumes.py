"""`volume create/ls/inspect/rm/prune`: the CLI of bocker.volume."""
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
@click.option("-f", "--filter", "filters_", multiple=True,
              help="name=, label=KEY[=VALUE], dangling=true|false, driver=.")
@click.option("--format", "fmt",
              help="A Go template per volume ({{.Name}}, table, json).")
@click.pass_obj
def ls(ctx, quiet, filters_, fmt):
    """List volumes."""
    from bocker.cli import filters
    from bocker.volume import listing, volumes

    wanted = filters.parse(filters_, filters.VOLUME_KEYS)
    template, table_ = output.listing_format(fmt or "")
    used = ()
    if "dangling" in wanted:
        from bocker.runtime import records

        used = filters.volume_names_in_use(records.list_all(ctx.paths))
    match = filters.volumes(wanted, used)
    vols = [v for v in volumes.list_all(ctx.paths) if match(v)]
    if quiet:
        for v in vols:
            click.echo(v["Name"])
    elif template:
        output.print_template(template, [listing.VolumeRow(v) for v in vols],
                              listing.HEADERS, table_)
    else:
        output.table([("DRIVER", "VOLUME NAME")] + [(v["Driver"], v["Name"]) for v in vols])


@volume.command(name="inspect")
@click.option("-f", "--format", "fmt",
              help="A Go template run on each volume's JSON ('json': the JSON).")
@click.argument("names_", metavar="VOLUME...", nargs=-1, required=True)
@click.pass_obj
def inspect(ctx, fmt, names_):
    """Docker's JSON of each volume (a missing one says so; the rest print)."""
    from bocker.volume import volumes

    template = None
    if fmt and fmt.strip() != "json":
        from bocker.cli import gotemplate

        template = gotemplate.Template(fmt)  # a bad template fails before any lookup
    found = []
    failed = output.each_collect(names_, lambda name: found.append(
        volumes.load(ctx.paths, name)))
    output.print_inspected(found, failed, template)


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
    from bocker.cli import filters as filters_mod
    from bocker.volume import listing, volumes

    keep = listing.prune_keep(filters_mod.parse(filters, listing.PRUNE_KEYS))
    what = "all local volumes not used by at least one container" if everything else \
        "all anonymous local volumes not used by at least one container"
    if not _confirm(force, what):
        return
    removed, size = volumes.prune(ctx.paths, everything,
                                  keep=keep)
    _section("Deleted Volumes", removed)
    _section("Released leftovers", volumes.prune_leftovers(ctx.paths))
    _total(size)


COMMANDS = [volume]
