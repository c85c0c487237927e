"""The CLI's one error boundary (bocker.cli.app): every way a command ends
becomes one line on stderr and Docker's exit code.  No root: the root is an
empty temporary directory, and where an error needs the kernel a library
call is replaced by one that raises it."""
import errno
import os
import subprocess
import sys
import textwrap

import click
import pytest
from click.testing import CliRunner

from bocker import trace
from bocker.cli import cli
from bocker.errors import BockerError, RunRefused, StartError


@pytest.fixture
def bocker(tmp_path):
    """Invoke the real group (and so its main()) under an empty root."""
    def invoke(*argv, input=None):
        result = CliRunner().invoke(cli, ["--root", str(tmp_path), *argv], input=input,
                                    catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    yield invoke
    trace.configure_from_env()  # --trace in a test must not outlive it


def _raise(error):
    def call(*args, **kwargs):
        raise error
    return call


def test_help_and_version_exit_0(bocker):
    assert bocker("--help")[0] == 0
    code, out, _ = bocker("--version")
    assert code == 0 and out.startswith("bocker, version")


@pytest.mark.parametrize("argv", [["nosuch"], ["ps", "--bogus"],
                                  ["kill", "-s"], ["--trace-format", "xml", "ps"],
                                  ["--trace-format", "xml", "run", "busybox"]])
def test_usage_error_exits_125(bocker, argv):
    code, out, err = bocker(*argv)  # Docker's CLI: 125 for a bad flag, in every command
    assert code == 125 and out == ""
    assert "Error:" in err


@pytest.mark.parametrize("argv", [["run"], ["run", "--bogus", "busybox"],
                                  ["run", "--cpu-shares", "x", "busybox"],
                                  ["--trace", "run", "--network", "nope", "busybox"]])
def test_a_usage_error_of_run_exits_125(bocker, argv):
    """As `docker run`: its flag errors are 125, a run that never started."""
    code, out, err = bocker(*argv)
    assert code == 125 and out == ""
    assert err.splitlines()[-1].startswith("Error:")


def test_a_plain_error_of_run_exits_125(bocker):
    """A BockerError of no code of its own is 125 in run, 1 elsewhere."""
    assert bocker("run", "--env-file", "/nonexistent/env", "busybox")[::2] == (
        125, "bocker: cannot read env file /nonexistent/env: No such file or directory\n")


def test_an_error_line_is_one_line_whatever_it_quotes(bocker):
    code, _, err = bocker("rmi", "a\nb\x01")
    assert (code, err) == (1, "bocker: No image named 'a\\nb\\x01' exists\n")


def test_bocker_error_exits_1_with_one_line(bocker):
    assert bocker("kill", "-s", "NOPE", "ps_000000000000")[::2] == (
        1, "bocker: invalid signal 'NOPE'\n")


@pytest.mark.parametrize("error,code", [(RunRefused("refused"), 125),
                                        (StartError("exec: nope", 127), 127),
                                        (BockerError("plain"), 125)])
def test_bocker_error_carries_its_exit_code(bocker, monkeypatch, error, code):
    from bocker.runtime import containers

    monkeypatch.setattr(containers, "run", _raise(error))
    assert bocker("run", "busybox", "true")[::2] == (code, f"bocker: {error}\n")


@pytest.mark.parametrize("argv", [["run"], ["--trace", "run"], ["--trace=json", "run"]])
def test_oserror_in_run_exits_125(bocker, monkeypatch, argv):
    from bocker.runtime import containers

    monkeypatch.setattr(containers, "run",
                        _raise(OSError(errno.ENOENT, "No such file or directory")))
    code, _, err = bocker(*argv, "--network", "none", "busybox", "true")
    assert code == 125
    assert err.splitlines()[-1] == "bocker: No such file or directory"


def test_oserror_elsewhere_exits_1(bocker, monkeypatch):
    from bocker.runtime import containers

    monkeypatch.setattr(containers, "list_all", _raise(OSError(errno.EACCES, "Permission denied")))
    assert bocker("--trace", "ps")[::2] == (1, "bocker: Permission denied\n")


def test_oserror_in_run_exits_125_from_argv(tmp_path):
    """The console entry as a user runs it: --trace before run once made
    the exit code 1 (it was chosen by argv position)."""
    script = textwrap.dedent("""
        import errno, sys
        from bocker.runtime import containers
        def fail(*args, **kwargs):
            raise OSError(errno.EPERM, "Operation not permitted")
        containers.run = fail
        sys.argv = ["bocker"] + sys.argv[1:]
        from bocker.cli import main
        main()
    """)
    for argv in (["run"], ["--trace", "run"], ["--root", str(tmp_path), "--trace", "run"]):
        proc = subprocess.run([sys.executable, "-c", script, *argv, "busybox", "true"],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "BOCKER_ROOT": str(tmp_path)})
        assert proc.returncode == 125, (argv, proc.stderr)
        assert proc.stderr.splitlines()[-1] == "bocker: Operation not permitted"


def test_abort_exits_130(bocker):
    # no password and stdin at its end: click's prompt aborts
    code, _, _ = bocker("login", "-u", "someone", input="")
    assert code == 130


def test_interrupt_exits_130(bocker, monkeypatch):
    from bocker.runtime import containers

    monkeypatch.setattr(containers, "list_all", _raise(KeyboardInterrupt()))
    assert bocker("ps")[0] == 130


