"""Docker 28's client flags against real containers (issue 15, cliflags):
stop/restart --timeout and -s, ps/images -f, exec --detach-keys, logs
--details, -q, history -H=false, commit -a/-m/-c/-p, import -c and
--platform, save/history/rmi --platform, run -a, --sig-proxy=false,
--annotation, --disable-content-trust, --dns-search, --dns-option and
--domainname."""
import json
import os
import re
import signal
import subprocess
import tempfile

import conftest_pull
import test_pull
from conftest import BOCKER, wait_for

# the local registry's fixtures (test_pull's), for -q's pulls
registries, docker_env, pushed = conftest_pull.registries, test_pull.docker_env, test_pull.pushed


def _inspect(bocker, ref, *more):
    return json.loads(bocker("inspect", *more, ref, check=True).stdout)[0]


def _detached(bocker, cleanup, *args):
    cid = bocker("run", "-d", *args, check=True).stdout.strip()
    cleanup.append(cid)
    return cid


def _image(bocker, made, out):
    """The image ID a commit or import printed; removed after the test."""
    image_id = out.strip().split()[-1]
    made.append(image_id)
    return image_id


TRAP = ("trap 'echo got USR1; exit 3' USR1; trap 'echo got TERM; exit 7' TERM; "
        "echo ready; while :; do sleep 0.1; done")


def _ready(bocker, cid):
    return wait_for(lambda: "ready" in bocker("logs", cid).stdout)


# ------------------------------------------------------------ stop / restart

def test_stop_signal_and_timeout_flags(bocker, cleanup):
    cid = _detached(bocker, cleanup, "busybox", "sh", "-c", TRAP)
    assert _ready(bocker, cid)
    proc = bocker("stop", "-s", "USR1", "--timeout", "20", cid, check=True)
    assert proc.stdout == f"{cid}\n"
    assert _inspect(bocker, cid)["State"]["ExitCode"] == 3  # USR1's trap, not TERM's
    assert "got USR1" in bocker("logs", cid).stdout


def test_restart_takes_the_signal_and_old_time_spelling(bocker, cleanup):
    cid = _detached(bocker, cleanup, "busybox", "sh", "-c", TRAP)
    assert _ready(bocker, cid)
    bocker("restart", "--signal", "SIGUSR1", "--time", "20", cid, check=True)
    assert "got USR1" in bocker("logs", cid).stdout
    assert _inspect(bocker, cid)["State"]["Running"]
    bad = bocker("stop", "-s", "NOPE", cid)
    assert bad.returncode != 0 and "NOPE" in bad.stderr
    assert _inspect(bocker, cid)["State"]["Running"]


# ------------------------------------------------------------ -f

def test_ps_and_images_take_f_for_filter(bocker, cleanup):
    cid = _detached(bocker, cleanup, "--label", "cliflags=yes", "busybox", "sleep", "60")
    assert bocker("ps", "-q", "-f", "label=cliflags=yes", check=True).stdout == f"{cid}\n"
    assert bocker("ps", "-q", "-f", "label=cliflags=no", check=True).stdout == ""
    ids = bocker("images", "-q", "-f", "reference=busybox", check=True).stdout.split()
    assert _inspect(bocker, cid)["Image"] in ids
    assert bocker("images", "-q", "-f", "reference=nothing-such", check=True).stdout == ""


# ------------------------------------------------------------ exec --detach-keys

def test_exec_detach_keys_leave_the_command_running(bocker, cleanup):
    cid = _detached(bocker, cleanup, "busybox", "sleep", "60")
    # it reads a line, then writes after we are gone: to its stdout (drained,
    # no SIGPIPE) and to a file we look for
    script = "read line; echo \"$line\" > /tmp/line; sleep 0.5; echo late; echo ran > /tmp/after"
    proc = bocker("exec", "-i", "--detach-keys", "ctrl-x", cid, "sh", "-c", script,
                  input="hello\n\x18more\n")
    assert proc.returncode == 0, proc.stderr
    assert "late" not in proc.stdout
    assert wait_for(lambda: bocker("exec", cid, "cat", "/tmp/after").stdout == "ran\n")
    assert bocker("exec", cid, "cat", "/tmp/line").stdout == "hello\n"
    bad = bocker("exec", "-i", "--detach-keys", "ctrl-!!", cid, "true")
    assert bad.returncode != 0 and "\n" not in bad.stderr.strip()


