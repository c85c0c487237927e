"""Time commands from inside private namespaces, with one long-lived helper.

Two uses, one protocol (stdin/stdout: JSON lines):

crun:   crun 1.8 refuses a hybrid cgroup host (v1 controllers plus cgroup2
        at /sys/fs/cgroup/unified).  The helper lives in a private mount
        namespace with that mount unmounted and times each `crun run`
        there, so crun pays no wrapper exec.

p8952:  p8952/bocker hard-codes a btrfs /var/bocker and a bridge `bridge0`
        at 10.0.0.1/24.  The helper lives in a private mount and network
        namespace: it mounts a scratch btrfs (a loop file the parent made)
        on /var/bocker and makes its own bridge0, so the host's
        /var/bocker and bridge0 (another bocker may own them) are never
        touched.  Everything p8952 makes in those namespaces (netns files
        under /run/netns, veths, the bridge, the mount and its autoclear
        loop device) goes when the helper exits; its cgroups and subvolumes
        are removed by its own `rm`.

    unshare -m [-n] -- python -m benchmarks.nsrunner MODE [ARGS]

A request is one JSON line: {"argv", "env", "stderr"} times one start;
{"op": "run", "argv"} runs one untimed; {"op": "pool", "argvs", "width"}
runs many, `width` at a time (the concurrent-starts benchmark).

unshare(1) makes the new namespace's mounts private, so nothing done in
the helper propagates to the host.
"""
import json
import os
import subprocess
import sys

from benchmarks.measure import run_pool, spawn_timed

UNIFIED = "/sys/fs/cgroup/unified"
P8952_ROOT = "/var/bocker"
P8952_BRIDGE, P8952_GATEWAY = "bridge0", "10.0.0.1/24"


class NsRunner:
    """Parent side: start the helper, ask it to time commands, stop it."""

    def __init__(self, python, repo_root, mode="crun", args=()):
        env = dict(os.environ, PYTHONPATH=repo_root)
        flags = ["-m", "-n"] if mode == "p8952" else ["-m"]
        self.proc = subprocess.Popen(
            ["unshare", *flags, "--", python, "-m", "benchmarks.nsrunner", mode, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=repo_root,
            env=env, text=True, bufsize=1)
        hello = self._read()
        if "error" in hello:
            self.close()
            raise OSError(hello["error"])
        self.note = hello.get("note", "")

    @property
    def pid(self):
        """The helper's pid (unshare execs it): /proc/PID/root sees its mounts."""
        return self.proc.pid

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise OSError("nsrunner helper exited")
        return json.loads(line)

    def _ask(self, req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        reply = self._read()
        if "error" in reply:
            raise OSError(reply["error"])
        return reply

    def time(self, argv, env=None, stderr_path=None):
        """(ns, exit_code) of one start timed inside the helper."""
        reply = self._ask({"argv": argv, "env": env, "stderr": stderr_path})
        return reply["ns"], reply["code"]

    def pool(self, argvs, width, stderr_dir=None):
        """run_pool() inside the helper: (wall_ns, codes, first_error)."""
        reply = self._ask({"op": "pool", "argvs": argvs, "width": width,
                           "stderr_dir": stderr_dir})
        return reply["ns"], reply["codes"], reply["first_error"]

    def run(self, argv):
        """(exit_code, output) of an untimed command inside the helper."""
        reply = self._ask({"op": "run", "argv": argv})
        return reply["code"], reply["out"]

    def close(self):
        """Stop the helper (it exits when its stdin closes) and reap it."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def _sh(argv):
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"{' '.join(argv)}: {(done.stderr or done.stdout).strip()}")


def _setup_crun():
    if not os.path.ismount(UNIFIED):
        return ""
    _sh(["umount", UNIFIED])
    return f"{UNIFIED} unmounted in a private mount namespace"


def _setup_p8952(image):
    _sh(["ip", "link", "set", "lo", "up"])
    _sh(["ip", "link", "add", P8952_BRIDGE, "type", "bridge"])
    _sh(["ip", "addr", "add", P8952_GATEWAY, "dev", P8952_BRIDGE])
    _sh(["ip", "link", "set", P8952_BRIDGE, "up"])
    # -o loop: mount(8) attaches the loop device with autoclear, so it
    # detaches itself once this namespace (the only holder) is gone.
    _sh(["mount", "-o", "loop", image, P8952_ROOT])
    return (f"private mount+net namespace: scratch btrfs on {P8952_ROOT}, "
            f"{P8952_BRIDGE} {P8952_GATEWAY}")


def main(argv):
    """Helper side: set the namespaces up for MODE, then serve requests."""
    out = sys.stdout
    mode, args = (argv[0], argv[1:]) if argv else ("crun", [])
    try:
        note = _setup_p8952(*args) if mode == "p8952" else _setup_crun()
    except (OSError, TypeError) as e:
        out.write(json.dumps({"error": str(e)}) + "\n")
        out.flush()
        return 1
    out.write(json.dumps({"ok": True, "note": note}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            if req.get("op") == "run":
                done = subprocess.run(req["argv"], capture_output=True, text=True,
                                      stdin=subprocess.DEVNULL)
                reply = {"code": done.returncode, "out": done.stdout + done.stderr}
            elif req.get("op") == "pool":
                ns, codes, first = run_pool(req["argvs"], None, req["width"],
                                            req.get("stderr_dir"))
                reply = {"ns": ns, "codes": codes, "first_error": first}
            else:
                ns, code = spawn_timed(req["argv"], req.get("env"), req.get("stderr"))
                reply = {"ns": ns, "code": code}
        except OSError as e:
            reply = {"error": str(e)}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
