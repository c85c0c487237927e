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


def _one(argv):
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _block(argv, bundle, starts, ids):
    """Median ms of `starts` back-to-back runs."""
    times = []
    for _ in range(starts):
        t = time.perf_counter()
        code = _one(argv + ["run", "--bundle", bundle, f"bkb-oci-{os.getpid()}-{next(ids)}"])
        times.append((time.perf_counter() - t) * 1000)
        if code != 0:
            sys.exit(f"ociblocks: {argv[0]} run exited {code}")
    return statistics.median(times)


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
            for name in (list(cmds) if b % 2 == 0 else list(cmds)[::-1]):
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
