"""`bocker setup`: prepare the host (bocker.hostsetup), or undo it."""
import click


@click.command()
@click.option("--size", default="10G", show_default=True,
              help="Size of the loopback btrfs file, if one is needed.")
@click.option("--bridge", help="Bridge for containers (default bridge0).")
@click.option("--subnet", help="IPv4 subnet of the bridge (default 10.0.0.0/24).")
@click.option("--teardown", is_flag=True, help="Undo what setup made, and nothing else.")
@click.pass_obj
def setup(ctx, size, bridge, subnet, teardown):
    """Prepare the host: btrfs root (loop file if needed), bridge and NAT,
    and the busybox image."""
    from bocker import hostsetup

    if teardown:
        # hostsetup sits below the runtime: it is handed the records
        from bocker.runtime import containers

        hostsetup.teardown(ctx.paths, containers.list_all(ctx.paths), log=click.echo)
    else:
        hostsetup.setup(ctx.paths, size=size, bridge=bridge, subnet=subnet, log=click.echo)


COMMANDS = [setup]