# ------------------------------------------------------------ logs --details

def test_logs_details_prints_the_same(bocker, cleanup):
    cid = _detached(bocker, cleanup, "busybox", "sh", "-c", "echo one; echo two >&2")
    bocker("wait", cid, check=True)
    plain, details = bocker("logs", cid, check=True), bocker("logs", "--details", cid, check=True)
    assert (details.stdout, details.stderr) == (plain.stdout, plain.stderr) == ("one\n", "two\n")
    help_ = " ".join(bocker("logs", "--help").stdout.split())
    assert "bocker's logs have no extra attributes" in help_


# ------------------------------------------------------------ -q

def test_load_quiet_and_cp_quiet(bocker, cleanup):
    # an image of its own name only (a save of busybox would carry its name,
    # and the loaded image would take it from the session's busybox)
    made = set()
    cid = bocker("create", "busybox", "true", check=True).stdout.strip()
    cleanup.append(cid)
    made.add(_image(bocker, [], bocker("commit", "--name", "cliflags-load:1", cid,
                                       check=True).stdout))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            tar = os.path.join(tmp, "b.tar")
            bocker("save", "cliflags-load:1", "-o", tar, check=True)
            loud = bocker("load", "-i", tar, check=True).stdout
            made |= set(re.findall(r"(?:Created|Exists): (\S+)", loud))
            quiet = bocker("load", "-q", "-i", tar, check=True).stdout
            assert len(made) == 2 and quiet == "Loaded image: cliflags-load:1\n"
        finally:
            for image_id in made:
                bocker("rmi", "-f", image_id)
        cid = _detached(bocker, cleanup, "busybox", "sleep", "60")
        src = os.path.join(tmp, "f")
        with open(src, "w") as f:
            f.write("x\n")
        proc = bocker("cp", "-q", src, f"{cid}:/f", check=True)
        assert proc.stdout == proc.stderr == ""
        assert bocker("exec", cid, "cat", "/f").stdout == "x\n"


def test_run_and_create_quiet_and_content_trust_are_accepted(bocker, cleanup):
    proc = bocker("run", "--rm", "-q", "--disable-content-trust", "busybox", "echo", "hi")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "hi\n", "")
    proc = bocker("run", "--rm", "--disable-content-trust=false", "busybox", "true")
    assert proc.returncode == 0, proc.stderr
    cid = bocker("create", "-q", "busybox", "true", check=True).stdout.strip()
    cleanup.append(cid)
    assert _inspect(bocker, cid)["State"]["Status"] == "created"


# ------------------------------------------------------------ history -H

def test_history_human_false_prints_bytes_and_rfc3339(bocker):
    human = bocker("history", "busybox", check=True).stdout.splitlines()
    for flag in ("-H=false", "--human=false"):
        rows = bocker("history", flag, "--format", "{{.CreatedSince}}|{{.Size}}", "busybox",
                      check=True).stdout.splitlines()
        assert rows and len(rows) == len(human) - 1
        for row in rows:
            created, size = row.split("|")
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)|N/A", created)
            assert re.fullmatch(r"\d*", size)
    again = bocker("history", "-H=true", "--format", "{{.Size}}", "busybox", check=True)
    assert again.stdout.splitlines() == bocker("history", "--format", "{{.Size}}", "busybox",
                                               check=True).stdout.splitlines()
    assert bocker("history", "-H=perhaps", "busybox").returncode == 125


# ------------------------------------------------------------ commit

