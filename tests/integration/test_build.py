"""`bocker build` end to end (issue 17), through the CLI:
`bocker build -t NAME CONTEXT`, buildah's output shape
(`[i/n] STEP k/m: INSTRUCTION`, `--> Using cache <12 hex>` on a hit, the
image ID last), exit 1 and one `bocker: ...` line for the user's mistakes.

Each test removes what it built and then the whole build cache (`bocker
builder prune -a -f`): the leak check after it sees no cache entry's
subvolume, no RUN container, no image left.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import own_subvolumes

BUILD_TIMEOUT = 900     # a bound on a hang (gcc in a loaded CI machine), not a timing
STEP = re.compile(r"^(?:\[(\d+)/(\d+)\] )?STEP (\d+)/(\d+): (.*)$")
IMAGE_ID = re.compile(r"^img_[0-9a-f]{12,64}$")

HELLO_C = r"""#include <stdio.h>

int main(void)
{
    puts("hello from a bocker build");
    return 0;
}
"""

MULTI_STAGE = """\
# the compiler's stage: Debian with gcc (tests/integration/buildfixtures.py)
FROM debian-gcc AS compile
COPY hello.c /src/
RUN gcc -static -O2 -o /src/hello /src/hello.c

FROM busybox
COPY --from=compile /src/hello /usr/local/bin/hello
CMD ["/usr/local/bin/hello"]
"""


# ------------------------------------------------------------ helpers

def context(tmp_path, dockerfile, files=None):
    """A build context directory: the Dockerfile and files {relpath: text}."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for rel, text in (files or {}).items():
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(text)
    return str(ctx)


def build(bocker, ctx, *args, ok=True):
    """`bocker build ARGS CTX`; with ok, checked to succeed and to end with
    the image ID.  Returns the CompletedProcess."""
    proc = bocker("build", *args, ctx, timeout=BUILD_TIMEOUT)
    if ok:
        assert proc.returncode == 0, f"build failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        assert IMAGE_ID.match(last_line(proc.stdout)), proc.stdout
    return proc


def last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def steps(proc):
    """The steps a build printed, in order: dicts of stage ("1/2" or None),
    step ("2/3"), instruction, and lines (what came after the STEP line,
    up to the next STEP or COMMIT line)."""
    text = proc.stdout if "STEP " in proc.stdout else proc.stderr
    out = []
    for line in text.splitlines():
        m = STEP.match(line)
        if m:
            stage = f"{m[1]}/{m[2]}" if m[1] else None
            out.append({"stage": stage, "step": f"{m[3]}/{m[4]}", "instruction": m[5], "lines": []})
        elif line.startswith("COMMIT"):
            out.append({"stage": None, "step": None, "instruction": line, "lines": []})
        elif out:
            out[-1]["lines"].append(line)
    return [s for s in out if s["step"]]


def printed(proc, line):
    """Whether the build printed line as a line of its own (a RUN's output,
    not the STEP line that names the command)."""
    return line in (proc.stdout + "\n" + proc.stderr).splitlines()


def hit(step):
    """Whether a step was a cache hit (`--> Using cache <12 hex>`)."""
    return any(re.fullmatch(r"--> Using cache [0-9a-f]{12}", line) for line in step["lines"])


def image_config(bocker, ref):
    """The Config of `bocker inspect IMAGE`."""
    return json.loads(bocker("inspect", ref, check=True).stdout)[0]["Config"]


def buildcache(paths):
    """The cache's entry names (none before the first build)."""
    try:
        return sorted(os.listdir(os.path.join(paths.root, "buildcache")))
    except FileNotFoundError:
        return []


def image_ids(bocker):
    return sorted(bocker("images", "-q", "--no-trunc", check=True).stdout.split())


# ------------------------------------------------------------ the tests

def test_debian_image_compiles(bocker, debian_image):
    """The fixture's image: gcc in it makes a static binary."""
    proc = bocker("run", "--rm", debian_image, "sh", "-c",
                  "printf 'int main(void){return 0;}' >/tmp/t.c && gcc -static -o /tmp/t /tmp/t.c"
                  " && /tmp/t && echo ok", timeout=300)
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr


def test_multi_stage_compiles_in_debian_and_runs_in_busybox(bocker, built, debian_image, tmp_path):
    ctx = context(tmp_path, MULTI_STAGE, {"hello.c": HELLO_C})
    proc = build(bocker, ctx, "-t", "build-hello:latest")
    built.append("build-hello:latest")
    image_id = last_line(proc.stdout)
    assert [(s["stage"], s["step"], s["instruction"]) for s in steps(proc)] == [
        ("1/2", "1/3", "FROM debian-gcc AS compile"),
        ("1/2", "2/3", "COPY hello.c /src/"),
        ("1/2", "3/3", "RUN gcc -static -O2 -o /src/hello /src/hello.c"),
        ("2/2", "1/3", "FROM busybox"),
        ("2/2", "2/3", "COPY --from=compile /src/hello /usr/local/bin/hello"),
        ("2/2", "3/3", 'CMD ["/usr/local/bin/hello"]'),
    ], proc.stdout
    assert "COMMIT build-hello:latest" in proc.stdout.splitlines()
    assert "Successfully tagged build-hello:latest" in proc.stdout.splitlines()
    info = json.loads(bocker("inspect", "build-hello", check=True).stdout)[0]
    assert info["Id"] == image_id and info["RepoTags"] == ["build-hello:latest"]
    run = bocker("run", "--rm", "build-hello", timeout=120)
    assert (run.returncode, run.stdout) == (0, "hello from a bocker build\n"), run.stderr
    # the final image is the busybox stage: no compiler in it
    gcc = bocker("run", "--rm", "build-hello", "ls", "/usr/bin/gcc", timeout=120)
    assert gcc.returncode != 0, gcc.stdout


def test_unchanged_rebuild_is_all_cache_hits(bocker, built, debian_image, tmp_path):
    dockerfile = MULTI_STAGE.replace("RUN gcc", "RUN echo compiling-now && gcc")
    ctx = context(tmp_path, dockerfile, {"hello.c": HELLO_C})
    first = build(bocker, ctx, "-t", "build-cached")
    built.extend(["build-cached", last_line(first.stdout)])  # --no-cache's build takes the tag
    assert printed(first, "compiling-now")
    again = build(bocker, ctx, "-t", "build-cached")
    rebuilt = steps(again)
    assert len(rebuilt) == 6
    missed = [s["instruction"] for s in rebuilt
              if not s["instruction"].startswith("FROM ") and not hit(s)]
    assert not missed, f"cache misses on an unchanged rebuild: {missed}\n{again.stdout}"
    assert not printed(again, "compiling-now")                   # the RUN did not run
    assert last_line(again.stdout) == last_line(first.stdout)    # the same image
    # -q: the ID alone
    quiet = build(bocker, ctx, "-q", "-t", "build-cached")
    assert quiet.stdout == last_line(first.stdout) + "\n"
    # --no-cache runs every step again
    cold = build(bocker, ctx, "--no-cache", "-t", "build-cached")
    assert not any(hit(s) for s in steps(cold)), cold.stdout
    assert printed(cold, "compiling-now")


def test_a_changed_context_file_misses_from_its_copy_on(bocker, built, tmp_path):
    dockerfile = ("FROM busybox\n"
                  "RUN echo first-step >/first\n"
                  "COPY a.txt /a.txt\n"
                  "RUN cat /a.txt >/b.txt\n"
                  "COPY other.txt /other.txt\n")
    ctx = context(tmp_path, dockerfile, {"a.txt": "one\n", "other.txt": "same\n"})
    first = build(bocker, ctx, "-t", "build-miss")
    built.extend(["build-miss", last_line(first.stdout)])   # the second build takes the tag
    with open(os.path.join(ctx, "a.txt"), "w") as f:
        f.write("two\n")
    again = build(bocker, ctx, "-t", "build-miss")
    got = {s["instruction"]: hit(s) for s in steps(again)[1:]}     # after the FROM
    assert got == {"RUN echo first-step >/first": True,
                   "COPY a.txt /a.txt": False, "RUN cat /a.txt >/b.txt": False,
                   "COPY other.txt /other.txt": False}, again.stdout
    assert last_line(again.stdout) != last_line(first.stdout)
    run = bocker("run", "--rm", "build-miss", "cat", "/b.txt", check=True)
    assert run.stdout == "two\n"
    # the first image, now untagged, keeps its content
    old = bocker("run", "--rm", last_line(first.stdout), "cat", "/b.txt", check=True)
    assert old.stdout == "one\n"


