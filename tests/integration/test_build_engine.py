"""`bocker build`'s engine on the real kernel: steps, cache, RUN's
containers, multi-stage, output; nothing left behind by a failed step."""
import json
import os
import signal
import subprocess

import pytest
from conftest import BOCKER, CLI_MODE, wait_for

from bocker.build import cache
from bocker.image import images


def _build(bocker, ctx, *args, check=True):
    return bocker("build", "--progress", "plain", *args, str(ctx), check=check, timeout=180)


def _context(tmp_path, dockerfile, **files):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(text)
    return ctx


def _image(paths, ref):
    return images.load(paths, images.resolve(paths, ref))


def _steps(out):
    return [line for line in out.splitlines() if "STEP " in line]


SIMPLE = """\
FROM busybox
ENV GREETING=hello NAME=world
COPY hello.txt /data/
RUN echo "$GREETING $NAME" > /data/run.txt && cat /data/hello.txt
WORKDIR /app
CMD ["cat", "/data/run.txt"]
"""


def test_single_stage_build_runs_and_caches(bocker, paths, tmp_path, built):
    ctx = _context(tmp_path, SIMPLE, **{"hello.txt": "from the context\n"})
    proc = _build(bocker, ctx, "-t", "engine-simple")
    built.append("engine-simple")
    out = proc.stdout
    assert _steps(out) == ["STEP 1/6: FROM busybox", "STEP 2/6: ENV GREETING=hello NAME=world",
                           "STEP 3/6: COPY hello.txt /data/",
                           'STEP 4/6: RUN echo "$GREETING $NAME" > /data/run.txt && cat '
                           '/data/hello.txt', "STEP 5/6: WORKDIR /app",
                           'STEP 6/6: CMD ["cat", "/data/run.txt"]']
    assert "from the context\n" in out  # RUN's output streamed
    assert "COMMIT engine-simple:latest" in out
    assert "Successfully tagged engine-simple:latest" in out
    image_id = out.splitlines()[-1]
    assert image_id.startswith("img_")
    record = _image(paths, "engine-simple")
    assert record["id"] == image_id and record["source"] == "build"
    config = record["config"]
    assert config["Cmd"] == ["cat", "/data/run.txt"]
    assert config["WorkingDir"] == "/app"
    assert "GREETING=hello" in config["Env"] and "NAME=world" in config["Env"]
    assert bocker("run", "--rm", "engine-simple", check=True).stdout == "hello world\n"
    assert os.path.isdir(os.path.join(images.rootfs(paths, image_id), "app"))
    # RUN's container's /etc files (bound over) leave nothing in the image
    base = images.rootfs(paths, images.resolve(paths, "busybox"))
    for name in ("etc/hosts", "etc/hostname", "etc/resolv.conf"):
        assert os.path.lexists(os.path.join(images.rootfs(paths, image_id), name)) == \
            os.path.lexists(os.path.join(base, name)), name
    # five steps after FROM in the history, COPY and RUN (and WORKDIR, which made /app) layers
    steps = record["history"][-5:]
    assert [bool(s.get("empty_layer")) for s in steps] == [True, False, False, False, True]
    assert steps[2]["created_by"].startswith("RUN /bin/sh -c echo")
    assert len(record["build"]["layers"]) == 3
    # history lines up with the layers save writes (the base's one, then the steps')
    from bocker.image import layerplan

    layers = layerplan.plan(paths, record)
    assert len(layers) == sum(not h.get("empty_layer") for h in record["history"]) == 4
    assert layers[1].size is not None and 0 < layers[1].size < layers[0].size  # what COPY added
    # an unchanged rebuild: every step a cache hit, the same image
    again = _build(bocker, ctx, "-t", "engine-simple").stdout
    assert again.count("--> Using cache") == 5
    assert "from the context" not in again
    assert again.splitlines()[-1] == image_id
    # an ignored file changed: still every step a hit
    (ctx / ".dockerignore").write_text("ignored.txt\n")
    (ctx / "ignored.txt").write_text("secret\n")
    again = _build(bocker, ctx, "-t", "engine-simple").stdout
    assert again.count("--> Using cache") == 5 and again.splitlines()[-1] == image_id
    # a changed context file: COPY and what follows miss, ENV still hits
    (ctx / "hello.txt").write_text("changed\n")
    third = _build(bocker, ctx, "-t", "engine-simple").stdout
    assert third.count("--> Using cache") == 1
    assert "changed\n" in third
    assert third.splitlines()[-1] != image_id
    built.append(image_id)


