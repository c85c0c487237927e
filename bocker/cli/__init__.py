"""The bocker command line: options in, typed request to the library,
result out.  No logic lives here.  Modules are imported inside each command
so a `run` pays only for what it uses."""
import os
import sys
import time

import click

from bocker.errors import BockerError


class Context:
    """What every command gets: the layout under the chosen root."""

    def __init__(self, root):
        from bocker.state import Paths

        self.paths = Paths(root)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", envvar="BOCKER_ROOT", default=None,
              help="bocker's btrfs root (default /var/bocker, or $BOCKER_ROOT).")
@click.option("--trace", "trace_mode", flag_value="text", default=None,
              help="Print every kernel step to stderr (--trace=json: one object per line).")
@click.option("--trace-format", "trace_mode", type=click.Choice(["text", "json"]), hidden=True)
@click.version_option(package_name="bocker")
@click.pass_context
def cli(ctx, root, trace_mode):
    """bocker: Docker's core verbs over btrfs, cgroups and namespaces."""
    from bocker import trace

    if trace_mode:
        trace.configure(trace_mode)
    else:
        trace.configure_from_env()
    ctx.obj = Context(root)


pass_ctx = click.make_pass_decorator(Context)


# ------------------------------------------------------------------ setup

@cli.command()
@click.option("--size", default="10G", show_default=True,
              help="Size of the loopback btrfs file, if one is needed.")
@click.option("--bridge", help="Bridge for containers (default bridge0).")
@click.option("--subnet", help="IPv4 subnet of the bridge (default 10.0.0.0/24).")
@click.option("--teardown", is_flag=True, help="Undo what setup made, and nothing else.")
@pass_ctx
def setup(ctx, size, bridge, subnet, teardown):
    """Prepare the host: btrfs root (loop file if needed), bridge and NAT,
    and the busybox image."""
    from bocker import hostsetup

    if teardown:
        hostsetup.teardown(ctx.paths, log=click.echo)
    else:
        hostsetup.setup(ctx.paths, size=size, bridge=bridge, subnet=subnet, log=click.echo)


# ----------------------------------------------------------------- images

@cli.command()
@click.argument("directory")
@click.option("--name", help="NAME[:TAG] for the new image.")
@pass_ctx
def init(ctx, directory, name):
    """Create an image from a directory."""
    from bocker.image import images

    click.echo(f"Created: {images.init(ctx.paths, directory, name)}")


@cli.command("images")
@click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
@pass_ctx
def images_cmd(ctx, quiet):
    """List images."""
    from bocker import units
    from bocker.image import images

    records = images.list_all(ctx.paths)
    if quiet:
        for r in records:
            click.echo(r["id"])
        return
    rows = [("IMAGE_ID", "SOURCE", "NAME", "SIZE", "CREATED")]
    for r in records:
        rows.append((r["id"], r["source"], ",".join(r.get("names") or ["<none>"]),
                     units.human_size(r.get("size", 0)), _ago(r["created"])))
    _table(rows)


@cli.command()
@click.argument("refs", nargs=-1, required=True)
@pass_ctx
def rmi(ctx, refs):
    """Remove images."""
    from bocker.image import images

    _each(refs, lambda ref: click.echo(f"Removed: {images.remove(ctx.paths, ref)}"))


@cli.command()
@click.option("-f", "--force", is_flag=True, help="Kill a running container first.")
@click.argument("refs", nargs=-1, required=True)
@pass_ctx
def rm(ctx, force, refs):
    """Remove containers or images (by ID, prefix or name)."""
    from bocker.image import images
    from bocker.runtime import containers

    def one(ref):
        if ref.startswith("img_"):
            removed = images.remove(ctx.paths, ref)
        else:
            try:
                removed = containers.remove(ctx.paths, ref, force=force)
            except BockerError as e:
                if not str(e).startswith("No container"):
                    raise
                try:
                    removed = images.remove(ctx.paths, ref)
                except BockerError:
                    raise e from None
        click.echo(f"Removed: {removed}")

    _each(refs, one)


# -------------------------------------------------------------------- run