def _events(bocker, cid, since):
    out = bocker("events", "--since", since, "--until", str(int(__import__("time").time()) + 1),
                 "--filter", f"container={cid}", "--format", "{{.Action}}", check=True).stdout
    return out.split()


def test_commit_author_message_changes_and_pause(bocker, cleanup):
    import time

    made = []
    cid = _detached(bocker, cleanup, "busybox", "sh", "-c", "echo hi > /made; sleep 60")
    assert wait_for(lambda: bocker("exec", cid, "cat", "/made").stdout == "hi\n")
    since = str(int(time.time()) - 1)
    try:
        out = bocker("commit", "-a", "Jane Doe <jane@example.com>", "-m", "first commit",
                     "-c", 'CMD ["cat", "/made"]', "-c", "ENV COMMITTED=yes",
                     "-c", "LABEL stage=one", "-c", "WORKDIR /srv", "-c", "EXPOSE 8080",
                     "--name", "cliflags-commit:1", cid, check=True).stdout
        image_id = _image(bocker, made, out)
        view = _inspect(bocker, image_id, "--type", "image")
        assert (view["Author"], view["Comment"]) == ("Jane Doe <jane@example.com>",
                                                     "first commit")
        config = view["Config"]
        assert config["Cmd"] == ["cat", "/made"] and "COMMITTED=yes" in config["Env"]
        assert config["Labels"]["stage"] == "one" and config["WorkingDir"] == "/srv"
        assert "8080/tcp" in config["ExposedPorts"]
        assert "first commit" in bocker("history", "cliflags-commit:1", check=True).stdout
        run = bocker("run", "--rm", "cliflags-commit:1", check=True)
        assert run.stdout == "hi\n"
        # -p (the default) froze it for the commit and thawed it after
        actions = _events(bocker, cid, since)
        assert actions.count("pause") == 1 and actions.count("unpause") == 1
        state = _inspect(bocker, cid)["State"]
        assert state["Running"] and not state["Paused"]
        since = str(int(time.time()))
        out = bocker("commit", "-p=false", "--name", "cliflags-commit:2", cid, check=True).stdout
        _image(bocker, made, out)
        assert "pause" not in _events(bocker, cid, since)
        refused = bocker("commit", "-c", "ONBUILD RUN true", "--name", "cliflags-commit:3", cid)
        assert refused.returncode != 0 and "ONBUILD" in refused.stderr
        assert bocker("images", "-q", "cliflags-commit:3").stdout == ""
    finally:
        for image_id in made:
            bocker("rmi", "-f", image_id)


def test_commit_thaws_the_container_when_it_fails(bocker, cleanup):
    cid = _detached(bocker, cleanup, "busybox", "sleep", "60")
    proc = bocker("commit", "--name", "cliflags-fails", cid,
                  env={"BOCKER_FAULT": "images.fill:fail"})
    assert proc.returncode != 0 and "fault injected" in proc.stderr
    state = _inspect(bocker, cid)["State"]
    assert state["Running"] and not state["Paused"] and state["Status"] == "running"
    assert bocker("exec", cid, "true").returncode == 0  # not frozen
    assert bocker("images", "-q", "cliflags-fails").stdout == ""


# ------------------------------------------------------------ import, --platform

def _host_platform(bocker):
    view = _inspect(bocker, "busybox", "--type", "image")
    return f"{view['Os']}/{view['Architecture']}"


