"""A/B of two bocker trees on one machine in one run: sustained blocks of
back-to-back CLI starts, the trees' blocks alternating, so drift and the
deferred kernel work of each block (btrfs cleaning, cgroup removal) hit
both alike.

    python -m benchmarks.ab --root ROOT --tree before=/path/a --tree after=/path/b \\
        --blocks 6 --starts 40 -- run --rm busybox true

Each tree is put first on PYTHONPATH for the same venv's `bocker` script
(each tree has its own compiled shim and monitor), its bytecode compiled
first.  Prints each tree's best and median block (ms per start) and the
ratio of the medians; writes nothing.
"""
import argparse
import os
import statistics
import subprocess
import sys

from benchmarks import blocks
from benchmarks.measure import spawn_timed


def block(argv, env, starts):
    """Mean ms per start over `starts` back-to-back runs of argv; failures."""
    samples, failed = blocks.run_block(lambda: spawn_timed(argv, env), starts)
    return (sum(samples) / len(samples) / 1e6 if samples else float("nan")), failed


def main(args=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="bocker root (set up)")
    ap.add_argument("--tree", action="append", required=True, help="NAME=PATH of a tree")
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--starts", type=int, default=40)
    ap.add_argument("--bocker", default=os.path.join(os.path.dirname(sys.executable), "bocker"))
    ap.add_argument("command", nargs="+", help="bocker arguments, e.g. run --rm busybox true")
    opts = ap.parse_args(args)
    trees = [t.split("=", 1) for t in opts.tree]
    envs = {}
    for name, path in trees:
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(path, "bocker")],
                       check=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        envs[name] = dict(env, PYTHONPATH=path, BOCKER_ROOT=opts.root)
    argv = [opts.bocker, *opts.command]
    for name, _ in trees:  # warm-up: caches, the image's pages, the seccomp cache
        block(argv, envs[name], 3)
    results = {name: [] for name, _ in trees}
    failures = dict.fromkeys(results, 0)
    for i in range(opts.blocks):
        for name, _ in blocks.order(trees, i):
            ms, failed = block(argv, envs[name], opts.starts)
            results[name].append(ms)
            failures[name] += failed
            print(f"block {i + 1} {name}: {ms:.1f} ms/start", file=sys.stderr)
    print(f"{' '.join(opts.command)}: {opts.blocks} x {opts.starts} starts")
    for name, per_block in results.items():
        print(f"  {name:10s} best {min(per_block):7.2f}  median {statistics.median(per_block):7.2f}"
              f" ms/start  failures {failures[name]}")
    (a, blocks_a), (b, blocks_b) = list(results.items())[:2]
    print(f"  median {b} / {a} = {statistics.median(blocks_b) / statistics.median(blocks_a):.3f}")


if __name__ == "__main__":
    main()
