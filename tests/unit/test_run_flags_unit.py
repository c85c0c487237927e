"""Docker's run flags without root: their parsers, checks, the request
they make, what inspect shows, generated names, the stop settings and
the working directory's walk (in a plain directory standing in for a
rootfs)."""
import os

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bocker import units
from bocker.cli import containers as cli_containers
from bocker.cli import runoptions
from bocker.errors import Conflict, InvalidArgument, RunRefused
from bocker.runtime import checks, create, names, recordshape, signals, spec, workdir
from bocker.state import Paths


def _request(*argv):
    """The RunRequest `bocker run ARGV busybox true` makes (click parses, no root)."""
    ctx = cli_containers.run.make_context("run", [*argv, "busybox", "true"], obj=None)
    options = dict(ctx.params)
    for key in ("detach", "interactive", "tty", "cidfile", "detach_keys", "image", "command"):
        options.pop(key)
    return runoptions.request("busybox", ["true"], options)


def test_h_is_hostname_and_c_cpu_shares():
    req = _request("-h", "box", "-c", "300")
    assert (req.hostname, req.cpu_shares) == ("box", 300)


def test_defaults_are_dockers(monkeypatch):
    monkeypatch.delenv("BOCKER_MEM_LIMIT", raising=False)
    monkeypatch.delenv("BOCKER_CPU_SHARE", raising=False)
    req = _request()
    assert (req.memory, req.cpu_shares, req.memory_swap, req.shm_size) == (0, 0, None, None)
    assert (req.labels, req.init, req.group_add, req.pid) == ({}, False, [], None)


def test_env_limits_still_apply(monkeypatch):
    monkeypatch.setenv("BOCKER_MEM_LIMIT", "256")
    monkeypatch.setenv("BOCKER_CPU_SHARE", "128")
    req = _request()
    assert (req.memory, req.cpu_shares) == (256 << 20, 128)


def test_sizes_swap_and_labels(tmp_path):
    f = tmp_path / "labels"
    f.write_text("# c\nx=file\n\ny=file\n")
    req = _request("-m", "1.5g", "--memory-swap", "-1", "--shm-size", "256m", "-l", "y=flag",
                   "--label", "bare", "--label-file", str(f))
    assert (req.memory, req.memory_swap, req.shm_size) == (3 << 29, -1, 256 << 20)
    assert req.labels == {"x": "file", "y": "flag", "bare": ""}
    assert _request("-m", "0").memory == 0


def test_help_is_long_only():
    with pytest.raises(click.exceptions.Exit):
        cli_containers.run.make_context("run", ["--help"])
    from bocker.cli import create

    assert create.create.context_settings["help_option_names"] == ["--help"]


@pytest.mark.parametrize("text, size", [("1.5g", 3 << 29), ("0.5k", 512), ("2.25m", 9 << 18),
                                        ("1.0000001b", 1), ("0", 0), ("0.0m", 0)])
def test_parse_size_fractions_and_zero(text, size):
    assert units.parse_size(text, "b", zero=True) == size


@given(st.integers(1, 1 << 30), st.integers(0, 999), st.sampled_from("kmg"))
def test_parse_size_fraction_is_exact(whole, frac, unit):
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]
    got = units.parse_size(f"{whole}.{frac:03d}{unit}")
    assert got == whole * scale + frac * scale // 1000


def _req(**kw):
    return spec.RunRequest("busybox", ["true"], **kw)