def test_import_change_and_platform(bocker, cleanup):
    made = []
    cid = bocker("create", "busybox", "true", check=True).stdout.strip()
    cleanup.append(cid)
    with tempfile.TemporaryDirectory() as tmp:
        tar = os.path.join(tmp, "fs.tar")
        bocker("export", "-o", tar, cid, check=True)
        try:
            out = bocker("import", "-c", 'ENTRYPOINT ["/bin/echo", "imported"]',
                         "-c", "USER nobody", "-m", "from a tar",
                         "--platform", _host_platform(bocker), tar, "cliflags-imp", check=True)
            image_id = _image(bocker, made, out.stdout)
            view = _inspect(bocker, image_id, "--type", "image")
            assert view["Config"]["Entrypoint"] == ["/bin/echo", "imported"]
            assert view["Comment"] == "from a tar"
            assert bocker("run", "--rm", "cliflags-imp", "x", check=True).stdout == \
                "imported x\n"
            assert bocker("run", "--rm", "--entrypoint", "id", "cliflags-imp", "-u",
                          check=True).stdout.strip() != "0"
            other = bocker("import", "--platform", "windows/amd64", tar, "cliflags-imp2")
            assert other.returncode == 1 and "one platform" in other.stderr
            bad = bocker("import", "-c", "RUN true", tar, "cliflags-imp2")
            assert bad.returncode == 1 and "RUN" in bad.stderr
            assert bocker("images", "-q", "cliflags-imp2").stdout == ""
        finally:
            for image_id in made:
                bocker("rmi", "-f", image_id)


def test_save_history_rmi_refuse_another_platform(bocker):
    host = _host_platform(bocker)
    with tempfile.TemporaryDirectory() as tmp:
        tar = os.path.join(tmp, "b.tar")
        for argv in (["save", "--platform", "plan9/mips", "-o", tar, "busybox"],
                     ["history", "--platform", "plan9/mips", "busybox"],
                     ["rmi", "--platform", "plan9/mips", "busybox"],
                     ["history", "--platform", "nonsense", "busybox"]):
            proc = bocker(*argv)
            assert proc.returncode == 1, (argv, proc.stderr)  # Docker's, for a refusal
            assert len(proc.stderr.splitlines()) == 1
        assert not os.path.exists(tar)
        bocker("save", "--platform", host, "-o", tar, "busybox", check=True)
        assert os.path.getsize(tar) > 0
    assert bocker("history", "--platform", host, "-q", "busybox", check=True).stdout
    assert bocker("images", "-q", "busybox", check=True).stdout


# ------------------------------------------------------------ run -a, --sig-proxy

def test_attach_picks_the_streams(bocker):
    both = "echo out; echo err >&2"
    proc = bocker("run", "--rm", "-a", "stdout", "busybox", "sh", "-c", both)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "out\n", "")
    proc = bocker("run", "--rm", "-a", "STDERR", "busybox", "sh", "-c", both)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "err\n")
    proc = bocker("run", "--rm", "-i", "-a", "stdin", "-a", "stdout", "busybox", "cat",
                  input="fed\n")
    assert (proc.returncode, proc.stdout) == (0, "fed\n")
    assert bocker("run", "--rm", "-a", "stdall", "busybox", "true").returncode == 125
    assert bocker("run", "-d", "-a", "stdout", "busybox", "true").returncode == 125


def test_create_stores_attach_and_annotations(bocker, cleanup):
    cid = bocker("create", "-a", "stdout", "--annotation", "org.example.k=v",
                 "--annotation", "bare", "busybox", "true", check=True).stdout.strip()
    cleanup.append(cid)
    view = _inspect(bocker, cid)
    assert view["HostConfig"]["Annotations"] == {"org.example.k": "v", "bare": ""}
    assert (view["Config"]["AttachStdin"], view["Config"]["AttachStdout"],
            view["Config"]["AttachStderr"]) == (False, True, False)


