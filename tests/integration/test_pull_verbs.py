"""run's Docker-style pull (--pull missing|always|never, --platform, the
progress on stderr, the container's output alone on stdout), history kept
from a pull, and logout; against the local docker-registry fixtures (all
traffic on loopback).  Uses the shared session root (conftest.py's paths)."""
import json
import os

import pytest

from bocker.image import images

from conftest_pull import registries  # noqa: F401
from test_pull import docker_env, pushed  # noqa: F401


@pytest.fixture
def gone_afterwards(paths):
    """Image refs appended here are removed (if present) after the test."""
    refs = []
    yield refs
    for ref in refs:
        try:
            images.remove(paths, ref)
        except Exception:
            pass


def test_run_pulls_a_missing_image_progress_on_stderr(bocker, pushed, gone_afterwards, paths):
    ref = f"{pushed['host']}/bkp/single:other"
    gone_afterwards.append(ref)
    proc = bocker("run", "--rm", "--pull", "never", ref, "/bin/sh", "-c", "echo out")
    assert (proc.returncode, proc.stdout) == (125, "")
    assert proc.stderr == f"bocker: No image named '{ref}' exists\n"
    proc = bocker("run", "--rm", ref, "/bin/sh", "-c", "echo out")
    assert (proc.returncode, proc.stdout) == (0, "out\n"), proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == f"Unable to find image '{ref}' locally"
    assert any("Downloaded" in ln for ln in lines[1:]), lines
    image_id = images.resolve(paths, ref)
    # here now: no pull (nothing on stderr); --pull always asks again (up to date)
    proc = bocker("run", "--rm", ref, "/bin/sh", "-c", "echo again")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "again\n", "")
    proc = bocker("run", "--rm", "--pull", "always", ref, "/bin/sh", "-c", "echo again")
    assert (proc.returncode, proc.stdout) == (0, "again\n"), proc.stderr
    assert "Unable to find" not in proc.stderr and images.resolve(paths, ref) == image_id
    proc = bocker("run", "--rm", "--pull", "sometimes", ref, "true")
    assert proc.returncode in (2, 125) and proc.stdout == ""  # click's Choice: a usage error


def test_run_platform_picks_from_an_index(bocker, pushed, gone_afterwards):
    ref = f"{pushed['host']}/bkp/multi:v1"
    gone_afterwards.append(ref)
    proc = bocker("run", "--rm", "--platform", "linux/arm64", ref, "cat", "/etc/marker")
    assert (proc.returncode, proc.stdout) == (0, "arm64\n"), proc.stderr
    proc = bocker("run", "--rm", "--platform", "bogus", ref, "true")
    assert (proc.returncode, proc.stderr) == (
        125, "bocker: invalid platform 'bogus': use os/arch[/variant]\n")


def test_run_of_an_unpullable_missing_image_is_125(bocker):
    proc = bocker("run", "--rm", "img_000000000000", "true")
    assert (proc.returncode, proc.stderr) == (125, "bocker: No image named 'img_000000000000' "
                                                   "exists\n")
    proc = bocker("run", "--rm", "localhost:1/nosuch", "true")
    assert proc.returncode == 125 and "cannot reach registry localhost:1" in proc.stderr


def test_history_kept_from_the_pull(bocker, pushed, gone_afterwards, paths):
    ref = f"{pushed['host']}/bkp/whiteouts:v1"
    gone_afterwards.append(ref)
    assert bocker("pull", ref).returncode == 0
    image_id = images.resolve(paths, ref)
    assert images.load(paths, image_id)["history"] == [{"created_by": "bkp test"}] * 3
    lines = bocker("history", ref, check=True).stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert [ln.split()[0] for ln in lines[1:]] == [image_id, "<missing>", "<missing>"]
    assert lines[-1].split()[-1].endswith("B")  # the busybox layer's size, e.g. 2.1MB
    assert all("bkp test" in ln for ln in lines[1:])
    assert bocker("history", "-q", ref, check=True).stdout == \
        f"{image_id}\n<missing>\n<missing>\n"
    assert bocker("history", "--format", "{{.ID}}", ref, check=True).stdout == \
        f"{image_id}\n<missing>\n<missing>\n"


def test_logout_removes_the_stored_credentials(bocker, registries, docker_env):
    config_path = docker_env / "docker" / "config.json"
    env = {"DOCKER_CONFIG": str(docker_env / "docker")}
    assert bocker("logout", registries.tls, env=env).stdout == \
        f"Not logged in to {registries.tls}\n"
    proc = bocker("login", "-u", "bkpuser", "--password-stdin", registries.tls,
                  input="bkp-secret\n", env=env)
    assert proc.returncode == 0, proc.stderr
    config = json.loads(config_path.read_text())
    config["auths"]["other.example"] = {"auth": "eDp5"}
    config_path.write_text(json.dumps(config))
    proc = bocker("logout", registries.tls, env=env)
    assert (proc.returncode, proc.stdout) == (
        0, f"Removing login credentials for {registries.tls}\n"), proc.stderr
    assert json.loads(config_path.read_text())["auths"] == {"other.example": {"auth": "eDp5"}}
    assert oct(os.stat(config_path).st_mode & 0o777) == "0o600"
    assert bocker("logout", registries.tls, env=env).stdout == \
        f"Not logged in to {registries.tls}\n"
