"""OCI runtimes side by side: sustained blocks of back-to-back `RUNTIME
run` of one bundle, the runtimes' blocks alternating (first block in one
order, the next reversed), with a pause after each block so the deferred
kernel work it caused (cgroup removal) is not charged to the next one.

    python -m benchmarks.ociblocks --bundle BUNDLE --blocks 4 --starts 40 runc bocker-oci

BUNDLE holds config.json and its rootfs (terminal off, a command that
exits at once, e.g. `true`).  Each runtime runs with a private --root in
a temporary directory.  Prints each runtime's block medians (ms per
start), its best block, and the ratio of the best blocks to the first
runtime's; writes nothing.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from benchmarks import blocks
from benchmarks.measure import spawn_timed


def _block(argv, bundle, starts, ids):
    """Median ms of `starts` back-to-back runs."""
    samples, failed = blocks.run_block(lambda: spawn_timed(
        argv + ["run", "--bundle", bundle, f"bkb-oci-{os.getpid()}-{next(ids)}"]), starts)
    if failed:
        sys.exit(f"ociblocks: {argv[0]} run failed {failed} times")
    return statistics.median(samples) / 1e6


def main(argv=None):
    """Parse the arguments, run the blocks, print the table."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.ociblocks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True)
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--starts", type=int, default=40)
    p.add_argument("--settle", type=float, default=2.0, help="seconds after each block")
    p.add_argument("runtimes", nargs="+")
    args = p.parse_args(argv)
    import itertools

    ids = itertools.count()
    work = tempfile.mkdtemp(prefix="bkb-oci-")
    try:
        cmds = {}
        for name in args.runtimes:
            path = shutil.which(name) or sys.exit(f"ociblocks: {name} not on PATH")
            cmds[name] = [path, "--root", os.path.join(work, os.path.basename(name))]
        medians = {name: [] for name in cmds}
        for b in range(args.blocks):
            for name in blocks.order(cmds, b):
                medians[name].append(_block(cmds[name], os.path.abspath(args.bundle),
                                            args.starts, ids))
                time.sleep(args.settle)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first = min(medians[args.runtimes[0]])
    for name, meds in medians.items():
        print(f"{name:12} blocks (median ms): {' '.join(f'{m:6.1f}' for m in meds)}"
              f"   best {min(meds):6.1f}   x{min(meds) / first:.2f}")


if __name__ == "__main__":
    main()
