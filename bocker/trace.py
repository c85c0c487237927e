"""Trace mode: every kernel step of a command, with arguments, result and
duration, printed to stderr (`--trace`, `--trace=json`, BOCKER_TRACE).

Off by default and free when off: span() then returns one shared no-op
context manager.
"""
import json
import os
import sys
import time

_mode = None  # None, "text" or "json"


def configure(mode):
    """Turn tracing on ('text' or 'json') or off (None)."""
    global _mode
    _mode = mode or None


def configure_from_env():
    """Honour BOCKER_TRACE=1|text|json."""
    value = os.environ.get("BOCKER_TRACE", "")
    configure("json" if value == "json" else "text" if value else None)


def enabled():
    return _mode is not None


class _Null:
    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def set(self, result):
        pass


_NULL = _Null()


class _Span:
    __slots__ = ("step", "args", "start", "result")

    def __init__(self, step, args):
        self.step, self.args, self.result = step, args, None

    def __enter__(self):
        self.start = time.monotonic_ns()
        return self

    def set(self, result):
        """Record what the step produced (a path, an fd, a PID...)."""
        self.result = result

    def __exit__(self, etype, exc, tb):
        err = getattr(exc, "errno", None) or (0 if exc is None else -1)
        emit(self.step, self.args, self.start, time.monotonic_ns() - self.start,
             self.result, err)
        return False


def span(step, **args):
    """Context manager timing one step (a no-op when tracing is off)."""
    return _NULL if _mode is None else _Span(step, args)


def emit(step, args, start_ns, dur_ns, result=None, err=0, pid=None):
    """Print one trace record."""
    if _mode is None:
        return
    pid = pid or os.getpid()
    if _mode == "json":
        rec = {"step": step, "args": args, "result": result, "errno": err,
               "start_us": start_ns // 1000, "dur_us": dur_ns // 1000, "pid": pid}
        line = json.dumps(rec, default=str)
    else:
        argtext = " ".join(f"{k}={v}" for k, v in args.items())
        outcome = f"-> {result}" if result is not None else ""
        if err:
            outcome = f"-> error {os.strerror(err) if err > 0 else 'failed'} (errno {err})"
        line = f"[{pid:>7}] {dur_ns / 1e6:8.3f} ms  {step:<24} {argtext} {outcome}".rstrip()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
