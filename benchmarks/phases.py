"""Per-phase breakdown of one bocker start, from bocker's own trace.

With BOCKER_TRACE=json, bocker writes one JSON object per step to stderr:
{"step", "args", "result", "errno", "start_us", "dur_us", "pid"}.  The
parent's steps are spans ("btrfs snapshot", "clone", "wait", ...); the
container child's steps are reported from C between clone and execve, each
lasting from the previous report to its own ("join cgroup", "pivot_root",
..., "wait for parent", "execve"; bocker ends "execve" when the status
pipe closes, i.e. when the exec has succeeded).

Each instant of a start is credited to one phase only, by the critical
path (claim()):

1. the child's own work (its steps except "wait for parent"): while the
   child is still busy, the parent's work beside it (the veth) costs
   nothing extra;
2. the parent's steps (outer before inner, so nesting never counts twice);
3. clone to exec: the rest of [clone .. child's execve] (the child waiting
   for the parent's "go" while the parent runs untraced Python);
4. wait: the rest of [end of the child's execve .. "wait" returns] (the
   container runs /bin/true and exits while bocker records the start and
   pumps its output).

Whatever no step covers is "untraced": interpreter start and imports for
the Python CLI, Python glue between the steps for every row, and for the
C client with its warm server (issue 16) the Python the worker runs
(click's parsing, bocker's command code) between "server setup" and the
engine's first step, and after its last.

The client's and the server's steps (docs/architecture.md, "The CLI") are phases of their own,
told by name, whichever process reports them: "client start" (exec of
the client to its connect), "client connect", "client request" -> client;
"server fork", "server setup" -> server fork.  "client wait" spans the
whole worker (request sent to its exit code) and so is credited nothing
itself: what the steps inside it leave is untraced.  A trace without
these steps (the Python CLI, the API) maps as before.
"""
import json
import statistics

PHASES = ("client", "server fork", "snapshot", "cgroup", "netns+veth", "clone to exec", "wait", "teardown",
          "other steps", "untraced")

# The C client's and the warm server's steps (csrc/client.c, bocker/server/).
FRONT_STEPS = {
    "client start": "client",
    "client connect": "client",
    "client request": "client",
    "client wait": None,          # spans the worker: its inside is credited elsewhere
    "server fork": "server fork",
    "server setup": "server fork",
}
FRONT_PREFIXES = (("client ", "client"), ("server ", "server fork"))

# bocker's step names (bocker/runtime/start.py, bocker/kernel/cgroups.py) -> phase.
PARENT_STEPS = {
    "btrfs snapshot": "snapshot",
    "pool take rootfs": "snapshot",     # a snapshot made ahead (runtime/pool.py)
    "netpool take": "netns+veth",       # a network slot made ahead (net/pool.py) ...
    "netpool activate": "netns+veth",   # ... its veth renamed, up and guarded
    "ipam lease": "netns+veth",
    "netlink veth+addr+route": "netns+veth",
    "nft publish": "netns+veth",
    "cgroup mkdir": "cgroup",
    "cgroup write": "cgroup",
    "clone": "clone to exec",
    "wait": "wait",
    "cgroup remove": "teardown",
    "ipam release": "teardown",
    "nft unpublish": "teardown",
    "netlink delete veth": "teardown",
    "btrfs delete": "teardown",
}
# The child's steps that are not "clone to exec" (names as csrc/child.c
# gives them; tests/unit/test_formats.py checks each is one).
CHILD_STEPS = {
    "join cgroup": "cgroup",
    "loopback up": "netns+veth",
    "wait for parent": None,      # idle: the parent's work is the cost
}
# Names bocker may add later: (phase, keywords), first match wins, so
# teardown words come first ("btrfs delete" is teardown, not snapshot).
RULES = (
    ("teardown", ("teardown", "delete", "remove", "destroy", "rmdir", "release",
                  "cleanup", "unlink", "unpublish", "del_", "_del", "kill")),
    ("wait", ("wait", "reap")),
    ("snapshot", ("snapshot", "subvol", "btrfs")),
    ("cgroup", ("cgroup",)),
    ("netns+veth", ("netns", "veth", "network", "netlink", "link", "addr", "route",
                    "bridge", "ipam", "lease", "nft", "loopback")),
    ("clone to exec", ("spawn", "clone", "exec", "pivot", "mount", "child", "hostname",
                       "caps", "no_new_privs", "start")),
)
CHILD_RULE_PHASES = ("cgroup", "netns+veth")


def is_front(step):
    """Is this a step of the client or the server (not of the engine)?"""
    name = step or ""
    return name in FRONT_STEPS or any(name.startswith(p) for p, _ in FRONT_PREFIXES)


def phase_of(step, in_child=False):
    """The phase a step name belongs to (None: idle, credited nothing)."""
    if is_front(step):
        if step in FRONT_STEPS:
            return FRONT_STEPS[step]
        if "wait" in step:
            return None
        return next(phase for p, phase in FRONT_PREFIXES if step.startswith(p))
    table = CHILD_STEPS if in_child else PARENT_STEPS
    if step in table:
        return table[step]
    lowered = (step or "").lower()
    if in_child and "wait" in lowered:
        return None
    for phase, words in RULES:
        if in_child and phase not in CHILD_RULE_PHASES:
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


