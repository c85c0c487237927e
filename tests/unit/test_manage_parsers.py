"""The verbs' parsers and formatters, without root: top's ps options and
/proc parsing, stats' cgroup files and sizes, port's lines, update's
flags, events' times and filters, and the command groups."""
import time

import pytest
from hypothesis import given, strategies as st

from bocker import eventquery, events
from bocker.cli import groups, manage
from bocker.errors import BockerError, InvalidArgument
from bocker.runtime import ports, stats, top, update


# ------------------------------------------------------------------ top

@pytest.mark.parametrize("args,fields", [
    ((), top.DEFAULT), (("-ef",), top.DEFAULT), (("-e",), top.SHORT), (("aux",), top.BSD_AUX),
    (("-eo", "pid,comm"), ["pid", "comm"]), (("-o", "pid", "-o", "user"), ["pid", "user"]),
    (("-opid,args",), ["pid", "args"]), (("-e", "-o", "pid=X"), ["pid"]),
])
def test_ps_options(args, fields):
    assert top.parse_ps_args(args) == fields


@pytest.mark.parametrize("args", [("--sort", "x"), ("-eo", "pid,nosuch"), ("-o",), ("-Z",),
                                  ("x",)])
def test_ps_options_refused(args):
    with pytest.raises(InvalidArgument):
        top.parse_ps_args(args)


STAT = (b"42 (my (odd) name) S 1 42 42 34816 42 4194560 100 0 0 0 250 50 0 0 20 0 1 0 "
        b"1000 4194304 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0")


def test_parse_proc_reads_stat_status_cmdline():
    p = top.parse_proc(42, STAT, b"Name:\tx\nUid:\t0\t1000\t1000\t1000\nThreads:\t3\n",
                       b"sh\0-c\0echo hi\0")
    assert (p["comm"], p["ppid"], p["uid"], p["threads"]) == ("my (odd) name", 1, 1000, 3)
    assert (p["utime"], p["stime"], p["starttime"], p["rss_pages"]) == (250, 50, 1000, 100)
    assert p["args"] == "sh -c echo hi" and p["tty_nr"] == 34816


@given(st.binary(max_size=600), st.binary(max_size=200), st.binary(max_size=300))
def test_parse_proc_of_anything_never_fails_and_stays_on_one_line(stat, status, cmdline):
    p = top.parse_proc(7, stat, status, cmdline)
    if p is not None:
        clock = top.Clock()
        for value in top.row(p, list(top.FIELDS), clock):
            assert value.isprintable()


def test_row_values():
    p = top.parse_proc(42, STAT, b"Uid:\t0\t0\t0\t0\n", b"")
    clock = top.Clock()
    clock.ticks, clock.page, clock.mem_total = 100, 4096, 4096 * 1000
    clock.boot, clock.now = 1000.0, 1000.0 + 10 + 20  # started at 10 s, now 20 s later
    values = dict(zip(top.FIELDS, top.row(p, list(top.FIELDS), clock, {0: "root"})))
    assert values["cmd"] == "[my (odd) name]"  # no cmdline: a kernel thread's form
    assert (values["time"], values["c"], values["pcpu"]) == ("00:00:03", "15", "15.0")
    assert (values["user"], values["rss"], values["pmem"]) == ("root", "400", "10.0")
    assert values["tty"] == "pts/0" and values["etime"] == "00:20"


@pytest.mark.parametrize("nr,name", [(0, "?"), (34816, "pts/0"), (34817, "pts/1"),
                                     (1025, "tty1"), (1088, "ttyS0"), (2048, "?")])
def test_tty_names(nr, name):
    assert top.tty_name(nr) == name


def test_times():
    assert top.cpu_time(3661) == "01:01:01" and top.cpu_time(90061) == "1-01:01:01"
    assert top.elapsed_time(61) == "01:01" and top.elapsed_time(3661) == "01:01:01"


def test_container_pids_bounded_and_clean(tmp_path):
    (tmp_path / "ps_x").mkdir()
    (tmp_path / "ps_x" / "cgroup.procs").write_bytes(b"12\n3\nnope\n12\n")

    class Driver:
        def controller_dir(self, cid, controller):
            return str(tmp_path / cid)

    assert top.container_pids(Driver(), "ps_x") == [3, 12]
    assert top.container_pids(Driver(), "ps_gone") == []


# ------------------------------------------------------------------ stats

def test_cgroup_stat_files():
    assert stats.flat_keyed("cache 10\ntotal_inactive_file 4\nbad x\n") == {
        "cache": 10, "total_inactive_file": 4}
    assert stats.blkio_v1("8:0 Read 4096\n8:0 Write 512\n8:16 Read 4\nTotal 4612\n") == (4100, 512)
    assert stats.io_stat_v2("8:0 rbytes=10 wbytes=20 rios=1\n8:16 rbytes=5 wbytes=x\n") == (15, 20)


