"""The everyday verbs on containers and the host: rename, top, stats,
port, update, pause, unpause, info, version, events.

Plain click commands gathered by app.py; parse, call the library
(bocker.runtime.*, bocker.eventquery), print.  --format goes through the
shared Go-template printer (output.listing_format, output.print_template).
"""
import json
import sys
import time

import click

from bocker.cli import output
from bocker.errors import InvalidArgument


class _Usage(click.UsageError):
    """A bad flag value: Docker's CLI exits 125 for those."""

    exit_code = 125


def print_formatted(fmt, items, headers):
    """Print items (dicts, each a struct to the template: a field it lacks
    is an error) through --format fmt with the shared Go-template printer
    (output.listing_format, output.print_template); False if fmt
    asks for the default table (empty, or 'table' alone)."""
    text, is_table = output.listing_format(fmt)
    if text is None:
        return False
    output.print_template(text, [output.Struct(i) for i in items], headers, is_table)
    return True


# ------------------------------------------------------------------ rename

@click.command()
@click.argument("container")
@click.argument("new_name")
@click.pass_obj
def rename(ctx, container, new_name):
    """Rename a container (running or not)."""
    from bocker.runtime import rename as rename_mod

    rename_mod.rename(ctx.paths, container, new_name)


# ------------------------------------------------------------------ top

@click.command(context_settings={"ignore_unknown_options": True,
                                 "allow_interspersed_args": False})
@click.argument("container")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def top(ctx, container, ps_args):
    """Show a running container's processes (ps options: -ef, -e, -f, aux, -o FIELD,...)."""
    from bocker.runtime import top as top_mod

    headers, rows = top_mod.top(ctx.paths, container, ps_args)
    output.table([headers] + rows)


# ------------------------------------------------------------------ stats

