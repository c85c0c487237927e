"""Per-phase breakdown of one bocker start, from bocker's own trace.

With BOCKER_TRACE=json, bocker writes one JSON object per step to stderr:
{"step", "args", "result", "errno", "start_us", "dur_us", "pid"}.  Steps
may nest, so each instant is credited to one step only (see covered());
each step is put in a phase by the first keyword rule its name matches.  Whatever the trace does not cover is "untraced"
(interpreter start and imports for the CLI, Python glue for the API).
"""
import json
import statistics

PHASES = ("snapshot", "cgroup", "netns+veth", "clone to exec", "wait", "teardown",
          "other steps", "untraced")

# (phase, keywords): first match wins, so teardown words come first
# ("btrfs delete" is teardown, not snapshot).
RULES = (
    ("teardown", ("teardown", "delete", "remove", "destroy", "rmdir", "release",
                  "cleanup", "unlink", "del_", "_del", "kill")),
    ("wait", ("wait", "reap")),
    ("snapshot", ("snapshot", "subvol", "btrfs")),
    ("cgroup", ("cgroup",)),
    ("netns+veth", ("netns", "veth", "network", "netlink", "link", "addr", "route",
                    "bridge", "ipam", "lease", "nft", "loopback")),
    ("clone to exec", ("spawn", "clone", "exec", "pivot", "mount", "child", "hostname",
                       "caps", "no_new_privs", "start")),
)
# The container child's own steps (another pid than the start's first step)
# all happen between clone and execve; only cgroup and network ones are
# worth their own phase ("wait for parent" there is not the "wait" phase).
CHILD_PHASES = ("cgroup", "netns+veth")


def phase_of(step, in_child=False):
    """The phase a step name belongs to."""
    lowered = (step or "").lower()
    for phase, words in RULES:
        if in_child and phase not in CHILD_PHASES:
            continue
        if any(w in lowered for w in words):
            return phase
    return "clone to exec" if in_child else "other steps"


def parse_trace(text):
    """The JSON step objects in a stderr text (other lines are ignored)."""
    steps = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "step" in obj and "dur_us" in obj:
            steps.append(obj)
    return steps


def covered(steps):
    """(step, ms) pairs that cover the traced time exactly once.

    Steps nest (a "network" step around its "veth" steps) and the child's
    steps run inside the parent's "spawn"; sorted by start, each step is
    credited only with the time no earlier step already covered, so the
    outer step takes its inner ones and nothing is counted twice.  Without
    start times nesting is unknowable: every step counts in full.
    """
    if not all(isinstance(s.get("start_us"), (int, float)) for s in steps):
        return [(s, s["dur_us"] / 1000.0) for s in steps]
    out, covered_to = [], None
    for s in sorted(steps, key=lambda s: (s["start_us"], -s["dur_us"])):
        start, end = s["start_us"], s["start_us"] + s["dur_us"]
        fresh = end - start if covered_to is None else max(0, end - max(start, covered_to))
        covered_to = end if covered_to is None else max(covered_to, end)
        out.append((s, fresh / 1000.0))
    return out


def main_pid(steps):
    """The pid of the process that started the container: the earliest step's."""
    timed = [s for s in steps if isinstance(s.get("start_us"), (int, float))]
    first = min(timed, key=lambda s: s["start_us"]) if timed else (steps or [{}])[0]
    return first.get("pid")


def breakdown(steps, total_ms):
    """{phase: ms} for one start; "untraced" is total minus the steps."""
    out = dict.fromkeys(PHASES, 0.0)
    parent = main_pid(steps)
    for s, ms in covered(steps):
        out[phase_of(s.get("step"), s.get("pid") != parent)] += ms
    out["untraced"] = max(0.0, total_ms - sum(out.values()))
    return out


def summarize(runs):
    """Median per phase over runs (list of (total_ms, steps)), plus the
    median of each raw step name so no detail is lost to the mapping."""
    runs = [(total, steps) for total, steps in runs if steps]
    if not runs:
        return None
    per_phase = [breakdown(steps, total) for total, steps in runs]
    raw, phase = {}, {}
    for _, steps in runs:
        seen, parent = {}, main_pid(steps)
        for s in steps:
            # The same name in the parent and the child is two different steps.
            key = s["step"] if s.get("pid") == parent else f"child: {s['step']}"
            seen[key] = seen.get(key, 0.0) + s["dur_us"] / 1000.0
            phase[key] = phase_of(s["step"], s.get("pid") != parent)
        for name, ms in seen.items():
            raw.setdefault(name, []).append(ms)
    return {
        "runs": len(runs),
        "total_median_ms": statistics.median(t for t, _ in runs),
        "phases_median_ms": {p: statistics.median(b[p] for b in per_phase) for p in PHASES},
        "steps_median_ms": {k: {"median": statistics.median(v), "phase": phase[k],
                                "seen_in_runs": len(v)} for k, v in sorted(raw.items())},
    }
