"""bocker-oci's log: runc's --log FILE --log-format text|json.

containerd's runc shim reads the last "error" entry of the JSON log to
say why a verb failed, so every error goes there as well as to stderr:
{"level":"error","msg":"...","time":"2006-01-02T15:04:05Z"} per line.
Text lines are logrus's: time="..." level=error msg="...".
"""
import json
import os
import sys

from bocker.oci.state import now_iso

_config = {"path": None, "format": "text", "debug": False}


def configure(path=None, fmt="text", debug=False):
    """Set where log entries go (None: nowhere but stderr for errors)."""
    _config.update(path=os.path.abspath(path) if path else None, format=fmt or "text",
                   debug=bool(debug))


def _line(level, msg):
    if _config["format"] == "json":
        entry = {"level": level, "msg": msg, "time": now_iso()}
        return json.dumps(entry, separators=(",", ":")) + "\n"
    return f'time="{now_iso()}" level={level} msg={json.dumps(msg)}\n'


def _append(level, msg):
    path = _config["path"]
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return  # a log that cannot be written must not hide the error itself
    try:
        os.write(fd, _line(level, msg).encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def error(msg):
    """One error line on stderr and in the log."""
    msg = " ".join(str(msg).split("\n"))
    _append("error", msg)
    print(f"bocker-oci: {msg}", file=sys.stderr, flush=True)


def warning(msg):
    """A warning (a config field not applied, a failed poststart hook):
    to the --log if there is one, else stderr, as runc's logger does.
    (Our stderr is often the container's: conmon and containerd's shim
    hand the runtime the container's stdio, so a warning there would
    land in the container's own output.)"""
    if _config["path"]:
        _append("warning", msg)
    else:
        print(f"bocker-oci: warning: {msg}", file=sys.stderr, flush=True)


def debug(msg):
    """A --debug line, in the log only."""
    if _config["debug"]:
        _append("debug", msg)
