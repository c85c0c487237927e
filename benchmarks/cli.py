"""`python -m benchmarks`: measure, print the table, write JSON and PNG."""
import argparse
import contextlib
import os
import socket
import sys
import time

from benchmarks import blocks, fixtures, machine, report, runner, scale, systems, targets

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUPS = {
    "comparators": ("crun", "runc", "bocker-oci", "bwrap", "unshare-chroot", "p8952"),
    "scale": ("bocker",),   # the scale benchmarks run bocker
}


DEFAULT_P8952 = "/tmp/p8952/bocker"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Start latency of bocker against crun, runc, bwrap, unshare, "
                    "p8952/bocker and the kernel floor, in sustained blocks (run as root).")
    p.add_argument("--quick", action="store_true",
                   help="tiny blocks, smaller scale benchmarks (a smoke run, not figures)")
    p.add_argument("--starts", type=int,
                   help="back-to-back starts per block (default 30, quick 3)")
    p.add_argument("--rounds", type=int,
                   help="rounds of blocks, the order reversed every other round "
                        "(default 5, quick 2)")
    p.add_argument("--settle", type=float,
                   help="seconds of pause after each block (default 0.5, quick 0.05)")
    p.add_argument("--warmup", type=int,
                   help="untimed starts of each system before the blocks (default 5, quick 1)")
    p.add_argument("--interleaved", action="store_true",
                   help="also run the old interleaved rounds (one start of each system per "
                        "round): a secondary table, see benchmarks/README.md for what it hides")
    p.add_argument("--runs", type=int,
                   help="interleaved rounds with --interleaved (default 100, quick 3)")
    p.add_argument("--trace-runs", type=int,
                   help="traced bocker starts for the phase breakdown (default 20, quick 2)")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="only these systems: a name, a prefix (floor, python, bocker, "
                        "bocker-api), 'comparators' or 'scale'; repeat or comma-separate")
    p.add_argument("--no-scale", action="store_true", help="skip the scale benchmarks")
    p.add_argument("--out", default=os.path.join(REPO_ROOT, "benchmarks", "results"),
                   help="directory for <date>-<host>.json and .png (default benchmarks/results)")
    p.add_argument("--bocker", help="the bocker command (default: beside this python, or PATH)")
    p.add_argument("--root", help="bocker root (default $BOCKER_ROOT or /var/bocker)")
    p.add_argument("--image", help="run this bocker image instead of importing the shared "
                                   "busybox rootfs for the run")
    p.add_argument("--p8952", metavar="PATH",
                   help=f"p8952/bocker's bocker script, to compare (default {DEFAULT_P8952} "
                        "if it exists; 'none' to skip)")
    p.add_argument("--list", action="store_true", help="list the system names and exit")
    opts = p.parse_args(argv)
    q = opts.quick

    def default(name, normal, quick):
        if getattr(opts, name) is None:
            setattr(opts, name, quick if q else normal)
    default("starts", 30, 3)
    default("rounds", 5, 2)
    default("settle", 0.5, 0.05)
    default("warmup", 5, 1)
    default("runs", 100, 3)
    default("trace_runs", 20, 2)
    if opts.p8952 is None and os.path.exists(DEFAULT_P8952):
        opts.p8952 = DEFAULT_P8952
    elif opts.p8952 == "none":
        opts.p8952 = None
    opts.only = [t.strip() for item in opts.only for t in item.split(",") if t.strip()]
    for name in ("starts", "rounds", "runs"):
        if getattr(opts, name) < 1:
            p.error(f"--{name} must be at least 1")
    if opts.warmup < 0 or opts.settle < 0:
        p.error("--warmup and --settle must not be negative")
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
        "schema": 2,
        "machine": machine.machine(),
        "method": {
            "mode": "sustained blocks",
            "starts_per_block": opts.starts, "rounds": opts.rounds, "warmup": opts.warmup,
            "settle_s": opts.settle, "trace_runs": opts.trace_runs, "quick": opts.quick,
            "order": "one block of back-to-back starts per system per round; the order "
                     "forward in even rounds, reversed in odd ones; a settle after each block",
            "timing": "perf_counter_ns around posix_spawn + waitpid (command-line systems) or "
                      "around the call (in-process API); stdout/stderr to /dev/null",
            "floor_reference": targets.FLOOR,
            "crun_reference": "crun",
        },
    }
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
        log(f"measuring {len(chosen)} systems: {opts.rounds} rounds of {opts.starts}-start "
            f"blocks after {opts.warmup} warm-up starts...")
        t0 = time.monotonic()
        results = blocks.sustained(chosen, opts.starts, opts.rounds, opts.warmup,
                                   opts.settle, log) if chosen else {}
        record["method"]["seconds"] = round(time.monotonic() - t0, 1)
        if ctx.notes.get("server_socket"):
            # Did the CLI rows go through a warm server (once the C client
            # is in), or all through the Python fallback?
            ctx.notes["server_pid_after_blocks"] = systems.server_pid(ctx.notes["server_socket"])
        interleaved = None
        if opts.interleaved and chosen:
            log(f"interleaved (secondary): {opts.runs} rounds of one start each...")
            t0 = time.monotonic()
            interleaved = runner.interleaved(chosen, opts.runs, 0, log)
            interleaved_s = round(time.monotonic() - t0, 1)
        log("phase breakdown (BOCKER_TRACE=json)...")
        record["phases"] = runner.traced(chosen, opts.trace_runs, log)
        if do_scale:
            sctx = scale.ScaleContext(chosen, ctx.bocker, ctx.bocker_env, ctx.image,
                                      opts, log)
            record["scale"] = scale.run_all(sctx)
        else:
            record["scale"] = {}
        record["notes"] = dict(ctx.notes, bocker_root=ctx.bocker_root, bocker=ctx.bocker)
    # Everything made above is gone now; what is left is arithmetic.
    stats, samples_ms = {}, {}
    record["systems"], record["blocks_ms"] = {}, {}
    for s in chosen:
        per_block = results[s.name]["blocks_ns"]
        record["blocks_ms"][s.name] = [[round(ns / 1e6, 4) for ns in b] for b in per_block]
        samples_ms[s.name] = [v for b in record["blocks_ms"][s.name] for v in b]
        summary = blocks.summarize(per_block)
        if summary:
            stats[s.name] = summary
        record["systems"][s.name] = dict(s.describe(), stats=summary,
                                         failures=results[s.name]["failures"])
    report.ratios(stats, "median_block")
    if interleaved is not None:
        record["interleaved"] = report.interleaved_record(interleaved, opts.runs, interleaved_s)
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
