"""The systems measured: each starts /bin/true from the same busybox rootfs.

make_systems() returns (systems, skipped): a System per entry that could be
set up on this machine, and a (name, note) per entry that could not.  Every
resource a system needs (an image, an OCI bundle, the nsrunner helper) is
registered on the caller's ExitStack, so it is released whatever happens.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from benchmarks import fixtures
from benchmarks.measure import call_timed, run_pool, spawn_timed


class Skip(Exception):
    """This system cannot run here; the message says why."""


class System:
    """One row of the table.

    timer(stderr_path) -> (ns, exit_code) times one start.  traced() (bocker
    only) -> (ns, exit_code, trace_text) times one start with BOCKER_TRACE.
    after() runs untimed after each start (cleanup a system leaves to us).
    pool(count, width, stderr_dir) -> (wall_ns, codes, first_error) starts
    `count`, `width` at a time (the concurrent benchmark; CLI rows and crun).
    """

    def __init__(self, name, group, what, timer, *, argv=None, traced=None,
                 after=None, note="", pool=None):
        self.name, self.group, self.what = name, group, what
        self.timer, self.traced, self.after = timer, traced, after
        self.argv, self.note, self.pool = argv, note, pool

    def describe(self):
        return {"name": self.name, "group": self.group, "what": self.what,
                "argv": self.argv, "note": self.note}


class Context:
    """What the makers share: options, the workspace, the ExitStack."""

    def __init__(self, opts, ws, stack, repo_root):
        self.opts, self.ws, self.stack, self.repo_root = opts, ws, stack, repo_root
        self.bocker = find_bocker(opts.bocker)
        self.bocker_python = bocker_interpreter(self.bocker)
        self.bocker_root = None
        self.bocker_env = None     # environment for the bocker CLI (BOCKER_ROOT set)
        self.image = None          # the image bocker runs
        self.notes = {}     # facts for the JSON (bocker image, crun mode, ...)
        # Python starts as a deployed bocker's would: from compiled bytecode.
        # With PYTHONDONTWRITEBYTECODE set (some shells and CI images set
        # it) an editable install never gets its .pyc files and every
        # `bocker run` compiles the package again (~12 ms here).
        self.python_env = dict(os.environ)
        self.python_env.pop("BOCKER_TRACE", None)
        if self.python_env.pop("PYTHONDONTWRITEBYTECODE", None):
            self.notes["bytecode"] = ("PYTHONDONTWRITEBYTECODE was set: unset for the python "
                                      "and bocker CLI rows")


def find_bocker(explicit=None):
    """The bocker script: --bocker, else next to this interpreter, else PATH."""
    if explicit:
        return os.path.abspath(explicit)
    beside = os.path.join(os.path.dirname(sys.executable), "bocker")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("bocker")


def bocker_interpreter(bocker):
    """The interpreter of the Python CLI: the #! of `bocker` while it is the
    Python script, else of `bocker-py` beside it (once `bocker` is the C
    client, issue 16), else None."""
    if not bocker:
        return None
    return script_interpreter(bocker) or \
        script_interpreter(os.path.join(os.path.dirname(bocker), "bocker-py"))


def script_interpreter(script):
    """The interpreter named by a script's #! line (pip writes the venv's)."""
    try:
        with open(script, "rb") as f:
            first = f.readline().decode(errors="replace").strip()
    except OSError:
        return None
    if first.startswith("#!"):
        parts = first[2:].split()
        if parts and os.path.basename(parts[0]) == "env" and len(parts) > 1:
            return shutil.which(parts[1])
        return parts[0] if parts else None
    return None


def _cmd(argv, env=None):
    """A timer for a command line."""
    def timer(stderr_path=None):
        return spawn_timed(argv, env, stderr_path)
    return timer


def _tail(text, n=1):
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:]) if lines else ""


# --- floors -----------------------------------------------------------------

def floors(ctx):
    """The kernel floor (floor.c) in three variants, and posix_spawn of
    busybox true itself: the cost of the measurement."""
    ws = ctx.ws
    true = os.path.join(ws.rootfs, "bin", "true")
    yield System("floor-spawn", "floor", "posix_spawn + wait of busybox true on the host",
                 _cmd([true]), argv=[true])
    fixtures.compile_floor(ws)
    if not ws.floor:
        for name in ("floor-fork-exec", "floor-ns", "floor-ns-net"):
            yield Skip(name, ws.floor_note)
        return
    what = {
        "fork-exec": "C: fork + execve true, no namespaces",
        "ns": "C: clone(NEWNS|NEWUTS|NEWIPC|NEWPID) + pivot_root + /proc + execve",
        "ns-net": "C: the same + NEWNET (empty netns)",
    }
    for mode, text in what.items():
        argv = [ws.floor, mode, ws.rootfs]
        yield System(f"floor-{mode}", "floor", text, _cmd(argv), argv=argv,
                     note=f"floor.c built {ws.floor_note}")


# --- python floors ------------------------------------------------------------

def python_floors(ctx):
    """`python -c pass` and `python -c 'import click'` with bocker's interpreter."""
    python = ctx.bocker_python or sys.executable
    note = "interpreter of the bocker script" if ctx.bocker_python else \
        "bocker script not found: this interpreter"
    for name, code in (("python-pass", "pass"), ("python-import-click", "import click")):
        argv = [python, "-c", code]
        yield System(name, "python", f"{os.path.basename(python)} -c '{code}'",
                     _cmd(argv, ctx.python_env), argv=argv, note=note)


