"""The bocker command line: options in, a call to the library, its result
out.  No logic lives here.

app.py is the click group and the one place errors become exit codes;
containers.py, images.py and setup.py hold the commands, output.py how
results are printed.  Each command imports the library it needs inside its
body, so `bocker run` pays only for what it uses.
"""
from bocker.cli.app import cli, main

__all__ = ["cli", "main"]
