"""Named and anonymous volumes against the real kernel: -v NAME:/path,
--mount, --volumes-from, image Volumes and copy-up, rm -v, run --rm, the
volume verbs, concurrent creates, and mounts a container cannot redirect
to the host."""
import json
import os
import subprocess
import threading

import pytest

from bocker import hostsetup
from bocker.image import images

from conftest import BOCKER, snapshot_kernel_objects


def _fill(rootfs, extra):
    hostsetup.make_busybox_rootfs(rootfs)
    extra(rootfs)


def _image(paths, name, extra, config=None):
    image_id = images.create(paths, "test", lambda r: _fill(r, extra), name=name,
                             config={"Cmd": ["/bin/sh"], **(config or {})})
    return image_id


def _seeded(rootfs):
    data = os.path.join(rootfs, "data")
    os.makedirs(os.path.join(data, "sub"))
    with open(os.path.join(data, "seed"), "w") as f:
        f.write("from the image\n")
    os.chown(os.path.join(data, "seed"), 1234, 4321)
    os.chmod(os.path.join(data, "seed"), 0o640)
    os.chmod(data, 0o750)
    os.chown(data, 99, 98)
    os.symlink("/etc/passwd", os.path.join(data, "link"))  # stays a symlink


@pytest.fixture(scope="module")
def seeded_image(paths):
    """An image with content at /data (owners, modes, a symlink)."""
    image_id = _image(paths, "voltest-seeded", _seeded)
    yield "voltest-seeded"
    images.remove(paths, image_id)


@pytest.fixture(scope="module")
def volumes_image(paths):
    """An image whose config declares Volumes /data (seeded) and /cache."""
    image_id = _image(paths, "voltest-declared", _seeded,
                      {"Volumes": {"/data": {}, "/cache": {}}})
    yield "voltest-declared"
    images.remove(paths, image_id)


@pytest.fixture
def vols(bocker):
    """Volume names appended here are removed after the test (after the
    containers of `cleanup`, which depends on this fixture for that)."""
    made = []
    yield made
    for name in made:
        bocker("volume", "rm", "-f", name, check=True)


@pytest.fixture
def cleanup(bocker, vols):
    """conftest's, torn down before vols: containers go before their volumes."""
    made = []
    yield made
    for cid in made:
        bocker("rm", "-f", cid)


def _volumes(bocker):
    return set(bocker("volume", "ls", "-q", check=True).stdout.split())


def test_named_volume_is_made_kept_and_shared(bocker, vols):
    vols.append("tv-named")
    bocker("run", "--rm", "-v", "tv-named:/data", "busybox", "sh", "-c",
           "echo kept > /data/f", check=True)
    assert "tv-named" in _volumes(bocker)
    out = bocker("run", "--rm", "-v", "tv-named:/x:ro", "busybox", "sh", "-c",
                 "cat /x/f; echo no > /x/g", check=False)
    assert out.stdout == "kept\n" and "Read-only file system" in out.stderr
    [info] = json.loads(bocker("volume", "inspect", "tv-named", check=True).stdout)
    assert info["Name"] == "tv-named" and info["Driver"] == "local"
    assert info["Scope"] == "local" and info["Labels"] == {} and info["Options"] == {}
    assert info["Mountpoint"].endswith("/volumes/tv-named/_data")
    assert info["CreatedAt"].endswith("Z")
    with open(os.path.join(info["Mountpoint"], "f")) as f:
        assert f.read() == "kept\n"
    assert bocker("volume", "rm", "tv-named", check=True).stdout == "tv-named\n"
    assert "tv-named" not in _volumes(bocker)