# --- comparators --------------------------------------------------------------

def _oci_bundle(ctx):
    """Write the shared config.json once; returns the tool whose spec it is."""
    if "oci_spec" not in ctx.notes:
        tool = shutil.which("crun") or shutil.which("runc")
        ctx.notes["oci_spec"] = fixtures.write_oci_config(ctx.ws, tool)
    return ctx.notes["oci_spec"]


def _hybrid_cgroups():
    return os.path.ismount("/sys/fs/cgroup/unified")


def _oci_ids(prefix):
    """Unique container ids: a runtime refuses an id that still exists."""
    counter = [0]

    def next_id():
        counter[0] += 1
        return f"bkb-{prefix}-{os.getpid()}-{counter[0]}"
    return next_id


def crun(ctx):
    """crun run of the OCI bundle; on a hybrid host inside the nsrunner."""
    path = shutil.which("crun")
    if not path:
        yield Skip("crun", "crun not installed (apt-get install crun)")
        return
    spec = _oci_bundle(ctx)
    next_id = _oci_ids("crun")
    bundle = ctx.ws.bundle
    note = f"config.json from `{spec} spec`, terminal off"
    if _hybrid_cgroups():
        from benchmarks.nsrunner import NsRunner
        try:
            runner = NsRunner(sys.executable, ctx.repo_root, "crun")
        except OSError as e:
            yield Skip("crun", f"nsrunner helper failed: {e}")
            return
        ctx.stack.callback(runner.close)
        note += ("; hybrid cgroups: crun 1.8 refuses them, so it runs in a private "
                 "mount namespace with /sys/fs/cgroup/unified unmounted (cgroup v1 only)")

        def timer(stderr_path=None):
            return runner.time([path, "run", "--bundle", bundle, next_id()],
                               None, stderr_path)

        def pool(count, width, stderr_dir=None):
            return runner.pool([[path, "run", "--bundle", bundle, next_id()]
                                for _ in range(count)], width, stderr_dir)
    else:
        def timer(stderr_path=None):
            return spawn_timed([path, "run", "--bundle", bundle, next_id()], None, stderr_path)

        def pool(count, width, stderr_dir=None):
            return run_pool([[path, "run", "--bundle", bundle, next_id()]
                             for _ in range(count)], None, width, stderr_dir)
    yield System("crun", "comparator", "crun run (OCI bundle, its default spec)", timer,
                 argv=[path, "run", "--bundle", "BUNDLE", "ID"], note=note, pool=pool)


def _oci_runtime(ctx, name, missing, description):
    """`NAME run` of the shared OCI bundle, if NAME is on PATH."""
    path = shutil.which(name)
    if not path:
        yield Skip(name, missing)
        return
    spec = _oci_bundle(ctx)
    next_id = _oci_ids(name)
    bundle = ctx.ws.bundle
    # its state in the workspace, removed with it: nothing made under /run
    root = os.path.join(ctx.ws.dir, f"{name}-state")

    def timer(stderr_path=None):
        return spawn_timed([path, "--root", root, "run", "--bundle", bundle, next_id()],
                           None, stderr_path)
    yield System(name, "comparator", description, timer,
                 argv=[path, "--root", "STATE", "run", "--bundle", "BUNDLE", "ID"],
                 note=f"config.json from `{spec} spec`, terminal off")