@pytest.mark.parametrize("n,binary,decimal", [
    (0, "0B", "0B"), (648, "648B", "648B"), (1050, "1.025KiB", "1.05kB"),
    (2056 * 1024, "2.008MiB", "2.11MB"), (8240000000, "7.674GiB", "8.24GB")])
def test_sizes_as_go_units(n, binary, decimal):
    assert (stats.binary_size(n), stats.decimal_size(n)) == (binary, decimal)


def test_cpu_percent_and_row():
    prev = stats.Sample(cpu_ns=0, system_ns=0, online_cpus=4)
    now = stats.Sample(cpu_ns=500, system_ns=1000, online_cpus=4, mem_usage=1 << 20,
                       mem_limit=4 << 20, net_rx=1000, net_tx=0, pids=2)
    assert stats.cpu_percent(prev, now) == 200.0
    record = {"Id": "ps_0123456789ab", "Name": "web", "State": {"Running": True}}
    r = stats.row(record, prev, now)
    assert (r["CPUPerc"], r["MemUsage"], r["MemPerc"]) == ("200.00%", "1MiB / 4MiB", "25.00%")
    assert (r["NetIO"], r["PIDs"], r["Container"]) == ("1kB / 0B", "2", "ps_0123456789ab")
    assert stats.cpu_percent(now, prev) == 0.0


# ------------------------------------------------------------------ port

RECORD = {"Id": "ps_1", "NetworkSettings": {"Ports": {
    "81/udp": [{"HostIp": "0.0.0.0", "HostPort": "9001"}],
    "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}, {"HostIp": "", "HostPort": "8081"}],
    "9/tcp": "junk"}}}


def test_port_lines():
    # a binding that is not an object (9/tcp's) is left out
    assert ports.port_lines(RECORD) == ["80/tcp -> 127.0.0.1:8080", "80/tcp -> 0.0.0.0:8081",
                                        "81/udp -> 0.0.0.0:9001"]
    assert ports.port_lines(RECORD, "80") == ["127.0.0.1:8080", "0.0.0.0:8081"]
    assert ports.port_lines(RECORD, "81/udp") == ["0.0.0.0:9001"]
    with pytest.raises(BockerError, match="No public port '82/tcp'"):
        ports.port_lines(RECORD, "82")
    with pytest.raises(InvalidArgument):
        ports.port_lines(RECORD, "80/icmp")
    assert ports.port_lines({"Id": "ps_2"}) == []


# ------------------------------------------------------------------ update

def test_update_flags():
    change = manage.parse_update(memory="1536m", memory_swap="-1",
                                 cpus="0.5", pids_limit=10, restart="always")
    assert change == {"memory": 1536 << 20, "memory_swap": -1, "cpus": 0.5, "pids_limit": 10,
                      "restart": "always"}
    assert manage.parse_update(memory="0", cpus="0") == {"memory": 0, "cpus": 0.0}
    update.check(change)


@pytest.mark.parametrize("change", [{}, {"memory": 100, "memory_swap": 50},
                                    {"cpu_shares": -1}, {"pids_limit": -2},
                                    {"cpuset_cpus": "0;1"}, {"restart": "sometimes"},
                                    {"colour": 1}])
def test_update_check_refuses(change):
    with pytest.raises(InvalidArgument):
        update.check(change)


def test_update_writes_v2_files(tmp_path):
    for name in ("memory.max", "memory.swap.max", "cpu.max", "pids.max", "cpu.weight"):
        (tmp_path / name).write_text("")
    update._write_v2(str(tmp_path), {"memory": 1 << 20, "cpus": 1.5, "pids_limit": -1,
                                     "cpu_shares": 1024}, {})
    read = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert read == {"memory.max": str(1 << 20), "memory.swap.max": "0",
                    "cpu.max": "150000 100000", "pids.max": "max", "cpu.weight": "39"}


def test_update_writes_v1_memory_in_a_valid_order(tmp_path):
    mem = tmp_path / "memory"
    mem.mkdir()
    (mem / "memory.limit_in_bytes").write_text("100")
    (mem / "memory.memsw.limit_in_bytes").write_text("100")
    order = []

    class Driver:
        version = 1

        def controller_dir(self, cid, controller):
            return str(mem) if controller == "memory" else None

    import bocker.kernel.cgroups as cg
    real = cg.write_value
    cg.write_value = lambda path, value: (order.append((path.rsplit("/", 1)[1], value)),
                                          real(path, value))
    try:
        update._write_v1(Driver(), "ps_x", {"memory": 200}, {})  # grows: memsw first
        update._write_v1(Driver(), "ps_x", {"memory": 50, "memory_swap": 80}, {})  # shrinks
    finally:
        cg.write_value = real
    assert order == [("memory.memsw.limit_in_bytes", 200), ("memory.limit_in_bytes", 200),
                     ("memory.limit_in_bytes", 50), ("memory.memsw.limit_in_bytes", 80)]


# ------------------------------------------------------------------ events