@pytest.mark.parametrize("kw, message", [
    (dict(memory_swap=1 << 30), "always set the memory limit"),
    (dict(memory=64 << 20, memory_swap=32 << 20), "larger than the memory limit"),
    (dict(memory=64 << 20, memory_swap=-2), "invalid --memory-swap"),
    (dict(cpuset_cpus="1-0"), "this host has"),
    (dict(cpuset_cpus="0,,1"), "invalid --cpuset-cpus"),
    (dict(cpuset_cpus="99999"), "invalid --cpuset-cpus"),
    (dict(shm_size=0), "invalid --shm-size"),
    (dict(labels={"": "x"}), "not a map of strings"),
    (dict(labels={"a": 1}), "not a map of strings"),
    (dict(labels={"a": "b\0"}), "NUL"),
    (dict(labels={str(i): "" for i in range(checks.MAX_LABELS + 1)}), "more than"),
    (dict(stop_signal="NOPE"), "invalid signal"),
    (dict(stop_signal="0"), "invalid signal"),
    (dict(stop_timeout=-2), "invalid --stop-timeout"),
    (dict(group_add=["a b"]), "invalid --group-add"),
    (dict(group_add=[str(2 ** 32)]), "invalid --group-add"),
    (dict(group_add=["1"] * (checks.MAX_GROUPS + 1)), "too many --group-add"),
    (dict(pid="container:x"), "only 'host'"),
    (dict(ipc="shareable"), "only 'host'"),
    (dict(uts="host", hostname="x"), "conflicting options"),
    (dict(ipc="host", sysctls=["kernel.shmmax=1"]), "--ipc host"),
    (dict(pid="host", userns="auto"), "--userns auto"),
])
def test_refusals(kw, message):
    with pytest.raises(InvalidArgument) as e:
        checks.check(_req(**kw))
    assert message in str(e.value)


@pytest.mark.parametrize("kw", [dict(memory=64 << 20, memory_swap=-1),
                                dict(memory=64 << 20, memory_swap=64 << 20),
                                dict(cpuset_cpus="0"), dict(shm_size=1),
                                dict(labels={"a.b/c": "x" * 100}), dict(stop_signal="SIGUSR1"),
                                dict(stop_signal="15", stop_timeout=-1),
                                dict(group_add=["wheel", "10"]),
                                dict(pid="host", ipc="host", uts="host")])
def test_accepted(kw):
    req = _req(**kw)
    assert checks.check(req) is None and all(getattr(req, k) == v for k, v in kw.items()
                                             if k not in ("group_add",))


def test_old_record_loads_with_the_new_defaults():
    old = {"image": "busybox", "command": ["true"], "memory": 512 << 20, "cpu_shares": 512}
    req = spec.RunRequest.from_dict(old)
    assert (req.memory, req.cpu_shares, req.labels, req.stop_signal, req.init) == \
        (512 << 20, 512, {}, None, False)
    host = recordshape.host_config(req, {})
    assert host["MemorySwap"] == 1 << 30 and host["IpcMode"] == "private"
    assert spec.RunRequest.from_dict(req.to_dict()).to_dict() == req.to_dict()


def test_new_record_merges_labels_and_stop_settings():
    req = _req(labels={"b": "run", "c": "run"}, stop_timeout=3)
    record = recordshape.new_record("ps_1", req, "img_1",
                                    {"Labels": {"a": "image", "b": "image"},
                                     "StopSignal": "SIGQUIT"})
    config = record["Config"]
    assert config["Labels"] == {"a": "image", "b": "run", "c": "run"}
    assert (config["StopSignal"], config["StopTimeout"]) == ("SIGQUIT", 3)
    plain = recordshape.new_record("ps_1", _req(), "img_1", {})["Config"]
    assert plain["Labels"] == {} and "StopSignal" not in plain and "StopTimeout" not in plain


def test_uts_host_records_the_hosts_name():
    record = recordshape.new_record("ps_1", _req(uts="host"), "img_1", {})
    assert record["Config"]["Hostname"] == os.uname().nodename


@pytest.mark.parametrize("config", [{"Labels": ["a"]}, {"Labels": {"a": None}},
                                    {"StopSignal": 15}, {"StopSignal": "SIGNOPE"},
                                    {"StopSignal": "X" * 100}])
def test_hostile_image_fields_refused(config):
    with pytest.raises(RunRefused):
        create.image_fields(config)


def test_stop_settings():
    assert signals.stop_settings({}) == (15, 10.0)
    assert signals.stop_settings({"StopSignal": "SIGUSR1", "StopTimeout": 3}) == (10, 3.0)
    assert signals.stop_settings({"StopTimeout": -1}) == (15, None)
    assert signals.stop_settings({"StopTimeout": 3}, timeout=0) == (15, 0)
    assert signals.stop_settings({"StopSignal": "bogus", "StopTimeout": "x"}) == (15, 10.0)


def _paths(tmp_path):
    p = Paths(str(tmp_path / "root"))
    os.makedirs(p.containers)
    return p