def main_pid(steps):
    """The pid of the process that started the container: the earliest
    engine step's (the client's and server's steps come before it and
    belong to other processes)."""
    steps = [s for s in steps if not is_front(s.get("step"))] or steps
    timed = [s for s in steps if isinstance(s.get("start_us"), (int, float))]
    first = min(timed, key=lambda s: s["start_us"]) if timed else (steps or [{}])[0]
    return first.get("pid")


class _Claimed:
    """Time already credited, as sorted disjoint [start, end) intervals."""

    def __init__(self):
        self.spans = []

    def take(self, start, end):
        """Claim [start, end); returns how much of it was still free."""
        if end <= start:
            return 0
        free, cursor = 0, start
        for s, e in self.spans:
            if e <= cursor:
                continue
            if s >= end:
                break
            free += max(0, s - cursor)
            cursor = max(cursor, e)
            if cursor >= end:
                break
        free += max(0, end - cursor)
        merged = []
        for s, e in sorted(self.spans + [(start, end)]):
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        self.spans = merged
        return free


def _end(step):
    return step["start_us"] + step["dur_us"]


def claim(steps):
    """[(label, phase, ms)]: each instant of the trace credited once, by the
    priority in the module docstring.  Without start times nesting is
    unknowable: every step counts in full."""
    parent = main_pid(steps)
    front = [s for s in steps if is_front(s["step"])]
    if not all(isinstance(s.get("start_us"), (int, float)) for s in steps):
        return [(s["step"], phase_of(s["step"], s.get("pid") != parent) or "clone to exec",
                 s["dur_us"] / 1000.0) for s in steps
                if phase_of(s["step"]) or not is_front(s["step"])]
    child = [s for s in steps if s.get("pid") != parent and not is_front(s["step"])]
    mine = [s for s in steps if s.get("pid") == parent and not is_front(s["step"])]
    layers = [
        [(s, phase_of(s["step"], True)) for s in child if phase_of(s["step"], True)],
        [(s, phase_of(s["step"])) for s in mine + front if phase_of(s["step"])],
    ]
    clone = next((s for s in mine if s["step"] == "clone"), None)
    execve = next((s for s in child if s["step"] == "execve"), None)
    waited = next((s for s in mine if s["step"] == "wait"), None)
    synthetic = []
    if clone and execve:
        synthetic.append(({"step": "clone .. execve (rest)", "start_us": clone["start_us"],
                           "dur_us": _end(execve) - clone["start_us"]}, "clone to exec"))
    if execve and waited:
        synthetic.append(({"step": "execve .. reaped (rest)", "start_us": _end(execve),
                           "dur_us": _end(waited) - _end(execve)}, "wait"))
    layers.append(synthetic)
    claimed, out = _Claimed(), []
    for layer in layers:
        for s, phase in sorted(layer, key=lambda sp: (sp[0]["start_us"], -sp[0]["dur_us"])):
            us = claimed.take(s["start_us"], _end(s))
            label = s["step"] if s.get("pid", parent) == parent or is_front(s["step"]) \
                else f"child: {s['step']}"
            out.append((label, phase, us / 1000.0))
    return out


def breakdown(steps, total_ms):
    """{phase: ms} for one start; "untraced" is total minus the steps."""
    out = dict.fromkeys(PHASES, 0.0)
    for _, phase, ms in claim(steps):
        out[phase] += ms
    out["untraced"] = max(0.0, total_ms - sum(out.values()))
    return out


def summarize(runs):
    """Median per phase over runs (list of (total_ms, steps)), plus the
    median of each raw step name (its own duration, and the part of it
    credited to its phase) so no detail is lost to the mapping."""
    runs = [(total, steps) for total, steps in runs if steps]
    if not runs:
        return None
    per_phase = [breakdown(steps, total) for total, steps in runs]
    raw, credited, phase = {}, {}, {}
    for _, steps in runs:
        seen, parent = {}, main_pid(steps)
        for s in steps:
            # The same name in the parent and the child is two different steps.
            in_child = s.get("pid") != parent and not is_front(s["step"])
            key = f"child: {s['step']}" if in_child else s["step"]
            seen[key] = seen.get(key, 0.0) + s["dur_us"] / 1000.0
            phase[key] = phase_of(s["step"], in_child) or "(idle)"
        got = {}
        for label, ph, ms in claim(steps):
            got[label] = got.get(label, 0.0) + ms
            phase.setdefault(label, ph)
        for name, ms in seen.items():
            raw.setdefault(name, []).append(ms)
        for name, ms in got.items():
            credited.setdefault(name, []).append(ms)
    return {
        "runs": len(runs),
        "total_median_ms": statistics.median(t for t, _ in runs),
        "phases_median_ms": {p: statistics.median(b[p] for b in per_phase) for p in PHASES},
        "steps_median_ms": {
            k: {"median": statistics.median(raw[k]) if k in raw else None,
                "credited_median": statistics.median(credited[k]) if k in credited else 0.0,
                "phase": phase[k], "seen_in_runs": len(raw.get(k, credited.get(k, [])))}
            for k in sorted(set(raw) | set(credited))},
    }
