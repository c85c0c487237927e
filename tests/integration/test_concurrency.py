"""Many bocker processes at once: runs, removals, commits, pulls and
listings side by side lose nothing, share nothing that must be one
container's (ID, address, veth, name), and leave nothing (the leak
check); and no long operation (a running container, a pull stalled
mid-layer, a held container lock) blocks another's.  No duration is
asserted: what runs beside what is shown by ordering and events."""
import gzip
import hashlib
import http.server
import json
import os
import random
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

from bocker.runtime import records

from conftest import BOCKER, run_bocker, wait_for
from conftest_pull import busybox_layer, registries  # noqa: F401
from test_exhaustion import pushed_or_none  # noqa: F401
from test_pull import pushed  # noqa: F401

WORKERS = 20
TAG = os.getpid() % 100000


def _all(jobs, workers=WORKERS):
    """Run every argv of jobs through the CLI, workers at a time; the
    CompletedProcesses in order."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda argv: run_bocker(*argv, timeout=600), jobs))


def _failed(procs, jobs):
    return [(" ".join(job), p.returncode, p.stderr.strip()[-300:])
            for job, p in zip(jobs, procs) if p.returncode != 0]


def _inspect(cids):
    out = run_bocker("inspect", *cids, check=True, timeout=120).stdout
    return {r["Id"]: r for r in json.loads(out)}


def test_a_storm_of_commands(paths, pushed_or_none, tmp_path):
    rng = random.Random(13)
    pushed_images = pushed_or_none
    # made beforehand: exited containers to remove and to commit meanwhile
    prep = [("run", "--name", f"st-rm-{i}-{TAG}", "busybox", "true") for i in range(20)]
    prep += [("run", "--name", f"st-src-{i}-{TAG}", "busybox", "sh", "-c",
              f"echo {i} > /committed") for i in range(4)]
    procs = _all(prep)
    assert not _failed(procs, prep)

    cidfile = iter(str(tmp_path / f"cid{i}") for i in range(1000))
    runs = [("run", "--rm", "--cidfile", next(cidfile),
             *(("--network", "none") if i % 4 == 3 else ()), "busybox", "true")
            for i in range(200)]
    keepers = [("run", "-d", "--name", f"st-keep-{i}-{TAG}", "--cidfile", next(cidfile),
                "busybox", "sleep", "600") for i in range(30)]
    others = [("rm", f"st-rm-{i}-{TAG}") for i in range(20)]
    others += [("commit", f"st-src-{i}-{TAG}", "--name", f"st-commit-{TAG}:{i}")
               for i in range(4)]
    if pushed_images:  # docker-registry and skopeo are there
        others += [("pull", f"{pushed_images['host']}/bkp/{repo}:v1")
                   for repo in ("single", "zstd", "single")]
    others += [("images",), ("ps", "-a")] * 10
    jobs = runs + keepers + others
    rng.shuffle(jobs)
    procs = _all(jobs)
    assert not _failed(procs, jobs)

    # every start got an ID of its own
    started = [open(job[job.index("--cidfile") + 1]).read() for job in jobs
               if "--cidfile" in job]
    assert len(started) == len(set(started)) == 230
    ps = run_bocker("ps", "-a", "-q", check=True).stdout.split()
    # no record lost, none left: the keepers run still (nothing above
    # waited for them to end), the commit sources are kept, the rest gone
    named = {r["Name"].lstrip("/"): cid for cid, r in _inspect(ps).items()}
    assert sorted(named) == sorted([f"st-keep-{i}-{TAG}" for i in range(30)]
                                   + [f"st-src-{i}-{TAG}" for i in range(4)])
    kept = _inspect([named[f"st-keep-{i}-{TAG}"] for i in range(30)])
    assert all(r["State"]["Running"] for r in kept.values())
    run_ps = run_bocker("ps", "-q", check=True).stdout.split()
    assert set(kept) <= set(run_ps)
    # one address, veth and name each, and the leases say the same
    ips = [r["NetworkSettings"]["IPAddress"] for r in kept.values()]
    veths = [r["NetworkSettings"]["HostVeth"] for r in kept.values()]
    assert len(set(ips)) == len(set(veths)) == 30
    leases = {ip: os.readlink(os.path.join(paths.leases, ip))
              for ip in os.listdir(paths.leases)}
    assert {ip: cid for cid, r in kept.items()
            for ip in [r["NetworkSettings"]["IPAddress"]]}.items() <= leases.items()
    bridge = json.load(open(paths.network))["bridge"]
    for veth in veths:
        assert os.path.basename(os.readlink(f"/sys/class/net/{veth}/master")) == bridge
    names = {n: os.readlink(os.path.join(paths.names, n)) for n in os.listdir(paths.names)}
    assert {n: c for n, c in names.items() if n.startswith("st-")} == named

    # each commit is its source's content
    for i in range(4):
        out = run_bocker("run", "--rm", f"st-commit-{TAG}:{i}", "cat", "/committed",
                         check=True).stdout
        assert out == f"{i}\n"

    # and all of it goes at once too
    gone = [("rm", "-f", cid) for cid in named.values()]
    images = [r for r in json.loads(run_bocker("inspect", *run_bocker(
        "images", "-q", check=True).stdout.split(), check=True).stdout)
        if "busybox:latest" not in r.get("RepoTags", ())]
    gone += [("rmi", r["Id"]) for r in images]
    procs = _all(gone)
    assert not _failed(procs, gone)
    assert len(images) >= 4 + (2 if pushed_images else 0)  # the commits, a pull of each repo
    assert run_bocker("ps", "-a", "-q", check=True).stdout == ""


def test_one_name_many_runs(paths, bocker):
    name = f"same-{TAG}"
    jobs = [("run", "-d", "--name", name, "busybox", "sleep", "600")] * 8
    before = set(os.listdir(paths.containers))
    procs = _all(jobs, workers=8)
    won = [p for p in procs if p.returncode == 0]
    assert len(won) == 1, [(p.returncode, p.stderr) for p in procs]
    for p in procs:
        if p.returncode:
            assert p.returncode == 125, p
            assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
            assert f'name "/{name}" is already in use' in p.stderr, p.stderr
    winner = won[0].stdout.strip()
    assert set(os.listdir(paths.containers)) - before == {winner}
    assert os.readlink(os.path.join(paths.names, name)) == winner
    assert bocker("rm", "-f", name, check=True)
    # the name is free again once its container is gone
    assert bocker("run", "--rm", "--name", name, "busybox", "true", check=True)


# ------------------------------------------------------------ nothing long blocks

class StalledRegistry:
    """A registry of one image whose layer stops half way until go is set."""

    def __init__(self):
        tar = busybox_layer(f"stalled-{TAG}")
        self.layer = gzip.compress(tar, compresslevel=1, mtime=0)
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Cmd": ["/bin/sh"]},
                             "rootfs": {"type": "layers", "diff_ids": [_digest(tar)]}}).encode()
        self.blobs = {_digest(self.layer): self.layer, _digest(config): config}
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": _digest(self.layer), "size": len(self.layer)}]}).encode()
        self.midway, self.go = threading.Event(), threading.Event()
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path
                if path == "/v2/":
                    return self._send(b"{}", "application/json")
                if path.endswith("/manifests/v1"):
                    return self._send(registry.manifest,
                                      "application/vnd.oci.image.manifest.v1+json")
                blob = registry.blobs.get(path.rsplit("/", 1)[-1])
                if blob is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                if blob is not registry.layer:
                    return self._send(blob, "application/octet-stream")
                self.send_response(200)
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                half = len(blob) // 2
                self.wfile.write(blob[:half])
                self.wfile.flush()
                registry.midway.set()
                registry.go.wait(50)     # within the client's read timeout
                self.wfile.write(blob[half:])

            def _send(self, body, kind):
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.go.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _others_go_on(bocker, tag):
    """run (bridge, named), ps, images, rm and commit of other containers:
    each completes."""
    assert bocker("run", "--rm", "busybox", "true", check=True)
    assert bocker("run", "--rm", "--name", f"go-on-{tag}", "busybox", "true", check=True)
    cid = bocker("run", "-d", "busybox", "true", check=True).stdout.strip()
    assert bocker("ps", "-a", check=True) and bocker("images", check=True)
    image = bocker("commit", cid, check=True).stdout.split()[-1]
    assert bocker("rm", "-f", cid, check=True) and bocker("rmi", image, check=True)


def test_a_stalled_pull_blocks_nothing(paths, bocker):
    registry = StalledRegistry()
    ref = f"{registry.host}/stalled/img:v1"
    pull = subprocess.Popen([BOCKER, "pull", ref], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert registry.midway.wait(60), "the pull never reached its layer"
        _others_go_on(bocker, "pull")
        assert pull.poll() is None          # all of that while the pull held on
        registry.go.set()
        out, err = pull.communicate(timeout=120)
        assert pull.returncode == 0, err
    finally:
        registry.close()
        if pull.poll() is None:
            pull.kill()
            pull.wait()
    image = out.split()[-1]
    assert bocker("run", "--rm", image, "cat", "/etc/marker", check=True).stdout == \
        f"stalled-{TAG}\n"
    assert bocker("rmi", image, check=True)


def test_a_held_container_lock_blocks_only_that_container(paths, bocker):
    # what a slow finish or rm of one container holds: its own lock
    held = bocker("run", "-d", "busybox", "sleep", "600", check=True).stdout.strip()
    with records.locked(paths, held):
        rm = subprocess.Popen([BOCKER, "rm", "-f", held], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        try:
            _others_go_on(bocker, "lock")
            assert rm.poll() is None        # the one that needs the lock waits for it
        except BaseException:
            rm.kill()
            raise
    out, err = rm.communicate(timeout=120)
    assert rm.returncode == 0 and held in out, err
    assert wait_for(lambda: not os.path.exists(paths.container(held)))


def test_one_container_many_rms(paths, bocker):
    cid = bocker("run", "-d", "busybox", "sleep", "600", check=True).stdout.strip()
    image = bocker("commit", cid, check=True).stdout.split()[-1]
    for argv, gone, missing in ((("rm", "-f", cid), cid, "container"),
                                (("rmi", image), image, "image")):
        procs = _all([argv] * 6, workers=6)
        removed = [p for p in procs if p.stdout]
        assert len(removed) == 1 and removed[0].stdout == f"Removed: {gone}\n", procs
        for p in procs:
            if p is removed[0]:
                continue
            if missing == "container":  # rm -f of a container gone meanwhile: no error (Docker)
                assert (p.returncode, p.stderr) == (0, ""), p.stderr
            else:
                assert p.returncode == 1, p
                assert p.stderr == f"bocker: No {missing} named '{gone}' exists\n", p.stderr
