"""The image commands: init, images, rmi, tag, history, and pull, login,
logout, load, save for images from elsewhere (with their download progress).

Plain click commands, gathered into the group by app.py; each gets the
click obj (its .paths is a bocker.state.Paths).  No logic here: parse,
call the library, print; errors go up to app.py's one boundary.
"""
import sys
import time

import click

from bocker.cli import boolflags, output
from bocker.errors import BockerError
from bocker.units import human_size


@click.command()
@click.argument("directory")
@click.option("--name", help="NAME[:TAG] for the new image.")
@click.pass_obj
def init(ctx, directory, name):
    """Create an image from a directory."""
    from bocker.image import images

    click.echo(f"Created: {images.init(ctx.paths, directory, name)}")


@click.command("images")
@click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
@click.option("-a", "--all", "show_all", is_flag=True,
              help="Accepted as Docker's (bocker has no intermediate images to hide).")
@click.option("-f", "--filter", "filter_", multiple=True, metavar="KEY=VALUE",
              help="Only those that match: dangling, label, reference, before, since.")
@click.option("--format", "fmt", metavar="TEMPLATE",
              help="A Go template ('table ...' aligned, 'json' one object a line).")
@click.option("--no-trunc", is_flag=True, help="Do not cut the output short.")
@click.option("--digests", is_flag=True, help="Show the registry digest too.")
@click.argument("reference", required=False)
@click.pass_obj
def images_cmd(ctx, quiet, show_all, filter_, fmt, no_trunc, digests, reference):
    """List images, newest first (REFERENCE: only those it matches)."""
    from bocker.image import images

    records = sorted(images.list_all(ctx.paths, on_broken=output.warn),
                     key=lambda r: r["created"], reverse=True)
    if filter_ or reference:
        from bocker.cli import filters

        wanted = filters.parse(filter_, filters.IMAGE_KEYS)
        if reference:
            wanted.setdefault("reference", []).append(reference)
        match = filters.images(wanted, records)
        records = [r for r in records if match(r)]
    if quiet:
        for r in records:
            click.echo(r["id"])
        return
    template, table_ = output.listing_format(fmt or "")
    if template:
        from bocker.cli import listing

        output.print_template(template, listing.image_rows(records, not no_trunc),
                              listing.IMAGE_HEADERS, table_)
        return
    rows = [("IMAGE_ID", "SOURCE", "NAME") + (("DIGEST",) if digests else ()) +
            ("SIZE", "CREATED")]
    for r in records:
        rows.append((r["id"], r["source"], ",".join(r.get("names") or ["<none>"])) +
                    ((r.get("digest") or "<none>",) if digests else ()) +
                    (human_size(r.get("size", 0)), output.ago(r["created"])))
    output.table(rows)


@click.command()
@click.option("-f", "--force", is_flag=True,
              help="Remove an image containers still use (they keep working); "
              "one whose image.json is corrupt too.")
@click.option("--platform", "platforms_", multiple=True, metavar="OS/ARCH[/VARIANT]",
              help="Remove only this platform: a bocker image has one, so another is "
              "refused.")
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def rmi(ctx, force, platforms_, refs):
    """Remove images (a name of an image with other names: only that name)."""
    from bocker.image import removal

    for text in platforms_:  # a bad one is refused before anything is removed
        _platform(text)

    def one(ref):
        if platforms_:
            _require_platform(ctx.paths, ref, platforms_)
        for line in removal.remove(ctx.paths, ref, force=force):
            click.echo(line)

    output.each(refs, one)


@click.command()
@click.argument("source")
@click.argument("target")
@click.pass_obj
def tag(ctx, source, target):
    """Give the image SOURCE the name TARGET too (NAME[:TAG])."""
    from bocker.image import tags

    tags.tag(ctx.paths, source, target)


def _platform(text):
    """--platform os/arch[/variant] parsed (InvalidArgument, 125, if not)."""
    from bocker.image import platforms

    return platforms.parse_platform(text)


