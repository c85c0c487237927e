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
    if each_collect(refs, action):
        sys.exit(1)


def each_collect(refs, action):
    """action(ref) for every ref; a failed one prints its one line and the
    rest still run.  True if any failed (the caller exits 1 after printing
    what the others gave, as `docker inspect` does)."""
    failed = False
    for ref in refs:
        try:
            action(ref)
        except BockerError as e:
            error(e)
            failed = True
    return failed


def print_inspected(found, failed, template, json_if_none_found=True):
    """An inspect command's output: the objects found as one indented JSON
    array, or each through template (a gotemplate.Template) if given;
    then exit 1 if any ref failed (its error line is already out).  With
    json_if_none_found False, no "[]" is printed when every ref failed."""
    import json

    if template is None:
        if found or not failed or json_if_none_found:
            click.echo(json.dumps(found, indent=4))
    else:
        for item in found:
            click.echo(template.render(item))
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
    'Up 2 minutes (Paused)', 'Exited (0) 5 seconds ago', 'Exited (unknown)' (its end went unseen),
    'Restarting (1) 1 second ago'."""
    from bocker.runtime.records import parse_iso

    if st.get("Running"):
        paused = " (Paused)" if st.get("Paused") or st.get("Status") == "paused" else ""
        return "Up " + ago(parse_iso(st["StartedAt"]))[:-4] + paused
    if st.get("Status") == "created":
        return "Created"
    from bocker.runtime.records import UNKNOWN_EXIT

    ended = f" {ago(parse_iso(st['FinishedAt']))}" if st.get("FinishedAt") else ""
    code = st.get("ExitCode", 0)
    # waiting for its restart policy's restart: Docker's "Restarting (1) 2 seconds ago"
    verb = "Restarting" if st.get("Restarting") else "Exited"
    return f"{verb} ({'unknown' if code == UNKNOWN_EXIT else code}){ended}"


class Struct:
    """A dict as a Go struct for a template: its keys are the fields, a
    missing one an error (as Docker's rows are structs), where a plain dict
    is a map (a missing key <no value>); {{json .}} is the dict."""

    def __init__(self, fields):
        self._fields = dict(fields)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_json(self):
        """What {{json .}} prints: the fields as given."""
        return self._fields


class HeaderText(str):
    """A column's header where a listing's field would be: calling it (a
    method such as .Label "k") gives the header too."""

    def __call__(self, *args):
        return self


class _Header:
    """What a `table` template runs on to make its header line: each field
    is its column's name (Docker's: .ID -> CONTAINER ID)."""

    def __init__(self, headers):
        self._headers = headers

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return HeaderText(self._headers.get(name) or _upper_words(name))


def _upper_words(name):
    import re

    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).upper()


def listing_format(fmt):
    """--format as Docker reads it: (template text, is a table); 'table'
    alone and '' are the default table (template None), 'json' one JSON
    object a line; \\t and \\n in it are a tab and a newline."""
    fmt = fmt.strip(" ")
    table_ = fmt.startswith("table")
    if table_:
        fmt = fmt[len("table"):].strip(" ")
    if fmt == "json" and not table_:
        return "{{json .}}", False
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    return (fmt or None), table_


def print_template(fmt, items, headers, table_=False):
    """Each item through the template fmt (a gotemplate source); a table
    gets a header line from the field names and Docker's aligned columns
    (tabwriter's: cells padded by 3, at least 10 wide)."""
    from bocker.cli import gotemplate

    tmpl = gotemplate.Template(fmt)
    text = []
    if table_:
        try:
            text.append(tmpl.render(_Header(headers)) + "\n")
        except gotemplate.TemplateError:
            text.append("\n")  # a header that does not render (range over a name): none
    for item in items:
        text.append(tmpl.render(item) + "\n")
    out = "".join(text)
    click.echo(tabwriter(out) if table_ else out, nl=False)


def tabwriter(text, minwidth=10, padding=3):
    """Go's text/tabwriter as Docker sets it up: a tab ends a cell; the
    cells of a column (a run of lines that have it) are padded to the
    widest plus padding, at least minwidth; a line's last cell is not."""
    lines = [line.split("\t") for line in text.split("\n")]
    widths = [[0] * (len(cells) - 1) for cells in lines]
    col = 0
    while True:
        rows = [i for i, cells in enumerate(lines) if len(cells) - 1 > col]
        if not rows:
            break
        # contiguous blocks of lines holding this column are aligned together
        block = [rows[0]]
        for i in rows[1:] + [None]:
            if i is not None and i == block[-1] + 1:
                block.append(i)
                continue
            width = max(max(len(lines[j][col]) for j in block) + padding, minwidth)
            for j in block:
                widths[j][col] = width
            block = [i]
        col += 1
    return "\n".join("".join(c.ljust(w) for c, w in zip(cells, ws)) + cells[-1]
                     for cells, ws in zip(lines, widths))