def test_a_relative_path_is_refused_not_made_below_the_cwd(bocker, tmp_path):
    proc = subprocess.run([BOCKER, "run", "--rm", "-v", "pg/data:/x", "busybox", "true"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 125 and "use an absolute path" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_copy_up_fills_an_empty_volume_once(bocker, vols, seeded_image):
    vols.append("tv-copy")
    script = ("cat /data/seed; stat -c '%u:%g %a' /data/seed /data; "
              "readlink /data/link; ls -d /data/sub; rm /data/seed")
    out = bocker("run", "--rm", "-v", "tv-copy:/data", seeded_image, "sh", "-c", script,
                 check=True).stdout
    assert out == "from the image\n1234:4321 640\n99:98 750\n/etc/passwd\n/data/sub\n"
    # not empty any more: what the container did stays, no second copy
    out = bocker("run", "--rm", "-v", "tv-copy:/data", seeded_image, "ls", "/data",
                 check=True).stdout.split()
    assert out == ["link", "sub"]
    # nocopy: an empty volume stays empty
    vols.append("tv-nocopy")
    out = bocker("run", "--rm", "-v", "tv-nocopy:/data:nocopy", seeded_image, "ls", "-A",
                 "/data", check=True).stdout
    assert out == ""


def test_image_volumes_and_v_path_are_anonymous_and_go_with_rm_v(bocker, cleanup, vols,
                                                                volumes_image):
    before = _volumes(bocker)
    cid = bocker("run", "-d", "-v", "/scratch", "-v", "tv-keep:/keep", volumes_image,
                 "sh", "-c", "cat /data/seed > /scratch/x; true", check=True).stdout.strip()
    cleanup.append(cid)
    vols.append("tv-keep")
    bocker("wait", cid, check=True)
    record = json.loads(bocker("inspect", cid, check=True).stdout)
    record = record[0] if isinstance(record, list) else record
    mounts = {m["Destination"]: m for m in record["Mounts"]}
    assert set(mounts) == {"/scratch", "/keep", "/data", "/cache"}
    for m in mounts.values():
        assert m["Type"] == "volume" and m["Driver"] == "local" and m["RW"] is True
        assert m["Source"].endswith(f"/volumes/{m['Name']}/_data")
    anonymous = {mounts[d]["Name"] for d in ("/scratch", "/data", "/cache")}
    assert all(len(n) == 64 for n in anonymous)
    assert _volumes(bocker) - before == anonymous | {"tv-keep"}
    with open(os.path.join(mounts["/scratch"]["Source"], "x")) as f:
        assert f.read() == "from the image\n"  # /data was filled from the image
    # in use: refused, even with -f
    proc = bocker("volume", "rm", "-f", mounts["/data"]["Name"])
    assert proc.returncode == 1 and "in use" in proc.stderr
    bocker("rm", "-v", cid, check=True)
    cleanup.remove(cid)
    assert _volumes(bocker) - before == {"tv-keep"}  # named volumes are never rm -v'd


def test_run_rm_removes_anonymous_volumes(bocker, volumes_image):
    before = _volumes(bocker)
    bocker("run", "--rm", "-v", "/scratch", volumes_image, "true", check=True)
    assert _volumes(bocker) == before


def test_mount_flag_volume_bind_tmpfs(bocker, vols, tmp_path):
    vols.append("tv-mount")
    (tmp_path / "in").write_text("host\n")
    out = bocker("run", "--rm", "--mount", "type=volume,source=tv-mount,target=/v",
                 "--mount", f"type=bind,src={tmp_path},dst=/b,readonly",
                 "--mount", "type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1700",
                 "busybox", "sh", "-c",
                 "echo v > /v/f; cat /b/in; (echo x > /b/y) 2>/dev/null || echo ro; "
                 "grep ' /t ' /proc/mounts | grep -o 'size=[0-9]*k,mode=1700'",
                 check=True).stdout
    assert out == "host\nro\nsize=1024k,mode=1700\n"
    assert not (tmp_path / "y").exists()
    assert "tv-mount" in _volumes(bocker)
    proc = bocker("run", "--rm", "--mount", "type=bind,src=/nonexistent-tv,dst=/b",
                  "busybox", "true")
    assert proc.returncode != 0


def test_volumes_from(bocker, cleanup, vols, tmp_path):
    vols.append("tv-from")
    (tmp_path / "h").write_text("bound\n")
    cid = bocker("run", "-d", "-v", "tv-from:/data", "-v", f"{tmp_path}:/host", "busybox",
                 "sh", "-c", "echo shared > /data/f", check=True).stdout.strip()
    cleanup.append(cid)
    bocker("wait", cid, check=True)
    out = bocker("run", "--rm", "--volumes-from", f"{cid}:ro", "busybox", "sh", "-c",
                 "cat /data/f /host/h; (echo x > /data/g) 2>/dev/null || echo ro",
                 check=True).stdout
    assert out == "shared\nbound\nro\n"


def test_volume_verbs(bocker, cleanup, vols):
    vols.extend(["tv-a", "tv-b"])
    assert bocker("volume", "create", "tv-a", "--label", "app=db", check=True).stdout == "tv-a\n"
    assert bocker("volume", "create", "tv-a", check=True).stdout == "tv-a\n"  # exists: fine
    bocker("volume", "create", "tv-b", check=True)
    generated = bocker("volume", "create", check=True).stdout.strip()
    vols.append(generated)
    assert len(generated) == 64
    assert bocker("volume", "ls", "-q", "--filter", "label=app=db",
                  check=True).stdout == "tv-a\n"
    assert bocker("volume", "ls", "--format", "{{.Name}}:{{.Driver}}", "--filter",
                  "name=tv-b", check=True).stdout == "tv-b:local\n"
    proc = bocker("volume", "inspect", "tv-a", "tv-missing")
    assert proc.returncode == 1 and "No such volume: tv-missing" in proc.stderr
    assert [v["Name"] for v in json.loads(proc.stdout)] == ["tv-a"]
    # inspect's template runs on the JSON (a map prints as Go's), ls's on a row
    assert bocker("volume", "inspect", "-f", "{{.Labels}} {{index .Labels \"app\"}}", "tv-a",
                  check=True).stdout == "map[app:db] db\n"
    assert json.loads(bocker("volume", "inspect", "-f", "{{json .}}", "tv-a",
                             check=True).stdout)["Name"] == "tv-a"
    assert bocker("volume", "inspect", "-f", "{{.Nope", "tv-a").returncode == 125
    assert bocker("volume", "ls", "--filter", "name=^tv-", "--format",
                  'table {{.Name}}\\t{{.Label "app"}}', check=True).stdout.splitlines() == [
        "VOLUME NAME   LABEL", "tv-a          db", "tv-b" + " " * 10]
    [row] = [json.loads(line) for line in bocker("volume", "ls", "--format", "json", "--filter",
                                                 "label=app", check=True).stdout.splitlines()]
    assert (row["Name"], row["Labels"], row["Driver"]) == ("tv-a", "app=db", "local")
    assert bocker("volume", "ls", "--filter", "bogus=1").returncode == 125
    assert bocker("volume", "rm", "-f", "tv-missing").returncode == 0
    assert bocker("volume", "rm", "tv-missing").returncode == 1
    for bad in ("a", "../x", "x/y", "-x"):
        assert bocker("volume", "create", "--", bad).returncode != 0
    # a container uses tv-b: dangling= and prune see it
    cid = bocker("create", "-v", "tv-b:/b", "busybox", "true").stdout.strip() or \
        bocker("run", "-d", "-v", "tv-b:/b", "busybox", "true", check=True).stdout.strip()
    cleanup.append(cid)
    dangling = set(bocker("volume", "ls", "-q", "--filter", "dangling=true",
                          check=True).stdout.split())
    assert "tv-a" in dangling and "tv-b" not in dangling
    # prune: anonymous only (none here); -a: every unused one, not tv-b
    out = bocker("volume", "prune", "-f", check=True).stdout
    assert "tv-a" not in out and "tv-a" in _volumes(bocker)
    out = bocker("volume", "prune", "-a", "-f", "--filter", "label=app=db", check=True).stdout
    assert "tv-a" in out and generated not in out
    out = bocker("volume", "prune", "-a", "-f", check=True).stdout
    assert generated in out and "tv-b" not in out
    assert _volumes(bocker) >= {"tv-b"} and not {"tv-a", generated} & _volumes(bocker)


def test_concurrent_creates_end_with_one_volume(bocker, vols):
    vols.append("tv-race")
    procs = [subprocess.Popen([BOCKER, "volume", "create", "tv-race"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert all(o == "tv-race\n" for o, _ in outs)
    # two runs creating the same volume at once, each writing into it
    results = []

    def run(i):
        results.append(bocker("run", "--rm", "-v", "tv-race2:/d", "busybox", "sh", "-c",
                              f"echo {i} > /d/{i}"))

    vols.append("tv-race2")
    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    [info] = json.loads(bocker("volume", "inspect", "tv-race2", check=True).stdout)
    assert sorted(os.listdir(info["Mountpoint"])) == ["0", "1", "2", "3"]


def _escaping(host_dir):
    def extra(rootfs):
        os.symlink(host_dir, os.path.join(rootfs, "data"))  # absolute: to the host's dir
        os.symlink("../../../../../../" + host_dir.lstrip("/"),
                   os.path.join(rootfs, "rel"))
    return extra


def test_a_symlink_at_the_destination_never_reaches_the_host(bocker, paths, vols, tmp_path):
    """The image (hostile) has /data -> <a host directory>: the copy-up
    resolves it inside the image (where it does not exist: nothing is
    copied from the host), and the mount lands inside the container's
    root, never on the host's directory."""
    host_dir = tmp_path / "hostside"
    host_dir.mkdir()
    (host_dir / "secret").write_text("host only\n")
    image_id = _image(paths, "voltest-escape", _escaping(str(host_dir)))
    try:
        for vol, target in (("tv-esc", "/data"), ("tv-esc2", "/rel")):
            vols.append(vol)
            proc = bocker("run", "--rm", "-v", f"{vol}:{target}", "voltest-escape", "sh",
                          "-c", f"ls {target}/; echo pwned > {target}/pwned")
            # the shim's move_mount, after pivot_root, does not follow a
            # symlink at the target (EINVAL): the start is refused, and the
            # volume made for it goes with it; a mount never lands on the host
            if proc.returncode == 0:
                [info] = json.loads(bocker("volume", "inspect", vol, check=True).stdout)
                assert "secret" not in os.listdir(info["Mountpoint"])  # no copy from the host
            else:
                assert proc.returncode == 125 and "move_mount" in proc.stderr, proc.stderr
                assert vol not in _volumes(bocker)
                vols.remove(vol)
            assert "secret" not in proc.stdout
            assert sorted(os.listdir(host_dir)) == ["secret"], proc.stderr
    finally:
        images.remove(paths, image_id)


def test_a_symlink_planted_in_a_shared_volume_stays_inside(bocker, cleanup, vols, tmp_path):
    """A container replaces the mount point of a nested volume (inside a
    volume another container shares) with a symlink to a host path: the
    next start of the victim mounts inside its own root, not on the host."""
    host_dir = tmp_path / "target"
    host_dir.mkdir()
    vols.extend(["tv-outer", "tv-inner"])
    victim = bocker("run", "-d", "-v", "tv-outer:/o", "-v", "tv-inner:/o/in", "busybox",
                    "sh", "-c", "echo inner > /o/in/file", check=True).stdout.strip()
    cleanup.append(victim)
    bocker("wait", victim, check=True)
    bocker("run", "--rm", "-v", "tv-outer:/x", "busybox", "sh", "-c",
           f"rmdir /x/in && ln -s {host_dir} /x/in", check=True)
    bocker("start", victim)
    bocker("wait", victim)
    assert os.listdir(host_dir) == []


def test_the_leak_check_sees_volumes(bocker, paths):
    bocker("volume", "create", "tv-leak", check=True)
    try:
        assert "tv-leak" in snapshot_kernel_objects(paths)["volumes"]
    finally:
        bocker("volume", "rm", "tv-leak", check=True)
    assert "tv-leak" not in snapshot_kernel_objects(paths)["volumes"]


def test_copy_up_resolves_the_image_path_inside_the_image(tmp_path):
    """copyup.copy_up on a hostile tree: /data as an absolute or '..'
    symlink to a host directory resolves inside the tree (nothing copied
    from the host); a symlink inside the copied tree stays a symlink."""
    from bocker.volume import copyup

    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "secret").write_text("host only\n")
    rootfs = tmp_path / "rootfs"
    (rootfs / "inside").mkdir(parents=True)
    (rootfs / "inside" / "f").write_text("image\n")
    os.symlink(str(host_dir), rootfs / "abs")
    os.symlink("../../../../../../../" + str(host_dir).lstrip("/"), rootfs / "rel")
    os.symlink(str(host_dir), rootfs / "inside" / "out")
    os.symlink("/inside", rootfs / "ok")  # resolves inside: copied from /inside
    for name in ("abs", "rel", "missing"):
        target = tmp_path / f"t-{name}"
        target.mkdir()
        assert copyup.copy_up(str(rootfs), "/" + name, str(target)) is False
        assert os.listdir(target) == []
    for name in ("inside", "ok"):
        target = tmp_path / f"t-{name}"
        target.mkdir()
        assert copyup.copy_up(str(rootfs), "/" + name, str(target)) is True
        assert sorted(os.listdir(target)) == ["f", "out"]
        assert os.readlink(target / "out") == str(host_dir)  # a symlink, not followed
        assert not os.path.exists(target / "secret")


def test_rm_without_v_keeps_anonymous_volumes_for_prune(bocker):
    before = _volumes(bocker)
    cid = bocker("run", "-d", "-v", "/scratch", "busybox", "true", check=True).stdout.strip()
    bocker("wait", cid, check=True)
    bocker("rm", cid, check=True)
    [left] = _volumes(bocker) - before  # Docker's too: only -v removes them
    out = bocker("system", "prune", "-f", check=True).stdout
    assert left in _volumes(bocker) and left not in out  # without --volumes: kept
    out = bocker("system", "prune", "-f", "--volumes", check=True).stdout
    assert left in out and left not in _volumes(bocker)


def test_a_failed_run_removes_only_the_volumes_it_made(bocker, vols):
    fault = {"BOCKER_FAULT": "start.clone:fail"}
    before = _volumes(bocker)
    proc = bocker("run", "--rm", "-v", "tv-fail:/d", "-v", "/anon", "busybox", "true",
                  env=fault)
    assert proc.returncode != 0
    assert _volumes(bocker) == before
    vols.append("tv-kept")
    bocker("volume", "create", "tv-kept", check=True)
    proc = bocker("run", "--rm", "-v", "tv-kept:/d", "busybox", "true", env=fault)
    assert proc.returncode != 0 and "tv-kept" in _volumes(bocker)


def test_workdir_below_a_volume_is_made_in_the_volume(bocker, cleanup, vols, tmp_path):
    vols.append("tv-wd")
    out = bocker("run", "--name", "tv-wd-c", "-v", "tv-wd:/data", "-w", "/data/sub/deeper",
                 "busybox", "sh", "-c", "pwd; stat -c '%u %a' .", check=True).stdout
    cleanup.append("tv-wd-c")
    assert out == "/data/sub/deeper\n0 755\n"
    # in the volume (a second container sees it), not under the image's /data
    assert bocker("run", "--rm", "-v", "tv-wd:/v", "busybox", "ls", "/v/sub",
                  check=True).stdout == "deeper\n"
    assert "/data/sub" not in bocker("diff", "tv-wd-c", check=True).stdout
    # a bind's source and a tmpfs likewise; a read-only volume refuses it
    bound = tmp_path / "bound"
    bound.mkdir()
    assert bocker("run", "--rm", "-v", f"{bound}:/b", "-w", "/b/made", "busybox", "pwd",
                  check=True).stdout == "/b/made\n"
    assert (bound / "made").is_dir()
    assert bocker("run", "--rm", "--tmpfs", "/t", "-w", "/t/x", "busybox", "pwd",
                  check=True).stdout == "/t/x\n"
    proc = bocker("run", "--rm", "-v", "tv-wd:/ro:ro", "-w", "/ro/new", "busybox", "true")
    assert (proc.returncode, proc.stderr) == (125, "bocker: mkdir cwd: Read-only file system\n")
    assert bocker("run", "--rm", "-v", "tv-wd:/v", "busybox", "ls", "/v",
                  check=True).stdout == "sub\n"
