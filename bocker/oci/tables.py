"""The tables `ps` and `list` print (runc's columns)."""
import subprocess

from bocker.errors import BockerError


def ps_lines(pids, args):
    """ps(1)'s output for args: its header and the lines of pids."""
    try:
        out = subprocess.run(["ps", *args], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise BockerError(f"ps {' '.join(args)}: {e}") from None
    lines = out.splitlines()
    if not lines:
        return []
    header = lines[0].split()
    if "PID" not in header:
        raise BockerError(f"ps {' '.join(args)}: no PID column")
    col = header.index("PID")
    wanted = {str(p) for p in pids}
    return [lines[0]] + [line for line in lines[1:]
                         if len(line.split()) > col and line.split()[col] in wanted]


def list_lines(items):
    """`list`'s table of spec states: ID PID STATUS BUNDLE CREATED OWNER."""
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")] + [
        (i["id"], str(i["pid"]), i["status"], i["bundle"], i["created"], i["owner"] or "root")
        for i in items]
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    return ["   ".join(r[c].ljust(widths[c]) for c in range(5)) + "   " + r[5] for r in rows]
