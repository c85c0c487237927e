"""Parsers of the Docker 28 client flags (no root): Docker's =BOOL flags,
commit/import --change, run's -a/--annotation/--dns-search/--dns-option/
--domainname checks, --platform of one-platform images, resolv.conf's
search/options lines, history -H=false's times, and -q's silent pull."""
import time

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bocker.cli import boolflags
from bocker.errors import InvalidArgument
from bocker.image import changes, history, platforms
from bocker.net import etcfiles
from bocker.runtime import runextras, spec

# ------------------------------------------------------------ =BOOL flags

PAUSE = boolflags.bools("-p/--pause")


def _takes(*names):
    return lambda opt: opt in names


@pytest.mark.parametrize("arg,want", [("-p=false", "--no-pause"), ("--pause=false", "--no-pause"),
                                      ("--pause=true", "--pause"), ("-p=1", "--pause"),
                                      ("--pause=0", "--no-pause"), ("-p", "-p")])
def test_bool_values_become_click_spellings(arg, want):
    assert boolflags.rewrite([arg, "c1"], PAUSE, _takes()) == [want, "c1"]


def test_a_bad_bool_is_a_usage_error():
    with pytest.raises(click.BadParameter):
        boolflags.rewrite(["--pause=maybe"], PAUSE, _takes())


def test_values_and_the_command_after_the_image_are_left_alone():
    flags = {"--sig-proxy": ("--sig-proxy", "--no-sig-proxy")}
    args = ["-e", "--sig-proxy=false", "--name=x", "-it", "--sig-proxy=false", "img",
            "prog", "--sig-proxy=false"]
    assert boolflags.rewrite(args, flags, _takes("-e"), interspersed=False) == [
        "-e", "--sig-proxy=false", "--name=x", "-it", "--no-sig-proxy", "img", "prog",
        "--sig-proxy=false"]
    # a cluster ending in an option that takes a value takes the next argument
    assert boolflags.rewrite(["-ie", "--sig-proxy=false", "img"], flags, _takes("-e"),
                             interspersed=False) == ["-ie", "--sig-proxy=false", "img"]
    assert boolflags.rewrite(["--", "--sig-proxy=false"], flags, _takes()) == [
        "--", "--sig-proxy=false"]


def test_commands_take_docker_bools():
    from click.testing import CliRunner

    from bocker.cli import images

    out = CliRunner().invoke(images.history, ["--help"])
    assert "-H, --human" in out.output
    bad = CliRunner().invoke(images.history, ["-H=nope", "img"])
    assert bad.exit_code == 2 and "ParseBool" in bad.output


# ------------------------------------------------------------ --change

def test_every_allowed_instruction_sets_its_field():
    config = changes.apply({"Env": ["A=1", "PATH=/bin"], "Labels": {"old": "1"},
                            "WorkingDir": "/srv"},
                           ['CMD ["a", "b"]', "entrypoint echo hi", 'ENV A=2 B="x y"',
                            "ENV C hello world", "EXPOSE 80 53/udp 8000-8001",
                            'LABEL a=b "c d"=e', "STOPSIGNAL SIGINT", "USER nobody",
                            'VOLUME ["/data"]', "VOLUME /a /b", "WORKDIR app"])
    assert config == {
        "Env": ["PATH=/bin", "A=2", "B=x y", "C=hello world"], "Cmd": ["a", "b"],
        "Entrypoint": ["/bin/sh", "-c", "echo hi"],
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}},
        "Labels": {"old": "1", "a": "b", "c d": "e"}, "StopSignal": "SIGINT",
        "User": "nobody", "Volumes": {"/data": {}, "/a": {}, "/b": {}},
        "WorkingDir": "/srv/app"}


def test_apply_does_not_change_its_input():
    base = {"Env": ["A=1"]}
    changes.apply(base, ["ENV A=2"])
    assert base == {"Env": ["A=1"]}