def test_click_abort_exits_130(bocker, monkeypatch):
    from bocker.runtime import containers

    monkeypatch.setattr(containers, "list_all", _raise(click.Abort()))
    assert bocker("ps")[0] == 130


def test_a_bug_keeps_its_traceback(bocker, monkeypatch):
    from bocker.runtime import containers

    monkeypatch.setattr(containers, "list_all", _raise(ZeroDivisionError("bug")))
    with pytest.raises(ZeroDivisionError):
        bocker("ps")


def test_each_ref_fails_on_its_own_line_and_exits_1(bocker):
    code, out, err = bocker("rmi", "nope1", "nope2")
    assert (code, out) == (1, "")
    assert err == ("bocker: No image named 'nope1' exists\n"
                   "bocker: No image named 'nope2' exists\n")


def test_each_ref_runs_the_rest_after_a_failure(bocker, monkeypatch):
    from bocker.runtime import containers

    def kill(paths, ref, number):
        if ref == "bad":
            raise BockerError(f"container '{ref}' is not running")
        return True

    monkeypatch.setattr(containers, "kill", kill)
    code, out, err = bocker("kill", "-s", "TERM", "a", "bad", "b")
    assert (code, out, err) == (1, "a\nb\n", "bocker: container 'bad' is not running\n")


def test_rm_removes_containers_only_but_an_img_id(bocker, monkeypatch):
    """rm never deletes an image that a missing container's name spells
    (issue 15); only an explicit img_ ID goes to the image removal; rm -f
    of a missing container is no error (Docker)."""
    from bocker.errors import Ambiguous
    from bocker.image import removal
    from bocker.runtime import containers

    calls = []
    monkeypatch.setattr(removal, "remove",
                        lambda paths, ref, force=False: calls.append(ref) or [f"Removed: {ref}"])
    assert bocker("rm", "busybox")[::2] == (1, "bocker: No container named 'busybox' exists\n")
    assert bocker("rm", "-f", "busybox") == (0, "", "")
    assert calls == []
    assert bocker("rm", "img_0123456789ab")[:2] == (0, "Removed: img_0123456789ab\n")
    assert calls == ["img_0123456789ab"]
    # any other container error stands, -f or not
    monkeypatch.setattr(containers, "remove", _raise(Ambiguous("p", {"ps_1", "ps_2"})))
    assert bocker("rm", "-f", "p")[::2] == (1, "bocker: 'p' is ambiguous: it matches ps_1, ps_2\n")


def test_inspect_tries_images_when_no_container(bocker, monkeypatch):
    from bocker.image import images

    assert bocker("inspect", "nope")[::2] == (
        1, "bocker: No container or image named 'nope' exists\n")
    monkeypatch.setattr(images, "resolve", lambda paths, ref: "img_0123456789ab")
    monkeypatch.setattr(images, "load", lambda paths, image_id: {"id": image_id})
    code, out, _ = bocker("inspect", "busybox")
    assert code == 0 and '"Id": "img_0123456789ab"' in out


def test_bad_tail_is_refused_before_the_container_is_looked_up(bocker):
    assert bocker("logs", "--tail", "x", "ps_000000000000")[::2] == (
        1, "bocker: invalid --tail 'x': a number or 'all'\n")


def test_every_command_is_in_the_lazy_table_and_only_there():
    """app.COMMAND_MODULES names each command's module: the table and the
    modules' COMMANDS must agree, or a command would vanish or be shadowed."""
    import importlib

    from bocker.cli import app

    found = {}
    for module in set(app.COMMAND_MODULES.values()):
        for command in importlib.import_module(f"bocker.cli.{module}").COMMANDS:
            found[command.name] = module
    assert found == app.COMMAND_MODULES


def test_a_refused_option_is_125_even_before_setup(tmp_path):
    """Docker checks a run's options before anything else: a bad one is
    125 with its own message, even on a host bocker has not set up."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "bocker.cli", "--root", str(tmp_path / "none"),
                           "run", "--cap-add", "nope", "busybox", "true"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 125
    assert proc.stderr == "bocker: unknown capability: 'nope'\n"


def test_run_pull_options_reach_the_pull_after_the_option_checks(bocker, monkeypatch):
    """run --pull/--platform: the CLI hands run.run an ensure_image that
    pulls with them (progress on stderr); a bad policy is a usage error."""
    from bocker.image import autopull
    from bocker.runtime import containers

    asked = []

    def ensure(paths, ref, policy=None, platform=None, progress=None, say=None):
        say(f"Unable to find image '{ref}' locally")
        asked.append((ref, policy, platform))

    def run(paths, req, ensure_image=None, **kwargs):
        ensure_image(req.image)
        return 0

    monkeypatch.setattr(autopull, "ensure", ensure)
    monkeypatch.setattr(containers, "run", run)
    code, out, err = bocker("run", "--pull", "always", "--platform", "linux/arm64", "x/y:1",
                            "true")
    assert (code, out, err) == (0, "", "Unable to find image 'x/y:1' locally\n")
    assert asked == [("x/y:1", "always", "linux/arm64")]
    code, out, err = bocker("run", "x/y:1", "true")
    assert code == 0 and asked[-1] == ("x/y:1", "missing", None)
    assert bocker("run", "--pull", "sometimes", "x", "true")[0] in (2, 125)
    assert bocker("run", "--platform", "nope", "x", "true")[::2] == (
        125, "bocker: invalid platform 'nope': use os/arch[/variant]\n")
