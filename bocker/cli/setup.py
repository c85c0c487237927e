"""`bocker setup`: prepare the host (bocker.hostsetup), or undo it."""
import os

import click


@click.command()
@click.option("--size", default="10G", show_default=True,
              help="Size of the loopback btrfs file, if one is needed.")
@click.option("--bridge", help="Bridge for containers (default bridge0).")
@click.option("--subnet", help="IPv4 subnet of the bridge (default 10.0.0.0/24).")
@click.option("--teardown", is_flag=True, help="Undo what setup made, and nothing else.")
@click.option("--systemd", is_flag=True,
              help="Also install and enable a systemd unit that runs `bocker setup` at boot "
              "($BOCKER_SYSTEMD_UNIT_DIR, default /etc/systemd/system).")
@click.pass_obj
def setup(ctx, size, bridge, subnet, teardown, systemd):
    """Prepare the host: btrfs root (loop file if needed), bridge and NAT,
    and the busybox image; after a reboot, also start the containers
    whose restart policy says so.  Safe to run at every boot."""
    from bocker import hostsetup

    # hostsetup sits below the runtime: the CLI hands it the records, and
    # starts the containers itself
    from bocker.runtime import containers

    if teardown:
        hostsetup.teardown(ctx.paths, containers.list_all(ctx.paths), log=click.echo)
        return
    rebooted = hostsetup.rebooted(ctx.paths)  # before setup mounts the root again
    hostsetup.setup(ctx.paths, size=size, bridge=bridge, subnet=subnet, log=click.echo)
    if systemd:
        hostsetup.install_boot_unit(ctx.paths, log=click.echo)
    if rebooted:
        from bocker.runtime import restarter

        restarter.at_boot(ctx.paths, log=click.echo, error=lambda m: click.echo(m, err=True))
    hostsetup.remember_boot(ctx.paths)
    # the warm server for the C client (`bocker`), so the first command is
    # fast too; a server that cannot start is no failure of setup.  None
    # with BOCKER_NO_SERVER set, as the client starts none then either.
    if not os.environ.get("BOCKER_NO_SERVER"):
        from bocker.server import launch

        launch.ensure_running()


COMMANDS = [setup]
