"""`bocker build` and `bocker builder prune` (the library is bocker/build)."""
import os
import sys

import click

from bocker.errors import InvalidArgument

MAX_DOCKERFILE = 1 << 20  # the parser's bound: the caller reads at most that
NETWORKS = ("bridge", "none", "host", "default")


def _pairs(items, what, from_env=False):
    """K=V options as a dict; with from_env a bare K takes $K (or is left out)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {what} '{item}': use KEY=VALUE")
        if not sep:
            if not from_env:
                raise InvalidArgument(f"invalid {what} '{item}': use KEY=VALUE")
            if key not in os.environ:
                continue
            value = os.environ[key]
        out[key] = value
    return out


def _read_dockerfile(path):
    """The Dockerfile's text ('-': stdin), at most 1 MiB, a regular file."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_DOCKERFILE + 1)
    else:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as e:
            raise InvalidArgument(f"cannot read the Dockerfile {path}: {e.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            if not os.path.isfile(f"/proc/self/fd/{fd}"):
                raise InvalidArgument(f"the Dockerfile {path} is not a regular file")
            data = f.read(MAX_DOCKERFILE + 1)
    if len(data) > MAX_DOCKERFILE:
        raise InvalidArgument("the Dockerfile is larger than 1 MiB")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise InvalidArgument("the Dockerfile is not UTF-8 text") from None


@click.command()
@click.option("-t", "--tag", "tags", multiple=True, metavar="NAME[:TAG]",
              help="A name for the image (repeatable).")
@click.option("-f", "--file", "dockerfile", metavar="PATH",
              help="The Dockerfile (default CONTEXT/Dockerfile; '-': stdin).")
@click.option("--build-arg", "build_args", multiple=True, metavar="KEY[=VALUE]",
              help="A build argument (a bare KEY takes $KEY).")
@click.option("--target", metavar="STAGE", help="Build up to this stage.")
@click.option("--no-cache", is_flag=True, help="Run every step, ignoring the cache.")
@click.option("--pull", is_flag=True, help="Pull every base image, even if it is here.")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]", help="The platform of the base images.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="A label on the image (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID.")
@click.option("--network", default="bridge", help="RUN's network: bridge, none or host.")
@click.option("--progress", type=click.Choice(["plain", "tty", "auto"]), default="auto",
              help="plain lines, or tty (finished steps folded).")
@click.option("--iidfile", metavar="FILE", help="Write the image ID to FILE.")
@click.option("--rm", "remove", is_flag=True,
              help="Accepted (Docker's default): every RUN's container is always removed.")
@click.option("--force-rm", is_flag=True,
              help="Accepted: a failed RUN's container is always removed too.")
@click.argument("context")
@click.pass_obj
def build(ctx, tags, dockerfile, build_args, target, no_cache, pull, platform, labels, quiet,
          network, progress, iidfile, remove, force_rm, context):
    """Build an image from a Dockerfile."""
    from bocker.build import builder, output
    from bocker.image import tags as tag_names

    if context == "-" or "://" in context:
        raise InvalidArgument("the build context must be a local directory")
    if not os.path.isdir(context):
        raise InvalidArgument(f"the build context {context} is not a directory")
    if network not in NETWORKS:
        raise InvalidArgument(f"invalid network '{network}': use bridge, none or host")
    if platform:
        from bocker.image import platforms

        platforms.parse_platform(platform)
    for t in tags:
        tag_names.check_name(t)
    options = builder.BuildOptions(
        context=os.path.abspath(context),
        dockerfile_text=_read_dockerfile(dockerfile or os.path.join(context, "Dockerfile")),
        tags=tuple(tags), build_args=_pairs(build_args, "build arg", from_env=True),
        target=target, no_cache=no_cache, pull=pull, platform=platform,
        labels=_pairs(labels, "label"),
        network="bridge" if network == "default" else network)
    _end_on_signals()  # a killed build's RUN is removed on the way out, not left running
    image_id = builder.build(ctx.paths, options, output.make(progress, quiet))
    if iidfile:
        with open(iidfile, "w") as f:
            f.write(image_id)


def _end_on_signals():
    """SIGTERM and SIGHUP unwind the build as Ctrl-C does (exit 128+N):
    its finally blocks kill and remove a running RUN's container and
    drop the entry half made."""
    import signal

    def end(signo, _frame):
        raise SystemExit(128 + signo)

    for signo in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signo, end)


@click.group()
def builder():
    """Manage the build cache."""


@builder.command("prune")
@click.option("-a", "--all", "everything", is_flag=True,
              help="Every cache entry, not only those no image uses.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def builder_prune(ctx, everything, force):
    """Remove build cache entries (no image's, or -a: all)."""
    from bocker.cli.prune import _confirm, _total
    from bocker.image import prune as image_prune

    if not _confirm(force, "all build cache" if everything else "all dangling build cache"):
        return
    removed, size = image_prune.prune_build_cache(ctx.paths, everything)
    if removed:
        click.echo("Deleted build cache objects:")
        for key in removed:
            click.echo(key[:25])
        click.echo("")
    _total(size)


COMMANDS = [build, builder]
