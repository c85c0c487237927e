"""The everyday verbs against the real kernel: rename, top, stats, port,
update, pause/unpause, restart, info, version, events, and the
container/image/system groups."""
import json
import os
import re
import select
import signal
import subprocess
import time

from conftest import BOCKER
from conftest import wait_for

from bocker.kernel import cgroups


def _detach(bocker, cleanup, *args):
    cid = bocker("run", "-d", *args, check=True).stdout.strip()
    assert cid.startswith("ps_")
    cleanup.append(cid)
    return cid


def _inspect(bocker, ref):
    return json.loads(bocker("inspect", ref, check=True).stdout)[0]


def _events(bocker, *args):
    out = bocker("events", "--since", "0", "--until", "0s", "--format", "json", *args,
                 check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_rename_a_running_container_moves_its_name(bocker, cleanup):
    cid = _detach(bocker, cleanup, "--name", "verbs-old", "busybox", "sleep", "30")
    assert bocker("rename", "verbs-old", "verbs-new", check=True).stdout == ""
    assert _inspect(bocker, "verbs-new")["Id"] == cid
    assert bocker("inspect", "verbs-old").returncode != 0
    # the old name is free again, the new one is taken
    other = _detach(bocker, cleanup, "--name", "verbs-old", "busybox", "true")
    proc = bocker("rename", other, "verbs-new")
    assert proc.returncode == 1 and "already in use" in proc.stderr
    assert bocker("exec", "verbs-new", "true").returncode == 0
    renamed = [e for e in _events(bocker, "--filter", "event=rename") if e["id"] == cid]
    assert renamed[-1]["Actor"]["Attributes"]["oldName"] == "/verbs-old"
    assert renamed[-1]["Actor"]["Attributes"]["name"] == "verbs-new"


def test_rename_refuses_a_bad_or_same_name(bocker, cleanup):
    cid = _detach(bocker, cleanup, "--name", "verbs-same", "busybox", "true")
    assert bocker("rename", cid, "verbs-same").returncode == 1
    proc = bocker("rename", cid, "bad/name")
    assert proc.returncode == 1 and "invalid container name" in proc.stderr


def test_top_lists_the_container_processes(bocker, cleanup):
    cid = _detach(bocker, cleanup, "busybox", "sh", "-c", "sleep 31 & sleep 32; :")
    assert wait_for(lambda: "sleep 32" in bocker("top", cid).stdout)
    lines = bocker("top", cid, check=True).stdout.splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    cmds = [" ".join(line.split()[7:]) for line in lines[1:]]
    assert sorted(cmds) == ["sh -c sleep 31 & sleep 32; :", "sleep 31", "sleep 32"]
    pid1 = _inspect(bocker, cid)["State"]["Pid"]
    assert str(pid1) in [line.split()[1] for line in lines[1:]]
    lines = bocker("top", cid, "-eo", "pid,comm", check=True).stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert sorted(line.split()[1] for line in lines[1:]) == ["sh", "sleep", "sleep"]
    proc = bocker("top", cid, "--sort", "x")
    assert proc.returncode == 1 and "not supported" in proc.stderr


def test_top_escapes_what_a_process_calls_itself(bocker, cleanup):
    # a process's argv is the container's to choose: a newline in it must
    # not make a second row
    cid = _detach(bocker, cleanup, "busybox", "sh", "-c", "sleep 33; :", "a\nb\x1b[2J")
    assert wait_for(lambda: "sleep 33" in bocker("top", cid).stdout)
    out = bocker("top", cid, check=True).stdout
    assert len(out.splitlines()) == 3 and "\x1b" not in out
    assert "sh -c sleep 33; : a\\nb\\x1b[2J" in out


def test_stats_no_stream_reads_the_cgroup(bocker, cleanup):
    cid = _detach(bocker, cleanup, "--name", "verbs-stats", "-m", "64m", "busybox", "sh", "-c",
                  "dd if=/dev/zero of=/tmp/x bs=1M count=4 2>/dev/null; sleep 1 & sleep 1 & wait; sleep 30")
    proc = bocker("stats", "--no-stream", cid, check=True)
    header, row = proc.stdout.splitlines()
    assert header.split("  ")[0] == "CONTAINER ID"
    assert "MEM USAGE / LIMIT" in header and "NET I/O" in header and "PIDS" in header
    assert row.startswith(cid) and "verbs-stats" in row
    assert "/ 64MiB" in row
    fields = json.loads(bocker("stats", "--no-stream", "--format", "json", cid,
                               check=True).stdout)
    assert fields["Name"] == "verbs-stats" and fields["CPUPerc"].endswith("%")
    assert 1 <= int(fields["PIDs"]) <= 4
    used = fields["MemUsage"].split(" / ")[0]
    assert used != "0B"
    # not running: zeros, as Docker
    bocker("stop", "-t", "0", cid, check=True)
    fields = json.loads(bocker("stats", "--no-stream", "--format", "json", cid,
                               check=True).stdout)
    assert (fields["PIDs"], fields["MemUsage"]) == ("0", "0B / 0B")


def test_stats_counts_network_bytes_from_the_veth(bocker, cleanup):
    cid = _detach(bocker, cleanup, "busybox", "sh", "-c",
                  "ping -c 3 -W 1 -s 1000 $(ip route | awk '/default/ {print $3}'); sleep 30")
    assert wait_for(lambda: "3 packets" in bocker("logs", cid).stdout, timeout=20)
    fields = json.loads(bocker("stats", "--no-stream", "--format", "json", cid,
                               check=True).stdout)
    rx, tx = fields["NetIO"].split(" / ")
    assert tx.endswith("kB") and float(tx[:-2]) >= 3.0  # 3 pings of 1000 bytes went out


def test_port_prints_dockers_lines(bocker, cleanup):
    cid = _detach(bocker, cleanup, "-p", "127.0.0.1:18931:80", "-p", "18932:81/udp",
                  "busybox", "sleep", "30")
    lines = bocker("port", cid, check=True).stdout.splitlines()
    assert lines == ["80/tcp -> 127.0.0.1:18931", "81/udp -> 0.0.0.0:18932"]
    assert bocker("port", cid, "80", check=True).stdout == "127.0.0.1:18931\n"
    assert bocker("port", cid, "81/udp", check=True).stdout == "0.0.0.0:18932\n"
    proc = bocker("port", cid, "82")
    assert proc.returncode == 1 and "No public port '82/tcp'" in proc.stderr


def _cgroup_file(cid, controller, v1_file, v2_file):
    cg = cgroups.driver()
    d = cg.controller_dir(cid, controller)
    with open(os.path.join(d, v1_file if cg.version == 1 else v2_file)) as f:
        return f.read().strip()


def test_update_writes_the_cgroup_and_survives_a_restart(bocker, cleanup):
    cid = _detach(bocker, cleanup, "-m", "64m", "busybox", "sleep", "30")
    assert bocker("update", "-m", "96m", "--pids-limit", "77", "--cpus", "0.5",
                  "--restart", "on-failure:3", cid, check=True).stdout == f"{cid}\n"
    v1 = cgroups.driver().version == 1
    assert _cgroup_file(cid, "memory", "memory.limit_in_bytes", "memory.max") == str(96 << 20)
    assert _cgroup_file(cid, "pids", "pids.max", "pids.max") == "77"
    quota = _cgroup_file(cid, "cpu", "cpu.cfs_quota_us", "cpu.max")
    assert quota == ("50000" if v1 else "50000 100000")
    spec = _inspect(bocker, cid)["Spec"]
    assert (spec["memory"], spec["pids_limit"], spec["restart"]) == (96 << 20, 77, "on-failure:3")
    bocker("restart", "-t", "0", cid, check=True)
    assert _cgroup_file(cid, "memory", "memory.limit_in_bytes", "memory.max") == str(96 << 20)
    assert _cgroup_file(cid, "pids", "pids.max", "pids.max") == "77"
    # a stopped container: only its record
    bocker("stop", "-t", "0", cid, check=True)
    bocker("update", "--pids-limit", "88", cid, check=True)
    assert _inspect(bocker, cid)["Spec"]["pids_limit"] == 88


def test_update_refuses_bad_values_with_125(bocker, cleanup):
    cid = _detach(bocker, cleanup, "busybox", "true")
    assert bocker("update", cid).returncode == 125
    assert bocker("update", "-m", "lots", cid).returncode == 125
    assert bocker("update", "--restart", "sometimes", cid).returncode == 125
    assert bocker("update", "--cpuset-cpus", "0;1", cid).returncode == 125


def _state(bocker, cid):
    return _inspect(bocker, cid)["State"]


def _frozen(cid):
    return _cgroup_file(cid, "freezer", "freezer.state", "cgroup.freeze") in ("FROZEN", "1")


def test_pause_freezes_and_unpause_thaws(bocker, cleanup):
    cid = _detach(bocker, cleanup, "--name", "verbs-pause", "busybox", "sleep", "30")
    assert bocker("pause", cid, check=True).stdout == f"{cid}\n"
    st = _state(bocker, cid)
    assert st["Paused"] is True and st["Status"] == "paused" and st["Running"] is True
    row = next(r for r in bocker("ps", check=True).stdout.splitlines() if r.startswith(cid))
    assert "(Paused)" in row
    assert _frozen(cid)
    proc = bocker("exec", cid, "true")  # it would hang in the frozen group: refused
    assert proc.returncode == 1 and "is paused" in proc.stderr
    assert bocker("pause", cid).returncode == 1  # already paused
    assert bocker("unpause", cid, check=True).stdout == f"{cid}\n"
    st = _state(bocker, cid)
    assert st["Paused"] is False and st["Status"] == "running" and not _frozen(cid)
    assert bocker("unpause", cid).returncode == 1  # not paused
    actions = [e["Action"] for e in _events(bocker, "--filter", f"container={cid}")]
    assert actions[:4] == ["create", "start", "pause", "unpause"]


def test_stop_and_kill_of_a_paused_container(bocker, cleanup):
    # its TERM handler runs once stop thaws it: exit 3, not the SIGKILL's 137
    cid = _detach(bocker, cleanup, "busybox", "sh", "-c",
                  "trap 'exit 3' TERM; echo up; while :; do sleep 30 & wait; done")
    assert wait_for(lambda: bocker("logs", cid).stdout == "up\n")
    bocker("pause", cid, check=True)
    assert bocker("stop", "-t", "20", cid, check=True).stdout == f"{cid}\n"
    st = _state(bocker, cid)
    assert (st["Running"], st["Paused"], st["ExitCode"]) == (False, False, 3)
    bocker("start", cid, check=True)
    bocker("pause", cid, check=True)
    bocker("kill", cid, check=True)
    assert bocker("wait", cid, check=True).stdout == "137\n"
    assert _state(bocker, cid)["Paused"] is False


def test_rm_force_of_a_paused_container(bocker, cleanup):
    cid = _detach(bocker, cleanup, "busybox", "sleep", "30")
    bocker("pause", cid, check=True)
    proc = bocker("rm", cid)
    assert proc.returncode == 1 and "running" in proc.stderr
    bocker("rm", "-f", cid, check=True)
    assert bocker("inspect", cid).returncode == 1
    cleanup.remove(cid)


def test_restart_uses_the_stop_signal_and_works_when_exited(bocker, cleanup):
    cid = _detach(bocker, cleanup, "busybox", "sh", "-c",
                  "trap 'echo got TERM; exit 3' TERM; echo up; while :; do sleep 30 & wait; done")
    assert wait_for(lambda: bocker("logs", cid).stdout == "up\n")
    bocker("restart", "-t", "5", cid, check=True)
    assert wait_for(lambda: bocker("logs", cid).stdout == "up\ngot TERM\nup\n")
    assert _state(bocker, cid)["Running"] is True
    bocker("stop", "-t", "5", cid, check=True)
    assert _state(bocker, cid)["ExitCode"] == 3
    bocker("restart", cid, check=True)  # an exited container: started again
    assert _state(bocker, cid)["Running"] is True
    actions = [e["Action"] for e in _events(bocker, "--filter", f"container={cid}")]
    assert actions.count("restart") == 2 and "die" in actions and "stop" in actions
    kills = [e for e in _events(bocker, "--filter", f"container={cid}", "--filter", "event=kill")]
    assert kills[0]["Actor"]["Attributes"]["signal"] == str(int(signal.SIGTERM))


def test_events_record_a_containers_life(bocker):
    bocker("run", "--name", "verbs-life", "busybox", "sh", "-c", "exit 4")
    cid = _inspect(bocker, "verbs-life")["Id"]
    bocker("rm", cid, check=True)
    mine = _events(bocker, "--filter", "container=verbs-life")
    assert [e["Action"] for e in mine] == ["create", "start", "die", "destroy"]
    die = mine[2]
    assert die["Type"] == "container" and die["Actor"]["ID"] == cid
    assert die["Actor"]["Attributes"]["exitCode"] == "4"
    assert die["Actor"]["Attributes"]["image"] == "busybox"
    assert die["scope"] == "local" and die["time"] == die["timeNano"] // 10**9
    text = bocker("events", "--since", "0", "--until", "0s", "--filter",
                  f"container={cid}", "--filter", "event=die", check=True).stdout
    assert text.splitlines()[0].split(" ", 1)[1] == \
        f"container die {cid} (exitCode=4, image=busybox, name=verbs-life)"


def _line_within(stream, timeout=20):
    # a bound on a hang, not a timing: the line is there or the test fails
    ready = select.select([stream], [], [], timeout)[0]
    return stream.readline() if ready else ""


def test_events_follows_until_interrupted(bocker, paths):
    since = f"{time.time():.9f}"  # from before the first run: no race with its start
    bocker("run", "--rm", "--name", "verbs-follow1", "busybox", "true", check=True)
    proc = subprocess.Popen([BOCKER, "events", "--since", since, "--filter", "event=die",
                             "--format", "json"],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(_line_within(proc.stdout))  # from the log
        assert first["Actor"]["Attributes"]["name"] == "verbs-follow1"
        bocker("run", "--rm", "--name", "verbs-follow2", "busybox", "true", check=True)
        second = json.loads(_line_within(proc.stdout))  # followed as it was appended
        assert second["Actor"]["Attributes"]["name"] == "verbs-follow2"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        proc.stdout.close()


def test_stats_streams_a_table_a_second(bocker, cleanup):
    cid = _detach(bocker, cleanup, "busybox", "sleep", "30")
    proc = subprocess.Popen([BOCKER, "stats", cid], stdout=subprocess.PIPE, text=True)
    try:
        lines = [_line_within(proc.stdout) for _ in range(4)]
        assert [line.split("  ")[0] for line in lines[::2]] == ["CONTAINER ID"] * 2
        assert all(line.startswith(cid) for line in lines[1::2])
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        proc.stdout.close()


def test_events_refuses_a_bad_filter_with_125(bocker):
    assert bocker("events", "--filter", "colour=red", "--until", "0s").returncode == 125
    assert bocker("events", "--since", "yesterday", "--until", "0s").returncode == 125


def test_info_and_version(bocker, paths, cleanup):
    _detach(bocker, cleanup, "busybox", "sleep", "30")
    info = json.loads(bocker("info", "--format", "json", check=True).stdout)
    assert info["Driver"] == "btrfs" and info["DockerRootDir"] == paths.root
    assert info["ContainersRunning"] >= 1 and info["Images"] >= 1
    assert info["CgroupVersion"] == str(cgroups.driver().version)
    assert info["NCPU"] == os.cpu_count()
    text = bocker("info", check=True).stdout
    assert " Storage Driver: btrfs" in text and f" Docker Root Dir: {paths.root}" in text
    v = json.loads(bocker("version", "--format", "json", check=True).stdout)
    assert v["Client"]["Version"] == v["Server"]["Version"]
    assert bocker("version", check=True).stdout.startswith("Client:\n Version:")


def test_groups_are_aliases(bocker, cleanup):
    cid = _detach(bocker, cleanup, "busybox", "sleep", "30")
    assert cid in bocker("container", "ls", "-q", check=True).stdout.split()
    assert bocker("container", "top", cid, check=True).stdout.startswith("UID")
    assert "busybox" in bocker("image", "ls", check=True).stdout
    assert " Storage Driver: btrfs" in bocker("system", "info", check=True).stdout
    assert bocker("container", "stop", "-t", "0", cid, check=True).stdout == f"{cid}\n"
    assert bocker("container", "rm", cid, check=True).returncode == 0
    cleanup.remove(cid)
    assert bocker("container", "nosuch").returncode == 125
    assert "TYPE" in bocker("system", "df", check=True).stdout
    assert bocker("container", "prune", "-f", check=True).returncode == 0


def test_events_of_volumes_and_images(bocker, cleanup):
    bocker("volume", "create", "verbs-vol", check=True)
    bocker("volume", "rm", "verbs-vol", check=True)
    mine = _events(bocker, "--filter", "type=volume", "--filter", "volume=verbs-vol")
    assert [e["Action"] for e in mine][-2:] == ["create", "destroy"]
    bocker("run", "--name", "verbs-commit", "busybox", "true", check=True)
    cleanup.append("verbs-commit")
    bocker("commit", "--name", "verbs-img:1", "verbs-commit", check=True)
    image_id = _inspect(bocker, "verbs-img:1")["Id"]  # Docker's image inspect shape
    bocker("rmi", "verbs-img:1", check=True)
    mine = [e for e in _events(bocker, "--filter", "type=image") if e["Actor"]["ID"] == image_id]
    assert [e["Action"] for e in mine] == ["tag", "untag", "delete"]
    assert mine[0]["Actor"]["Attributes"]["name"] == "verbs-img:1"


def test_the_verbs_formats_are_the_shared_go_templates(bocker, cleanup):
    cid = _detach(bocker, cleanup, "--name", "verbs-fmt", "busybox", "sleep", "30")
    assert bocker("stats", "--no-stream", "--format", "{{.ID}}", cid,
                  check=True).stdout == cid[:15] + "\n"
    lines = bocker("stats", "--no-stream", "--format", "table {{.Name}}\\t{{.CPUPerc}}", cid,
                   check=True).stdout.splitlines()
    assert lines[0] == "NAME        CPU %"  # Docker's header, tabwriter's columns
    assert re.fullmatch(r"verbs-fmt   \d+\.\d\d%", lines[1]) and len(lines) == 2
    fields = json.loads(bocker("stats", "--no-stream", "--format", "{{json .}}", cid,
                               check=True).stdout)
    assert fields["Name"] == "verbs-fmt" and fields["PIDs"] == "1"
    assert bocker("stats", "--no-stream", "--format", "{{.Nope", cid).returncode == 125
    # info and version: Docker's nested fields
    info = json.loads(bocker("info", "--format", "{{json .}}", check=True).stdout)
    assert bocker("info", "--format", "{{.Name}} {{.ContainersRunning}}",
                  check=True).stdout == f"{info['Name']} {info['ContainersRunning']}\n"
    assert info["ContainersRunning"] >= 1
    assert bocker("version", "--format", "{{.Server.Os}}", check=True).stdout == "linux\n"
    assert bocker("version", "--format", "{{.Client.Version}}", check=True).stdout.strip()
    # events: each event through the template, Go's Message names too
    out = bocker("events", "--since", "0", "--until", "0s", "--filter", f"container={cid}",
                 "--format", "{{.ID}} {{.Status}} {{.Actor.Attributes.name}}",
                 check=True).stdout.splitlines()
    assert f"{cid} start verbs-fmt" in out
    assert bocker("events", "--since", "0", "--until", "0s", "--format", "{{if}}").returncode \
        == 125


def test_history_format_is_the_shared_go_template(bocker):
    image_id = json.loads(bocker("image", "inspect", "busybox", check=True).stdout)[0]["Id"]
    out = bocker("history", "--format", "{{.ID}}", "busybox", check=True).stdout.splitlines()
    assert out[0] == image_id and all(x == "<missing>" for x in out[1:])
    lines = bocker("history", "--format", "table {{.ID}}\\t{{.Size}}", "busybox",
                   check=True).stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "SIZE"] and lines[1].split()[0] == image_id
    rows = [json.loads(line) for line in bocker("history", "--format", "{{json .}}", "busybox",
                                                check=True).stdout.splitlines()]
    assert rows[0]["ID"] == image_id and set(rows[0]) == {
        "Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size"}
    assert bocker("history", "--format", "{{.Nope}}", "busybox").returncode == 125
