"""Bad input, tried as a new user would, through the real CLI as root.

Every case is one command line with something wrong in it.  Each must end
with one clear line on stderr (or, for a click usage error, click's usage
block ending in its one `Error:` line), a non-zero exit (125 for a `run`
that never started, as Docker), and change nothing: the containers,
images, subvolumes, cgroups and leases are what they were, no file
appears in the working directory or where a -v or --cidfile pointed, and
(conftest's no_leaks) nothing of the kernel is left.  Each refusal comes
before any kernel work, so each case is one CLI start.
"""
import os
import subprocess

import pytest

from bocker.image import images
from conftest import BOCKER, _cgroups, _entries, own_leases, own_subvolumes

LONG = "a" * 300
VOL = "/tmp/bocker-bad-input-vol"        # never made: a refused -v must not make it
CID = "/tmp/bocker-bad-input-cid"        # never made: a refused run must not leave it
USAGE = "usage"                          # a click usage error: its Error: line last

# (argv, exit code, what the one line says)
RUN_CASES = [
    (["--bogus"], 125, USAGE),
    ([], 125, USAGE),
    (["--cpu-shares", "abc"], 125, USAGE),
    (["--pids-limit", "x"], 125, USAGE),
    (["--network", "nope"], 125, USAGE),
    (["-m", "-5"], 125, "invalid size '-5'"),
    (["-m", "1x"], 125, "invalid size '1x'"),
    (["-m", "1"], 125, "minimum memory limit allowed is 6MB"),
    (["-m", "99999999999999999t"], 125, "invalid size"),
    (["-m", "²m"], 125, "invalid size"),
    (["--cpus", "0"], 125, "invalid --cpus '0'"),
    (["--cpus", "-1"], 125, "invalid --cpus '-1'"),
    (["--cpus", "abc"], 125, "invalid --cpus 'abc'"),
    (["--cpus", "inf"], 125, "invalid --cpus 'inf'"),
    (["--cpus", "nan"], 125, "invalid --cpus 'nan'"),
    (["--cpus", "1e300"], 125, "range of CPUs is from 0.01"),
    (["--cpus", "0.0001"], 125, "range of CPUs is from 0.01"),
    (["--cpu-shares", "-1"], 125, "invalid --cpu-shares -1"),
    (["--pids-limit", "-5"], 125, "invalid --pids-limit -5"),
    (["--pids-limit", "99999999999999999999"], 125, "invalid --pids-limit"),
    (["-p", "99999:80"], 125, "invalid port 99999"),
    (["-p", "0:80"], 125, "invalid port 0"),
    (["-p", "80:0"], 125, "invalid port 0"),
    (["-p", "abc"], 125, "invalid port mapping 'abc'"),
    (["-p", "80-"], 125, "invalid port mapping '80-'"),
    (["-p", "8000-8001:80-82"], 125, "invalid ranges specified for container and host ports"),
    (["-p", "90-80"], 125, "invalid range '90-80'"),
    (["-p", "1.2.3.4.5:80:80"], 125, "invalid host address '1.2.3.4.5'"),
    (["-p", "80:80/icmp"], 125, "invalid protocol 'icmp'"),
    (["--expose", "80/xyz"], 125, "invalid protocol 'xyz'"),
    (["--ip", "10.0.0.300"], 125, "invalid --ip '10.0.0.300'"),
    (["--mac-address", "02:42:zz:00:00:01"], 125, "invalid --mac-address"),
    (["--mac-address", "01:00:5e:00:00:01"], 125, "not a unicast address"),
    (["--add-host", "nocolon"], 125, "invalid --add-host 'nocolon'"),
    (["--add-host", "a:999.1.1.1"], 125, "is not an IP address or host-gateway"),
    (["--network", "none", "--ip", "10.0.0.9"], 125, "--ip needs --network bridge"),
    (["--network", "container:x", "-p", "80"], 125, "conflicting options: port publishing"),
    (["--net", "container:x", "--add-host", "a:1.2.3.4"], 125,
     "conflicting options: custom host-to-IP mapping"),
    (["--network", "none", "-p", "80:80"], 125, "published ports (-p) need --network bridge"),
    (["--name", "a/../b"], 125, "invalid container name 'a/../b'"),
    (["--name", LONG], 125, "invalid container name: longer than 255"),
    (["--name", "a\x01b"], 125, "invalid container name 'a\\x01b'"),
    (["--name", "a\nb"], 125, "invalid container name 'a\\nb'"),
    (["--name", "a b"], 125, "invalid container name 'a b'"),
    (["--name", "-x"], 125, "invalid container name '-x'"),
    (["--name", "ps_0123456789ab"], 125, "invalid container name"),
    (["-v", "rel/path:/x"], 125, "use an absolute path"),
    (["-v", f"{VOL}:x"], 125, "the container path must be absolute"),
    (["-v", f"{VOL}:/"], 125, "/ cannot be mounted over"),
    (["-v", f"{VOL}:/x/../.."], 125, "/ cannot be mounted over"),
    (["-v", f"{VOL}:/proc"], 125, "/proc cannot be mounted over"),
    (["-v", f"{VOL}:/proc/sys"], 125, "/proc/sys cannot be mounted over"),
    (["-v", f"{VOL}:/proc/sysrq-trigger"], 125, "cannot be mounted over"),
    (["-v", f"{VOL}:/sys"], 125, "/sys cannot be mounted over"),
    (["-v", f"{VOL}:/sys/fs/cgroup"], 125, "cannot be mounted over"),
    (["-v", f"{VOL}:/dev"], 125, "/dev cannot be mounted over"),
    (["-v", f"{VOL}:/dev/pts"], 125, "/dev/pts cannot be mounted over"),
    (["--privileged", "-v", f"{VOL}:/proc"], 125, "/proc cannot be mounted over"),
    (["-v", ":/x"], 125, "use [NAME|/HOST:]/CONTAINER"),
    (["-v", f"{VOL}:"], 125, "use [NAME|/HOST:]/CONTAINER"),
    (["-v", f"{VOL}:/x:rw,zz"], 125, "unknown option 'zz'"),
    (["-v", f"{VOL}:/x:zz"], 125, "unknown option 'zz'"),
    (["-v", f"{VOL}:/x:ro:rw"], 125, "use [NAME|/HOST:]/CONTAINER"),
    (["-v", "pg/data:/x"], 125, "invalid characters for a local volume name"),
    (["--mount", "type=nfs,dst=/d"], 125, "type must be volume, bind or tmpfs"),
    (["--mount", "type=volume,dst=/proc"], 125, "/proc cannot be mounted over"),
    (["--mount", "type=bind,src=rel,dst=/d"], 125, "a bind's source must be an absolute"),
    (["-v", "vv:/d", "--mount", "type=tmpfs,dst=/d"], 125, "Duplicate mount point: /d"),
    (["--volumes-from", "c:rx"], 125, "use CONTAINER[:ro|rw]"),
    (["--tmpfs", "relative"], 125, "the path must be absolute"),
    (["--tmpfs", "/proc"], 125, "/proc cannot be mounted over"),
    (["--tmpfs", "/"], 125, "/ cannot be mounted over"),
    (["--tmpfs", "/x:size=abc"], 125, "option 'size=abc'"),
    (["--tmpfs", "/x:noexec"], 125, "option 'noexec'"),
    (["--tmpfs", "/x:uid=99999999999"], 125, "option 'uid=99999999999'"),
    (["--tmpfs", "/x:mode=1777,,"], 125, "option ''"),
    (["-e", "=x"], 125, "invalid environment variable '=x'"),
    (["-e", ""], 125, "invalid environment variable ''"),
    (["--env-file", "/nonexistent/env"], 125, "cannot read env file /nonexistent/env"),
    (["--env-file", "/tmp"], 125, "cannot read env file /tmp: Is a directory"),
    (["-w", "relative"], 125, "the working directory 'relative' is invalid"),
    (["-u", "nosuchuser"], 125, "unable to find user nosuchuser"),
    (["-u", "0:nosuchgroup"], 125, "unable to find group nosuchgroup"),
    (["-u", "99999999999"], 125, "invalid user '99999999999'"),
    (["-u", "0:99999999999"], 125, "invalid user '0:99999999999'"),
    (["-u", ":"], 125, "invalid user ':'"),
    (["-u", "²"], 125, "invalid user '²'"),
    (["--hostname", LONG], 125, "invalid hostname"),
    (["--hostname", "a b"], 125, "invalid hostname 'a b'"),
    (["--hostname", "x\n10.0.0.1 evil"], 125, "invalid hostname 'x\\n10.0.0.1 evil'"),
    (["--hostname", "-a"], 125, "invalid hostname '-a'"),
    (["--hostname", "a..b"], 125, "invalid hostname 'a..b'"),
    (["--dns", "notanip"], 125, "invalid --dns 'notanip'"),
    (["--dns", "1.1.1.1\nsearch evil"], 125, "invalid --dns"),
    (["--ulimit", "nofile"], 125, "invalid ulimit 'nofile'"),
    (["--ulimit", "bogus=1"], 125, "invalid ulimit 'bogus=1'"),
    (["--ulimit", "nofile=2:1"], 125, "soft limit above hard limit"),
    (["--ulimit", "nofile=x"], 125, "invalid ulimit 'nofile=x'"),
    (["--ulimit", "nofile=99999999999999999999999"], 125, "invalid ulimit"),
    (["--ulimit", "nofile=²"], 125, "invalid ulimit"),
    (["--sysctl", "kernel.core_pattern=x"], 125, "sysctl 'kernel.core_pattern' is not allowed"),
    (["--sysctl", "nonsense"], 125, "invalid sysctl 'nonsense'"),
    (["--sysctl", "net.ipv4.ip_forward=1\n"], 125, "invalid sysctl"),
    (["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"], 125, "is not allowed"),
    (["--cidfile", "/etc/hostname"], 125, "container ID file found"),
    (["--cidfile", "/nonexistent/dir/cid"], 125, "cannot create container ID file"),
    (["--security-opt", "bogus"], 125, "invalid --security-opt 'bogus'"),
    (["--security-opt", "apparmor=x"], 125, "not supported"),
    (["--security-opt", "no-new-privileges=false"], 125, "cannot be turned off"),
    (["--security-opt", "seccomp=/nonexistent.json"], 125, "seccomp profile /nonexistent.json"),
    (["--cap-add", "bogus"], 125, "unknown capability: 'bogus'"),
    (["--userns", "auto", "--privileged"], 125, "incompatible with --userns=auto"),
    (["--restart", "bogus"], 125, "bogus"),
    (["--restart", "on-failure:-1"], 125, "retry count cannot be negative"),
    (["--restart", "always"], 125, "Conflicting options: --restart and --rm"),
]