def _require_platform(paths, ref, texts):
    """Refuse ref's image unless it is of one of the platforms texts (a
    bocker image has one platform: Docker's per-variant selection is
    either all of it or nothing)."""
    from bocker.errors import InvalidArgument
    from bocker.image import images, platforms

    have = platforms.of_record(images.load(paths, images.resolve(paths, ref)))
    error = None
    for text in texts:
        try:
            return platforms.require(have, text, f"image {ref}")
        except InvalidArgument as e:
            error = e
    raise error


class _Quiet:
    """-q: no progress at all."""

    def layer(self, digest, size, status):
        pass

    def advance(self, digest, n):
        pass

    def done(self, digest, status):
        pass


class _Lines:
    """One line per layer (not a terminal)."""

    def __init__(self, out):
        self.out, self.sizes, self.got = out, {}, {}

    def layer(self, digest, size, status):
        self.sizes[digest], self.got[digest] = size, 0
        if status != "Downloading":
            self._line(digest, status)

    def advance(self, digest, n):
        self.got[digest] = 0 if n is None else self.got[digest] + n

    def done(self, digest, status):
        if status == "Verified":
            self._line(digest, f"Downloaded {human_size(self.got[digest])}")

    def _line(self, digest, text):
        self.out(f"{digest[7:19]}: {text}")


class _Bars(_Lines):
    """A progress bar (size, rate) for the layer downloading now, on a terminal."""

    WIDTH = 30

    def advance(self, digest, n):
        now = time.monotonic()
        if n is None or not self.got.get(digest):
            self.start = now  # first bytes of this layer, or a restart
        super().advance(digest, n)
        got, size = self.got[digest], self.sizes[digest] or 0
        if now - getattr(self, "drawn", 0) < 0.1 and got != size:
            return  # redraw at most ten times a second
        self.drawn = now
        filled = min(self.WIDTH, int(self.WIDTH * got / size)) if size else 0
        rate = got / max(now - self.start, 1e-3)
        bar = "=" * filled + (">" if filled < self.WIDTH else "") + " " * (self.WIDTH - filled - 1)
        click.echo(f"\r{digest[7:19]}: Downloading [{bar[:self.WIDTH]}] "
                   f"{human_size(got)}/{human_size(size)} {human_size(rate)}/s\x1b[K", nl=False)

    def _line(self, digest, text):
        click.echo(f"\r{digest[7:19]}: {text}\x1b[K")


@click.command()
@click.argument("name")
@click.argument("tag", required=False)
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Pick this platform from a multi-arch image (default: this host's).")
@click.option("--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]",
              help="Allow plain HTTP (and unverified fallback) for this registry.")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress: print only the image's full name (as Docker).")
@click.pass_obj
def pull(ctx, name, tag, platform, insecure, quiet):
    """Pull an image: NAME[:TAG|@DIGEST], or NAME TAG."""
    from bocker.image import pull as pulling
    progress = _Quiet() if quiet else _Bars(click.echo) if sys.stdout.isatty() \
        else _Lines(click.echo)
    result = pulling.pull(ctx.paths, name, tag, platform=platform,
                          insecure_registries=insecure, progress=progress)
    if quiet:
        click.echo(str(result.reference))
        return
    click.echo(f"Digest: {result.digest}")
    if result.up_to_date:
        click.echo(f"Image is up to date for {result.reference.familiar()}")
        click.echo(f"Up to date: {result.image_id}")
    else:
        click.echo(f"Created: {result.image_id}")


@click.command()
@click.argument("registry_name", metavar="REGISTRY", required=False, default="docker.io")
@click.option("-u", "--username", required=True)
@click.option("-p", "--password", help="Prefer --password-stdin: argv is visible to others.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--insecure-registry", "insecure", is_flag=True,
              help="Allow plain HTTP for this registry.")
def login(registry_name, username, password, password_stdin, insecure):
    """Log in to a registry; credentials go to Docker's config.json."""
    from bocker.image import registry
    if password_stdin:
        if password:
            raise BockerError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = click.prompt("Password", hide_input=True)
    registry.login(registry_name, username, password, insecure=insecure)
    click.echo("Login Succeeded")


@click.command()
@click.option("-i", "--input", "path", required=True, metavar="FILE",
              help="A docker save archive or an OCI layout (directory or tar).")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress: only the 'Loaded image' lines (as Docker).")
@click.pass_obj
def load(ctx, path, platform, quiet):
    """Load images from an archive."""
    from bocker.image import archive
    progress = _Quiet() if quiet else _Lines(click.echo) if not sys.stdout.isatty() \
        else _Bars(click.echo)
    loaded = archive.load(ctx.paths, path, progress=progress, platform=platform)
    for image_id, name, up_to_date in loaded:
        if name:
            click.echo(f"Loaded image: {name}")
        elif quiet:  # Docker: an untagged image is named by its ID
            click.echo(f"Loaded image ID: {image_id}")
        if not quiet:
            click.echo(f"{'Exists' if up_to_date else 'Created'}: {image_id}")


@click.command()
@click.argument("image")
@click.option("-o", "--output", "output_path", required=True, metavar="FILE")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Save only this platform: a bocker image has one, so another is refused.")
@click.pass_obj
def save(ctx, image, output_path, platform):
    """Save an image to a docker-archive tar (docker/podman load it)."""
    from bocker.image import archive

    if platform:
        _require_platform(ctx.paths, image, [platform])
    archive.save(ctx.paths, image, output_path)


# Docker's column names of `history --format 'table ...'`
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


@click.command(cls=boolflags.DockerBools, bool_flags=boolflags.bools("-H/--human"))
@click.argument("image")
@click.option("-H", "--human/--no-human", default=True,
              help="Sizes and dates for people (default true; -H=false: bytes and "
              "RFC 3339 times).")
@click.option("--no-trunc", is_flag=True, help="Do not cut CREATED BY.")
@click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
@click.option("--format", "fmt", help="A Go template per row (.ID, .CreatedBy, ...).")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="The history of this platform: a bocker image has one, so another "
              "is refused.")
