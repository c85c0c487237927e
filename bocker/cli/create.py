"""`bocker create`: run's options, the container made but not started.

A module of its own so that `bocker run` does not build a second copy of
run's hundred options (app.py imports a command's module when it runs).
"""
import os

import click

from bocker.cli import boolflags, runoptions
from bocker.cli.containers import RUN_SETTINGS, _create_cidfile


@click.command(context_settings=RUN_SETTINGS, cls=boolflags.DockerBools,
               bool_flags=runoptions.BOOL_FLAGS)
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin open (for start -a -i).")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal.")
@runoptions.container_options
@click.option("--cidfile", type=click.Path(dir_okay=False), help="Write the container ID here.")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def create(ctx, interactive, tty, cidfile, image, command, **options):
    """Create a container from IMAGE without starting it; print its ID
    (`bocker start` starts it); a missing image is pulled first (--pull), as
    run's."""
    from bocker.runtime import create as creating
    from bocker.runtime import start as start_path

    policy, platform = runoptions.take_pull(options)
    quiet = runoptions.take_quiet(options)
    req = runoptions.request(image, command, options)
    checked = creating.check_request(req)  # a refused option says so before any pull
    runoptions.ensure_image(ctx.paths, req.image, policy, platform, quiet)
    cid_fd = _create_cidfile(cidfile) if cidfile else None
    try:
        cid = start_path.create_only(ctx.paths, req, tty=tty, interactive=interactive,
                                     checked=checked)
    except BaseException:
        if cid_fd is not None:
            os.close(cid_fd)
            os.unlink(cidfile)
        raise
    if cid_fd is not None:
        os.write(cid_fd, cid.encode())
        os.close(cid_fd)
    click.echo(cid)


COMMANDS = [create]