@pytest.mark.parametrize("text,word", [
    ("ONBUILD RUN x", "ONBUILD"), ("HEALTHCHECK NONE", "HEALTHCHECK"), ("FROM x", "FROM"),
    ("RUN true", "RUN"), ("CMD", "requires"), ("EXPOSE 99999", "99999"),
    ("EXPOSE 80/icmp", "80/icmp"), ("EXPOSE 9-1", "9-1"), ("STOPSIGNAL NOPE", "NOPE"),
    ("VOLUME rel", "rel"), ("LABEL novalue", "novalue"), ("ENV A", "A"),
    ("ENV =x", "invalid"), ("USER a\0b", "NUL"), ('LABEL a="unclosed', "parse"), ("", "empty")])
def test_refusals_are_one_line_naming_the_value(text, word):
    with pytest.raises(InvalidArgument) as e:
        changes.parse(text)
    assert word in str(e.value) and "\n" not in str(e.value)


def test_a_refused_change_applies_none():
    with pytest.raises(InvalidArgument):
        changes.apply({}, ["CMD a", "ONBUILD RUN x"])


def test_a_huge_change_is_refused():
    with pytest.raises(InvalidArgument):
        changes.parse("CMD " + "x" * changes.MAX_CHANGE)


_word = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


@given(st.lists(_word, min_size=1, max_size=5))
def test_json_form_round_trips(argv):
    import json

    kind, value = changes.parse("CMD " + json.dumps(argv))
    assert (kind, value) == ("CMD", argv)


@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60))
def test_any_text_is_parsed_or_refused_never_a_crash(text):
    for kind in changes.ALLOWED + ("ONBUILD", "BOGUS"):
        try:
            config = changes.apply({}, [f"{kind} {text}"])
        except InvalidArgument as e:
            assert "\n" not in str(e)  # one line, whatever the text held
        else:
            assert kind in changes.ALLOWED and len(config) == 1


_key = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


@given(st.dictionaries(_key, st.text(st.characters(whitelist_categories=("L", "N", "Zs")),
                                     max_size=12), min_size=1, max_size=4))
def test_env_pairs_quoted_round_trip(env):
    import shlex

    text = "ENV " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    assert changes.apply({}, [text])["Env"] == [f"{k}={v}" for k, v in env.items()]


@given(st.integers(1, 65535), st.sampled_from(["tcp", "udp", "sctp", ""]))
def test_expose_one_port(port, proto):
    text = f"EXPOSE {port}" + (f"/{proto}" if proto else "")
    assert changes.parse(text) == ("EXPOSE", [f"{port}/{proto or 'tcp'}"])


# ------------------------------------------------------------ run's extras

def test_attach_streams():
    assert runextras.parse_attach(["STDOUT", "stderr", "stdout"]) == ("stdout", "stderr")
    assert runextras.parse_attach([]) == ()
    with pytest.raises(InvalidArgument, match="STDIN, STDOUT and STDERR"):
        runextras.parse_attach(["stdall"])


def test_annotations():
    assert runextras.parse_annotations(["a=b=c", "k"]) == {"a": "b=c", "k": ""}
    with pytest.raises(InvalidArgument):
        runextras.parse_annotations(["=v"])


@pytest.mark.parametrize("good", [["example.com"], ["."], ["a.b.c", "corp-1.local."]])
def test_dns_search_accepts(good):
    assert runextras.check_dns_search(good) is None
    req = spec.RunRequest("busybox", dns_search=good)
    req.check()
    assert "search" in etcfiles.filter_resolv("", search=good) or good == ["."]


@pytest.mark.parametrize("bad", [["a b"], ["x\nnameserver 1.1.1.1"], ["-x.com"], [""],
                                 ["a" * 64 + ".com"], ["d%d.com" % i for i in range(7)]])
def test_dns_search_refuses(bad):
    with pytest.raises(InvalidArgument):
        runextras.check_dns_search(bad)


