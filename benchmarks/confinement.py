"""What each confinement layer costs on the start path.

    python -m benchmarks.confinement [--root R] [--image busybox] [--starts 50] [--blocks 4]

Two views, both of in-process API starts (`containers.run`, network none,
`/bin/true`), so interpreter start does not drown the differences:

1. **Sustained blocks.**  Each variant (the default container, and the
   default with one layer turned off or one added) runs N starts back to
   back; the variants' blocks alternate in order and repeat.  Deferred
   kernel work (btrfs cleaning, cgroup removal) is charged to the variant
   that caused it.  Reported: the median start of each variant's best
   block, and its difference from the default.
2. **The child's own steps.**  Traced starts (BOCKER_TRACE=json) time
   every step the container child takes between clone and execve; the
   confinement steps (close inherited fds, setsid, mask paths, read-only
   paths, capabilities, seccomp filter, ...) are listed with their median
   duration.  These are exact where a block difference is within noise.

Results go to benchmarks/results/confinement-<date>-<host>.json.
"""
import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time

from benchmarks.blocks import order

VARIANTS = {
    # name: RunRequest keyword arguments on top of the default container
    "default": {},
    "privileged (no layer)": {"privileged": True},
    "seccomp unconfined": {"security_opt": ["seccomp=unconfined"]},
    "no pids limit": {"pids_limit": -1},
    "read-only rootfs": {"read_only": True},
    "cap-drop ALL": {"cap_drop": ["ALL"]},
    "userns=auto": {"userns": "auto"},
}
CONFINEMENT_STEPS = ("setsid", "dup2 stdio", "close inherited fds", "mask /proc and /sys paths",
                     "read-only /proc paths", "read-only rootfs", "drop capabilities",
                     "set capabilities", "no_new_privs", "seccomp filter",
                     # --userns=auto only: the parent's hand-over, the child's steps
                     "userns maps+idmapped rootfs", "wait for id maps",
                     "fsmount /proc and /sys", "open_tree devices",
                     "setresuid to user namespace root")


def _request(image, **extra):
    from bocker.runtime.spec import RunRequest

    return RunRequest(image, ["true"], network="none", remove=True, **extra)


def _one_start(paths, req):
    from bocker.runtime import containers

    null = os.open(os.devnull, os.O_WRONLY)
    try:
        started = containers.create_and_start(paths, req)
        code = containers.wait_attached(paths, started, null, null)
    finally:
        os.close(null)
    if code != 0:
        raise RuntimeError(f"start exited {code}")


def supported(paths, image, extra):
    """Whether this host and bocker can run the variant (one trial start)."""
    try:
        _one_start(paths, _request(image, **extra))
        return True
    except Exception as e:  # an option this bocker lacks, or refused here
        print(f"  skipped {extra}: {e}", file=sys.stderr)
        return False


def blocks(paths, image, variants, starts, rounds):
    """{variant: [median ms of each block]} from alternating sustained blocks."""
    out = {name: [] for name in variants}
    for r in range(rounds):
        for name in order(variants, r):
            req_args = variants[name]
            samples = []
            for _ in range(starts):
                t0 = time.perf_counter_ns()
                _one_start(paths, _request(image, **req_args))
                samples.append((time.perf_counter_ns() - t0) / 1e6)
            out[name].append(statistics.median(samples))
    return out


def child_steps(paths, image, extra, runs):
    """{step: median ms} of the child's steps over traced starts."""
    from bocker import trace

    durations = {}
    for _ in range(runs):
        buf = io.StringIO()
        trace.configure("json")
        with contextlib.redirect_stderr(buf):
            _one_start(paths, _request(image, **extra))
        trace.configure(None)
        for line in buf.getvalue().splitlines():
            if line.startswith("{"):
                rec = json.loads(line)
                durations.setdefault(rec["step"], []).append(rec.get("dur_us", 0) / 1e3)
    return {step: statistics.median(v) for step, v in durations.items()}


def main(argv=None):
    """Run both views and write the JSON; print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=os.environ.get("BOCKER_ROOT", "/var/bocker"))
    ap.add_argument("--image", default="busybox")
    ap.add_argument("--starts", type=int, default=50, help="starts per block")
    ap.add_argument("--blocks", type=int, default=4, help="rounds of blocks")
    ap.add_argument("--trace-runs", type=int, default=20)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args(argv)

    from bocker.state import Paths

    paths = Paths(args.root)
    variants = {n: v for n, v in VARIANTS.items() if supported(paths, args.image, v)}
    for _ in range(10):  # warm the page cache and the allocator
        _one_start(paths, _request(args.image))
    medians = blocks(paths, args.image, variants, args.starts, args.blocks)
    steps = child_steps(paths, args.image, {}, args.trace_runs)
    steps_userns = (child_steps(paths, args.image, VARIANTS["userns=auto"], args.trace_runs)
                    if "userns=auto" in variants else {})
    best = {n: min(v) for n, v in medians.items()}
    typical = {n: statistics.median(v) for n, v in medians.items()}
    print(f"{'variant':<24} {'best block':>11} {'vs default':>11} {'median block':>13} "
          f"{'vs default':>11}")
    for name in best:
        print(f"{name:<24} {best[name]:>8.2f} ms {best[name] - best['default']:>+8.2f} ms "
              f"{typical[name]:>10.2f} ms {typical[name] - typical['default']:>+8.2f} ms")
    print("\nchild steps of a default start (median of traced starts):")
    for step in CONFINEMENT_STEPS:
        if step in steps:
            extra = f"   (userns: {steps_userns[step]:.3f} ms)" if step in steps_userns else ""
            print(f"  {step:<28} {steps[step]:.3f} ms{extra}")
    for step in CONFINEMENT_STEPS:
        if step in steps_userns and step not in steps:
            print(f"  {step:<28} (userns only) {steps_userns[step]:.3f} ms")
    result = {"host": platform.node(), "kernel": platform.release(),
              "date": time.strftime("%Y-%m-%d"), "starts_per_block": args.starts,
              "rounds": args.blocks, "block_medians_ms": medians, "best_block_ms": best,
              "median_block_ms": typical,
              "child_steps_ms": steps, "child_steps_userns_ms": steps_userns}
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"confinement-{result['date']}-{result['host']}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