# run IMAGE ... with a bad image
IMAGE_CASES = [
    ("nosuchimage", 125, "No image named 'nosuchimage' exists"),
    ("BusyBox", 125, "repository name must be lowercase"),
    ("a::b", 125, "invalid reference format: 'a::b'"),
    ("busybox:" + LONG, 125, "invalid reference format"),
    ("busybox@sha256:short", 125, "invalid digest"),
    ("busybox@md5:" + "a" * 32, 125, "unsupported digest algorithm"),
    ("", 125, "invalid reference format: ''"),
    ("-", 125, "invalid reference format"),
]

NOSUCH = "nosuch0"  # a name no container or image has
COMMAND_CASES = [
    (["exec", NOSUCH, "true"], 1, "No container named 'nosuch0' exists"),
    (["exec", "--bogus", NOSUCH, "true"], 125, USAGE),
    (["exec", NOSUCH], 125, USAGE),
    (["stop", NOSUCH], 1, "No container named 'nosuch0' exists"),
    (["stop", "-t", "abc", NOSUCH], 125, USAGE),
    (["stop"], 125, USAGE),
    (["kill", NOSUCH], 1, "No container named 'nosuch0' exists"),
    (["kill", "-s", "999", NOSUCH], 1, "invalid signal '999'"),
    (["kill", "-s", "BOGUS", NOSUCH], 1, "invalid signal 'BOGUS'"),
    (["kill", "-s", "-9", NOSUCH], 1, "invalid signal '-9'"),
    (["wait", NOSUCH], 1, "No container named 'nosuch0' exists"),
    (["start", NOSUCH], 1, "No container named 'nosuch0' exists"),
    (["restart", NOSUCH], 1, "No container named 'nosuch0' exists"),
    (["restart", "-t", "x", NOSUCH], 125, USAGE),
    (["rm", NOSUCH], 1, "No container named 'nosuch0' exists"),
    (["rm", "img_000000000000"], 1, "No image named 'img_000000000000' exists"),
    (["rm"], 125, USAGE),
    (["rmi", NOSUCH], 1, "No image named 'nosuch0' exists"),
    (["rmi", "BAD::"], 1, "No image named 'BAD::' exists"),
    (["logs", NOSUCH], 1, "No container named 'nosuch0' exists"),
    (["logs", "--tail", "-1", NOSUCH], 1, "invalid --tail '-1'"),
    (["logs", "--tail", "²", NOSUCH], 1, "invalid --tail '²'"),
    (["inspect", NOSUCH], 1, "No container or image named 'nosuch0' exists"),
    (["inspect", "a\nb"], 1, "No container or image named 'a\\nb' exists"),
    (["commit", NOSUCH], 1, "No container named 'nosuch0' exists"),
    (["commit", "--name", "BAD::", NOSUCH], 1, "No container named 'nosuch0' exists"),
    (["pull", "BAD"], 1, "repository name must be lowercase: 'BAD'"),
    (["pull", "a::b"], 1, "invalid reference format: 'a::b'"),
    (["pull", "busybox@sha256:short"], 1, "invalid digest"),
    (["pull", "busybox:" + LONG], 1, "invalid tag"),
    (["pull", "busybox:1", "2"], 1, "already names a tag or digest"),
    (["pull", "localhost:1/nosuch:latest"], 1, "cannot reach registry localhost:1"),
    (["pull", "--platform", "bogus", "localhost:1/x"], 1, "invalid platform 'bogus'"),
    (["login", "-u", "x", "-p", "y", "a::b"], 1, "invalid registry 'a::b'"),
    (["login", "-u", "x", "-p", "y", "localhost:99999"], 1, "invalid registry"),
    (["login", "-u", "x", "-p", "y", "localhost:1"], 1, "cannot reach registry localhost:1"),
    (["login", "-p", "y"], 125, USAGE),
    (["images", "--bogus"], 125, USAGE),
    (["ps", "--bogus"], 125, USAGE),
    (["ps", "extra"], 125, USAGE),
    (["save", NOSUCH, "-o", "/tmp/bocker-bad-input.tar"], 1, "No image named 'nosuch0'"),
    (["save", "busybox", "-o", "/nonexistent/dir/out.tar"], 1, "No directory named"),
    (["save", "busybox"], 125, USAGE),
    (["load", "-i", "/nonexistent.tar"], 1, "No file named '/nonexistent.tar' exists"),
    (["load", "-i", "/etc/hostname"], 1, "/etc/hostname: not an image archive"),
    (["load", "-i", "/tmp"], 1, "neither a docker archive nor an OCI layout"),
    (["tag", "busybox"], 125, USAGE),
    (["tag", NOSUCH, "x"], 1, "No image named 'nosuch0' exists"),
    (["tag", "busybox", "BAD::"], 1, "invalid image name 'BAD::'"),
    (["history", NOSUCH], 1, "No image named 'nosuch0' exists"),
    (["rmi", "-f", NOSUCH], 1, "No image named 'nosuch0' exists"),
    (["cp", f"{NOSUCH}:/etc", "out"], 1, "No container named 'nosuch0' exists"),
    (["cp", "a", "b"], 1, "must specify at least one container source"),
    (["cp", "a:/x", "b:/y"], 1, "copying between containers is not supported"),
    (["diff", NOSUCH], 1, "No container named 'nosuch0' exists"),
    (["export", NOSUCH, "-o", "/tmp/bocker-bad-input.tar"], 1, "No container named 'nosuch0'"),
    (["import", "/nonexistent.tar"], 1, "/nonexistent.tar: No such file or directory"),
    (["import", "/etc/hostname", "BAD::"], 1, "invalid image name 'BAD::'"),
    (["init", "/nonexistent"], 1, "No directory named '/nonexistent' exists"),
    (["init", "/etc/hostname"], 1, "No directory named '/etc/hostname' exists"),
    (["init", "/tmp", "--name", "BAD::"], 1, "invalid image name 'BAD::'"),
    (["container", "prune", "--bogus"], 125, USAGE),
    (["image", "prune", "--bogus"], 125, USAGE),
    (["system", "bogus"], 125, USAGE),
]


