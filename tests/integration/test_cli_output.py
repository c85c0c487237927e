"""Output for scripts on real containers: ps/images --format and --filter,
-n/-l/-s/--no-trunc, inspect -f and its Docker shape (several arguments
one by one), logs -n/--since/--until."""
import json
import time

import pytest

from conftest import wait_for

TAG = f"{int(time.time() * 1000) % 100000}"


@pytest.fixture
def two(bocker):
    """An exited container ('first', exit 3) then a running one ('second')."""
    first = bocker("run", "--name", f"out-first-{TAG}", "busybox", "sh", "-c",
                   "echo early; exit 3").stdout
    assert first == "early\n"
    second = bocker("run", "-d", "--name", f"out-second-{TAG}", "busybox", "sh", "-c",
                    "echo one; echo two; echo three; exec sleep 60",
                    check=True).stdout.strip()
    assert wait_for(lambda: bocker("logs", second).stdout.count("\n") == 3)
    ids = {"first": bocker("ps", "-aq", "--filter", f"name=out-first-{TAG}",
                           check=True).stdout.strip(), "second": second}
    try:
        yield ids
    finally:
        bocker("rm", "-f", ids["first"], ids["second"])


def test_ps_format_filter_and_order(bocker, two):
    names = bocker("ps", "-a", "--format", "{{.Names}}", "--filter", f"name=out-.*-{TAG}",
                   check=True).stdout.split()
    assert names == [f"out-second-{TAG}", f"out-first-{TAG}"]  # newest first
    # running only without -a; status= implies all states
    assert bocker("ps", "--format", "{{.ID}}", "--filter", f"name={TAG}",
                  check=True).stdout.split() == [two["second"]]
    assert bocker("ps", "-q", "--filter", "status=exited", "--filter", f"name={TAG}",
                  check=True).stdout.split() == [two["first"]]
    # the same key ORs, different keys AND
    both = bocker("ps", "-q", "--filter", "status=exited", "--filter", "status=running",
                  "--filter", f"name={TAG}", check=True).stdout.split()
    assert both == [two["second"], two["first"]]
    assert bocker("ps", "-aq", "--filter", "exited=3", "--filter", f"name={TAG}",
                  check=True).stdout.split() == [two["first"]]
    assert bocker("ps", "-aq", "--filter", "exited=0", "--filter", f"name={TAG}",
                  check=True).stdout.split() == []
    assert bocker("ps", "-aq", "--filter", f"id={two['second'][:8]}",
                  check=True).stdout.split() == [two["second"]]
    assert bocker("ps", "-aq", "--filter", f"since={two['first']}", "--filter",
                  f"name={TAG}", check=True).stdout.split() == [two["second"]]
    assert bocker("ps", "-aq", "--filter", f"before=out-second-{TAG}", "--filter",
                  f"name={TAG}", check=True).stdout.split() == [two["first"]]
    assert set(bocker("ps", "-aq", "--filter", "ancestor=busybox", check=True).stdout.split()) \
        >= set(two.values())
    assert bocker("ps", "-aq", "--filter", "ancestor=nosuchimage", "--filter", f"name={TAG}",
                  check=True).stdout == ""
    assert bocker("ps", "-aq", "--filter", "network=bridge", "--filter", f"name={TAG}",
                  check=True).stdout.split() == [two["second"], two["first"]]
    assert bocker("ps", "-aq", "--filter", "network=host", "--filter", f"name={TAG}",
                  check=True).stdout == ""
    # -l, -n: the last created, in every state
    assert bocker("ps", "-lq", check=True).stdout.split() == [two["second"]]
    assert bocker("ps", "-n", "2", "-q", check=True).stdout.split() == \
        [two["second"], two["first"]]


def test_ps_table_format_and_fields(bocker, two):
    out = bocker("ps", "-a", "--filter", f"name={TAG}", "--format",
                 r"table {{.ID}}\t{{.Names}}\t{{.State}}\t{{.Image}}", check=True).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "NAMES", "STATE", "IMAGE"]
    assert lines[1].split() == [two["second"], f"out-second-{TAG}", "running", "busybox"]
    assert lines[2].split() == [two["first"], f"out-first-{TAG}", "exited", "busybox"]
    # aligned: every column starts where its header does
    col = lines[0].index("NAMES")
    assert lines[1][col:].startswith("out-second") and lines[2][col:].startswith("out-first")
    row = json.loads(bocker("ps", "--filter", f"id={two['second']}", "--format", "json",
                            check=True).stdout)
    assert row["ID"] == two["second"] and row["State"] == "running"
    assert row["Status"].startswith("Up ") and row["Networks"] == "bridge"
    assert row["Command"] == '"sh -c echo one; ech\u2026"'  # Docker's 20, quoted
    full = bocker("ps", "--no-trunc", "--filter", f"id={two['second']}", "--format",
                  "{{.Command}}", check=True).stdout
    assert full == '"sh -c echo one; echo two; echo three; exec sleep 60"\n'
    table = bocker("ps", "--no-trunc", "--filter", f"id={two['second']}", check=True).stdout
    assert "exec sleep 60" in table
    assert "exec sleep 60" not in bocker("ps", "--filter", f"id={two['second']}",
                                         check=True).stdout


