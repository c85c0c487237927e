"""`python -m benchmarks.build`: `bocker build` against `buildah bud` (issue 17).

    BOCKER_ROOT=/tmp/bkb-root python -m benchmarks.build [--rounds 3] [--builds 3]

The issue's multi-stage Dockerfile (a static C program compiled with gcc
in a Debian stage, copied into a busybox stage), built two ways by each
tool, in sustained blocks (benchmarks/blocks.py's order):

- **cold**: `--no-cache`, every step runs (the RUN compiles, the COPYs copy);
- **cached**: an unchanged rebuild, every step a cache hit.

Both tools start from the same files: the Debian rootfs (debootstrap,
benchmarks/debian.py: the build tests' cached tree) and a busybox
rootfs (benchmarks/fixtures.py) are imported with `bocker init`, written
out with `bocker save` and pulled into buildah's private storage from
those archives (`buildah pull docker-archive:...`), untimed.  buildah runs
with `--root`/`--runroot` in the run's temp directory (overlay storage by
default), `--layers` (its step cache), `--pull=never`, and the OCI
isolation with runc (see benchmarks/README.md, "Build", for why); both
tools build with `--network none` (the RUN needs no network, and a bridge
per RUN would measure the network set-up instead).

After each block, untimed, the deferred kernel work it left is drained
and timed (drain() below: the btrfs cleaner's deletion of the subvolumes
the block dropped, then sync(2) for both tools' dirty pages), so a block
never pays for the previous one's.  The
drain times are recorded too: they are work the timed builds did not pay
for within their block.

Writes benchmarks/results/build-<date>-<host>.json (--out to change).
"""
import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from benchmarks import blocks, debian, fixtures, machine, report, runner
from benchmarks.measure import spawn_timed

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HELLO_C = """\
#include <stdio.h>

int main(void)
{
    puts("hello from a static binary");
    return 0;
}
"""

DOCKERFILE = """\
FROM {debian} AS compile
WORKDIR /src
COPY hello.c .
RUN gcc -O2 -static -o /hello hello.c

FROM {busybox}
COPY --from=compile /hello /usr/local/bin/hello
CMD ["/usr/local/bin/hello"]
"""

SYSTEMS = ("bocker-cold", "bocker-cached", "buildah-cold", "buildah-cached",
           "buildah-chroot-cold")
REFERENCE = {"cold": "bocker-cold", "cached": "bocker-cached"}


class Build:
    """One row: a build command timed from spawn to exit (blocks.py's system)."""

    def __init__(self, name, tool, kind, argv, env, what):
        self.name, self.tool, self.kind = name, tool, kind
        self.argv, self.env, self.what = argv, env, what
        self.after = None

    def timer(self, stderr_path):
        """(ns, exit code) of one build."""
        return spawn_timed(self.argv, self.env, stderr_path, timeout=600.0)

    def describe(self):
        return {"tool": self.tool, "kind": self.kind, "what": self.what,
                "command": " ".join(self.argv)}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="1 round of 1-build blocks, no warm-up: a smoke run, not figures")
    p.add_argument("--rounds", type=int, help="rounds of blocks (default 3, quick 1)")
    p.add_argument("--builds", type=int, help="back-to-back builds per block (default 3, quick 1)")
    p.add_argument("--warmup", type=int, help="untimed builds of each row first (default 1, quick 0)")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds of pause after each block's drain (default 1)")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help=f"only these rows or a prefix (bocker, buildah); of {', '.join(SYSTEMS)}")
    p.add_argument("--bocker", help="the bocker command (default: beside this python, or PATH)")
    p.add_argument("--root", help="bocker root (default $BOCKER_ROOT or /var/bocker)")
    p.add_argument("--server", action="store_true",
                   help="let the C client hand builds to its warm server (default: "
                        "BOCKER_NO_SERVER=1, the CLI of the tree on PYTHONPATH)")
    p.add_argument("--buildah", default=shutil.which("buildah"), help="the buildah command")
    p.add_argument("--storage-driver", default="overlay", choices=("overlay", "vfs"),
                   help="buildah's storage driver (default overlay, its default on a host)")
    p.add_argument("--runtime", help="buildah's OCI runtime (default: crun if it runs on this "
                                     "host's cgroups, else runc)")
    p.add_argument("--out", default=os.path.join(REPO_ROOT, "benchmarks", "results"))
    opts = p.parse_args(argv)
    for name, normal, quick in (("rounds", 3, 1), ("builds", 3, 1), ("warmup", 1, 0)):
        if getattr(opts, name) is None:
            setattr(opts, name, quick if opts.quick else normal)
    if opts.rounds < 1 or opts.builds < 1 or opts.warmup < 0 or opts.settle < 0:
        p.error("--rounds and --builds must be at least 1, --warmup and --settle not negative")
    opts.only = [t.strip() for item in opts.only for t in item.split(",") if t.strip()]
    return opts