def test_a_failing_run_leaves_nothing(bocker, built, paths, tmp_path):
    ctx = context(tmp_path, "FROM busybox\n"
                            "RUN echo fine >/fine\n"
                            "RUN echo output-of-the-failing-step && exit 3\n"
                            "CMD [\"cat\", \"/fine\"]\n")
    with open(os.path.join(ctx, "Dockerfile.ok"), "w") as f:
        f.write("FROM busybox\nRUN echo fine >/fine\n")
    # the steps before the failing one, built and cached first: the failed
    # build must then add nothing at all
    ok = build(bocker, ctx, "-f", os.path.join(ctx, "Dockerfile.ok"))
    built.append(last_line(ok.stdout))
    cache, images, subvolumes = buildcache(paths), image_ids(bocker), own_subvolumes(paths)
    containers = sorted(os.listdir(paths.containers))
    proc = build(bocker, ctx, "-t", "build-fails", ok=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert printed(proc, "output-of-the-failing-step")    # the RUN's output shown
    assert "Traceback" not in proc.stderr
    assert bocker("inspect", "build-fails").returncode == 1
    assert buildcache(paths) == cache
    assert image_ids(bocker) == images
    assert own_subvolumes(paths) == subvolumes
    assert sorted(os.listdir(paths.containers)) == containers
    # buildah's words, with bocker's one error prefix
    errors = [line for line in proc.stderr.splitlines() if "building at STEP" in line]
    assert errors == ['bocker: building at STEP "RUN echo output-of-the-failing-step && exit 3"'
                      ' (Dockerfile:3): exit status 3'], proc.stderr


def test_hostile_copy_sources_are_refused(bocker, built, paths, tmp_path):
    """Sources that would reach outside the context: a symlink to a file
    outside, a symlink to a directory outside, `../`.  Each is refused
    (exit 1, one error line); the file outside never reaches an image."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host-secret-marker\n")
    ctx = context(tmp_path, "FROM busybox\n", {"inside.txt": "fine\n"})
    os.symlink(str(outside / "secret"), os.path.join(ctx, "abs-link"))
    os.symlink("../outside/secret", os.path.join(ctx, "rel-link"))
    os.symlink(str(outside), os.path.join(ctx, "dir-link"))
    os.mkdir(os.path.join(ctx, "sub"))
    built.append("build-hostile")       # should one be built after all
    images = image_ids(bocker)
    for source in ("abs-link", "rel-link", "dir-link/secret", "../outside/secret",
                   "sub/../../outside/secret", "/../outside/secret"):
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(f"FROM busybox\nCOPY {source} /got\nRUN cat /got\n")
        proc = build(bocker, ctx, "-t", "build-hostile", ok=False)
        assert proc.returncode == 1, (source, proc.stdout, proc.stderr)
        assert "host-secret-marker" not in proc.stdout + proc.stderr, source
        # BuildError: one line, naming the Dockerfile's line
        assert proc.stderr.count("\n") == 1 and "Dockerfile:2" in proc.stderr, (source, proc.stderr)
        assert image_ids(bocker) == images, source


def test_a_symlink_inside_a_copied_directory_is_copied_as_a_link(bocker, built, tmp_path):
    """Docker copies a link inside a copied directory as the link itself,
    never what it points to on the host."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host-secret-marker\n")
    ctx = context(tmp_path, "FROM busybox\nCOPY dir/ /d/\n", {"dir/plain.txt": "plain\n"})
    os.symlink(str(outside / "secret"), os.path.join(ctx, "dir/link"))
    build(bocker, ctx, "-t", "build-links")
    built.append("build-links")
    run = bocker("run", "--rm", "build-links", "sh", "-c",
                 "readlink /d/link; cat /d/plain.txt; cat /d/link 2>/dev/null || echo unreadable",
                 check=True)
    assert run.stdout == f"{outside / 'secret'}\nplain\nunreadable\n"