def test_failing_run_leaves_nothing(bocker, paths, tmp_path, built):
    ctx = _context(tmp_path, "FROM busybox\nRUN echo before\nRUN echo out; false\n")
    before_images = {r["id"] for r in images.list_all(paths)}
    before_keys = set(cache.keys(paths))
    proc = _build(bocker, ctx, "-t", "engine-fails", check=False)
    assert proc.returncode == 1
    assert 'building at STEP "RUN echo out; false" (Dockerfile:3): exit status 1' in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert "out\n" in proc.stdout
    assert {r["id"] for r in images.list_all(paths)} == before_images
    # the FROM and the first RUN are stored; the failed step is not
    new = set(cache.keys(paths)) - before_keys
    assert len(new) == 2
    assert all(json.load(open(os.path.join(paths.buildcache, k, "step.json")))["instruction"]
               != "RUN echo out; false" for k in new)
    assert os.listdir(paths.containers) == [] or all(
        not n.startswith("ps_") for n in os.listdir(paths.containers))
    assert not any(n.startswith(".tmp-") for n in os.listdir(paths.buildcache))
    # entries no image uses go with `image prune`
    out = bocker("image", "prune", "-f", check=True).stdout
    assert "Deleted build cache objects:" in out
    assert not set(cache.keys(paths)) & new
    # (the suite's leak check: no cgroup, lease, mount or subvolume beyond the cache's)
    # a RUN that cannot start says which step, in one line
    (ctx / "Dockerfile").write_text("FROM busybox\nUSER nosuchuser\nRUN true\n")
    proc = _build(bocker, ctx, check=False)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith('bocker: building at STEP "RUN true" (Dockerfile:3): ')


MULTI = """\
ARG BASE=busybox
FROM $BASE AS first
ARG WHO=nobody
RUN mkdir /out && echo "made by $WHO" > /out/file
FROM busybox
ARG BASE
COPY --from=first /out/file /file
RUN echo "base $BASE" > /base
CMD cat /file /base
"""


def test_multi_stage_copy_from_and_args(bocker, paths, tmp_path, built):
    ctx = _context(tmp_path, MULTI)
    out = _build(bocker, ctx, "-t", "engine-multi", "--build-arg", "WHO=tester").stdout
    built.append("engine-multi")
    assert "[1/2] STEP 1/3: FROM busybox AS first" in out
    assert "[2/2] STEP 4/5: RUN echo \"base $BASE\" > /base" in out
    run = bocker("run", "--rm", "engine-multi", check=True).stdout
    assert run == "made by tester\nbase busybox\n"
    multi = _image(paths, "engine-multi")
    assert multi["config"]["Cmd"] == ["/bin/sh", "-c", "cat /file /base"]
    assert multi["config"]["ArgsEscaped"] is True  # as BuildKit sets for every CMD
    assert multi["history"][-1]["created_by"] == 'CMD ["/bin/sh" "-c" "cat /file /base"]'
    assert multi["history"][-2]["created_by"] == \
        'RUN |1 BASE=busybox /bin/sh -c echo "base $BASE" > /base # buildkit'

    # --target: only the first stage, its config
    out = _build(bocker, ctx, "-t", "engine-first", "--target", "first",
                 "--build-arg", "WHO=tester").stdout
    built.append("engine-first")
    assert "[2/2]" not in out and out.count("--> Using cache") == 2
    assert bocker("run", "--rm", "engine-first", "cat", "/out/file").stdout == "made by tester\n"
    # another build arg: the RUN that reads it misses
    out = _build(bocker, ctx, "--build-arg", "WHO=other", "-q", "--iidfile",
                 str(tmp_path / "iid"), "--rm", "--force-rm").stdout
    image_id = out.strip()
    built.append(image_id)
    assert out == image_id + "\n" and image_id.startswith("img_")
    assert (tmp_path / "iid").read_text() == image_id
    assert bocker("run", "--rm", image_id, check=True).stdout.startswith("made by other\n")


