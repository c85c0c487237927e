"""`python -m benchmarks`: measure, print the table, write JSON and PNG."""
import argparse
import contextlib
import os
import socket
import sys
import time

from benchmarks import fixtures, machine, measure, report, runner, scale, systems, targets

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUPS = {
    "comparators": ("crun", "runc", "bocker-oci", "bwrap", "unshare-chroot", "p8952"),
    "scale": ("bocker",),   # the scale benchmarks run bocker
}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Start latency of bocker against crun, runc, bwrap, unshare, "
                    "p8952/bocker and the kernel floor (run as root).")
    p.add_argument("--quick", action="store_true",
                   help="a few runs, smaller scale benchmarks (a smoke run, not figures)")
    p.add_argument("--runs", type=int, help="timed starts per system (default 200, quick 10)")
    p.add_argument("--warmup", type=int, help="untimed rounds first (default 5, quick 2)")
    p.add_argument("--trace-runs", type=int,
                   help="traced bocker starts for the phase breakdown (default 20, quick 3)")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="only these systems: a name, a prefix (floor, python, bocker, "
                        "bocker-api), 'comparators' or 'scale'; repeat or comma-separate")
    p.add_argument("--no-scale", action="store_true", help="skip the scale benchmarks")
    p.add_argument("--out", default=os.path.join(REPO_ROOT, "benchmarks", "results"),
                   help="directory for <date>-<host>.json and .png (default benchmarks/results)")
    p.add_argument("--bocker", help="the bocker script (default: beside this python, or PATH)")
    p.add_argument("--root", help="bocker root (default $BOCKER_ROOT or /var/bocker)")
    p.add_argument("--image", help="run this bocker image instead of importing the shared "
                                   "busybox rootfs for the run")
    p.add_argument("--p8952", metavar="PATH", help="p8952/bocker's bocker script, to compare")
    p.add_argument("--list", action="store_true", help="list the system names and exit")
    opts = p.parse_args(argv)
    opts.runs = opts.runs if opts.runs is not None else (10 if opts.quick else 200)
    opts.warmup = opts.warmup if opts.warmup is not None else (2 if opts.quick else 5)
    opts.trace_runs = opts.trace_runs if opts.trace_runs is not None else \
        (3 if opts.quick else 20)
    opts.only = [t.strip() for item in opts.only for t in item.split(",") if t.strip()]
    if opts.runs < 1:
        p.error("--runs must be at least 1")
    return opts


def chooser(only):
    """wanted(name): does --only select this system?"""
    tokens = []
    for t in only:
        tokens.extend(GROUPS.get(t, (t,)))

    def wanted(name):
        return not tokens or any(name == t or name.startswith(t + "-") for t in tokens)
    return wanted


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    log = runner.stderr_log
    if opts.list:
        print("\n".join(systems.ALL_NAMES))
        return 0
    if os.geteuid() != 0:
        print("benchmarks: run as root (namespaces, mounts, cgroups)", file=sys.stderr)
        return 2
    wanted = chooser(opts.only)
    do_scale = not opts.no_scale and (not opts.only or "scale" in opts.only)
    record = {
        "schema": 1,
        "machine": machine.machine(),
        "method": {
            "runs": opts.runs, "warmup": opts.warmup, "trace_runs": opts.trace_runs,
            "quick": opts.quick, "order": "interleaved round-robin, rotated each round",
            "timing": "perf_counter_ns around posix_spawn + waitpid (CLI systems) or "
                      "around the call (in-process API); stdout/stderr to /dev/null",
            "floor_reference": targets.FLOOR,
        },
    }
    samples_ms = {}
    with contextlib.ExitStack() as stack:
        log("setting up (busybox rootfs, OCI bundle, floor.c, bocker image)...")
        ws = stack.enter_context(fixtures.workspace())
        ctx = systems.Context(opts, ws, stack, REPO_ROOT)
        record["versions"] = machine.versions(REPO_ROOT, ctx.bocker_python, opts.p8952)
        record["versions"]["busybox"] = fixtures.busybox_version()
        chosen, skipped = systems.make_systems(ctx, wanted)
        log(f"probing {len(chosen)} systems...")
        chosen, failed = runner.probe(chosen, log)
        skipped += failed
        log(f"measuring {len(chosen)} systems: {opts.warmup} warm-up + {opts.runs} rounds...")
        t0 = time.monotonic()
        results = runner.interleaved(chosen, opts.runs, opts.warmup, log) if chosen else {}
        record["method"]["seconds"] = round(time.monotonic() - t0, 1)
        log("phase breakdown (BOCKER_TRACE=json)...")
        record["phases"] = runner.traced(chosen, opts.trace_runs, log)
        if do_scale:
            sctx = scale.ScaleContext(chosen, ctx.bocker, ctx.bocker_env, ctx.image,
                                      opts.quick, log)
            record["scale"] = scale.run_all(sctx)
        else:
            record["scale"] = {}
        record["notes"] = dict(ctx.notes, bocker_root=ctx.bocker_root, bocker=ctx.bocker)
    # Everything made above is gone now; what is left is arithmetic.
    stats = {}
    record["systems"] = {}
    for s in chosen:
        samples = results[s.name]["samples_ns"]
        samples_ms[s.name] = [round(ns / 1e6, 4) for ns in samples]
        summary = measure.summarize(samples)
        if summary:
            stats[s.name] = summary
        record["systems"][s.name] = dict(s.describe(), stats=summary,
                                         failures=results[s.name]["failures"])
    report.ratios(stats)
    record["skipped"] = skipped
    record["targets"] = targets.evaluate(stats, record["scale"])
    record["samples_ms"] = samples_ms
    os.makedirs(opts.out, exist_ok=True)
    stem = os.path.join(opts.out, f"{time.strftime('%Y-%m-%d', time.gmtime())}-"
                                  f"{socket.gethostname()}")
    why = report.write_png(record, samples_ms, stem + ".png")
    if why:
        record["notes"]["chart"] = why
        log(why)
    report.write_json(record, stem + ".json")
    print(report.table(record))
    print(f"\nwrote {stem}.json" + ("" if why else f" and {stem}.png"))
    return 0