def test_generated_name_form():
    assert names.generate(lambda n: 0) == f"{names.ADJECTIVES[0]}_{names.SURNAMES[0]}"
    assert all(n.isascii() and n.islower() and n.isalpha() for n in
               names.ADJECTIVES + names.SURNAMES)


def test_generated_names_retry_on_collision(tmp_path):
    p = _paths(tmp_path)
    for cid in ("ps_aaaaaaaaaaaa", "ps_bbbbbbbbbbbb", "ps_cccccccccccc"):
        os.mkdir(p.container(cid))
    first = names.claim_generated(p, "ps_aaaaaaaaaaaa", lambda n: 0)
    # every draw is the same: the retries fall back to a digit, then to the ID
    second = names.claim_generated(p, "ps_bbbbbbbbbbbb", lambda n: 0)
    third = names.claim_generated(p, "ps_cccccccccccc", lambda n: 0)
    assert first == "admiring_agnesi" and second == "admiring_agnesi0"
    assert third == "admiring_agnesi_cccccccc"
    assert names.claimed(p) == {first: "ps_aaaaaaaaaaaa", second: "ps_bbbbbbbbbbbb",
                                third: "ps_cccccccccccc"}
    with pytest.raises(Conflict):
        names.claim(p, first, "ps_cccccccccccc")


def test_resolve_groups(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "group").write_text("wheel:x:10:\nbad:x:nope:\n")
    assert spec.resolve_groups(str(tmp_path), ["wheel", "42"]) == [10, 42]
    with pytest.raises(InvalidArgument):
        spec.resolve_groups(str(tmp_path), ["bad"])


def test_workdir_made_inside_the_root(tmp_path):
    root = tmp_path / "rootfs"
    outside = tmp_path / "outside"
    root.mkdir()
    (root / "abs").symlink_to(str(outside))        # absolute: resolved inside the root
    (root / "rel").symlink_to("../../escape")      # '..' stops at the root
    (root / "file").write_text("")
    workdir.ensure(str(root), "/a/b/c")
    assert (root / "a" / "b" / "c").is_dir()
    assert oct((root / "a").stat().st_mode & 0o777) == oct(0o755 & ~_umask())
    workdir.ensure(str(root), "/abs/x")
    assert (root / str(outside).lstrip("/") / "x").is_dir() and not outside.exists()
    workdir.ensure(str(root), "/rel/y")
    assert (root / "escape" / "y").is_dir() and not (tmp_path.parent / "escape").exists()
    workdir.ensure(str(root), "/a/b/c")             # exists: nothing to do
    with pytest.raises(RunRefused):
        workdir.ensure(str(root), "/file/z")
    (root / "loop").symlink_to("/loop")
    with pytest.raises(RunRefused):
        workdir.ensure(str(root), "/loop/z")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_key = st.text(st.characters(blacklist_characters="=\n\r\x00", blacklist_categories=("Cs",)),
               min_size=1, max_size=20).filter(lambda k: k.strip() == k and k[0] != "#")


@given(st.dictionaries(_key, st.text(st.characters(blacklist_characters="\n\r\x00",
                                                   blacklist_categories=("Cs",)),
                                     max_size=20).filter(lambda v: v.strip() == v)))
def test_labels_round_trip(labels):
    items = [f"{k}={v}" for k, v in labels.items()]
    assert spec.parse_labels(items) == labels
    checks.check_labels(labels, "--label")


@given(st.lists(st.tuples(st.integers(0, (os.cpu_count() or 1) - 1),
                          st.integers(0, (os.cpu_count() or 1) - 1)), min_size=1, max_size=4))
def test_cpuset_lists_of_this_hosts_cpus_pass(ranges):
    value = ",".join(f"{min(a, b)}-{max(a, b)}" if a != b else str(a) for a, b in ranges)
    assert checks.check_cpuset(value) is None  # accepted: no InvalidArgument


@given(st.text(max_size=12))
def test_cpuset_check_never_crashes(value):
    # accepted, or refused in one InvalidArgument line: never another exception
    try:
        accepted = checks.check_cpuset(value) is None
    except InvalidArgument as e:
        accepted = False
        assert "\n" not in str(e).replace(value, "")
    assert not accepted or checks._CPUSET.match(value)  # only the kernel's list form passes