def test_ps_size_counts_what_the_container_wrote(bocker, cleanup):
    cid = bocker("run", "-d", "busybox", "sh", "-c",
                 "dd if=/dev/zero of=/big bs=1000 count=300 && touch /ready && exec sleep 60",
                 check=True).stdout.strip()
    cleanup.append(cid)
    assert wait_for(lambda: bocker("exec", cid, "test", "-e", "/ready").returncode == 0)
    size = bocker("ps", "-s", "--filter", f"id={cid}", "--format", "{{.Size}}",
                  check=True).stdout
    rw, virtual = size.split(" (virtual ")
    assert rw.endswith("kB") and 300 <= float(rw[:-2]) < 310, size
    info = json.loads(bocker("inspect", "-s", cid, check=True).stdout)[0]
    assert 300_000 <= info["SizeRw"] < 310_000 and info["SizeRootFs"] > info["SizeRw"]
    header = bocker("ps", "-s", "--filter", f"id={cid}", check=True).stdout.splitlines()[0]
    assert header.split()[-1] == "SIZE"


def test_inspect_format_and_shape(bocker, two):
    second = two["second"]
    pid = bocker("inspect", "-f", "{{.State.Pid}}", second, check=True).stdout.strip()
    assert int(pid) > 1
    out = bocker("inspect", "--format", "{{.Name}} {{.State.Status}} {{.State.ExitCode}}",
                 two["first"], second, check=True).stdout
    assert out == f"/out-first-{TAG} exited 3\n/out-second-{TAG} running 0\n"
    info = json.loads(bocker("inspect", second, check=True).stdout)[0]
    assert info["Id"] == second and info["Name"] == f"/out-second-{TAG}"
    assert info["Created"].endswith("Z") and len(info["Created"].split(".")[1]) == 10
    assert info["Path"] == "sh" and info["Args"][0] == "-c"
    assert info["State"]["Running"] is True and info["State"]["FinishedAt"] == \
        "0001-01-01T00:00:00Z"
    assert info["Config"]["Cmd"][0] == "sh" and info["Config"]["Entrypoint"] is None
    assert info["Config"]["Labels"] == {} and info["Config"]["Tty"] is False
    assert info["Mounts"] == [] or isinstance(info["Mounts"], list)
    ip = info["NetworkSettings"]["IPAddress"]
    assert ip and info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ip
    got = bocker("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}="
                 "{{$v.IPAddress}}{{end}}", second, check=True).stdout
    assert got == f"bridge={ip}\n"
    assert bocker("inspect", "-f", "{{json .Config.Labels}}", second,
                  check=True).stdout == "{}\n"
    # an exited container's address is given back: shown empty, as Docker's
    first = json.loads(bocker("inspect", two["first"], check=True).stdout)[0]
    assert first["NetworkSettings"]["IPAddress"] == "" and first["State"]["ExitCode"] == 3
    assert first["State"]["FinishedAt"] != "0001-01-01T00:00:00Z"


def test_inspect_reports_each_argument(bocker, two):
    proc = bocker("inspect", "-f", "{{.Id}}", two["first"], "nosuch-xyz", two["second"])
    assert proc.returncode == 1
    assert proc.stdout == f"{two['first']}\n{two['second']}\n"
    assert proc.stderr == "bocker: No container or image named 'nosuch-xyz' exists\n"
    proc = bocker("inspect", "nosuch-xyz", two["second"])
    assert proc.returncode == 1 and json.loads(proc.stdout)[0]["Id"] == two["second"]
    # --type picks one kind; a bad template fails before anything is looked up
    proc = bocker("inspect", "--type", "image", two["second"])
    assert proc.returncode == 1 and proc.stderr.startswith("bocker: No image named")
    proc = bocker("inspect", "-f", "{{.State.Pid", two["second"])
    assert proc.returncode == 125 and proc.stdout == "" and proc.stderr.count("\n") == 1
    proc = bocker("inspect", "-f", "{{nosuchfunc .}}", two["second"])
    assert proc.returncode == 125 and "not defined" in proc.stderr