def test_dockerignore_is_honoured(bocker, built, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nCOPY . /ctx/\n", {
        ".dockerignore": "# comment\n*.log\nsecret/\n!keep.log\n**/*.tmp\nDockerfile.*\n",
        "data.txt": "data\n", "a.log": "ignored\n", "keep.log": "kept\n",
        "secret/key": "ignored\n", "deep/er/x.tmp": "ignored\n", "deep/er/y.txt": "y\n",
        "Dockerfile.other": "ignored\n"})
    first = build(bocker, ctx, "-t", "build-ignore")
    built.append("build-ignore")
    found = bocker("run", "--rm", "build-ignore", "find", "/ctx", "-type", "f", check=True)
    assert sorted(found.stdout.split()) == ["/ctx/.dockerignore", "/ctx/Dockerfile",
                                            "/ctx/data.txt", "/ctx/deep/er/y.txt",
                                            "/ctx/keep.log"]
    # an ignored file is not in the context: changing it busts no cache,
    # and naming it is an error
    with open(os.path.join(ctx, "a.log"), "w") as f:
        f.write("changed\n")
    again = build(bocker, ctx, "-t", "build-ignore")
    assert [hit(s) for s in steps(again)][1:] == [True], again.stdout      # after the FROM
    assert last_line(again.stdout) == last_line(first.stdout)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox\nCOPY a.log /\n")
    proc = build(bocker, ctx, "-t", "build-ignore-named", ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr


CONFIG_DOCKERFILE = r"""ARG VERSION=1.2
FROM busybox
ARG VERSION
ENV PATH=/bin:/usr/bin
ENV abc=hello
ENV abc=bye def=$abc
ENV ghi=$abc
LABEL "com.example.vendor"="ACME Incorporated"
LABEL version="$VERSION"
LABEL description="This text illustrates \
that label-values can span multiple lines."
ENV DIRPATH=/app
WORKDIR $DIRPATH
WORKDIR sub
USER 1000:1000
EXPOSE 80 443/udp 8080/tcp
VOLUME ["/data"]
VOLUME /var/log /var/db
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5m --timeout=3s --retries=3 CMD wget -q -O- http://localhost/ || exit 1
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/echo"]
CMD echo $abc
"""


def test_config_is_what_docker_documents(bocker, built, tmp_path):
    """Each field as the Dockerfile reference says Docker sets it (its
    examples where it has one: ENV's abc/def/ghi, LABEL's multi-line
    description); ARG values do not reach Env; --label adds a label."""
    ctx = context(tmp_path, CONFIG_DOCKERFILE)
    build(bocker, ctx, "-t", "build-config", "--label", "from.cli=yes")
    built.append("build-config")
    config = image_config(bocker, "build-config")
    expected = {
        "Env": ["PATH=/bin:/usr/bin", "abc=bye", "def=hello", "ghi=bye", "DIRPATH=/app"],
        "Cmd": ["/bin/sh", "-ec", "echo $abc"],
        "Entrypoint": ["/bin/echo"],
        "WorkingDir": "/app/sub",
        "User": "1000:1000",
        "ExposedPorts": {"80/tcp": {}, "443/udp": {}, "8080/tcp": {}},
        "Labels": {"com.example.vendor": "ACME Incorporated", "version": "1.2",
                   "description": "This text illustrates that label-values can span "
                                  "multiple lines.",
                   "from.cli": "yes"},
        "Volumes": {"/data": {}, "/var/log": {}, "/var/db": {}},
        "StopSignal": "SIGINT",
        "Healthcheck": {"Test": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"],
                        "Interval": 300_000_000_000, "Timeout": 3_000_000_000, "Retries": 3},
        "Shell": ["/bin/sh", "-ec"],
    }
    for field, value in expected.items():
        assert config.get(field) == value, (field, config.get(field))
    # the image runs as configured: ENTRYPOINT + CMD, in the WORKDIR, as USER
    run = bocker("run", "--rm", "build-config", check=True)
    assert run.stdout == "/bin/sh -ec echo $abc\n"
    where = bocker("run", "--rm", "--entrypoint", "sh", "build-config", "-c", "pwd; id -u",
                   check=True)
    assert where.stdout == "/app/sub\n1000\n"
    # --build-arg overrides the ARG's default
    build(bocker, ctx, "-t", "build-config-arg", "--build-arg", "VERSION=2.0")
    built.append("build-config-arg")
    assert image_config(bocker, "build-config-arg")["Labels"]["version"] == "2.0"


def test_entrypoint_resets_the_base_images_cmd(bocker, built, tmp_path):
    """The reference: "If CMD is defined from the base image, setting
    ENTRYPOINT will reset CMD to an empty value"."""
    base = context(tmp_path, 'FROM busybox\nCMD ["echo", "from-base"]\n')
    build(bocker, base, "-t", "build-cmd-base")
    built.append("build-cmd-base")
    assert image_config(bocker, "build-cmd-base")["Cmd"] == ["echo", "from-base"]
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text('FROM build-cmd-base\nENTRYPOINT ["/bin/echo", "child"]\n')
    build(bocker, str(child), "-t", "build-cmd-child")
    built.insert(0, "build-cmd-child")
    config = image_config(bocker, "build-cmd-child")
    assert config.get("Cmd") is None and config["Entrypoint"] == ["/bin/echo", "child"], config
    assert bocker("run", "--rm", "build-cmd-child", check=True).stdout == "child\n"


def test_history_lists_each_instruction(bocker, built, tmp_path):
    ctx = context(tmp_path, "FROM busybox\n"
                            "ENV GREETING=hi\n"
                            "COPY data.bin /data.bin\n"
                            "RUN echo made >/made\n"
                            "LABEL stage=history\n"
                            'CMD ["cat", "/made"]\n', {"data.bin": "x" * 4096})
    build(bocker, ctx, "-t", "build-history")
    built.append("build-history")
    out = bocker("history", "--no-trunc", "--no-human", "--format", "{{.CreatedBy}}\t{{.Size}}",
                 "build-history", check=True).stdout
    rows = [line.rsplit("\t", 1) for line in out.splitlines()]
    # as Docker's: the steps, newest first, then the base image's history
    base = bocker("history", "--no-trunc", "--format", "{{.CreatedBy}}", "busybox",
                  check=True).stdout.splitlines()
    assert [by for by, _ in rows[5:]] == base, out
    newest = rows[:5]     # newest first: CMD, LABEL, RUN, COPY, ENV
    for (by, size), words, layer in zip(newest, (
            ("CMD", "/made"), ("LABEL", "stage=history"), ("echo made >/made",),
            ("COPY", "/data.bin"), ("ENV", "GREETING=hi")),
            (False, False, True, True, False)):
        assert all(w in by for w in words), (words, by, out)
        if layer:
            assert size.isdigit() and int(size) >= (4096 if "COPY" in by else 5), (by, size, out)
        else:
            assert size == "0", (by, size, out)


@pytest.fixture
def podman_store():
    """argv prefix and env of a podman with a private vfs store and tmp
    (under /tmp/bocker-test-oci-*, which the CI's cleanup knows), removed
    after the test."""
    podman = shutil.which("podman")
    assert podman, "podman is not installed (scripts/test.sh installs it with apt)"
    base = tempfile.mkdtemp(prefix="bocker-test-oci-build-")
    d = {name: os.path.join(base, name) for name in ("root", "runroot", "tmp")}
    for path in d.values():
        os.mkdir(path)
    storage = os.path.join(base, "storage.conf")
    with open(storage, "w") as f:
        f.write(f'[storage]\ndriver = "vfs"\nrunroot = "{d["runroot"]}"\n'
                f'graphroot = "{d["root"]}"\n')
    conf = os.path.join(base, "containers.conf")
    with open(conf, "w") as f:
        f.write(f'[engine]\nevents_logger = "file"\nevents_logfile_path = "{d["tmp"]}/events.log"\n'
                f'tmp_dir = "{d["tmp"]}"\nimage_copy_tmp_dir = "{d["tmp"]}"\n')
    env = {**os.environ, "CONTAINERS_CONF": conf, "CONTAINERS_STORAGE_CONF": storage,
           "TMPDIR": d["tmp"]}
    argv = [podman, "--root", d["root"], "--runroot", d["runroot"], "--storage-driver", "vfs"]
    try:
        yield argv, env
    finally:
        subprocess.run([*argv, "rmi", "-a", "-f"], env=env, capture_output=True, timeout=120)
        subprocess.run(["rm", "-rf", "--one-file-system", base], check=False)


def test_saved_build_loads_in_podman_with_a_layer_per_step(bocker, built, tmp_path,
                                                           podman_store):
    ctx = context(tmp_path, "FROM busybox\n"
                            "RUN echo one >/one\n"
                            "ENV X=1\n"
                            "COPY f.txt /f.txt\n"
                            "RUN rm /one\n"
                            'CMD ["cat", "/f.txt"]\n', {"f.txt": "from the context\n"})
    build(bocker, ctx, "-t", "build-save")
    built.append("build-save")
    archive = str(tmp_path / "build-save.tar")
    bocker("save", "-o", archive, "build-save", check=True, timeout=300)
    argv, env = podman_store

    def podman(*args):
        proc = subprocess.run([*argv, *args], env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, f"podman {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    podman("load", "-i", archive)
    (image,) = podman("images", "-q", "--no-trunc").split()
    info = json.loads(podman("image", "inspect", image))[0]
    # busybox (the FROM's layer), RUN, COPY, RUN: one layer each
    assert len(info["RootFS"]["Layers"]) == 4, info["RootFS"]
    assert info["Config"].get("Cmd") == ["cat", "/f.txt"] and "X=1" in info["Config"]["Env"]
    mounted = podman("image", "mount", image).strip()
    try:
        assert open(os.path.join(mounted, "f.txt")).read() == "from the context\n"
        assert not os.path.lexists(os.path.join(mounted, "one"))    # the whiteout applied
        assert os.path.exists(os.path.join(mounted, "bin/busybox"))
    finally:
        podman("image", "unmount", image)


# ------------------------------------------------------------ instructions as Docker runs them

INSTRUCTIONS_DOCKERFILE = r"""FROM busybox
ARG X=5
ENV E=env-value
COPY a.glob /early.glob
RUN echo "arg=$X env=$E" >/obs-args
RUN ["/bin/sh", "-c", "echo exec-form >/obs-exec"]
WORKDIR /w
RUN pwd >/obs-pwd
USER 1000:1000
RUN id -u >/tmp/obs-uid
USER root
SHELL ["/bin/sh", "-ec", "echo shell-used >/obs-shell; eval \"$1\"", "-"]
RUN true
SHELL ["/bin/sh", "-c"]
COPY --chown=1000:1000 --chmod=640 f.txt /owned
COPY *.glob /globbed/
COPY dir /dircontents/
ADD arch.tar.gz /extracted/
ENTRYPOINT echo hi
"""

OBSERVE = ("cat /obs-args /obs-exec /obs-pwd /tmp/obs-uid /obs-shell; "
           "stat -c '%u:%g %a' /owned; ls /globbed; ls /dircontents; ls /extracted")


def test_instructions_run_as_docker_runs_them(bocker, built, tmp_path):
    """RUN sees ARG and ENV, the WORKDIR, the USER, the SHELL; exec form;
    COPY --chown/--chmod, globs, a directory's contents; ADD extracts a
    local archive; a shell-form ENTRYPOINT runs under /bin/sh -c."""
    import tarfile

    ctx = context(tmp_path, INSTRUCTIONS_DOCKERFILE, {
        "f.txt": "owned\n", "a.glob": "a\n", "b.glob": "b\n", "c.other": "c\n",
        "dir/inner.txt": "inner\n", "payload/packed.txt": "packed\n"})
    with tarfile.open(os.path.join(ctx, "arch.tar.gz"), "w:gz") as tar:
        tar.add(os.path.join(ctx, "payload/packed.txt"), arcname="packed.txt")
    first = build(bocker, ctx, "-t", "build-instr")
    built.append("build-instr")
    run = bocker("run", "--rm", "--entrypoint", "sh", "build-instr", "-c", OBSERVE, check=True)
    assert run.stdout.split("\n") == [
        "arg=5 env=env-value", "exec-form", "/w", "1000", "shell-used", "1000:1000 640",
        "a.glob", "b.glob", "inner.txt", "packed.txt", ""], run.stdout
    config = image_config(bocker, "build-instr")
    assert config["Entrypoint"] == ["/bin/sh", "-c", "echo hi"] and not config.get("Cmd")
    assert all(not e.startswith("X=") for e in config["Env"]), config["Env"]  # ARG is not ENV
    # another build arg: the RUN steps miss (it is in their environment);
    # the reference: "a cache miss occurs upon its first usage, not its
    # definition", so the COPY between the ARG and the RUN hits
    again = build(bocker, ctx, "-t", "build-instr", "--build-arg", "X=6")
    built.append(last_line(first.stdout))
    run = bocker("run", "--rm", "--entrypoint", "cat", "build-instr", "/obs-args", check=True)
    assert run.stdout == "arg=6 env=env-value\n"
    got = {s["instruction"]: hit(s) for s in steps(again)}
    assert not got['RUN echo "arg=$X env=$E" >/obs-args'], again.stdout
    assert got["COPY a.glob /early.glob"], again.stdout


def test_add_of_a_url_is_refused(bocker, built, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nADD http://127.0.0.1:9/x /x\n")
    images = image_ids(bocker)
    proc = build(bocker, ctx, "-t", "build-url", ok=False)
    built.append("build-url")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "ADD from a URL is not supported" in proc.stderr and "Dockerfile:2" in proc.stderr
    assert image_ids(bocker) == images


def test_target_and_a_dockerfile_on_stdin(bocker, built, tmp_path):
    dockerfile = ("FROM busybox AS first\nRUN echo first >/stage\n"
                  "FROM busybox\nRUN echo second >/stage\n")
    ctx = context(tmp_path, "")
    proc = bocker("build", "-f", "-", "-t", "build-stdin", "--target", "first", ctx,
                  input=dockerfile, timeout=BUILD_TIMEOUT)
    built.append("build-stdin")
    assert proc.returncode == 0, proc.stderr
    run = bocker("run", "--rm", "build-stdin", "cat", "/stage", check=True)
    assert run.stdout == "first\n"


def test_two_builds_racing_both_succeed_and_leave_one_cache(bocker, built, paths, tmp_path):
    """The same Dockerfile built twice at once: both succeed (each makes
    its entries in a temp dir and renames them; the loser's are removed),
    and a third build is all hits."""
    from conftest import BOCKER

    ctx = context(tmp_path, "FROM busybox\nRUN echo raced >/raced\nCOPY f.txt /f.txt\n",
                  {"f.txt": "f\n"})
    env = dict(os.environ)
    procs = [subprocess.Popen([BOCKER, "build", ctx], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = [p.communicate(timeout=BUILD_TIMEOUT) + (p.returncode,) for p in procs]
    for out, err, status in results:
        built.append(last_line(out))
        assert status == 0 and IMAGE_ID.match(last_line(out)), (out, err)
    third = build(bocker, ctx, "-t", "build-raced")
    built.insert(0, "build-raced")
    assert all(hit(s) for s in steps(third)[1:]), third.stdout
    assert not [n for n in buildcache(paths) if not re.fullmatch(r"[0-9a-f]{64}", n)], \
        buildcache(paths)    # no temp dir of the loser left
    run = bocker("run", "--rm", "build-raced", "cat", "/raced", "/f.txt", check=True)
    assert run.stdout == "raced\nf\n"
