"""Time commands from inside a private mount namespace without cgroup2.

crun 1.8 refuses a hybrid cgroup host (v1 controllers plus cgroup2 at
/sys/fs/cgroup/unified).  Wrapping every start in `unshare -m sh -c
'umount ...; exec crun ...'` would add two execs to crun's figure, so
instead one long-lived helper lives in such a namespace and times each
start there with the same spawn_timed() as everything else.

    unshare -m -- python -m benchmarks.nsrunner      (stdin/stdout: JSON lines)

The umount is private to the helper's namespace (unshare(1) makes the
new namespace's mounts private), so the host keeps its cgroup2 mount.
"""
import json
import os
import subprocess
import sys

from benchmarks.measure import spawn_timed

UNIFIED = "/sys/fs/cgroup/unified"


class NsRunner:
    """Parent side: start the helper, ask it to time commands, stop it."""

    def __init__(self, python, repo_root):
        env = dict(os.environ, PYTHONPATH=repo_root)
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--", python, "-m", "benchmarks.nsrunner"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=repo_root,
            env=env, text=True, bufsize=1)
        hello = self._read()
        if "error" in hello:
            self.close()
            raise OSError(hello["error"])
        self.note = hello.get("note", "")

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise OSError("nsrunner helper exited")
        return json.loads(line)

    def time(self, argv, env=None, stderr_path=None):
        """(ns, exit_code) of one start timed inside the helper."""
        self.proc.stdin.write(json.dumps({"argv": argv, "env": env,
                                          "stderr": stderr_path}) + "\n")
        reply = self._read()
        if "error" in reply:
            raise OSError(reply["error"])
        return reply["ns"], reply["code"]

    def close(self):
        """Stop the helper (it exits when its stdin closes) and reap it."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def main():
    """Helper side: drop cgroup2 from this namespace, then serve requests."""
    out = sys.stdout
    note = ""
    if os.path.ismount(UNIFIED):
        done = subprocess.run(["umount", UNIFIED], capture_output=True, text=True)
        if done.returncode != 0:
            out.write(json.dumps({"error": f"umount {UNIFIED}: {done.stderr.strip()}"}) + "\n")
            out.flush()
            return 1
        note = f"{UNIFIED} unmounted in a private mount namespace"
    out.write(json.dumps({"ok": True, "note": note}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            ns, code = spawn_timed(req["argv"], req.get("env"), req.get("stderr"))
            out.write(json.dumps({"ns": ns, "code": code}) + "\n")
        except OSError as e:
            out.write(json.dumps({"error": str(e)}) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