@cli.command(context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run in the background; print the ID.")
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal.")
@click.option("--name", help="Name for the container.")
@click.option("--hostname", help="Hostname (default: the container ID).")
@click.option("-e", "--env", "env", multiple=True, help="KEY=VAL (or KEY to pass ours).")
@click.option("--env-file", multiple=True, help="File of KEY=VAL lines.")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("-u", "--user", help="UID[:GID] or NAME[:GROUP].")
@click.option("-m", "--memory", help="Memory limit, e.g. 512m (default 512m, $BOCKER_MEM_LIMIT in MB).")
@click.option("--cpu-shares", type=int, help="CPU shares (default 512, $BOCKER_CPU_SHARE).")
@click.option("--cpus", help="CPU quota in CPUs, e.g. 1.5.")
@click.option("--pids-limit", type=int,
              help="Maximum number of processes (default 2048; -1 for no limit).")
@click.option("--network", default="bridge", type=click.Choice(["bridge", "none", "host"]),
              show_default=True, help="bridge: own address on bocker's bridge; none: only lo; "
              "host: the host's network.")
@click.option("-p", "--publish", "ports", multiple=True,
              help="[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]")
@click.option("--dns", multiple=True, help="DNS server for the container's resolv.conf.")
@click.option("--rm", "remove", is_flag=True, help="Remove the container when it exits.")
@click.option("--privileged", is_flag=True,
              help="Turn confinement off: every capability, no seccomp, /proc and /sys as they are.")
@click.option("--cap-add", multiple=True, help="Add a capability (e.g. NET_ADMIN, ALL).")
@click.option("--cap-drop", multiple=True, help="Drop a capability (e.g. CHOWN, ALL).")
@click.option("--security-opt", multiple=True,
              help="seccomp=unconfined|PROFILE.json, no-new-privileges (always on).")
@click.option("--sysctl", "sysctls", multiple=True,
              help="Namespaced sysctl KEY=VALUE (net.*, kernel.shm*, kernel.msg*, kernel.sem, "
              "fs.mqueue.*).")
@click.option("--ulimit", "ulimits", multiple=True, help="NAME=SOFT[:HARD], e.g. nofile=1024:2048.")
@click.option("--read-only", is_flag=True, help="Mount the container's root filesystem read-only.")
@click.option("--userns", type=click.Choice(["auto", "host", ""]), default=None,
              help="auto: root in the container is an unprivileged host uid (its own "
              "65536 ids, an idmapped rootfs); host: the host's ids (default, or "
              "$BOCKER_USERNS).")
@click.option("--entrypoint", help="Override the image's entrypoint.")
@click.option("-v", "--volume", "volumes", multiple=True, help="HOST:CONTAINER[:ro]")
@click.option("--tmpfs", multiple=True, help="PATH[:OPTIONS] tmpfs mount.")
@click.option("--cidfile", type=click.Path(dir_okay=False), help="Write the container ID here.")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def run(ctx, detach, interactive, tty, name, hostname, env, env_file, workdir, user, memory,
        cpu_shares, cpus, pids_limit, network, ports, dns, remove, privileged, cap_add,
        cap_drop, security_opt, sysctls, ulimits, read_only, userns, entrypoint, volumes,
        tmpfs, cidfile, image, command):
    """Run COMMAND in a new container from IMAGE."""
    from bocker import units
    from bocker.runtime import containers, spec

    if tty and detach:
        raise BockerError("-t with -d is not supported: attach with exec -it instead")
    all_env = [item for path in env_file for item in spec.parse_env_file(path)]
    all_env += list(env)
    if memory is None and os.environ.get("BOCKER_MEM_LIMIT"):
        memory = os.environ["BOCKER_MEM_LIMIT"] + "m"
    if cpu_shares is None and os.environ.get("BOCKER_CPU_SHARE"):
        cpu_shares = int(os.environ["BOCKER_CPU_SHARE"])
    req = spec.RunRequest(
        image, list(command), name=name, hostname=hostname, env=all_env,
        workdir=workdir, user=user,
        memory=units.parse_size(memory, "b") if memory else None,
        cpu_shares=cpu_shares, cpus=units.parse_cpus(cpus) if cpus else None,
        pids_limit=pids_limit, network=network, remove=remove, privileged=privileged,
        entrypoint=[entrypoint] if entrypoint is not None else None,
        volumes=volumes, tmpfs=tmpfs, ports=ports, dns=dns, cap_add=cap_add,
        cap_drop=cap_drop, security_opt=security_opt, sysctls=sysctls, ulimits=ulimits,
        read_only=read_only, userns=userns)
    if cidfile and os.path.exists(cidfile):
        raise BockerError(f"container ID file {cidfile} already exists")

    def started(cid):
        if cidfile:
            with open(cidfile, "w") as f:
                f.write(cid)
        if detach:
            click.echo(cid)

    code = containers.run(ctx.paths, req, detach=detach, tty=tty, interactive=interactive,
                          on_started=started)
    if not detach:
        sys.exit(code)


@cli.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal.")
@click.option("-e", "--env", "env", multiple=True, help="KEY=VAL")
@click.option("-w", "--workdir", help="Working directory.")
@click.option("-u", "--user", help="UID[:GID] or NAME[:GROUP].")
@click.argument("ref")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_ctx
def exec_cmd(ctx, interactive, tty, env, workdir, user, ref, command):
    """Run COMMAND inside a running container."""
    from bocker.runtime import containers

    sys.exit(containers.exec_in(ctx.paths, ref, list(command), env=env, workdir=workdir,
                                user=user, tty=tty, interactive=interactive))


@cli.command()
@click.option("-t", "--time", "timeout", default=10.0, show_default=True, type=float,
              help="Seconds to wait after SIGTERM before SIGKILL.")
@click.argument("refs", nargs=-1, required=True)
@pass_ctx
def stop(ctx, timeout, refs):
    """Stop running containers (SIGTERM, then SIGKILL)."""
    from bocker.runtime import containers

    # Docker echoes each argument as given once it is done
    _each(refs, lambda ref: containers.stop(ctx.paths, ref, timeout) and click.echo(ref))


@cli.command()
@click.option("-s", "--signal", "sig", default="KILL", show_default=True,
              help="Signal name or number.")
@click.argument("refs", nargs=-1, required=True)
@pass_ctx
def kill(ctx, sig, refs):
    """Send a signal to running containers."""
    import signal

    from bocker.runtime import containers

    name = sig.upper().removeprefix("SIG")
    try:
        number = int(name) if name.isdigit() else signal.Signals["SIG" + name].value
    except KeyError:
        raise BockerError(f"invalid signal '{sig}'") from None
    _each(refs, lambda ref: containers.kill(ctx.paths, ref, number) and click.echo(ref))


@cli.command()
@click.argument("refs", nargs=-1, required=True)
@pass_ctx
def wait(ctx, refs):
    """Wait for containers to exit; print their exit codes."""
    from bocker.runtime import containers

    _each(refs, lambda ref: click.echo(containers.wait(ctx.paths, ref)))


@cli.command()
@click.argument("refs", nargs=-1, required=True)
@pass_ctx
def start(ctx, refs):
    """Start stopped containers again (detached)."""
    from bocker.runtime import containers

    _each(refs, lambda ref: containers.start(ctx.paths, ref) and click.echo(ref))


# ------------------------------------------------------------- containers

@cli.command()
@click.option("-a", "--all", "show_all", is_flag=True, help="Show stopped containers too.")
@click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
@pass_ctx
def ps(ctx, show_all, quiet):
    """List containers (running ones; -a for all)."""
    from bocker.runtime import containers

    records = [r for r in containers.list_all(ctx.paths)
               if show_all or r["State"].get("Running")]
    if quiet:
        for r in records:
            click.echo(r["Id"])
        return
    rows = [("CONTAINER_ID", "COMMAND", "IMAGE", "STATUS", "ADDRESS", "PORTS", "NAME")]
    for r in records:
        net = r.get("NetworkSettings") or {}
        rows.append((r["Id"], _shorten(" ".join(r["Config"]["Cmd"]), 30),
                     r.get("ImageName") or r["Image"], _status(r["State"]),
                     net.get("IPAddress", "") if r["State"].get("Running") else "",
                     _ports(net.get("Ports") or {}), r["Name"]))
    _table(rows)


@cli.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the container exits.")
@click.option("--tail", default="all", help="Only the last N lines.")
@click.option("-t", "--timestamps", is_flag=True, help="Prefix each line with its time.")
@click.argument("ref")
@pass_ctx
def logs(ctx, follow, tail, timestamps, ref):
    """Print a container's log (stdout and stderr kept apart)."""
    from bocker.runtime import attach, containers

    if tail != "all" and not tail.isdigit():
        raise BockerError(f"invalid --tail '{tail}': a number or 'all'")
    cid = containers.resolve(ctx.paths, ref)
    attach.print_log(ctx.paths, cid, follow=follow, timestamps=timestamps,
                     tail=None if tail == "all" else int(tail),
                     running=lambda: containers.load(ctx.paths, cid)["State"].get("Running"))


@cli.command()
@click.argument("refs", nargs=-1, required=True)
@pass_ctx
def inspect(ctx, refs):
    """Show containers or images as JSON."""
    import json

    from bocker.image import images
    from bocker.runtime import containers

    out = []
    for ref in refs:
        try:
            out.append(containers.load(ctx.paths, containers.resolve(ctx.paths, ref)))
        except BockerError:
            out.append(images.load(ctx.paths, images.resolve(ctx.paths, ref)))
    click.echo(json.dumps(out, indent=4))


@cli.command()
@click.argument("container")
@click.argument("image", required=False)
@click.option("--name", help="NAME[:TAG] for a new image.")
@pass_ctx
def commit(ctx, container, image, name):
    """Save a container's filesystem as an image (IMAGE: replace its content)."""
    from bocker.runtime import containers

    removed, created = containers.commit(ctx.paths, container, image, name)
    if removed:
        click.echo(f"Removed: {removed}")
    click.echo(f"Created: {created}")


def _register_image_commands():
    # pull, login, load, save live in cli_images.py; their modules (requests,
    # tarfile, ...) are imported only when one of them runs.
    from bocker.cli import images as cli_images

    for command in cli_images.COMMANDS:
        cli.add_command(command)


_register_image_commands()


# ------------------------------------------------------------- formatting

def _each(refs, action):
    failed = False
    for ref in refs:
        try:
            action(ref)
        except BockerError as e:
            click.echo(f"bocker: {e}", err=True)
            failed = True
    if failed:
        sys.exit(1)


def _table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def _shorten(text, width):
    return text if len(text) <= width else text[:width - 3] + "..."


def _ago(ts):
    secs = max(0, int(time.time() - ts))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= size:
            n = secs // size
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return f"{secs} second{'s' if secs != 1 else ''} ago"


def _ports(ports):
    """Docker's form: 0.0.0.0:8080->80/tcp, ..."""
    return ", ".join(f"{b['HostIp']}:{b['HostPort']}->{port}"
                     for port, bindings in ports.items() for b in bindings)


def _status(st):
    from bocker.runtime.records import parse_iso

    if st.get("Running"):
        return "Up " + _ago(parse_iso(st["StartedAt"]))[:-4]
    if st.get("Status") == "created":
        return "Created"
    ended = f" {_ago(parse_iso(st['FinishedAt']))}" if st.get("FinishedAt") else ""
    return f"Exited ({st.get('ExitCode', 0)}){ended}"


def main():
    """Console entry point: map errors to one line and an exit code."""
    # click has no optional option values: --trace=json becomes --trace-format json
    args = [("--trace-format=" + a.split("=", 1)[1]) if a.startswith("--trace=") else a
            for a in sys.argv[1:]]
    try:
        cli.main(args, prog_name="bocker", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code if e.exit_code != 1 else 2)
    except click.exceptions.Abort:
        sys.exit(130)
    except BockerError as e:
        click.echo(f"bocker: {e}", err=True)
        sys.exit(e.exit_code)
    except OSError as e:
        click.echo(f"bocker: {e.strerror or e}", err=True)
        sys.exit(125 if sys.argv[1:2] == ["run"] else 1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