def test_dns_options():
    runextras.check_dns_options(["ndots:2", "edns0", "use-vc", "timeout:3"])
    for bad in ("ndots 2", "a\nnameserver 1.1.1.1", "", "x:y"):
        with pytest.raises(InvalidArgument, match="--dns-option"):
            runextras.check_dns_options([bad])


def test_domainname():
    runextras.check_domainname("example.org")
    for bad in ("a b", "x" * 65, "", "-a"):
        with pytest.raises(InvalidArgument):
            runextras.check_domainname(bad)


def test_request_check_covers_the_extras():
    spec.RunRequest("busybox", domainname="example.org", dns_search=["x.org"]).check()
    with pytest.raises(InvalidArgument, match="UTS"):
        spec.RunRequest("busybox", domainname="example.org", uts="host").check()
    with pytest.raises(InvalidArgument):
        spec.RunRequest("busybox", dns_options=["bad option"]).check()


def test_old_records_load_with_the_defaults():
    req = spec.RunRequest.from_dict({"image": "busybox", "command": []})
    assert (req.attach, req.sig_proxy, req.annotations, req.dns_search, req.dns_options,
            req.domainname) == ([], True, {}, [], [], None)
    new = spec.RunRequest("busybox", attach=["stdout"], sig_proxy=False,
                          annotations={"a": "b"}, domainname="d.org")
    assert spec.RunRequest.from_dict(new.to_dict()).to_dict() == new.to_dict()


def test_resolv_conf_search_and_options_replace_the_hosts():
    host = "search host.lan\noptions ndots:5\nnameserver 10.0.0.1\n"
    assert etcfiles.filter_resolv(host, search=["a.org", "b.org"], options=["edns0"]) == (
        "search a.org b.org\noptions edns0\nnameserver 10.0.0.1\n")
    assert etcfiles.filter_resolv(host, search=["."]) == (
        "options ndots:5\nnameserver 10.0.0.1\n")
    assert etcfiles.filter_resolv(host) == host


# ------------------------------------------------------------ --platform

def test_platform_of_one_platform_images():
    amd = {"os": "linux", "architecture": "amd64"}
    assert platforms.require(platforms.of_record(amd), "linux/amd64")
    with pytest.raises(InvalidArgument, match="one platform"):
        platforms.require(platforms.of_record(amd), "linux/arm64")
    with pytest.raises(InvalidArgument, match="one platform"):
        platforms.require(("linux", "arm64", "v8"), "linux/arm64/v7")
    assert platforms.require(("linux", "arm64", "v8"), "linux/arm64")
    with pytest.raises(InvalidArgument, match="os/arch"):
        platforms.require(platforms.host_platform(), "linux")
    # an image made here (init, commit, import) is the host's
    assert platforms.of_record({"id": "img_x"}) == platforms.host_platform()


# ------------------------------------------------------------ history -H=false

def test_rfc3339_local_is_gos_format(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert history.rfc3339_local(0) == "1970-01-01T00:00:00Z"
        monkeypatch.setenv("TZ", "EST+5")
        time.tzset()
        assert history.rfc3339_local(0) == "1969-12-31T19:00:00-05:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# ------------------------------------------------------------ -q

@pytest.mark.parametrize("quiet", [True, False])
def test_run_quiet_pulls_without_a_word(monkeypatch, capsys, quiet):
    from bocker.cli import runoptions
    from bocker.image import autopull

    def ensure(paths, ref, policy, *, platform, progress, say):
        if say:
            say(f"Unable to find image '{ref}' locally")
        # (made only when a pull happens: a function until then)
        (progress() if callable(progress) else progress).layer("sha256:" + "a" * 64, 10,
                                                                "Pulling fs layer")

    monkeypatch.setattr(autopull, "ensure", ensure)
    runoptions.ensure_image(None, "alpine", "missing", None, quiet=quiet)
    err = capsys.readouterr().err
    assert (err == "") == quiet and ("Unable to find" in err) != quiet
