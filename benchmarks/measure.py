"""Timing one start, and the statistics of many.

A start is timed from just before posix_spawn() to just after waitpid()
returns: cold process start to exit, the same code path for every
command-line system.  posix_spawn (vfork-like in glibc) keeps the
benchmark's own share small and equal for all.
"""
import os
import select
import signal
import statistics
import time

DEVNULL = os.devnull
TIMEOUT_S = 60.0


class RunFailed(Exception):
    """One start did not exit 0 (or did not finish in time)."""


def spawn_timed(argv, env=None, stderr_path=None, timeout=TIMEOUT_S):
    """Start argv, wait for it; returns (ns, exit_code).

    stdin/stdout are /dev/null, stderr goes to stderr_path (or /dev/null).
    The process gets its own session so a hung run can be killed with its
    children (by its own process group id, nothing else).
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, DEVNULL, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, DEVNULL, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, stderr_path or DEVNULL,
         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    env = os.environ if env is None else env
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
    # A pidfd lets us wait with a timeout without a thread or a signal.
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        if not ready:
            os.killpg(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        t1 = time.perf_counter_ns()
    finally:
        os.close(pidfd)
    code = os.waitstatus_to_exitcode(status)
    if not ready:
        code = "timeout"
    return t1 - t0, code


def call_timed(fn):
    """Time an in-process call; returns (ns, exit_code)."""
    t0 = time.perf_counter_ns()
    code = fn()
    t1 = time.perf_counter_ns()
    return t1 - t0, code


def percentile(sorted_values, q):
    """Linear-interpolated percentile (q in 0..100) of sorted values."""
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(samples_ns):
    """min / median / p90 / p99 / mean / stdev in milliseconds."""
    ms = sorted(s / 1e6 for s in samples_ns)
    if not ms:
        return None
    return {
        "n": len(ms),
        "min": ms[0],
        "median": statistics.median(ms),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": ms[-1],
        "mean": statistics.fmean(ms),
        "stdev": statistics.stdev(ms) if len(ms) > 1 else 0.0,
    }


def _spawn_quiet(argv, env, stderr_path):
    actions = [(os.POSIX_SPAWN_OPEN, 0, DEVNULL, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, DEVNULL, os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, stderr_path or DEVNULL,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)]
    return os.posix_spawn(argv[0], argv, os.environ if env is None else env,
                          file_actions=actions, setsid=True)


def run_pool(argvs, env=None, width=20, stderr_dir=None, timeout=300.0):
    """Run every argv, at most `width` at once (a new one as soon as one
    exits); returns (wall_ns, [exit code per argv], first error text).

    Children are waited for by pidfd only, so no other child of the caller
    (a helper it keeps) is ever reaped here.  At the deadline whatever
    still runs is killed by its process group and counts as "timeout".
    """
    codes = [None] * len(argvs)
    running = {}          # pidfd -> (index, pid)
    poller = select.poll()
    deadline = time.monotonic() + timeout
    nxt = 0
    t0 = time.perf_counter_ns()
    try:
        while nxt < len(argvs) or running:
            while nxt < len(argvs) and len(running) < width:
                err = os.path.join(stderr_dir, f"{nxt}.err") if stderr_dir else None
                try:
                    pid = _spawn_quiet(argvs[nxt], env, err)
                except OSError as e:
                    codes[nxt] = f"spawn: {e}"
                    nxt += 1
                    continue
                fd = os.pidfd_open(pid)
                running[fd] = (nxt, pid)
                poller.register(fd, select.POLLIN)
                nxt += 1
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in poller.poll(left * 1000):
                i, pid = running.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                codes[i] = os.waitstatus_to_exitcode(status)
    finally:
        for fd, (i, pid) in running.items():
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            os.waitpid(pid, 0)
            os.close(fd)
            codes[i] = "timeout"
    wall = time.perf_counter_ns() - t0
    first_error = ""
    failed = [i for i, c in enumerate(codes) if c != 0]
    if failed and isinstance(codes[failed[0]], str):
        first_error = codes[failed[0]]
    elif failed and stderr_dir:
        try:
            with open(os.path.join(stderr_dir, f"{failed[0]}.err"), errors="replace") as f:
                lines = [ln.strip() for ln in f if ln.strip()]
            first_error = lines[-1] if lines else ""
        except OSError:
            pass
    return wall, codes, first_error