def runc(ctx):
    """runc run of the same OCI bundle (runc handles hybrid cgroups itself)."""
    yield from _oci_runtime(ctx, "runc", "runc not installed (apt-get install runc)",
                            "runc run (same OCI bundle)")


def bocker_oci(ctx):
    """bocker-oci run of the same OCI bundle: bocker's shim behind runc's
    command line (what podman and containerd's shim call)."""
    yield from _oci_runtime(ctx, "bocker-oci",
                            "bocker-oci not on PATH (scripts/provision.sh links it)",
                            "bocker-oci run (same OCI bundle)")


def bwrap(ctx):
    """bubblewrap with every namespace."""
    path = shutil.which("bwrap")
    if not path:
        yield Skip("bwrap", "bwrap not installed (apt-get install bubblewrap)")
        return
    argv = [path, "--unshare-all", "--ro-bind", ctx.ws.rootfs, "/", "--proc", "/proc",
            "--dev", "/dev", "/bin/true"]
    yield System("bwrap", "comparator", "bwrap --unshare-all (ro rootfs, /proc, /dev)",
                 _cmd(argv), argv=argv)


def unshare_chroot(ctx):
    """util-linux unshare + chroot: what p8952/bocker does per start, minus the rest."""
    path = shutil.which("unshare")
    if not path:
        yield Skip("unshare-chroot", "unshare not installed (util-linux)")
        return
    argv = [path, "-fmuipn", "--mount-proc", "chroot", ctx.ws.rootfs, "/bin/true"]
    yield System("unshare-chroot", "comparator", "unshare -fmuipn --mount-proc chroot",
                 _cmd(argv), argv=argv)


def p8952(ctx):
    """p8952/bocker's bash script, when --p8952 PATH is given: inside its
    own mount and network namespace (benchmarks/p8952.py), each container
    `rm`ed after its run, untimed."""
    script = ctx.opts.p8952
    if not script:
        yield Skip("p8952", "not measured: pass --p8952 PATH to p8952/bocker's script")
        return
    from benchmarks.p8952 import P8952, Unavailable
    try:
        orig = P8952(script, ctx.ws, ctx.repo_root, ctx.stack)
    except Unavailable as e:
        yield Skip("p8952", f"cannot run here: {e}")
        return

    def timer(stderr_path=None):
        return orig.time(stderr_path)
    ctx.notes["p8952_image"] = orig.image
    yield System("p8952", "comparator", "p8952/bocker run (bash: ip, btrfs, cgexec, unshare)",
                 timer, argv=orig.argv(), after=orig.remove_containers,
                 note=f"{orig.note}; each container `rm`ed after its run, untimed")


# --- bocker -------------------------------------------------------------------

def _bocker_image(ctx):
    """The image bocker runs: --image, else our rootfs imported for this run
    (removed at the end), so bocker starts the very same files as the others."""
    import bocker.state
    paths = bocker.state.Paths(ctx.opts.root)
    ctx.bocker_root = paths.root
    if ctx.opts.image:
        return paths, ctx.opts.image
    from bocker.image import images
    name = f"bkb-bench-{os.getpid()}"
    image_id = images.init(paths, ctx.ws.rootfs, name=name)
    ctx.stack.callback(images.remove, paths, image_id)
    ctx.notes["bocker_image"] = f"{name} ({image_id}): the shared busybox rootfs"
    return paths, name


def _trace_file():
    fd, path = tempfile.mkstemp(prefix=f"bkb-trace-{os.getpid()}-")
    os.close(fd)
    return path


