"""The build cache's keys, lookups and prune (no root: entries without a
rootfs in a temporary root), and the config instructions' pure parts."""
import json
import os

import pytest
from hypothesis import given, strategies as st

from bocker.build import cache, instructions, stages
from bocker.build.dockerfile import Instruction
from bocker.build.errors import BuildError
from bocker.state import Paths


def test_key_is_sha256_hex_and_deterministic():
    k = cache.step_key(None, "RUN", ["/bin/sh", "-c", "true"], (), {"args": []})
    assert cache.is_key(k) and k == cache.step_key(None, "RUN", ["/bin/sh", "-c", "true"], (),
                                                   {"args": []})


@given(st.lists(st.text(max_size=8), min_size=1, max_size=4), st.text(max_size=8))
def test_every_part_of_a_key_counts(args, extra):
    base = cache.step_key("a" * 64, "COPY", args, (("from", "x"),), extra)
    assert base != cache.step_key("b" * 64, "COPY", args, (("from", "x"),), extra)
    assert base != cache.step_key("a" * 64, "ADD", args, (("from", "x"),), extra)
    assert base != cache.step_key("a" * 64, "COPY", args + ["more"], (("from", "x"),), extra)
    assert base != cache.step_key("a" * 64, "COPY", args, (("from", "y"),), extra)
    assert base != cache.step_key("a" * 64, "COPY", args, (("from", "x"),), extra + "!")


def test_args_are_not_concatenated_ambiguously():
    assert cache.step_key(None, "RUN", ["a b"], ()) != cache.step_key(None, "RUN", ["a", "b"], ())


@pytest.mark.parametrize("bad", ["../x", "A" * 64, "a" * 63, "", None, "a" * 63 + "/"])
def test_only_a_key_becomes_a_path(tmp_path, bad):
    with pytest.raises(ValueError):
        cache.entry_dir(Paths(str(tmp_path)), bad)


def _fake_entry(paths, key, parent, record=None):
    d = os.path.join(paths.buildcache, key)
    os.makedirs(d)
    with open(os.path.join(d, "step.json"), "w") as f:
        json.dump(record or {"key": key, "parent": parent, "config": {}, "has_rootfs": False}, f)


def test_lookup_misses_corrupt_and_foreign_records(tmp_path):
    paths = Paths(str(tmp_path))
    k1, k2, k3 = (cache.step_key(None, "X", [str(i)], ()) for i in range(3))
    _fake_entry(paths, k1, None)
    _fake_entry(paths, k2, None, {"key": k1, "config": {}})  # another key's record
    os.makedirs(os.path.join(paths.buildcache, k3))
    with open(os.path.join(paths.buildcache, k3, "step.json"), "w") as f:
        f.write("{half")
    assert cache.lookup(paths, k1)["key"] == k1
    assert cache.lookup(paths, k2) is None and cache.lookup(paths, k3) is None
    assert cache.lookup(paths, cache.step_key(None, "Y", [], ())) is None


def test_prune_keeps_the_chains_images_use(tmp_path):
    paths = Paths(str(tmp_path))
    a, b, c, d = (cache.step_key(None, "X", [str(i)], ()) for i in range(4))
    _fake_entry(paths, a, None)
    _fake_entry(paths, b, a)
    _fake_entry(paths, c, b)
    _fake_entry(paths, d, a)  # a branch no image uses
    os.makedirs(os.path.join(paths.buildcache, f".tmp-{2**22 + 7}-{a}"))  # a dead build's
    keep = cache.used_keys([{"build": {"key": c, "base": {"entry": a}}}, {"layers": ["x"]},
                            {"build": {"key": "../../etc"}}])
    assert keep == {c, a}
    removed, _ = cache.prune(paths, keep)
    assert removed == [d] and cache.keys(paths) == sorted([a, b, c])
    assert not [n for n in os.listdir(paths.buildcache) if n.startswith(".tmp-")]
    assert cache.chain(paths, c) == [c, b, a]
    removed, _ = cache.prune(paths, keep, everything=True)
    assert sorted(removed) == sorted([a, b, c]) and cache.keys(paths) == []


def _ins(keyword, args, flags=(), json_form=None, line=3):
    return Instruction(line, keyword, tuple(flags), args, json_form, f"{keyword} {args}")


def _apply(stage, *items, build_args=None):
    for ins in items:
        instructions.apply(stage, ins, build_args or {}, {})
    return stage.config


