"""OCI hooks: each runs as the config says (path, args, env, timeout)
with the container's state JSON on its stdin.

createRuntime and createContainer run in `create` once the init is
ready (waiting at the gate); prestart and startContainer in `start`
before the gate opens (runtime-tools' prestart program, runc and crun
run prestart there: the spec's older wording), poststart after it,
poststop in `delete`.  startContainer hooks run inside the container
(its namespaces, the path resolved there: inside.py); the others in the
runtime's namespaces (createContainer too, where the spec says the
container's: a gap).  A failing hook of the first four fails its verb:
`create` undoes itself, `start` stops and deletes the container (the
spec's "continue the lifecycle at step 9"); poststart and poststop
failures are warnings, and the hooks after a failed one still run.
"""
import json
import subprocess
import tempfile

from bocker.errors import BockerError

FATAL = ("prestart", "createRuntime", "createContainer", "startContainer")
ALL = FATAL + ("poststart", "poststop")
_OUTPUT_SHOWN = 400   # bytes of a failed hook's output put in its error line


class HookFailed(BockerError):
    """A hook that exited non-zero, could not run, or timed out."""


def to_record(hooks):
    """The config's hooks ({kind: [Hook]}) as plain JSON for state.json."""
    out = {}
    for kind, items in (hooks or {}).items():
        out[kind] = [{"path": h.path, "args": list(h.args or []), "env": list(h.env or []),
                      "timeout": h.timeout} for h in items]
    return out


def run(kind, hooks, state_obj, run_one=None):
    """Run the hooks of kind (dicts from to_record) in order; raise
    HookFailed at the first failure.  run_one(kind, index, hook, payload)
    runs one (default: here, in the runtime's namespaces; inside.py's
    runs it in the container's)."""
    payload = json.dumps(state_obj).encode()
    for i, hook in enumerate(hooks.get(kind) or []):
        (run_one or _run_one)(kind, i, hook, payload)


def run_warning(kind, hooks, state_obj, warn):
    """Run every hook of kind; each failure is passed to warn(), and the
    rest still run (poststart, poststop: the lifecycle goes on)."""
    payload = json.dumps(state_obj).encode()
    for i, hook in enumerate(hooks.get(kind) or []):
        try:
            _run_one(kind, i, hook, payload)
        except HookFailed as e:
            warn(str(e))


def _run_one(kind, index, hook, payload):
    path = hook["path"]
    argv = list(hook.get("args") or []) or [path]
    env = dict(item.split("=", 1) for item in hook.get("env") or [] if "=" in item)
    timeout = hook.get("timeout")
    name = f"{kind} hook {index} ({path})"
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(argv, executable=path, env=env, stdin=subprocess.PIPE,
                                    stdout=out, stderr=out, close_fds=True)
        except OSError as e:
            raise HookFailed(f"{name}: {e.strerror}") from None
        try:
            proc.communicate(payload, timeout=timeout if timeout else None)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise HookFailed(f"{name}: timed out after {timeout}s") from None
        if proc.returncode != 0:
            out.seek(0)
            text = out.read(_OUTPUT_SHOWN).decode(errors="replace").strip()
            how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                   else f"exit status {proc.returncode}")
            detail = f": {' '.join(text.split())}" if text else ""
            raise HookFailed(f"{name}: {how}{detail}")
