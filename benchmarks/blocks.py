"""Sustained blocks: the suite's headline method (issue 16).

Each system runs N starts back to back in a block; the systems' blocks
alternate in order (forward in even rounds, reversed in odd ones) over R
rounds, with a short settle after each block.  So the work the kernel
defers after a start (btrfs cleaning of a deleted snapshot, a network
namespace's teardown, cgroup removal) lands in the block of the system
that caused it, not in its neighbour's timing, as it does when systems
are interleaved run by run.

`order()` and `run_block()` are shared with benchmarks.ab,
benchmarks.ociblocks and the scale benchmarks, so every sustained figure
in this directory is measured the same way.
"""
import statistics
import time

from benchmarks.measure import percentile


def order(items, round_index):
    """The items in round `round_index`'s order: forward, then reversed."""
    items = list(items)
    return items if round_index % 2 == 0 else items[::-1]


def run_block(start, starts, after=None):
    """One block: `starts` back-to-back calls of start() -> (ns, code).

    Returns (samples_ns of the starts that exited 0, failures).  after()
    runs untimed after each start (cleanup a system leaves to us).
    """
    samples, failures = [], 0
    for _ in range(starts):
        try:
            ns, code = start()
        except OSError:
            ns, code = 0, "error"
        if after:
            after()
        if code == 0:
            samples.append(ns)
        else:
            failures += 1
    return samples, failures


def sustained(systems, starts, rounds, warmup, settle, log=None):
    """{name: {"blocks_ns": [[ns, ...] per block], "failures": n}}.

    `warmup` untimed starts of each system first (caches, the server of the
    CLI, the image's pages); then `rounds` rounds of one block per system.
    """
    results = {s.name: {"blocks_ns": [], "failures": 0} for s in systems}
    for s in systems:
        run_block(lambda s=s: s.timer(None), warmup, s.after)
    for r in range(rounds):
        for s in order(systems, r):
            samples, failed = run_block(lambda s=s: s.timer(None), starts, s.after)
            results[s.name]["blocks_ns"].append(samples)
            results[s.name]["failures"] += failed
            if settle:
                time.sleep(settle)
        if log:
            log(f"  round {r + 1}/{rounds}")
    return results


def summarize(blocks_ns):
    """Statistics of one system's blocks, in ms, or None if nothing ran.

    best_block / median_block: the lowest and the median of the blocks'
    own medians (the headline: a block charges a system its own deferred
    work); p50 / p90 / p99 / min / max: over every sample of the blocks.
    """
    medians = [statistics.median(b) / 1e6 for b in blocks_ns if b]
    every = sorted(ns / 1e6 for b in blocks_ns for ns in b)
    if not medians:
        return None
    return {
        "blocks": len(medians),
        "n": len(every),
        "best_block": min(medians),
        "median_block": statistics.median(medians),
        "block_medians": medians,
        "min": every[0],
        "p50": percentile(every, 50),
        "p90": percentile(every, 90),
        "p99": percentile(every, 99),
        "max": every[-1],
        "mean": statistics.fmean(every),
    }
