"""The pull/login/load/save click commands, through bocker's own group and
its error boundary (bocker.cli.app), as a user runs them."""
import json

import pytest
from click.testing import CliRunner

from bocker.cli import cli
from bocker.image import images

from conftest_pull import (Layout, btrfs_fs, busybox_layer, pull_paths, push,  # noqa: F401
                           registries)


def run(pull_paths, *argv, input=None):
    result = CliRunner().invoke(cli, ["--root", pull_paths.root, *argv], input=input,
                                catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="session")
def cli_image(registries, tmp_path_factory):
    lay = Layout(str(tmp_path_factory.mktemp("cli") / "oci"))
    lay.tag(lay.image([busybox_layer("cli")]), "t")
    push(lay.dir, "t", f"{registries.plain}/bkp/cli:v1")
    return f"{registries.plain}/bkp/cli"


def test_pull_two_arg_form_and_up_to_date(pull_paths, cli_image):
    code, out, err = run(pull_paths, "pull", cli_image, "v1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("Downloaded 1.1MB") or "Downloaded" in lines[0]
    assert lines[-1].startswith("Created: img_")
    image_id = lines[-1].split()[-1]
    assert images.load(pull_paths, image_id)["names"] == [f"{cli_image}:v1"]
    code, out, err = run(pull_paths, "pull", f"{cli_image}:v1")
    assert code == 0
    assert f"Image is up to date for {cli_image}:v1" in out
    assert out.splitlines()[-1] == f"Up to date: {image_id}"


def test_pull_missing_tag_exit_1(pull_paths, cli_image):
    code, out, err = run(pull_paths, "pull", f"{cli_image}:nope")
    assert code == 1
    assert err == f"bocker: No image named '{cli_image}:nope' exists\n"


def test_pull_bad_reference(pull_paths):
    code, _, err = run(pull_paths, "pull", "x/UPPER:case")
    assert code == 1 and err.startswith("bocker: invalid reference")


def test_login_password_stdin(pull_paths, registries, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "certs" / registries.tls).mkdir(parents=True)
    (tmp_path / "certs" / registries.tls / "ca.crt").write_bytes(open(registries.ca, "rb").read())
    monkeypatch.setenv("BOCKER_CERTS_DIR", str(tmp_path / "certs"))
    code, out, err = run(pull_paths, "login", registries.tls, "-u", "bkpuser", "--password-stdin",
                         input="wrong\n")
    assert code == 1 and err.startswith("bocker: ")
    code, out, err = run(pull_paths, "login", registries.tls, "-u", "bkpuser", "--password-stdin",
                         input="bkp-secret\n")
    assert code == 0 and out == "Login Succeeded\n"
    assert registries.tls in json.loads((tmp_path / "config.json").read_text())["auths"]


def test_save_and_load(pull_paths, cli_image, tmp_path):
    code, out, _ = run(pull_paths, "pull", f"{cli_image}:v1")
    assert code == 0
    code, out, err = run(pull_paths, "save", f"{cli_image}:v1", "-o", str(tmp_path / "img.tar"))
    assert code == 0, err
    code, out, err = run(pull_paths, "load", "-i", str(tmp_path / "img.tar"))
    assert code == 0, err
    assert f"Loaded image: {cli_image}:v1" in out and "Created: img_" in out
    code, _, err = run(pull_paths, "save", "no-such-image", "-o", str(tmp_path / "x.tar"))
    assert code == 1 and err == "bocker: No image named 'no-such-image' exists\n"


def test_progress_bar_on_a_terminal(pull_paths, cli_image):
    import os
    import sys

    import pexpect
    script = ("import os, sys, types, click\n"
              "from bocker import state\n"
              "from bocker.cli import images as cli_images\n"
              "group = click.Group(commands={'pull': cli_images.pull})\n"
              "pull_paths = state.Paths(os.environ['BKP_ROOT'])\n"
              "group(sys.argv[1:], obj=types.SimpleNamespace(paths=pull_paths))\n")
    child = pexpect.spawn(sys.executable, ["-c", script, "pull", f"{cli_image}:v1"],
                          env={**os.environ, "BKP_ROOT": pull_paths.root},
                          timeout=60, encoding="utf-8")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "Downloading [" in child.before and "MB/s" in child.before
    assert "\x1b[K" in child.before  # redrawn in place
    assert "Created: img_" in child.before
