"""Probe the systems, the secondary interleaved view, the traced starts.

The headline (sustained blocks) is benchmarks/blocks.py.  interleaved()
is the old mode, kept for `--interleaved`: each round starts every system
once, the order rotated by one each round.  It spreads drift evenly but
charges the kernel work one system's start defers (snapshot cleaning,
netns teardown, cgroup removal) to the system that runs next.
"""
import os
import sys
import tempfile

from benchmarks import phases


def _tail(path):
    try:
        with open(path, errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def probe(systems, log):
    """Start each system once with its stderr kept; returns (ok, skipped)."""
    ok, skipped = [], []
    fd, errpath = tempfile.mkstemp(prefix=f"bkb-probe-{os.getpid()}-")
    os.close(fd)
    try:
        for s in systems:
            try:
                _, code = s.timer(errpath)
            except OSError as e:
                code, err = "error", str(e)
            else:
                err = _tail(errpath)
            if s.after:
                s.after()
            if code == 0:
                ok.append(s)
            else:
                note = f"probe start failed (exit {code})" + (f": {err}" if err else "")
                skipped.append({"name": s.name, "note": note})
                log(f"  skip {s.name}: {note}")
    finally:
        os.unlink(errpath)
    return ok, skipped


def interleaved(systems, runs, warmup, log):
    """{name: {"samples_ns": [...], "failures": n}} after warm-up rounds."""
    results = {s.name: {"samples_ns": [], "failures": 0} for s in systems}
    total = warmup + runs
    for r in range(total):
        k = r % len(systems)
        for s in systems[k:] + systems[:k]:
            try:
                ns, code = s.timer(None)
            except OSError:
                ns, code = 0, "error"
            if s.after:
                s.after()
            if r < warmup:
                continue
            if code == 0:
                results[s.name]["samples_ns"].append(ns)
            else:
                results[s.name]["failures"] += 1
        if total >= 50 and (r + 1) % (total // 10) == 0:
            log(f"  round {r + 1}/{total}")
    return results


def traced(systems, count, log):
    """Phase breakdown from `count` traced starts of each bocker system."""
    out = {}
    for s in systems:
        if not s.traced:
            continue
        runs, failures = [], 0
        for _ in range(count):
            ns, code, text = s.traced()
            if code != 0:
                failures += 1
                continue
            runs.append((ns / 1e6, phases.parse_trace(text)))
        summary = phases.summarize(runs)
        if summary is None:
            out[s.name] = {"note": "no BOCKER_TRACE=json output: phase breakdown not available",
                           "failures": failures}
            log(f"  {s.name}: no trace output")
        else:
            summary["failures"] = failures
            out[s.name] = summary
    return out


def stderr_log(msg):
    print(msg, file=sys.stderr, flush=True)
