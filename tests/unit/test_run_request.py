"""How run turns a command, an image config and options into argv/env."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bocker.errors import InvalidArgument
from bocker.runtime import spec as containers


@pytest.mark.parametrize("command,config,entry,expected", [
    (["echo", "hi"], {}, None, ["echo", "hi"]),
    (["sleep 5 && ps aux"], {}, None, ["/bin/sh", "-c", "sleep 5 && ps aux"]),
    ([], {"Cmd": ["httpd", "-f"]}, None, ["httpd", "-f"]),
    ([], {}, None, ["/bin/sh"]),
    ([], {"Entrypoint": ["/init"], "Cmd": ["a"]}, None, ["/init", "a"]),
    (["b"], {"Entrypoint": ["/init"], "Cmd": ["a"]}, None, ["/init", "b"]),
    (["x y"], {"Entrypoint": ["/init"]}, None, ["/init", "x y"]),
    ([], {"Entrypoint": ["/init"], "Cmd": ["a"]}, ["/other"], ["/other"]),
    (["c"], {"Entrypoint": ["/init"], "Cmd": ["a"]}, ["/other"], ["/other", "c"]),
])
def test_build_argv(command, config, entry, expected):
    assert containers.build_argv(command, config, entry) == expected


def test_build_env_order_and_defaults(monkeypatch):
    monkeypatch.setenv("FROM_HOST", "h")
    env = containers.build_env(["A=1", "PATH=/bin"], ["A=2", "B=x=y", "FROM_HOST", "UNSET_X"], "ps_1")
    d = dict(e.split("=", 1) for e in env)
    assert d == {"A": "2", "B": "x=y", "PATH": "/bin", "FROM_HOST": "h",
                 "HOSTNAME": "ps_1", "HOME": "/root"}


def test_build_env_rejects_empty_key():
    with pytest.raises(InvalidArgument):
        containers.build_env([], ["=1"], "h")


@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True),
                       st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=10)))
def test_build_env_keeps_every_value(values):
    env = containers.build_env([], [f"{k}={v}" for k, v in values.items()], "h")
    d = dict(e.split("=", 1) for e in env)
    for k, v in values.items():
        assert d[k] == v


def test_resolve_user(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nweb:x:33:44::/srv:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nstaff:x:50:\n")
    assert containers.resolve_user(str(tmp_path), None) == (0, 0, "/root")
    assert containers.resolve_user(str(tmp_path), "web") == (33, 44, "/srv")
    assert containers.resolve_user(str(tmp_path), "33:staff") == (33, 50, "/srv")
    assert containers.resolve_user(str(tmp_path), "1000:7") == (1000, 7, "/")
    with pytest.raises(InvalidArgument):
        containers.resolve_user(str(tmp_path), "nobody-here")


def test_env_file(tmp_path):
    f = tmp_path / "env"
    f.write_text("# comment\nA=1\n\n  B=2\n")
    assert containers.parse_env_file(str(f)) == ["A=1", "B=2"]
    with pytest.raises(InvalidArgument):
        containers.parse_env_file(str(tmp_path / "missing"))


def test_limits_from_env():
    env = {"BOCKER_MEM_LIMIT": "256", "BOCKER_CPU_SHARE": "128"}
    assert containers.limits_from_env(None, None, env) == ("256m", 128)
    # options win over the environment
    assert containers.limits_from_env("1g", 700, env) == ("1g", 700)
    # unset or empty: RunRequest's own defaults
    for empty in ({}, {"BOCKER_MEM_LIMIT": "", "BOCKER_CPU_SHARE": ""}):
        assert containers.limits_from_env(None, None, empty) == (None, None)
    req = containers.RunRequest("img", memory=None, cpu_shares=None)
    assert (req.memory, req.cpu_shares) == (0, 0)  # Docker's: no limit, no shares written


def test_limits_from_env_reads_os_environ(monkeypatch):
    monkeypatch.setenv("BOCKER_MEM_LIMIT", "64")
    monkeypatch.delenv("BOCKER_CPU_SHARE", raising=False)
    assert containers.limits_from_env() == ("64m", None)
    monkeypatch.setenv("BOCKER_CPU_SHARE", "lots")
    with pytest.raises(InvalidArgument) as e:
        containers.limits_from_env()
    assert str(e.value) == "invalid $BOCKER_CPU_SHARE 'lots'"