def test_config_instructions_as_docker(bocker, paths, tmp_path, built):
    ctx = _context(tmp_path, """\
FROM busybox
MAINTAINER someone@example.com
LABEL a=1 "b c"="d e"
EXPOSE 80 53/udp 8000-8001
VOLUME ["/data"]
USER 1000:1000
STOPSIGNAL SIGINT
SHELL ["/bin/sh", "-xc"]
ENTRYPOINT echo hi
HEALTHCHECK --interval=30s --timeout=3s --retries=2 CMD wget -q localhost || exit 1
ONBUILD RUN echo child
""")
    out = _build(bocker, ctx, "-t", "engine-config", "--label", "from=cli")
    built.append("engine-config")
    assert out.returncode == 0
    record = _image(paths, "engine-config")
    c = record["config"]
    assert c["Labels"] == {"a": "1", "b c": "d e", "from": "cli"}
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert c["Volumes"] == {"/data": {}}
    assert c["User"] == "1000:1000" and c["StopSignal"] == "SIGINT"
    assert c["Shell"] == ["/bin/sh", "-xc"]
    assert c["Entrypoint"] == ["/bin/sh", "-xc", "echo hi"]
    assert "Cmd" not in c or c["Cmd"] is None  # the base's Cmd reset by ENTRYPOINT
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
                                "Interval": 30 * 10**9, "Timeout": 3 * 10**9, "Retries": 2}
    assert c["OnBuild"] == ["RUN echo child"]
    assert record["author"] == "someone@example.com"
    # BuildKit's history texts; ONBUILD has no entry
    texts = [h["created_by"] for h in record["history"]][-9:]
    assert texts == ["MAINTAINER someone@example.com", 'LABEL a=1 "b c"="d e"',
                     "EXPOSE map[53/udp:{} 80/tcp:{} 8000/tcp:{} 8001/tcp:{}]", "VOLUME [/data]",
                     "USER 1000:1000", "STOPSIGNAL SIGINT", "SHELL [/bin/sh -xc]",
                     'ENTRYPOINT ["/bin/sh" "-xc" "echo hi"]',
                     'HEALTHCHECK &{["CMD-SHELL" "wget -q localhost || exit 1"] "30s" "3s" "0s" '
                     '"0s" \'\\x02\'}']
    assert all(h.get("empty_layer") for h in record["history"][-9:])


def test_bad_input_is_one_line(bocker, tmp_path):
    ctx = _context(tmp_path, "FROM busybox\n")
    for args, message in ((["--network", "nope"], "invalid network"),
                          (["--target", "missing"], "target stage 'missing'"),
                          (["-t", "Bad:Name"], "invalid image name"),
                          (["-f", str(tmp_path / "none")], "cannot read the Dockerfile")):
        proc = _build(bocker, ctx, *args, check=False)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.splitlines()) == 1


def test_scratch_user_tty_and_onbuild(bocker, paths, tmp_path, built):
    ctx = _context(tmp_path, """\
FROM busybox AS tools
RUN echo 'builder:x:1234:1234::/:/bin/sh' >> /etc/passwd
USER builder
RUN id -u > /tmp/uid && echo one && echo two
FROM scratch
COPY --from=tools /bin/busybox /bin/
COPY --from=tools /tmp/uid /uid
""")
    proc = bocker("build", "--progress", "tty", "-t", "engine-scratch", str(ctx), timeout=180)
    built.append("engine-scratch")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" in proc.stdout and "one" in proc.stdout  # shown dimmed, then folded
    record = _image(paths, "engine-scratch")
    assert record["config"] == {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                                        "/sbin:/bin"], "WorkingDir": "/"}
    root = images.rootfs(paths, record["id"])
    assert sorted(os.listdir(root)) == ["bin", "uid"]
    assert open(os.path.join(root, "uid")).read() == "1234\n"
    # an image with ONBUILD triggers as a base: refused, in one line
    ctx2 = tmp_path / "ctx2"
    ctx2.mkdir()
    (ctx2 / "Dockerfile").write_text("FROM busybox\nONBUILD RUN echo child\n")
    _build(bocker, ctx2, "-t", "engine-parent")
    built.append("engine-parent")
    (ctx2 / "Dockerfile").write_text("FROM engine-parent\n")
    proc = _build(bocker, ctx2, check=False)
    assert proc.returncode == 1 and "ONBUILD" in proc.stderr


