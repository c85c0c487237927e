"""Every kind of pulled image runs a command (`bocker run`, the lead's), and
its config is honoured: Entrypoint + Cmd, a COMMAND replacing Cmd, Env,
WorkingDir, User.  Uses the shared session root (conftest.py's `paths`)."""
import pytest

from bocker.image import images, pull

from conftest_pull import registries  # noqa: F401
from test_pull import CONFIG, pushed  # noqa: F401


@pytest.fixture
def pulled(paths):
    """pull(ref, **kw) -> image ID into the shared root; removed afterwards."""
    made = []

    def go(ref, **kw):
        made.append(pull.pull(paths, ref, **kw).image_id)
        return made[-1]
    yield go
    for image_id in made:
        images.remove(paths, image_id)


def test_entrypoint_cmd_env_workdir(bocker, pulled, pushed):
    image = pulled(f"{pushed['host']}/bkp/single:v1")
    proc = bocker("run", "--rm", image)
    assert (proc.returncode, proc.stdout) == (0, "hi\n"), proc.stderr
    proc = bocker("run", "--rm", image, "/bin/sh", "-c", "echo $GREETING; pwd; id -u")
    assert proc.stdout == "hello\n/root\n0\n", proc.stderr


@pytest.mark.parametrize("repo, check, want", [
    ("v2s2", "cat /etc/marker", "v2s2\n"),
    ("zstd", "cat /etc/marker", "zstd\n"),
    ("mixed", "cat /etc/p", "p\n"),
    ("whiteouts", "ls /opaque; ls /etc/marker /bin/cat /root 2>&1 | wc -l", "new\n3\n"),
])
def test_pulled_images_run(bocker, pulled, pushed, repo, check, want):
    image = pulled(f"{pushed['host']}/bkp/{repo}:v1")
    proc = bocker("run", "--rm", image, "/bin/sh", "-c", check)
    assert (proc.returncode, proc.stdout) == (0, want), proc.stderr


def test_multi_arch_and_auth_images_run(bocker, pulled, pushed, registries, monkeypatch,
                                        tmp_path):
    image = pulled(f"{pushed['host']}/bkp/multi:v1", platform="linux/amd64")
    assert bocker("run", "--rm", image, "cat", "/etc/marker").stdout == "amd64\n"
    image = pulled(f"{registries.tokened}/bkp/auth:v1")
    assert bocker("run", "--rm", image, "cat", "/etc/marker").stdout == "auth\n"
