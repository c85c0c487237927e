"""Docker's boolean flags with a value: `--pause=false`, `-H=false`,
`--sig-proxy=true` (Go's pflag takes `--flag=BOOL` for every boolean).

click's `--x/--no-x` flags take no `=value`; DockerBools rewrites a
command's `NAME=BOOL` arguments of the flags it names into the click
spelling before click parses them.  Only the options part is rewritten:
for a command that stops at its first positional (run, create), the
arguments of the container's command are left as they are.
"""
import click

_TRUE = {"true", "1", "t", "T", "TRUE", "True"}
_FALSE = {"false", "0", "f", "F", "FALSE", "False"}


def rewrite(args, flags, takes_value, interspersed=True):
    """args with each `NAME=BOOL` of flags (a dict NAME -> (on, off): the
    click spellings) replaced by on or off.  takes_value(NAME) says whether
    an option consumes the next argument (so that argument is skipped);
    with interspersed False the rewrite stops at the first positional.
    A bad BOOL is a click.BadParameter (exit 125 through app.py)."""
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return out + list(args[i:])
        name, eq, value = arg.partition("=")
        if arg.startswith("-") and eq and name in flags:
            if value not in _TRUE | _FALSE:
                raise click.BadParameter(f'invalid argument "{value}" for "{name}" flag: '
                                         f"strconv.ParseBool: parsing \"{value}\": invalid syntax")
            out.append(flags[name][0] if value in _TRUE else flags[name][1])
        elif arg.startswith("--") and not eq and takes_value(arg):
            out += args[i:i + 2]
            i += 1
        elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 1:
            out.append(arg)
            # a cluster -it, or -e VALUE: the last short that takes a value
            # with nothing after it in the cluster takes the next argument
            for j, ch in enumerate(arg[1:], 1):
                if takes_value("-" + ch):
                    if j == len(arg) - 1 and i + 1 < len(args):
                        out.append(args[i + 1])
                        i += 1
                    break
        else:
            out.append(arg)
            if not arg.startswith("-") and not interspersed:
                return out + list(args[i + 1:])
        i += 1
    return out


class DockerBools(click.Command):
    """A click command whose boolean flags also take Docker's `=BOOL`:
    bool_flags = {"--pause": ("--pause", "--no-pause"), "-p": (...)}."""

    def __init__(self, *args, bool_flags=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.bool_flags = dict(bool_flags or {})

    def parse_args(self, ctx, args):
        values = {}
        for p in self.params:
            if isinstance(p, click.Option):
                for opt in p.opts + p.secondary_opts:
                    values[opt] = not p.is_flag and not p.count
        args = rewrite(list(args), self.bool_flags, lambda opt: values.get(opt, False),
                       ctx.allow_interspersed_args)
        return super().parse_args(ctx, args)


def bools(*names):
    """bool_flags for DockerBools of the `--long/--no-long` flags names
    (each "-s/--long" or "--long"): -s and --long both map to them."""
    flags = {}
    for spec in names:
        parts = spec.split("/")
        long = parts[-1]
        for name in parts:
            flags[name] = (long, "--no-" + long[2:])
    return flags