def test_dockerignore_and_platform(bocker, paths, tmp_path, built):
    ctx = _context(tmp_path, "FROM busybox\nCOPY . /ctx/\n", **{
        ".dockerignore": "*.log\n!keep.log\n", "a.log": "x", "keep.log": "y", "sub/b.txt": "z"})
    from bocker.image import platforms

    host = platforms.host_platform()
    out = _build(bocker, ctx, "-q", "--platform", f"{host[0]}/{host[1]}").stdout
    image_id = out.strip()
    built.append(image_id)
    record = _image(paths, image_id)
    assert (record["os"], record["architecture"]) == host[:2]
    root = images.rootfs(paths, image_id)
    assert sorted(os.listdir(os.path.join(root, "ctx"))) == [".dockerignore", "Dockerfile",
                                                              "keep.log", "sub"]
    # an image is never relabelled: a base of another platform is refused
    other = "linux/s390x" if host[1] != "s390x" else "linux/amd64"
    proc = _build(bocker, ctx, "--platform", other, check=False)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert f"FROM busybox: the image is {host[0]}/{host[1]}, not {other}" in proc.stderr
    # scratch is the platform asked for
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY keep.log /\n")
    out = _build(bocker, ctx, "-q", "--platform", other).stdout
    built.append(out.strip())
    assert _image(paths, out.strip())["architecture"] == other.split("/")[1]


def test_unneeded_stages_are_skipped(bocker, paths, tmp_path, built):
    ctx = _context(tmp_path, """\
FROM busybox AS base
RUN echo base > /base
FROM busybox AS unused
RUN false
FROM base
RUN cat /base
""")
    out = _build(bocker, ctx).stdout
    built.append(out.splitlines()[-1])
    assert "RUN false" not in out
    assert "[1/3] STEP 2/2: RUN echo base > /base" in out
    assert "[3/3] STEP 2/2: RUN cat /base" in out
    # --target names the unused stage: now it is built (and fails)
    proc = _build(bocker, ctx, "--target", "unused", check=False)
    assert proc.returncode == 1 and 'STEP "RUN false"' in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_a_killed_build_leaves_no_container(bocker, paths, tmp_path, built, sig):
    # TERM unwinds the build: its RUN's container is killed and removed on
    # the way out.  KILL leaves it to its monitor, which removes it once it
    # ends (the RUN's container is a --rm one whose remover was the build).
    naptime = 300 if sig == signal.SIGTERM else 3
    ctx = _context(tmp_path, f"FROM busybox\nRUN echo started; sleep {naptime}\n")
    env = {**os.environ, **({"BOCKER_NO_SERVER": "1"} if CLI_MODE == "direct" else {})}
    proc = subprocess.Popen([BOCKER, "build", "--progress", "plain", str(ctx)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stdout:  # the RUN runs once its first line is out
            if line == "started\n":
                break
        before = {r["id"] for r in images.list_all(paths)}
        os.kill(proc.pid, sig)
        assert proc.wait(timeout=60) == (128 + sig if sig == signal.SIGTERM else -sig)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert wait_for(lambda: not [n for n in os.listdir(paths.containers)
                                 if n.startswith("ps_")], timeout=30)
    assert {r["id"] for r in images.list_all(paths)} == before
    assert not [k for k in cache.keys(paths)
                if "sleep" in (cache.lookup(paths, k) or {}).get("instruction", "")]


def test_system_df_counts_the_build_cache(bocker, paths, tmp_path, built):
    ctx = _context(tmp_path, "FROM busybox\nRUN head -c 200000 /dev/zero >/big\n"
                             "FROM busybox\nCOPY --from=0 /big /copied\n")
    built.append(_build(bocker, ctx, "-q").stdout.strip())
    row = [line.split() for line in bocker("system", "df", check=True).stdout.splitlines()
           if line.startswith("Build Cache")]
    assert row and row[0][2] == str(len(cache.keys(paths)))
    count, active, size, free = cache.usage(
        paths, cache.used_keys(images.list_all(paths)))
    # the first stage's entries stand under no image: reclaimable; the
    # copy the image holds is not
    assert count == len(cache.keys(paths)) and 0 < active < count
    assert size >= 400000 and 200000 <= free < size