def _read_and_remove(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    finally:
        os.unlink(path)


def bocker_systems(ctx):
    """bocker run through the CLI and the library API, --network none and bridge."""
    names = [v[0] for v in CLI_VARIANTS] + ["bocker-api-none", "bocker-api-bridge"]
    try:
        import bocker  # noqa: F401  (the benchmark must run with bocker's venv)
    except ImportError:
        for n in names:
            yield Skip(n, f"bocker not importable by {sys.executable}: run with the venv's python")
        return
    cli_why = _cli_missing(ctx)
    api_why = _api_missing()
    if cli_why and api_why:
        for n in names:
            yield Skip(n, cli_why if "-cli-" in n else api_why)
        return
    try:
        paths, image = _bocker_image(ctx)
    except Exception as e:  # BockerError (not set up), OSError: a note, not a crash
        for n in names:
            yield Skip(n, f"no bocker image: {e}")
        return
    env = dict(ctx.python_env, BOCKER_ROOT=paths.root)
    ctx.image, ctx.bocker_env = image, env
    _compile_bocker(ctx, env)
    yield from _bocker_cli(ctx, env, image, cli_why)
    yield from _bocker_api(ctx, paths, image, api_why)


def _compile_bocker(ctx, env):
    """Byte-compile the bocker package the CLI imports, as `pip install`
    does for a regular install (an editable one leaves it to the first
    run), so no timed start pays for compiling."""
    import bocker
    python = ctx.bocker_python or sys.executable
    package = os.path.dirname(os.path.abspath(bocker.__file__))
    done = subprocess.run([python, "-m", "compileall", "-q", package], env=env,
                          capture_output=True, text=True)
    ctx.notes["bytecode_compiled"] = package if done.returncode == 0 else \
        f"compileall failed: {_tail(done.stderr or done.stdout)}"


def _cli_missing(ctx):
    """Why the bocker CLI cannot run containers here, or None."""
    if not ctx.bocker:
        return "no bocker script (pass --bocker PATH)"
    probe = subprocess.run([ctx.bocker, "run", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`bocker run` not available yet ({_tail(probe.stderr or probe.stdout)})"
    return None


def _api_missing():
    """Why bocker.containers.run cannot be called, or None."""
    try:
        from bocker.runtime import containers
    except ImportError as e:
        return f"bocker.containers not available yet ({e})"
    missing = [n for n in ("run", "RunRequest") if not hasattr(containers, n)]
    if missing:
        return f"bocker.containers lacks {', '.join(missing)} (not landed yet)"
    return None


CLI_VARIANTS = (
    # name, extra run options, extra environment, what
    ("bocker-cli-none", ["--network", "none"], {},
     "bocker run --rm --network none ($BIN/bocker as installed)"),
    ("bocker-cli-bridge", ["--network", "bridge"], {},
     "bocker run --rm --network bridge ($BIN/bocker as installed: the C client and "
     "its warm server once they are in)"),
    ("bocker-cli-direct-bridge", ["--network", "bridge"], {"BOCKER_NO_SERVER": "1"},
     "the same with BOCKER_NO_SERVER=1: the Python CLI itself, no server"),
)


def _bocker_cli(ctx, env, image, why):
    if why:
        for name, _, _, _ in CLI_VARIANTS:
            yield Skip(name, why)
        return
    from bocker.server import launch

    script = ctx.bocker
    kind = "C client" if launch.is_c_client(script) else "Python console script"
    _note_server(ctx)
    for name, extra, extra_env, what in CLI_VARIANTS:
        argv = [script, "run", "--rm", *extra, image, "true"]
        row_env = dict(env, **extra_env)
        trace_env = dict(row_env, BOCKER_TRACE="json")

        def traced(argv=argv, trace_env=trace_env):
            path = _trace_file()
            ns, code = spawn_timed(argv, trace_env, path)
            return ns, code, _read_and_remove(path)

        def pool(count, width, stderr_dir=None, argv=argv, row_env=row_env):
            return run_pool([argv] * count, row_env, width, stderr_dir)
        yield System(name, "bocker", what, _cmd(argv, row_env), argv=argv, traced=traced,
                     pool=pool, note=f"$BIN/bocker is the {kind}" +
                     (" (BOCKER_NO_SERVER=1)" if extra_env else ""))


def server_socket(bindir):
    """The warm server's socket for a $BIN (FNV-1a 64 of $BIN, as csrc/client.c):
    bocker.server.address's when it is there, else the same arithmetic."""
    try:
        from bocker.server import address
        return address.socket_path(bindir)
    except (ImportError, AttributeError):
        h = 0xcbf29ce484222325
        for byte in bindir.encode():
            h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
        return f"/run/bocker/cli-{h:016x}.sock"


def server_pid(sock):
    """The pid in SOCK.pid if that process is a bocker-server, else None."""
    try:
        with open(sock + ".pid") as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except (OSError, ValueError):
        return None
    return pid if b"bocker-server" in cmdline else None


def _note_server(ctx):
    """Record whether the warm server of this $BIN ran before the suite.
    A server the suite's starts bring up is left to its idle exit: on a
    shared machine a server that appeared meanwhile may be anyone's."""
    bindir = os.path.realpath(os.path.dirname(ctx.bocker))
    sock = server_socket(bindir)
    ctx.notes["server_socket"] = sock
    ctx.notes["server_pid_before"] = server_pid(sock)


def _bocker_api(ctx, paths, image, why):
    variants = (("bocker-api-none", {"network": "none"}, "containers.run(network='none'), in-process"),
                ("bocker-api-bridge", {"network": "bridge"},
                 "containers.run(network='bridge'), in-process"))
    if why:
        for name, _, _ in variants:
            yield Skip(name, why)
        return
    # RunRequest takes any network string; only trust "bridge" once the CLI
    # offers it, or a bridge row could silently measure an empty netns.
    bridge = ctx.bocker and "bridge" in subprocess.run(
        [ctx.bocker, "run", "--help"], capture_output=True, text=True).stdout
    if not bridge:
        variants = variants[:1] + (("bocker-api-bridge", None, None),)
    from bocker.runtime import containers
    run, request = containers.run, containers.RunRequest
    for name, extra, what in variants:
        if extra is None:
            yield Skip(name, "`bocker run --help` offers no bridge network yet")
            continue

        def start(extra=extra):
            return run(paths, request(image=image, command=["true"], remove=True, **extra))

        def timer(stderr_path=None, start=start):
            # A raised error is a failed start; keep its message for the note.
            try:
                return call_timed(start)
            except Exception as e:
                if stderr_path:
                    with open(stderr_path, "w") as f:
                        f.write(f"{type(e).__name__}: {e}\n")
                return 0, "exception"

        def traced(start=start):
            return _api_traced(start)
        yield System(name, "bocker", what, timer, traced=traced,
                     argv=["containers.run", image, "true"] + [f"{k}={v}" for k, v in extra.items()])


def _set_trace(mode):
    """Switch bocker's in-process tracing (bocker.trace; the CLI does this
    from BOCKER_TRACE at start, the API leaves it to its caller)."""
    try:
        from bocker import trace
        trace.configure(mode)
    except (ImportError, AttributeError):
        pass


def _api_traced(start):
    """One in-process start with BOCKER_TRACE=json and fd 2 sent to a file."""
    path = _trace_file()
    saved = os.dup(2)
    old = os.environ.get("BOCKER_TRACE")
    os.environ["BOCKER_TRACE"] = "json"
    _set_trace("json")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        sys.stderr.flush()
        os.dup2(fd, 2)
        os.close(fd)
        try:
            ns, code = call_timed(start)
        except Exception:
            ns, code = 0, "exception"
        sys.stderr.flush()
    finally:
        _set_trace(None)
        os.dup2(saved, 2)
        os.close(saved)
        if old is None:
            os.environ.pop("BOCKER_TRACE", None)
        else:
            os.environ["BOCKER_TRACE"] = old
    return ns, code, _read_and_remove(path)


# Each maker with the names it yields, so one not wanted is never set up.
MAKERS = (
    (floors, ("floor-spawn", "floor-fork-exec", "floor-ns", "floor-ns-net")),
    (python_floors, ("python-pass", "python-import-click")),
    (crun, ("crun",)),
    (runc, ("runc",)),
    (bocker_oci, ("bocker-oci",)),
    (bwrap, ("bwrap",)),
    (unshare_chroot, ("unshare-chroot",)),
    (p8952, ("p8952",)),
    (bocker_systems, ("bocker-cli-none", "bocker-cli-bridge", "bocker-cli-direct-bridge",
                      "bocker-api-none", "bocker-api-bridge")),
)
ALL_NAMES = [name for _, names in MAKERS for name in names]


def make_systems(ctx, wanted):
    """Set up every system whose name `wanted(name)` accepts."""
    systems, skipped = [], []
    for maker, names in MAKERS:
        if not any(wanted(n) for n in names):
            continue
        for item in maker(ctx):
            name = item.name if isinstance(item, System) else item.args[0]
            if not wanted(name):
                continue
            if isinstance(item, System):
                systems.append(item)
            else:
                skipped.append({"name": name, "note": item.args[1]})
    return systems, skipped