def _attached_client(*args):
    return subprocess.Popen([BOCKER, "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sig_proxy_forwards_and_false_does_not(bocker):
    name = f"cliflags-sig-{os.getpid()}"
    client = _attached_client("--rm", "--name", name, "busybox", "sh", "-c", TRAP)
    try:
        assert wait_for(lambda: "ready" in bocker("logs", name).stdout)
        client.send_signal(signal.SIGTERM)
        out, _ = client.communicate(timeout=30)
        assert client.returncode == 7 and "got TERM" in out  # the container's trap
    finally:
        client.kill()
        client.communicate()
        bocker("rm", "-f", name)
    client = _attached_client("--sig-proxy=false", "--name", name, "busybox", "sh", "-c", TRAP)
    try:
        assert wait_for(lambda: "ready" in bocker("logs", name).stdout)
        client.send_signal(signal.SIGTERM)
        client.communicate(timeout=30)
        assert client.returncode != 7  # the client ended, not the container
        view = _inspect(bocker, name)
        assert view["State"]["Running"] and "got TERM" not in bocker("logs", name).stdout
    finally:
        client.kill()
        client.communicate()
        bocker("rm", "-f", name)


# ------------------------------------------------------------ resolv.conf, domainname

def test_dns_search_and_options_in_resolv_conf(bocker):
    proc = bocker("run", "--rm", "--dns-search", "example.com", "--dns-search", "corp.local",
                  "--dns-option", "ndots:2", "--dns-option", "edns0", "busybox",
                  "cat", "/etc/resolv.conf", check=True)
    lines = proc.stdout.splitlines()
    assert "search example.com corp.local" in lines and "options ndots:2 edns0" in lines
    assert sum(line.startswith(("search", "domain")) for line in lines) == 1
    for flag, bad in (("--dns-search", "bad domain"), ("--dns-option", "ndots 2\nx"),
                      ("--dns-search", "-x.org")):
        proc = bocker("run", "--rm", flag, bad, "busybox", "true")
        assert proc.returncode == 125 and len(proc.stderr.splitlines()) == 1


def test_domainname_is_the_uts_domain(bocker, cleanup):
    proc = bocker("run", "--rm", "-h", "box", "--domainname", "example.org", "busybox", "sh",
                  "-c", "cat /proc/sys/kernel/domainname; hostname", check=True)
    assert proc.stdout == "example.org\nbox\n"
    cid = bocker("create", "--domainname", "example.org", "busybox", "true",
                 check=True).stdout.strip()
    cleanup.append(cid)
    assert _inspect(bocker, cid)["Config"]["Domainname"] == "example.org"
    assert bocker("run", "--rm", "--domainname", "bad name", "busybox", "true").returncode == 125
    assert bocker("run", "--rm", "--uts", "host", "--domainname", "x.org", "busybox",
                  "true").returncode == 125
    with open("/proc/sys/kernel/domainname") as f:  # the host's is not touched
        assert f.read().strip() != "example.org"


def test_exec_it_default_detach_keys_keep_the_command_alive(bocker, cleanup):
    import pty

    cid = _detached(bocker, cleanup, "busybox", "sleep", "60")
    master, slave = pty.openpty()
    try:
        client = subprocess.Popen([BOCKER, "exec", "-it", cid, "sh", "-c",
                                   "echo go; sleep 0.5; echo ran > /tmp/after-tty"],
                                  stdin=slave, stdout=slave, stderr=subprocess.PIPE)
        seen = b""
        while b"go" not in seen:  # it runs: now ctrl-p ctrl-q
            chunk = os.read(master, 1024)
            assert chunk, "the exec ended before it printed"
            seen += chunk
        os.write(master, b"\x10\x11")
        assert client.wait(timeout=30) == 0, client.stderr.read()
        # its pty was not closed under it (no SIGHUP): it finishes its work
        assert wait_for(lambda: bocker("exec", cid, "cat", "/tmp/after-tty").stdout == "ran\n")
    finally:
        os.close(master)
        os.close(slave)


def test_pull_and_run_quiet_say_nothing_of_the_pull(bocker, pushed, paths):
    from bocker.image import images

    ref = f"{pushed['host']}/bkp/single:other"
    try:
        proc = bocker("run", "--rm", "-q", ref, "/bin/sh", "-c", "echo out")
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "out\n", "")
        images.remove(paths, ref)
        proc = bocker("pull", "-q", ref)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, ref + "\n", "")
        loud = bocker("pull", ref, check=True).stdout
        assert "Digest:" in loud  # without -q: the usual lines
    finally:
        try:
            images.remove(paths, ref)
        except Exception:
            pass