def test_parse_time_forms():
    now = 1_700_000_000.0
    assert eventquery.parse_time("10m", now) == int((now - 600) * 1e9)
    assert eventquery.parse_time("1h30m", now) == int((now - 5400) * 1e9)
    assert eventquery.parse_time("1700000000.5") == 1_700_000_000_500_000_000
    assert eventquery.parse_time("2023-11-14T22:13:20Z") == 1_700_000_000 * 10**9
    assert eventquery.parse_time("2023-11-15T00:13:20+02:00") == 1_700_000_000 * 10**9
    assert eventquery.parse_time("2023-11-14T22:13:20.25Z") == 1_700_000_000_250_000_000
    assert eventquery.parse_time("2023-11-14") == 1_699_920_000 * 10**9


@pytest.mark.parametrize("text", ["yesterday", "2023-02-31", "10x", "", "1e5"])
def test_parse_time_refuses(text):
    with pytest.raises(InvalidArgument):
        eventquery.parse_time(text)


@given(st.text(max_size=40))
def test_parse_time_never_crashes(text):
    try:
        assert isinstance(eventquery.parse_time(text), int)
    except InvalidArgument:
        pass


def _ev(kind, action, aid, **attrs):
    return events.event(kind, action, aid, attrs, now_ns=1_700_000_000_000_000_000)


def test_filters():
    die = _ev("container", "die", "ps_0123456789ab", name="web", image="busybox:latest",
              exitCode="0", tier="front")
    tag = _ev("image", "tag", "img_1", name="busybox:latest")
    f = eventquery.parse_filters
    assert eventquery.matches(die, f(["type=container", "event=die", "event=start"]))
    assert not eventquery.matches(tag, f(["type=container"]))
    assert eventquery.matches(die, f(["container=web"]))
    assert eventquery.matches(die, f(["container=ps_0123"]))
    assert not eventquery.matches(die, f(["container=db"]))
    assert eventquery.matches(die, f(["image=busybox"])) and eventquery.matches(tag, f(["image=busybox"]))
    assert eventquery.matches(die, f(["label=tier", "label=x=y"]))
    assert not eventquery.matches(die, f(["label=tier=back"]))
    with pytest.raises(InvalidArgument):
        f(["colour=red"])
    with pytest.raises(InvalidArgument):
        f(["type"])


def test_text_line_is_dockers():
    e = _ev("container", "die", "ps_1", name="web", exitCode="3")
    line = eventquery.text_line(e)
    stamp, rest = line.split(" ", 1)
    assert rest == "container die ps_1 (exitCode=3, name=web)"
    assert stamp.endswith(("Z", ":00", ":30", ":45")) and ".000000000" in stamp
    view = eventquery.template_view(e)
    assert (view["Type"], view["Status"], view["ID"], view["TimeNano"]) == (
        "container", "die", "ps_1", e["timeNano"])


def test_stream_reads_since_and_stops_at_until(tmp_path):
    from bocker.state import Paths

    paths = Paths(str(tmp_path))
    base = time.time_ns()
    for i, action in enumerate(["create", "start", "die"]):
        line = events.encode(events.event("container", action, "ps_1", now_ns=base + i))
        with open(events.log_path(paths), "ab") as f:
            f.write(line)
    got = list(eventquery.stream(paths, since=base + 1, until=base + 1))
    assert [e["Action"] for e in got] == ["start"]
    got = list(eventquery.stream(paths, since=0, until=time.time_ns(),
                                 filters={"event": ["die", "create"]}))
    assert [e["Action"] for e in got] == ["create", "die"]


# ------------------------------------------------------------------ groups

def test_groups_leave_out_commands_this_build_lacks(monkeypatch):
    from bocker.cli import app

    monkeypatch.setitem(groups.ALIASES["container"], "frobnicate", "no-such-command")
    names = groups.container.list_commands(None)
    assert "ls" in names and "prune" in names and "frobnicate" not in names
    assert set(groups.system.list_commands(None)) >= {"prune", "df", "info", "events"}
    for group in ("container", "image", "system"):
        assert app.COMMAND_MODULES[group] == "groups"


def test_print_formatted_json(capsys):
    assert manage.print_formatted("json", [{"a": 1}], {})
    assert capsys.readouterr().out == '{"a":1}\n'


def test_print_formatted_rows_are_structs(capsys):
    from bocker.cli import gotemplate

    rows = [{"Name": "a", "CPUPerc": "1.00%"}, {"Name": "bb", "CPUPerc": "0.00%"}]
    assert manage.print_formatted("table {{.Name}}\\t{{.CPUPerc}}", rows, {"CPUPerc": "CPU %"})
    assert capsys.readouterr().out == "NAME      CPU %\na         1.00%\nbb        0.00%\n"
    assert not manage.print_formatted("table", rows, {})
    with pytest.raises(gotemplate.TemplateError):  # a struct's missing field: Docker's error
        manage.print_formatted("{{.Nope}}", rows, {})
