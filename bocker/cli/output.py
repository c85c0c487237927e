"""How the commands print: aligned tables, Docker's "2 minutes ago" ages,
container status and published ports, and the per-reference error lines
of commands that take several references."""
import sys
import time

import click

from bocker.errors import BockerError


def each(refs, action):
    """action(ref) for every ref, as Docker does: a failed ref prints its
    one line and the rest still run; any failure makes the exit code 1."""
    failed = False
    for ref in refs:
        try:
            action(ref)
        except BockerError as e:
            error(e)
            failed = True
    if failed:
        sys.exit(1)


def error(message):
    """'bocker: MESSAGE' on stderr, always one line: a newline or control
    character (from a name or path the user gave) is shown escaped."""
    text = str(message)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    click.echo(f"bocker: {text}", err=True)


def warn(error_):
    """One line on stderr for something a listing left out (a corrupt
    record); the listing goes on, and so does the exit code."""
    error(error_)


def table(rows):
    """Print rows (the first is the header) in left-aligned columns."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def shorten(text, width):
    """text cut to width characters, ending in ... if it was longer."""
    return text if len(text) <= width else text[:width - 3] + "..."


def ago(ts):
    """A past time as Docker says it: '3 minutes ago', '1 day ago'."""
    secs = max(0, int(time.time() - ts))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= size:
            n = secs // size
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return f"{secs} second{'s' if secs != 1 else ''} ago"


def ports(bindings_by_port):
    """Docker's form: 0.0.0.0:8080->80/tcp, ..."""
    return ", ".join(f"{b['HostIp']}:{b['HostPort']}->{port}"
                     for port, bindings in bindings_by_port.items() for b in bindings)


def status(st):
    """A record's State as ps shows it: 'Up 2 minutes', 'Created',
    'Exited (0) 5 seconds ago', 'Exited (unknown)' (its end went unseen),
    'Restarting (1) 1 second ago'."""
    from bocker.runtime.records import parse_iso

    if st.get("Running"):
        up = "Up " + ago(parse_iso(st["StartedAt"]))[:-4]
        return up + " (Paused)" if st.get("Paused") else up
    if st.get("Status") == "created":
        return "Created"
    from bocker.runtime.records import UNKNOWN_EXIT

    ended = f" {ago(parse_iso(st['FinishedAt']))}" if st.get("FinishedAt") else ""
    code = st.get("ExitCode", 0)
    # waiting for its restart policy's restart: Docker's "Restarting (1) 2 seconds ago"
    verb = "Restarting" if st.get("Restarting") else "Exited"
    return f"{verb} ({'unknown' if code == UNKNOWN_EXIT else code}){ended}"
