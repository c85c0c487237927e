"""`bocker build` FROM a registry image (the pull tests' local registry on
loopback): a missing base is pulled; --pull pulls it even when a local
image has its name."""

from bocker.image import images

from conftest_pull import registries  # noqa: F401
from test_pull import pushed  # noqa: F401


def _build(bocker, ctx, *args):
    proc = bocker("build", "-q", *args, str(ctx), timeout=180)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_build_from_a_registry_pulls_and_pull_refreshes(bocker, paths, pushed, tmp_path, built):
    base = f"{pushed['host']}/bkp/single:v1"
    assert bocker("inspect", base).returncode != 0     # not here yet
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    # the base's config (Env GREETING=hello) reaches the RUN
    (ctx / "Dockerfile").write_text(f'FROM {base}\nRUN echo "g=$GREETING" > /g\n')
    built.append(base)
    first = _build(bocker, ctx)
    built.append(first)
    pulled = images.resolve(paths, base)
    assert bocker("run", "--rm", first, "cat", "/g", check=True).stdout == "g=hello\n"
    # the name now means a local image without that Env: a plain build
    # takes it as it is, --pull takes the registry's again
    assert bocker("tag", "busybox", base).returncode == 0
    local = _build(bocker, ctx)
    built.append(local)
    assert bocker("run", "--rm", local, "cat", "/g", check=True).stdout == "g=\n"
    again = _build(bocker, ctx, "--pull")
    built.append(again)
    assert bocker("run", "--rm", again, "cat", "/g", check=True).stdout == "g=hello\n"
    assert images.resolve(paths, base) != images.resolve(paths, "busybox")
    built.append(pulled)
