"""Scale benchmarks (issue 16, item 4): 200 concurrent CLI starts, 20 at a
time, against crun doing the same; start latency in sustained blocks with
0 and with 100 detached containers running; a detached container's
monitor memory; sequential API throughput.

Each function returns a dict with "status" ("ok" or "skipped") and a
"note"; a bocker feature that has not landed yet (run -d, rm -f, ...) makes
it skip with a note, never fail.  Every detached container is removed with
`bocker rm -f` by the ID bocker printed, on every path.
"""
import os
import statistics
import subprocess
import tempfile
import time

from benchmarks import blocks


class ScaleContext:
    """What the scale benchmarks need from the main run."""

    def __init__(self, systems, bocker, env, image, opts, log):
        self.systems = {s.name: s for s in systems}
        self.bocker, self.env, self.image = bocker, env, image
        self.opts, self.quick, self.log = opts, opts.quick, log
        self._help = {}

    def help_text(self, verb):
        """`bocker VERB --help` output ('' if the verb is missing)."""
        if verb not in self._help:
            out = subprocess.run([self.bocker, verb, "--help"], capture_output=True,
                                 text=True, env=self.env)
            self._help[verb] = out.stdout if out.returncode == 0 else ""
        return self._help[verb]

    def bocker_root(self):
        """The bocker root the CLI runs on."""
        return (self.env or {}).get("BOCKER_ROOT")

    def cli(self):
        """The CLI system to scale: bridge (the default) if it started, else none."""
        return self.systems.get("bocker-cli-bridge") or self.systems.get("bocker-cli-none")


def _skipped(note):
    return {"status": "skipped", "note": note}


def concurrent(system, total, width):
    """`total` starts of a system, at most `width` at once (a new one as
    soon as one exits): wall time, containers per second, failures."""
    if not system:
        return _skipped("the system did not run here")
    if not system.pool:
        return _skipped(f"{system.name} cannot be started concurrently by the suite")
    with tempfile.TemporaryDirectory(prefix=f"bkb-conc-{os.getpid()}-") as tmp:
        wall_ns, codes, first_error = system.pool(total, width, tmp)
    wall_s = wall_ns / 1e9
    return {"status": "ok", "system": system.name, "n": total, "width": width,
            "wall_ms": wall_ns / 1e6, "per_second": total / wall_s if wall_s else None,
            "failures": sum(1 for c in codes if c != 0), "first_error": first_error,
            "note": f"{total} starts of {system.name}, {width} at a time"}


def _detach_supported(ctx):
    run_help, rm_help = ctx.help_text("run"), ctx.help_text("rm")
    if "--detach" not in run_help:
        return "needs `bocker run --detach` (not in `bocker run --help` yet)"
    if "--force" not in rm_help:
        return "needs `bocker rm --force` (not in `bocker rm --help` yet)"
    return None


def _network(system):
    """The --network of a bocker CLI system (its argv says)."""
    argv = system.argv if system else []
    return argv[argv.index("--network") + 1] if "--network" in argv else "bridge"