def test_config_instructions_as_docker_stores_them():
    s = stages.StageState(0, None, {"Cmd": ["sh"], "Env": ["PATH=/bin"]})
    c = _apply(s, _ins("ENV", "A=1"), _ins("WORKDIR", "app"), _ins("WORKDIR", "sub"),
               _ins("EXPOSE", "80 53/udp"), _ins("ENTRYPOINT", "run it"),
               _ins("HEALTHCHECK", "CMD [\"check\", \"-q\"]", (("interval", "1m30s"),
                                                              ("start-period", "500ms"))))
    assert c["Env"] == ["PATH=/bin", "A=1"]
    assert c["WorkingDir"] == "/app/sub"
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert c["Entrypoint"] == ["/bin/sh", "-c", "run it"] and "Cmd" not in c
    assert c["Healthcheck"] == {"Test": ["CMD", "check", "-q"], "Interval": 90 * 10**9,
                                "StartPeriod": 500 * 10**6}
    s2 = stages.StageState(0, None, {"Cmd": ["sh"]})
    c2 = _apply(s2, _ins("CMD", "", json_form=("a", "b")), _ins("ENTRYPOINT", "", json_form=("e",)))
    assert c2["Cmd"] == ["a", "b"] and c2["Entrypoint"] == ["e"]  # this stage's CMD stays
    assert _apply(stages.StageState(0, None), _ins("HEALTHCHECK", "NONE"))["Healthcheck"] == \
        {"Test": ["NONE"]}


@pytest.mark.parametrize("text,ns", [("30s", 30 * 10**9), ("1h2m", 3720 * 10**9), ("0", 0),
                                     ("1.5s", 1500 * 10**6), ("250us", 250000)])
def test_go_durations(text, ns):
    assert instructions.go_duration(text) == ns


@pytest.mark.parametrize("text", ["", "s", "10", "-1s", "1x", "1s2"])
def test_bad_durations(text):
    assert instructions.go_duration(text) is None


@pytest.mark.parametrize("ins", [_ins("EXPOSE", "http"), _ins("EXPOSE", "0"),
                                 _ins("EXPOSE", "70000"), _ins("SHELL", "sh -c"),
                                 _ins("HEALTHCHECK", "CMD x", (("interval", "soon"),)),
                                 _ins("HEALTHCHECK", "CMD x", (("retries", "many"),)),
                                 # past Go's int64 of nanoseconds
                                 _ins("HEALTHCHECK", "CMD x", (("timeout", "9999999999h"),)),
                                 _ins("ONBUILD", "FROM x"), _ins("STOPSIGNAL", "kill me")])
def test_bad_instructions_name_their_line(ins):
    with pytest.raises(BuildError, match=r"^Dockerfile:3: "):
        _apply(stages.StageState(0, None), ins)


def test_build_args_and_their_scope():
    s = stages.StageState(0, None, {"Env": ["E=env"]})
    _apply(s, _ins("ARG", "A=default"), _ins("ARG", "B"), _ins("ARG", "E=arg"),
           build_args={"B": "given"})
    assert s.args == {"A": "default", "B": "given", "E": "arg"}
    assert s.scope()["E"] == "env"  # ENV wins over an ARG of the same name
    assert s.run_env() == ["A=default", "B=given", "E=env"]


def test_prune_leaves_the_cache_of_a_running_build(tmp_path):
    paths = Paths(str(tmp_path))
    a = cache.step_key(None, "X", [], ())
    _fake_entry(paths, a, None)
    with cache.building(paths):
        assert cache.prune(paths, (), everything=True) == ([], 0)
    assert cache.prune(paths, (), everything=True)[0] == [a]


def test_run_stubs_removed_inside_the_rootfs_only(tmp_path):
    from bocker.build import runstep

    before, after, outside = tmp_path / "before", tmp_path / "after", tmp_path / "outside"
    before.mkdir()
    (before / "etc").mkdir()
    assert runstep.missing_stubs(str(before)) == ["etc/hosts", "etc/hostname",
                                                  "etc/resolv.conf", "proc", "dev", "sys"]
    (after / "etc").mkdir(parents=True)
    (after / "etc" / "hosts").write_text("")           # a stub: goes
    (after / "etc" / "hostname").write_text("mine\n")  # the RUN wrote it: stays
    (after / "proc").mkdir()
    (after / "dev").mkdir()
    (after / "dev" / "x").write_text("")                # not empty: stays
    outside.mkdir()
    (outside / "resolv.conf").write_text("")
    os.symlink(str(outside), after / "sys")             # a symlink out: not followed
    runstep.remove_stubs(str(after), runstep.missing_stubs(str(before)))
    assert sorted(os.listdir(after)) == ["dev", "etc", "sys"]
    assert os.listdir(after / "etc") == ["hostname"]
    assert (outside / "resolv.conf").exists()


def test_run_stubs_never_through_a_symlinked_parent(tmp_path):
    from bocker.build import runstep

    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "hosts").write_text("")
    os.symlink(str(outside), root / "etc")
    runstep.remove_stubs(str(root), ["etc/hosts"])
    assert (outside / "hosts").exists()