def _state(paths):
    """What a refused command must leave as it was, both ways (nothing
    made, nothing removed): records, images and their names, subvolumes,
    cgroups, leases, and the files a bad option named."""
    return {
        "containers": sorted(_entries(paths.containers)),
        "images": sorted((r["id"], tuple(r.get("names") or ())) for r in images.list_all(paths)),
        "subvolumes": own_subvolumes(paths),  # (a live server's pool comes and goes)
        "cgroups": sorted(_cgroups()),
        "leases": own_leases(paths),
        "files": [p for p in (VOL, CID, "/tmp/bocker-bad-input.tar", "/nonexistent")
                  if os.path.lexists(p)],
    }


def _bocker(argv, cwd):
    return subprocess.run([BOCKER, *argv], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def _check(paths, tmp_path, argv, code, message):
    before = _state(paths)
    proc = _bocker(argv, tmp_path)
    assert proc.returncode == code, (argv, proc.stderr)
    assert proc.stdout == "", argv
    if message == USAGE:
        lines = proc.stderr.splitlines()
        assert lines[0].startswith("Usage: bocker") and lines[-1].startswith("Error: "), argv
    else:
        assert proc.stderr.startswith("bocker: ") and proc.stderr.count("\n") == 1, \
            (argv, proc.stderr)
        assert "Traceback" not in proc.stderr and message in proc.stderr, (argv, proc.stderr)
    assert _state(paths) == before, argv
    assert os.listdir(tmp_path) == [], argv  # nothing made where bocker was run


def _ids(cases):
    return [" ".join(argv)[:60].encode("unicode_escape").decode() or "(none)"
            for argv, _, _ in cases]


@pytest.mark.parametrize("argv,code,message", RUN_CASES, ids=_ids(RUN_CASES))
def test_a_bad_run_option_is_refused_before_anything(paths, tmp_path, argv, code, message):
    image = ["--rm", "busybox", "true"] if argv else []
    _check(paths, tmp_path, ["run", *argv, *image], code, message)


@pytest.mark.parametrize("image,code,message", IMAGE_CASES,
                         ids=[i[:40] or "(empty)" for i, _, _ in IMAGE_CASES])
def test_a_bad_image_is_refused_before_anything(paths, tmp_path, image, code, message):
    # --pull never: a missing image would be asked of Docker Hub (no network here)
    _check(paths, tmp_path, ["run", "--rm", "--pull", "never", image, "true"], code, message)


@pytest.mark.parametrize("argv,code,message", COMMAND_CASES, ids=_ids(COMMAND_CASES))
def test_a_bad_command_line_is_refused(paths, tmp_path, argv, code, message):
    _check(paths, tmp_path, argv, code, message)


def test_an_env_entry_with_a_nul_byte_is_refused(paths, tmp_path):
    """argv cannot carry a NUL, an --env-file can."""
    env = tmp_path.parent / f"{tmp_path.name}.env"
    env.write_bytes(b"A=1\nB=x\0y\n")
    try:
        _check(paths, tmp_path, ["run", "--rm", "--env-file", str(env), "busybox", "true"],
               125, "invalid env: it contains a NUL byte")
    finally:
        env.unlink()


def test_bad_input_to_an_existing_container(paths, tmp_path, bocker):
    """The refusals that need a container to exist: each changes nothing."""
    cid = bocker("run", "-d", "--name", "badinput-box", "busybox", "sleep", "60",
                 check=True).stdout.strip()
    try:
        cases = [
            (["run", "--name", "badinput-box", "--rm", "busybox", "true"], 125,
             'The container name "/badinput-box" is already in use'),
            # (a plain start of it is Docker's no-op: exit 0)
            (["start", "-a", cid], 1, f"Container '{cid}' is already running"),
            (["rm", cid], 1, "is running: stop it first or use -f"),
            (["kill", "-s", "64000", cid], 1, "invalid signal '64000'"),
            (["exec", cid, "/nonexistent"], 127, "/nonexistent"),
            (["exec", "-w", "relative", cid, "true"], 1, "the working directory 'relative'"),
            (["exec", "-u", "99999999999", cid, "true"], 1, "invalid user '99999999999'"),
            (["exec", "-e", "=x", cid, "true"], 1, "invalid environment variable '=x'"),
            (["exec", "-u", "nosuchuser", cid, "true"], 1, "unable to find user nosuchuser"),
            (["commit", cid, "BAD::"], 1, "BAD::"),
            (["logs", "--tail", "x", cid], 1, "invalid --tail 'x'"),
        ]
        for argv, code, message in cases:
            _check(paths, tmp_path, argv, code, message)
    finally:
        bocker("rm", "-f", cid, check=True)


# Next to a refusal, what Docker accepts still runs (the checks refuse no more).
NEAR_MISSES = [
    (["--name", ""], "ok\n"),                        # Docker: no name given
    (["--cpu-shares", "0"], "ok\n"),                 # Docker: the default
    (["-m", "0"], "ok\n"),                           # Docker: no limit
    (["--pids-limit", "0"], "ok\n"),                 # Docker: no limit
    (["-m", "6m"], "ok\n"),                          # Docker's minimum
    (["--hostname", "a-b.c_d"], "ok\n"),
    (["-u", "4294967294:0"], "ok\n"),
    (["--dns", "::1"], "ok\n"),
    (["-e", "A=\x01="], "ok\n"),
    (["--tmpfs", "/t:size=1m,mode=700,uid=1"], "ok\n"),
    (["--ulimit", "nofile=unlimited:unlimited"], None),   # the kernel's own limit may refuse
]


@pytest.mark.parametrize("argv,out", NEAR_MISSES, ids=_ids([(a, 0, 0) for a, _ in NEAR_MISSES]))
def test_what_is_near_a_refusal_still_runs(bocker, argv, out):
    proc = bocker("run", "--rm", "--network", "none", *argv, "busybox", "echo", "ok")
    if out is None:
        assert proc.returncode in (0, 125) and proc.stderr.count("\n") <= 1, proc.stderr
    else:
        assert (proc.returncode, proc.stdout) == (0, out), proc.stderr


def test_a_volume_may_go_to_dev_shm_and_entrypoint_may_be_cleared(bocker, tmp_path):
    (tmp_path / "f").write_text("shared\n")
    proc = bocker("run", "--rm", "--network", "none", "-v", f"{tmp_path}:/dev/shm",
                  "--entrypoint", "", "busybox", "cat", "/dev/shm/f")
    assert (proc.returncode, proc.stdout) == (0, "shared\n"), proc.stderr