def _start_detached(ctx, command, network="bridge"):
    """`bocker run --detach`; returns the ID it prints.  Its stdout goes to
    a file, not a pipe: a pipe would also wait for every process that kept
    the write end (a monitor that did not close it), not for the CLI."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = subprocess.run([ctx.bocker, "run", "--detach", "--network", network, ctx.image,
                               *command], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                              env=ctx.env, timeout=60).returncode
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    lines = text.strip().splitlines()
    if code != 0 or not lines:
        raise OSError(f"bocker run --detach failed (exit {code}): {errors.strip()[-200:]}")
    return lines[-1].strip()


def _remove(ctx, ids):
    """rm -f every container we detached; returns IDs that would not go."""
    stuck = []
    for cid in ids:
        out = subprocess.run([ctx.bocker, "rm", "--force", cid], capture_output=True,
                             text=True, env=ctx.env, timeout=60)
        if out.returncode != 0:
            stuck.append(cid)
    return stuck


def _blocks(system, starts, count):
    """`count` sustained blocks of `starts` starts: (blocks_ns, failures)."""
    out, failures = [], 0
    for _ in range(count):
        samples, failed = blocks.run_block(lambda: system.timer(None), starts, system.after)
        out.append(samples)
        failures += failed
    return out, failures


def with_detached(ctx, count):
    """Start latency of the CLI (bridge, the default, if it works) in
    sustained blocks with 0, then with `count` detached containers running
    on the same network; also the mean PSS of their monitors."""
    system = ctx.cli()
    if not system:
        return _skipped("needs `bocker run` (CLI) working")
    why = _detach_supported(ctx)
    if why:
        return _skipped(why)
    network = _network(system)
    starts = ctx.opts.starts
    rounds = max(1, ctx.opts.rounds // 2) if not ctx.quick else 1
    idle_blocks, idle_fail = _blocks(system, starts, rounds)
    ids, error, pss = [], None, []
    t0 = time.perf_counter_ns()
    try:
        for _ in range(count):
            ids.append(_start_detached(ctx, ["sleep", "3600"], network))
        detach_s = (time.perf_counter_ns() - t0) / 1e9
        time.sleep(0.5)   # let the last monitors settle
        pss = [r.get("Pss", 0) for r in (_smaps_rollup_or_none(p)
                                         for p in _monitors(ctx.bocker_root())) if r]
        busy_blocks, busy_fail = _blocks(system, starts, rounds)
    except (OSError, subprocess.TimeoutExpired) as e:
        error = str(e)
    finally:
        t1 = time.perf_counter_ns()
        stuck = _remove(ctx, ids)
        remove_s = (time.perf_counter_ns() - t1) / 1e9
    if error:
        return {"status": "skipped", "note": error, "started": len(ids), "leftover": stuck}
    idle, busy = blocks.summarize(idle_blocks), blocks.summarize(busy_blocks)
    return {"status": "ok", "system": system.name, "detached": count,
            "starts_per_block": starts, "blocks": rounds,
            "median_block_ms_with_0": idle and idle["median_block"],
            "median_block_ms_with_n": busy and busy["median_block"],
            "block_medians_ms_with_0": idle and idle["block_medians"],
            "block_medians_ms_with_n": busy and busy["block_medians"],
            "failures": idle_fail + busy_fail, "leftover": stuck,
            "detach_starts_s": detach_s, "rm_force_s": remove_s,
            "monitors_seen": len(pss),
            "monitor_pss_kib_mean": statistics.fmean(pss) if pss else None,
            "note": f"{rounds} block(s) of {starts} `{' '.join(system.argv[1:])}` before and "
                    f"with {count} detached `sleep 3600` (--network {network}); "
                    f"monitor_pss_kib_mean: the {len(pss)} monitors, which share pages"}


def _monitors(root):
    """PIDs of the bocker-monitor processes of containers under root."""
    out = []
    for pid, (comm, _) in _processes().items():
        if comm != "bocker-monitor":
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if root and root.encode() + b"/containers/" in b" ".join(args):
            out.append(pid)
    return out


def _smaps_rollup_or_none(pid):
    try:
        return _smaps_rollup(pid)
    except OSError:
        return None


def _processes():
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            # comm may hold spaces: it sits between the first '(' and last ')'.
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            out[int(entry)] = (comm, ppid)
    return out


def _smaps_rollup(pid):
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1])
    return fields


def monitor_pss(ctx):
    """PSS of the process that watches one detached container: the parent
    of the container's `sleep`, found among the processes that appeared."""
    why = _detach_supported(ctx) if ctx.cli() else "needs `bocker run` (CLI) working"
    if why:
        return _skipped(why)
    before = _processes()
    ids = []
    try:
        ids.append(_start_detached(ctx, ["sleep", "3600"], _network(ctx.cli())))
        time.sleep(0.2)   # let the monitor settle after the CLI exits
        new = {pid: v for pid, v in _processes().items() if pid not in before}
        inits = [pid for pid, (comm, _) in new.items() if comm == "sleep"]
        monitors = [new[pid][1] for pid in inits if new[pid][1] in new]
        if not monitors:
            return {"status": "skipped", "note": "no monitor process found (the container's "
                    "`sleep` has no new parent)", "new_processes": sorted(new)}
        pid = monitors[0]
        rollup = _smaps_rollup(pid)
        return {"status": "ok", "pid": pid, "comm": new[pid][0],
                "pss_kib": rollup.get("Pss"), "rss_kib": rollup.get("Rss"),
                "private_kib": rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0),
                "note": "from /proc/PID/smaps_rollup of the container's parent"}
    except (OSError, subprocess.TimeoutExpired) as e:
        return _skipped(str(e))
    finally:
        stuck = _remove(ctx, ids)
        if stuck:
            ctx.log(f"  warning: could not remove detached containers {stuck}")


def api_rate(ctx, n):
    """Containers per second started one after another through the API."""
    system = ctx.systems.get("bocker-api-bridge") or ctx.systems.get("bocker-api-none")
    if not system:
        return _skipped("needs bocker.containers.run working")
    failures = 0
    t0 = time.perf_counter_ns()
    for _ in range(n):
        _, code = system.timer(None)
        failures += code != 0
    wall_s = (time.perf_counter_ns() - t0) / 1e9
    return {"status": "ok", "system": system.name, "n": n, "wall_s": wall_s,
            "per_second": n / wall_s if wall_s else None, "failures": failures}


def run_all(ctx):
    """Every scale benchmark, in order; each result carries its own note."""
    total, width = (10, 5) if ctx.quick else (200, 20)
    detached = 5 if ctx.quick else 100
    plan = (
        ("concurrent_cli", lambda: concurrent(ctx.cli(), total, width)),
        ("concurrent_crun", lambda: concurrent(ctx.systems.get("crun"), total, width)),
        ("latency_with_detached", lambda: with_detached(ctx, detached)),
        ("monitor_pss", lambda: monitor_pss(ctx)),
        ("api_sequential_rate", lambda: api_rate(ctx, 10 if ctx.quick else 100)),
    )
    out = {}
    for name, fn in plan:
        ctx.log(f"scale: {name}")
        try:
            out[name] = fn()
        except Exception as e:  # one broken benchmark must not lose the others
            out[name] = {"status": "error", "note": f"{type(e).__name__}: {e}"}
        if out[name].get("status") != "ok":
            ctx.log(f"  {out[name].get('status')}: {out[name].get('note')}")
    return out