def test_image_inspect_and_images_format(bocker):
    info = json.loads(bocker("inspect", "--type", "image", "busybox", check=True).stdout)[0]
    assert info["Id"].startswith("img_") and "busybox:latest" in info["RepoTags"]
    assert info["RootFS"]["Type"] == "layers" and isinstance(info["RepoDigests"], list)
    assert info["Os"] == "linux" and info["Architecture"] and info["Created"].endswith("Z")
    assert isinstance(info["Config"], dict) and info["Size"] > 0
    # p8952/bocker's references: an img_ ID (or its prefix) without --type
    assert json.loads(bocker("inspect", info["Id"], check=True).stdout)[0]["Id"] == info["Id"]
    assert bocker("inspect", "-f", "{{.Id}} {{json .RepoTags}}", info["Id"][:12],
                  check=True).stdout.startswith(info["Id"] + " [")
    rows = bocker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}",
                  "--filter", "reference=busybox", check=True).stdout.splitlines()
    assert f"busybox:latest {info['Id']}" in rows
    assert all(r.startswith("busybox:") for r in rows)
    table = bocker("images", "--format", r"table {{.ID}}\t{{.Repository}}\t{{.Size}}",
                   check=True).stdout.splitlines()
    assert table[0].split() == ["IMAGE", "ID", "REPOSITORY", "SIZE"]
    assert info["Id"] in bocker("images", "-q", "--filter", "dangling=false",
                                check=True).stdout.split()
    assert info["Id"] not in bocker("images", "-q", "--filter", "dangling=true",
                                    check=True).stdout.split()
    assert bocker("images", "-a", "-q", check=True).returncode == 0


def test_bad_filters_and_templates_exit_125(bocker):
    for args in (["ps", "--filter", "bogus=1"], ["ps", "--filter", "novalue"],
                 ["ps", "--filter", "status=sleepy"], ["ps", "--filter", "exited=x"],
                 ["images", "--filter", "bogus=1"], ["images", "--format", "{{.Nope}}"],
                 ["ps", "--format", "{{if}}"], ["images", "--format", "{{range .ID}}{{end}}"]):
        proc = bocker(*args, "-a") if args[0] == "ps" else bocker(*args)
        assert proc.returncode == 125, (args, proc.returncode, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_logs_tail_since_until(bocker, two):
    second = two["second"]
    assert bocker("logs", "-n", "2", second, check=True).stdout == "two\nthree\n"
    stamped = bocker("logs", "-t", second, check=True).stdout.splitlines()
    first_stamp = stamped[0].split(" ")[0]
    assert bocker("logs", "--since", first_stamp, second, check=True).stdout == \
        "one\ntwo\nthree\n"
    assert bocker("logs", "--until", first_stamp, second, check=True).stdout == ""
    assert bocker("logs", "--since", "10m", second, check=True).stdout == "one\ntwo\nthree\n"
    assert bocker("logs", "--until", "10m", second, check=True).stdout == ""
    future = str(int(time.time()) + 3600)
    assert bocker("logs", "--since", future, second, check=True).stdout == ""
    assert bocker("logs", "--until", future, "-n", "1", second, check=True).stdout == "three\n"
    # a follow ends at --until, though the container runs on and prints nothing
    until = str(time.time() + 1)
    assert bocker("logs", "-f", "--until", until, second, check=True).stdout == \
        "one\ntwo\nthree\n"
    proc = bocker("logs", "--since", "yesterday", second)
    assert proc.returncode == 125 and "--since" in proc.stderr


def test_a_docker_users_script_finds_its_server(bocker, cleanup):
    """Issue 15's script: a labelled server with a published port, found by
    ps --filter label=... --format '{{.ID}}', its address read with inspect -f."""
    from netfixtures import free_port

    port = free_port()
    cid = bocker("run", "-d", "--label", f"app=script-{TAG}", "-p", f"{port}:80", "busybox",
                 "sleep", "60", check=True).stdout.strip()
    cleanup.append(cid)
    assert bocker("ps", "--filter", f"label=app=script-{TAG}", "--format", "{{.ID}}",
                  check=True).stdout == f"{cid}\n"
    assert bocker("ps", "-q", "--filter", f"label=app=script-{TAG}", "--filter",
                  "label=nosuchlabel", check=True).stdout == ""
    assert cid in bocker("ps", "-q", "--filter", "publish=80", check=True).stdout.split()
    assert cid in bocker("ps", "-q", "--filter", "expose=80/tcp", check=True).stdout.split()
    assert cid not in bocker("ps", "-q", "--filter", "publish=81", check=True).stdout.split()
    assert bocker("ps", "--filter", f"id={cid}", "--format", '{{.Label "app"}} {{.Ports}}',
                  check=True).stdout == f"script-{TAG} 0.0.0.0:{port}->80/tcp\n"
    assert bocker("inspect", "-f", '{{index .Config.Labels "app"}}', cid,
                  check=True).stdout == f"script-{TAG}\n"
    assert json.loads(bocker("inspect", "-f", "{{json .Config.Labels}}", cid,
                             check=True).stdout) == {"app": f"script-{TAG}"}
    assert cid in bocker("ps", "-q", "--filter", "label=app", check=True).stdout.split()
    ip = bocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid, check=True).stdout
    assert ip.strip() and ip.strip() in bocker("ps", "--filter", f"id={cid}",
                                               check=True).stdout