def wanted(only, name):
    """Does --only select this row?"""
    return not only or any(name == t or name.startswith(t + "-") for t in only)


def _run(argv, env=None, **kw):
    """Run an untimed set-up command; its stderr is the error if it fails."""
    out = subprocess.run(argv, env=env, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        lines = [ln for ln in (out.stderr or out.stdout).splitlines() if ln.strip()]
        raise RuntimeError(f"{' '.join(argv[:4])}...: exit {out.returncode}: "
                           f"{lines[-1] if lines else ''}")
    return out.stdout


def bocker_command(opts):
    """The bocker command: --bocker, else the one beside this python, else PATH."""
    if opts.bocker:
        return opts.bocker
    beside = os.path.join(os.path.dirname(sys.executable), "bocker")
    return beside if os.path.exists(beside) else shutil.which("bocker")


# ------------------------------------------------------------- bocker side

class BockerSide:
    """The bocker root's images for the run, and cleaning up after them."""

    def __init__(self, bocker, env, tag, root):
        self.bocker, self.env, self.tag, self.root = bocker, env, tag, root
        self.before = None
        self.cache_before = self.cache_keys()

    def cmd(self, *args, **kw):
        return _run([self.bocker, *args], self.env, **kw)

    def cache_keys(self):
        """The root's build cache keys, or None where this bocker has no
        build cache (bocker.build.cache: the tree on PYTHONPATH)."""
        try:
            from bocker import state
            from bocker.build import cache
        except ImportError:
            return None
        return set(cache.keys(state.Paths(self.root)))

    def image_ids(self):
        return set(self.cmd("images", "-q", "--no-trunc").split())

    def import_bases(self, ws, log):
        """`bocker init` of the Debian and busybox rootfs; saved as archives.
        Returns (debian name, busybox name)."""
        self.before = self.image_ids()
        names = {}
        for what, make in (("debian", lambda d: debian.make_tree(d, log)),
                           ("busybox", fixtures.build_rootfs)):
            directory = os.path.join(ws, what)
            make(directory)
            name = f"{self.tag}-{what}:latest"
            self.cmd("init", directory, "--name", name)
            shutil.rmtree(directory)
            self.cmd("save", name, "-o", os.path.join(ws, f"{what}.tar"))
            names[what] = name
        return names["debian"], names["busybox"]

    def supports_build(self):
        """None if `bocker build` exists, else why not."""
        out = subprocess.run([self.bocker, "build", "--help"], env=self.env,
                             capture_output=True, text=True)
        return None if out.returncode == 0 else "this bocker has no `build` command"

    def cleanup(self, log):
        """Remove every image the run made (by ID), then the build cache
        entries it made: those no image uses that were not there before
        (`bocker builder prune` would also take other users' unused ones)."""
        if self.before is None:
            return
        for image in sorted(self.image_ids() - self.before):
            with contextlib.suppress(RuntimeError):
                self.cmd("rmi", "-f", image)
        if self.cache_before is None:
            return
        from bocker import state
        from bocker.build import cache
        from bocker.image import images

        paths = state.Paths(self.root)
        keep = cache.used_keys(images.list_all(paths)) | self.cache_before
        removed, _ = cache.prune(paths, keep)
        log(f"  removed {len(removed)} build cache entries of this run")


def bocker_rows(opts, side, context, env):
    argv = [side.bocker, "build", "--network", "none", "-t", f"{side.tag}-hello:bocker"]
    yield Build("bocker-cold", "bocker", "cold", argv[:2] + ["--no-cache"] + argv[2:] + [context],
                env, "bocker build --no-cache: every step runs")
    yield Build("bocker-cached", "bocker", "cached", argv + [context], env,
                "bocker build, unchanged: every step a cache hit")


def compile_bocker(env):
    """Byte-compile the bocker package this python imports (the tree the
    CLI runs in direct mode); returns its path, or why it failed."""
    try:
        import bocker
    except ImportError as e:
        return f"no bocker package: {e}"
    package = os.path.dirname(os.path.abspath(bocker.__file__))
    done = subprocess.run([sys.executable, "-m", "compileall", "-q", package], env=env,
                          capture_output=True, text=True)
    return package if done.returncode == 0 else f"compileall failed: {done.stderr[-300:]}"


# ------------------------------------------------------------ buildah side

def pick_runtime(opts, log):
    """buildah's OCI runtime: --runtime, else crun if it can run a container
    on this host's cgroups (crun 1.8 refuses hybrid hosts), else runc."""
    if opts.runtime:
        return shutil.which(opts.runtime) or opts.runtime
    crun, runc = shutil.which("crun"), shutil.which("runc")
    if crun and (machine.cgroup_mode() != "hybrid" or not runc):
        return crun
    if runc:
        log("  buildah: runc (crun refuses this hybrid cgroup host)")
        return runc
    return crun


class BuildahSide:
    """buildah with storage of its own in the run's temp directory."""

    def __init__(self, buildah, directory, driver):
        self.dir = directory
        self.base = [buildah, "--root", os.path.join(directory, "root"),
                     "--runroot", os.path.join(directory, "run"), "--storage-driver", driver]
        self.used = False

    def cmd(self, *args, **kw):
        return _run([*self.base, *args], **kw)

    def pull(self, ws, names):
        """Load the archives `bocker save` wrote, under the same names."""
        self.used = True
        for what in names:
            # named after the archive's RepoTags (localhost/NAME), which
            # the Dockerfile's short name finds in local storage
            self.cmd("pull", "--quiet", f"docker-archive:{os.path.join(ws, what + '.tar')}")

    def cleanup(self, log):
        """Every container and image, then whatever the overlay driver left
        mounted under our directory (its private bind of the store), then
        the directory itself."""
        if self.used:
            for args in (("rm", "--all"), ("rmi", "--all", "--force")):
                try:
                    self.cmd(*args, timeout=300)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    log(f"  buildah {args[0]}: {e}")
        for mnt in sorted(mounts_under(self.dir), key=len, reverse=True):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def mounts_under(directory):
    """Mount points at or below directory (from /proc/self/mountinfo)."""
    prefix = os.path.realpath(directory)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def buildah_rows(opts, side, context, runtime):
    common = [*side.base, "bud", "--layers", "--pull=never", "-t", "bkb-build-hello:buildah"]
    oci = ["--isolation", "oci", "--runtime", runtime, "--network", "none"]
    rt = os.path.basename(runtime)
    yield Build("buildah-cold", "buildah", "cold", common + ["--no-cache"] + oci + [context],
                None, f"buildah bud --layers --no-cache, OCI isolation ({rt})")
    yield Build("buildah-cached", "buildah", "cached", common + oci + [context], None,
                "buildah bud --layers, unchanged: every step a cache hit")
    # chroot isolation allows no network namespace but the host's
    yield Build("buildah-chroot-cold", "buildah", "cold",
                common + ["--no-cache", "--isolation", "chroot", "--network", "host", context],
                None, "buildah bud --layers --no-cache, chroot isolation (host network: "
                      "chroot allows no other)")


# ------------------------------------------------------------------ the run

def drain(bocker_root, timeout=300.0):
    """Wait for the deferred kernel work a block left; returns the ms it took.

    btrfs cleans a deleted subvolume in its cleaner thread, which wakes at
    a transaction commit: every 30 s (the default commit interval) unless
    something commits sooner.  `btrfs filesystem sync` commits now and wakes
    it; then we poll until no deleted subvolume is left to clean.  sync(2)
    last: the dirty pages of both tools' stores (and ext4's journal).
    """
    t0 = time.perf_counter_ns()
    if bocker_root and os.path.isdir(bocker_root):
        subprocess.run(["btrfs", "filesystem", "sync", bocker_root], capture_output=True,
                       timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(["btrfs", "subvolume", "list", "-d", bocker_root],
                                 capture_output=True, text=True, timeout=timeout)
            if out.returncode != 0 or not out.stdout.strip():
                break
            time.sleep(0.02)
    os.sync()
    return (time.perf_counter_ns() - t0) / 1e6


def measure(rows, opts, bocker_root, log):
    """{name: {"blocks_ns": [...], "failures": n, "drain_ms": [...]}} in
    sustained blocks: warm-up, then one block per row per round, the order
    reversed every other round, each block followed by a drain."""
    out = {r.name: {"blocks_ns": [], "failures": 0, "drain_ms": []} for r in rows}
    for r in rows:
        blocks.run_block(lambda r=r: r.timer(None), opts.warmup)
    drain(bocker_root)
    for i in range(opts.rounds):
        for r in blocks.order(rows, i):
            samples, failed = blocks.run_block(lambda r=r: r.timer(None), opts.builds)
            out[r.name]["blocks_ns"].append(samples)
            out[r.name]["failures"] += failed
            out[r.name]["drain_ms"].append(round(drain(bocker_root), 1))
            if opts.settle:
                time.sleep(opts.settle)
        log(f"  round {i + 1}/{opts.rounds}")
    return out


def ratios(stats):
    """Each row's median block over bocker's of the same kind (x bocker)."""
    for name, s in stats.items():
        ref = stats.get(REFERENCE[s["kind"]])
        s["x_bocker"] = (s["median_block"] / ref["median_block"]) if ref else None


def versions(buildah, runtime):
    out = machine.versions(REPO_ROOT, None)
    out = {k: out[k] for k in ("bocker", "bocker_git", "python_bench", "crun", "runc")}
    out["buildah"] = machine._first_line([buildah, "--version"]) if buildah else None
    out["runtime_for_buildah"] = runtime
    return out


def table(record):
    lines = [f"{'row':22} {'builds':>6} {'best block':>11} {'median block':>13} "
             f"{'p90':>9} {'x bocker':>9} {'drain':>8}"]
    for name, entry in record["systems"].items():
        s = entry["stats"]
        if not s:
            lines.append(f"{name:22} no successful build ({entry['failures']} failures)")
            continue
        x = f"{s['x_bocker']:.2f}" if s.get("x_bocker") else ""
        d = entry["drain_ms"]
        lines.append(f"{name:22} {s['n']:>6} {s['best_block']:>9.0f}ms {s['median_block']:>11.0f}ms "
                     f"{s['p90']:>7.0f}ms {x:>9} {sorted(d)[len(d) // 2]:>6.0f}ms")
    for skip in record["skipped"]:
        lines.append(f"{skip['name']:22} skipped: {skip['note']}")
    return "\n".join(lines)


def _log(msg):
    """Progress to stderr; a closed stderr (`| head`) must not cut the
    clean-up short, so a failed write is dropped."""
    try:
        runner.stderr_log(msg)
    except OSError:
        pass


def _exit_on_signal(signum, frame):
    """TERM and HUP unwind as Ctrl-C does, so the clean-up runs."""
    sys.exit(128 + signum)


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    log = _log
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    if os.geteuid() != 0:
        print("benchmarks.build: run as root", file=sys.stderr)
        return 2
    bocker = bocker_command(opts)
    root = opts.root or os.environ.get("BOCKER_ROOT") or "/var/bocker"
    # as a deployed bocker runs: from compiled bytecode (an editable
    # install leaves compiling to the first run; with this variable set,
    # as in some CI shells, every build would compile its modules again)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["BOCKER_ROOT"] = root
    if not opts.server:
        env["BOCKER_NO_SERVER"] = "1"
    tag = f"bkb-build-{os.getpid()}"
    record = {
        "schema": 1, "benchmark": "build", "machine": machine.machine(),
        "method": {"mode": "sustained blocks", "rounds": opts.rounds,
                   "builds_per_block": opts.builds, "warmup": opts.warmup,
                   "settle_s": opts.settle, "quick": opts.quick,
                   "storage_driver": opts.storage_driver,
                   "drain": "after each block, untimed: btrfs filesystem sync of the bocker "
                            "root (a commit: wakes the cleaner), a wait until no deleted "
                            "subvolume is left, then sync(2); drain_ms records how long",
                   "timing": "perf_counter_ns around posix_spawn + waitpid of the build "
                             "command; stdout/stderr to /dev/null"},
        "skipped": [], "notes": {"bocker": bocker, "bocker_root": root,
                                 "bocker_server": bool(opts.server)},
    }
    record["notes"]["bytecode_compiled"] = compile_bocker(env)
    rows, skipped = [], record["skipped"]
    ws = tempfile.mkdtemp(prefix=f"bkb-build-{os.getpid()}-")
    side = BockerSide(bocker, env, tag, root)
    bside = BuildahSide(opts.buildah, os.path.join(ws, "buildah"), opts.storage_driver) \
        if opts.buildah else None
    runtime = pick_runtime(opts, log)
    record["versions"] = versions(opts.buildah, runtime)
    try:
        context = os.path.join(ws, "context")
        os.mkdir(context)
        with open(os.path.join(context, "hello.c"), "w") as f:
            f.write(HELLO_C)
        log("setting up: the Debian rootfs (debootstrap, cached), bocker init, bocker save...")
        try:
            names = dict(zip(("debian", "busybox"), side.import_bases(ws, log)))
        except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
            # no debootstrap, no busybox, a root not set up: every row
            # needs these bases, so every row is skipped with the reason
            names, why = None, f"set-up failed: {e}"
        else:
            record["dockerfile"] = dockerfile = DOCKERFILE.format(**names)
            with open(os.path.join(context, "Dockerfile"), "w") as f:
                f.write(dockerfile)
            why = side.supports_build()
        for r in bocker_rows(opts, side, context, env):
            if wanted(opts.only, r.name) and why:
                skipped.append({"name": r.name, "note": why})
            elif wanted(opts.only, r.name):
                rows.append(r)
        wanted_buildah = [n for n in SYSTEMS if n.startswith("buildah") and wanted(opts.only, n)]
        if wanted_buildah and (not bside or not names):
            note = "buildah not installed (apt-get install buildah)" if not bside else why
            skipped += [{"name": n, "note": note} for n in wanted_buildah]
        elif wanted_buildah:
            log("loading the bases into buildah's private storage (docker-archive)...")
            bside.pull(ws, names)
            rows += [r for r in buildah_rows(opts, bside, context, runtime)
                     if wanted(opts.only, r.name)]
        log(f"probing {len(rows)} rows...")
        rows, failed = runner.probe(rows, log)
        skipped += failed
        log(f"measuring {len(rows)} rows: {opts.rounds} rounds of {opts.builds}-build blocks "
            f"after {opts.warmup} warm-up builds...")
        t0 = time.monotonic()
        results = measure(rows, opts, root, log) if rows else {}
        record["method"]["seconds"] = round(time.monotonic() - t0, 1)
    finally:
        log("cleaning up...")
        if bside:
            bside.cleanup(log)
        side.cleanup(log)
        shutil.rmtree(ws, ignore_errors=True)
    stats = {}
    record["systems"], record["blocks_ms"] = {}, {}
    for r in rows:
        per_block = results[r.name]["blocks_ns"]
        record["blocks_ms"][r.name] = [[round(ns / 1e6, 2) for ns in b] for b in per_block]
        summary = blocks.summarize(per_block)
        if summary:
            stats[r.name] = dict(summary, kind=r.kind)
        record["systems"][r.name] = dict(r.describe(), stats=summary,
                                         failures=results[r.name]["failures"],
                                         drain_ms=results[r.name]["drain_ms"])
    ratios(stats)
    for name, s in stats.items():
        record["systems"][name]["stats"]["x_bocker"] = s["x_bocker"]
    os.makedirs(opts.out, exist_ok=True)
    path = os.path.join(opts.out, f"build-{time.strftime('%Y-%m-%d', time.gmtime())}-"
                                  f"{socket.gethostname()}.json")
    report.write_json(record, path)
    print(table(record))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