@click.pass_obj
def history(ctx, image, human, no_trunc, quiet, fmt, platform):
    """Show the history of an image (newest step first)."""
    from bocker.image import history as steps
    from bocker.image import images

    if platform:
        _require_platform(ctx.paths, image, [platform])
    record = images.load(ctx.paths, images.resolve(ctx.paths, image))
    rows = steps.rows(record, steps.layer_sizes(ctx.paths, record))
    for row in rows:
        created = row["Created"]
        row["CreatedAt"] = steps.rfc3339_local(created) if created else ""
        if human:
            row["CreatedSince"] = output.ago(created) if created else "N/A"
            row["Size"] = "" if row["Size"] is None else human_size(row["Size"])
        else:  # Docker's -H=false: RFC 3339 and bytes
            row["CreatedSince"] = row["CreatedAt"] or "N/A"
            row["Size"] = "" if row["Size"] is None else str(row["Size"])
    template, table_ = output.listing_format(fmt or "")
    if template:
        # Docker's fields; .CreatedBy cut as the table's unless --no-trunc
        shown = [output.Struct({
            **{k: v for k, v in row.items() if k not in ("Created", "EmptyLayer")},
            "CreatedBy": row["CreatedBy"] if no_trunc else
            output.shorten(" ".join(row["CreatedBy"].split()), 45)}) for row in rows]
        output.print_template(template, shown, HISTORY_HEADERS, table_)
        return
    if quiet:
        for row in rows:
            click.echo(row["ID"])
        return
    table = [("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")]
    for row in rows:
        by = " ".join(row["CreatedBy"].split()) if not no_trunc else row["CreatedBy"]
        table.append((row["ID"], row["CreatedSince"], by if no_trunc else output.shorten(by, 45),
                      row["Size"], row["Comment"]))
    output.table(table)


@click.command()
@click.argument("server", required=False, default="docker.io")
def logout(server):
    """Log out from a registry (remove its stored credentials)."""
    from bocker.image import credentials, reference

    registry = reference.normalize_registry(server)
    key = credentials.remove_credentials(registry)
    if key is None:
        click.echo(f"Not logged in to {server}")
    else:
        click.echo(f"Removing login credentials for {key}")


COMMANDS = [init, images_cmd, rmi, tag, history, pull, login, logout, load, save]