@click.command()
@click.option("-a", "--all", "show_all", is_flag=True, help="All containers (default: running).")
@click.option("--no-stream", is_flag=True, help="Print one reading and exit.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("--format", "fmt", default="", help="Go template, or json.")
@click.argument("refs", nargs=-1)
@click.pass_obj
def stats(ctx, show_all, no_stream, no_trunc, fmt, refs):
    """Live resource use of containers: CPU, memory, network, block I/O, PIDs."""
    from bocker.runtime import containers
    from bocker.runtime import stats as stats_mod

    def chosen():
        if refs:
            out = []
            for ref in refs:
                out.append(containers.load(ctx.paths, containers.resolve(ctx.paths, ref)))
            return out
        return [r for r in containers.list_all(ctx.paths, on_broken=output.warn)
                if show_all or r["State"].get("Running")]

    headers = {"ID": "CONTAINER ID", **dict(stats_mod.HEADERS)}
    previous = {}
    tty = sys.stdout.isatty()
    interval = 1.0
    while True:
        records = chosen()
        now = {r["Id"]: stats_mod.sample(r) for r in records}
        if not previous:  # CPU % is over an interval: take a first reading
            previous = now
            time.sleep(0.5 if no_stream else interval)
            records = chosen()
            now = {r["Id"]: stats_mod.sample(r) for r in records}
        rows = [stats_mod.row(r, previous.get(r["Id"], now[r["Id"]]), now[r["Id"]], no_trunc)
                for r in records]
        if not no_stream and tty:
            click.echo("\033[2J\033[H", nl=False)  # Docker's redraw: clear, home
        if not (fmt and print_formatted(fmt, rows, headers)):
            output.table([[h for _, h in stats_mod.HEADERS]]
                         + [[row[k] for k, _ in stats_mod.HEADERS] for row in rows])
        if no_stream:
            return
        sys.stdout.flush()
        previous = now
        time.sleep(interval)


# ------------------------------------------------------------------ port

@click.command()
@click.argument("container")
@click.argument("private", required=False)
@click.pass_obj
def port(ctx, container, private):
    """List a container's published ports (or where PRIVATE_PORT[/PROTO] is published)."""
    from bocker.runtime import containers
    from bocker.runtime import ports as ports_mod

    record = containers.load(ctx.paths, containers.resolve(ctx.paths, container))
    for line in ports_mod.port_lines(record, private):
        click.echo(line)


# ------------------------------------------------------------------ update

@click.command()
@click.option("-m", "--memory", help="Memory limit (e.g. 512m; 0: none).")
@click.option("--memory-swap", help="Memory plus swap (e.g. 1g; -1: unlimited swap).")
@click.option("-c", "--cpu-shares", type=int, help="CPU shares (relative weight).")
@click.option("--cpus", help="CPU quota in CPUs (e.g. 1.5; 0: none).")
@click.option("--pids-limit", type=int, help="Maximum number of processes (-1: none).")
@click.option("--restart", help="Restart policy: no, always, unless-stopped, on-failure[:N].")
@click.option("--cpuset-cpus", help="CPUs it may run on (0-3, 0,1).")
@click.option("--memory-reservation", help="Soft memory limit (e.g. 256m; 0: none).")
@click.option("--cpu-period", type=int, help="CFS period in microseconds.")
@click.option("--cpu-quota", type=int, help="CFS quota in microseconds (-1: none).")
@click.option("--cpuset-mems", help="Memory nodes it may use (0-1).")
@click.option("--blkio-weight", type=int, help="Block I/O weight, 10-1000.")
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def update(ctx, memory, memory_swap, cpu_shares, cpus, pids_limit, restart, cpuset_cpus, refs,
           **resources):
    """Change the limits of containers (running ones at once; kept across restarts)."""
    from bocker.runtime import update as update_mod

    change = parse_update(memory=memory, memory_swap=memory_swap, cpu_shares=cpu_shares,
                          cpus=cpus, pids_limit=pids_limit, restart=restart,
                          cpuset_cpus=cpuset_cpus, **resources)
    try:
        update_mod.check(change)
    except InvalidArgument as e:
        raise _Usage(str(e)) from None
    output.each(refs, lambda ref: update_mod.update(ctx.paths, ref, change)
                and click.echo(ref))


def parse_update(memory=None, memory_swap=None, cpu_shares=None, cpus=None, pids_limit=None,
                 restart=None, cpuset_cpus=None, memory_reservation=None, cpu_period=None,
                 cpu_quota=None, cpuset_mems=None, blkio_weight=None):
    """update's flags as a change dict (update.FIELDS; only those given)."""
    from bocker import units

    change = {}
    try:
        if memory is not None:
            change["memory"] = 0 if str(memory).strip() in ("0", "-1") else \
                units.parse_size(memory, "b")
        if memory_swap is not None:
            change["memory_swap"] = -1 if str(memory_swap).strip() == "-1" else \
                units.parse_size(memory_swap, "b")
        if cpus is not None:
            change["cpus"] = 0.0 if str(cpus).strip() in ("0", "0.0") else units.parse_cpus(cpus)
        if memory_reservation is not None:
            change["memory_reservation"] = units.parse_size(memory_reservation, "b", zero=True)
    except InvalidArgument as e:
        raise _Usage(str(e)) from None
    for key, value in (("cpu_shares", cpu_shares), ("pids_limit", pids_limit),
                       ("restart", restart), ("cpuset_cpus", cpuset_cpus),
                       ("cpu_period", cpu_period), ("cpu_quota", cpu_quota),
                       ("cpuset_mems", cpuset_mems), ("blkio_weight", blkio_weight)):
        if value is not None:
            change[key] = value
    return change


# ------------------------------------------------------------------ pause

@click.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def pause(ctx, refs):
    """Freeze every process of running containers."""
    from bocker.runtime import pause as pause_mod

    output.each(refs, lambda ref: pause_mod.pause(ctx.paths, ref) and click.echo(ref))


@click.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def unpause(ctx, refs):
    """Thaw paused containers."""
    from bocker.runtime import pause as pause_mod

    output.each(refs, lambda ref: pause_mod.unpause(ctx.paths, ref) and click.echo(ref))


# ------------------------------------------------------------------ info, version

@click.command()
@click.option("-f", "--format", "fmt", default="", help="Go template, or json.")
@click.pass_obj
def info(ctx, fmt):
    """Show what this host and root hold: containers, images, drivers, kernel."""
    from bocker.runtime import stats as stats_mod
    from bocker.runtime import sysinfo

    i = sysinfo.info(ctx.paths)
    if fmt and print_formatted(fmt, [i], {}):
        return
    v = sysinfo.version()["Client"]
    lines = ["Client:", f" Version:    {v['Version']}", f" Context:    {v['Context']}", "",
             "Server:",
             f" Containers: {i['Containers']}", f"  Running: {i['ContainersRunning']}",
             f"  Paused: {i['ContainersPaused']}", f"  Stopped: {i['ContainersStopped']}",
             f" Images: {i['Images']}", f" Server Version: {i['ServerVersion']}",
             f" Storage Driver: {i['Driver']}", f" Cgroup Driver: {i['CgroupDriver']}",
             f" Cgroup Version: {i['CgroupVersion']}", f" Kernel Version: {i['KernelVersion']}",
             f" Operating System: {i['OperatingSystem']}", f" OSType: {i['OSType']}",
             f" Architecture: {i['Architecture']}", f" CPUs: {i['NCPU']}",
             f" Total Memory: {stats_mod.binary_size(i['MemTotal'])}", f" Name: {i['Name']}",
             f" Docker Root Dir: {i['DockerRootDir']}"]
    click.echo("\n".join(lines))


@click.command()
@click.option("-f", "--format", "fmt", default="", help="Go template, or json.")
def version(fmt):
    """Show bocker's version (Docker's Client/Server shape)."""
    from bocker.runtime import sysinfo

    v = sysinfo.version()
    if fmt and print_formatted(fmt, [v], {}):
        return
    c, s = v["Client"], v["Server"]
    click.echo("\n".join([
        "Client:", f" Version:           {c['Version']}",
        f" Python version:    {c['PythonVersion']}", f" OS/Arch:           {c['Os']}/{c['Arch']}",
        f" Context:           {c['Context']}", "", "Server: bocker", " Engine:",
        f"  Version:          {s['Version']}", f"  OS/Arch:          {s['Os']}/{s['Arch']}",
        f"  Kernel:           {s['KernelVersion']}"]))


# app.py checks for root before a body it has not marked: `bocker version`,
# as `docker version`, needs none (the mark says "checked already")
version.callback.needs_root = True


# ------------------------------------------------------------------ events

@click.command()
@click.option("--since", help="Show events since this time (10m, a Unix time, RFC 3339).")
@click.option("--until", help="Stop at this time (then exit).")
@click.option("-f", "--filter", "filters", multiple=True,
              help="type=, event=, container=, image=, label=, volume=, network=")
@click.option("--format", "fmt", default="", help="Go template, or json.")
@click.pass_obj
def events(ctx, since, until, filters, fmt):
    """Show what happened (from the event log), then follow it until interrupted."""
    from bocker import eventquery

    try:
        since_ns = eventquery.parse_time(since) if since else None
        until_ns = eventquery.parse_time(until) if until else None
        wanted = eventquery.parse_filters(filters)
    except InvalidArgument as e:
        raise _Usage(str(e)) from None
    # one template for the stream: a bad one fails (125) before any event;
    # a stream has no table to align, so `table` is only left out
    template = None
    text, _ = output.listing_format(fmt)
    if text is not None and fmt.strip() != "json":
        from bocker.cli import gotemplate

        template = gotemplate.Template(text)
    for e in eventquery.stream(ctx.paths, since=since_ns, until=until_ns, filters=wanted):
        if fmt.strip() == "json":
            click.echo(json.dumps(e, separators=(",", ":")))
        elif template is not None:
            click.echo(template.render(output.Struct(eventquery.template_view(e))))
        else:
            click.echo(eventquery.text_line(e))
        sys.stdout.flush()


COMMANDS = [rename, top, stats, port, update, pause, unpause, info, version, events]
