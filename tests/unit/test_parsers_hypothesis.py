"""Every parser of user input, driven by hypothesis: what it accepts
parses to the documented range and round-trips; anything else raises the
project's own InvalidArgument, never another exception (a traceback).

Two kinds of strategy per parser: well-formed values built from the
grammar (accepted, with their meaning checked), and arbitrary text mixed
with the grammar's own pieces (which must never crash the parser).
"""
import os
import re
import signal

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from bocker import ids, units
from bocker.confine import security
from bocker.errors import BockerError, InvalidArgument, RunRefused
from bocker.image import names, reference
from bocker.net import nat
from bocker.runtime import checks, create, spec


def pieces(*bits):
    """Text built from the grammar's own pieces and arbitrary characters:
    far likelier than st.text() alone to reach a parser's corner cases."""
    return st.lists(st.one_of(st.sampled_from(bits), st.text(max_size=3)),
                    max_size=8).map("".join)


def refused_or(parse, text):
    """parse(text), or None if it raised InvalidArgument (anything else fails)."""
    try:
        return parse(text)
    except InvalidArgument:
        return None


# ------------------------------------------------------------------ sizes

SIZE_BITS = ("0", "1", "9", "512", "-", ".", "k", "m", "g", "t", "b", "K", "M", "B", " ",
             "²", "٣", "e", "x", "99999999999999999999")


@given(st.integers(min_value=1, max_value=units.MAX_SIZE),
       st.sampled_from(["", "b", "k", "kb", "m", "mb", "g", "gb", "t", "tb", "K", "MB"]))
def test_a_size_in_range_round_trips(n, unit):
    factor = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "K": 1 << 10, "m": 1 << 20,
              "mb": 1 << 20, "MB": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "t": 1 << 40,
              "tb": 1 << 40}[unit]
    text = f"{n}{unit}"
    if n * factor <= units.MAX_SIZE:
        assert units.parse_size(text) == n * factor
    else:
        with pytest.raises(InvalidArgument):
            units.parse_size(text)


@given(pieces(*SIZE_BITS))
@example("²m")
@example("1" * 4000)
def test_any_size_text_is_a_size_or_refused(text):
    value = refused_or(units.parse_size, text)
    assert value is None or 1 <= value <= units.MAX_SIZE


@given(pieces("0", "1", ".", "5", "-", "e", "inf", "nan", "1e400", " ", "²"))
@example("inf")
@example("-nan")
@example("1e-400")
def test_any_cpus_text_is_finite_positive_or_refused(text):
    value = refused_or(units.parse_cpus, text)
    assert value is None or (0 < value < float("inf"))


# ---------------------------------------------------------------- signals

@given(st.sampled_from(sorted(s.name for s in signal.Signals)), st.booleans(), st.booleans())
def test_every_signal_name_parses_to_its_number(name, lower, strip_sig):
    text = name[3:] if strip_sig else name
    assert units.parse_signal(text.lower() if lower else text) == signal.Signals[name].value


@given(pieces("SIG", "KILL", "term", "9", "64", "65", "-", "+", "RTMIN", "²", "٣"))
@example("²")
@example("99999999999999999999999")
def test_any_signal_text_is_a_signal_number_or_refused(text):
    value = refused_or(units.parse_signal, text)
    assert value is None or 0 <= value <= signal.SIGRTMAX


@given(pieces("all", "0", "5", "-", "²", " "))
def test_any_tail_is_all_a_count_or_refused(text):
    value = refused_or(units.parse_tail, text)
    assert value is None or text == "all" or (isinstance(value, int) and value >= 0)


# ------------------------------------------------------------------ ports

@given(st.integers(1, 65535), st.integers(1, 65535), st.sampled_from([None, "tcp", "udp"]),
       st.one_of(st.none(), st.ip_addresses(v=4).map(str)))
def test_a_port_mapping_round_trips(host, ctr, proto, ip):
    text = (f"{ip}:" if ip else "") + f"{host}:{ctr}" + (f"/{proto}" if proto else "")
    port = nat.parse_port(text)
    assert (port.host_port, port.container_port, port.proto) == (host, ctr, proto or "tcp")
    assert port.host_ip == (None if ip in (None, "0.0.0.0") else ip)
    assert nat.parse_port(str(port)) == port


@given(pieces("80", ":", "0", "65536", "99999", "/", "tcp", "udp", "sctp", "1.2.3.4", ".",
              "::1", "[", "]", "-", " ", "²"))
@example("1.2.3.4.5:80:80")
@example("0:80")
def test_any_port_text_is_a_port_or_refused(text):
    port = refused_or(nat.parse_port, text)
    if port is not None:
        assert 1 <= port.host_port <= 65535 and 1 <= port.container_port <= 65535
        assert port.proto in ("tcp", "udp")


# ------------------------------------------------------ image references

tags = st.from_regex(re.compile(names.TAG, re.ASCII), fullmatch=True)
components = st.from_regex(names.COMPONENT, fullmatch=True).filter(lambda c: len(c) < 40)


@given(st.lists(components, min_size=1, max_size=3).map("/".join), st.one_of(st.none(), tags))
def test_a_reference_round_trips(path, tag):
    # a first component with a '.' names a registry host, another grammar
    assume("." not in path.split("/")[0] or "/" not in path)
    text = path + (f":{tag}" if tag else "")
    ref = reference.parse(text)
    assert ref.tag == (tag or "latest")
    assert reference.parse(str(ref)) == ref
    assert reference.parse(ref.familiar()) == ref
    checks.check_image(text)  # what run accepts too
    assert ids.split_name(text) == (path, tag or "latest")


REF_BITS = ("busybox", "a", "B", "/", ":", "::", "@", "sha256:", "ab" * 32, "abc", "_", "__",
            ".", "-", "localhost", "5000", "[::1]", " ", "\n", "x" * 130, "md5:", "²")


@given(pieces(*REF_BITS))
@example("a::b")
@example("busybox@sha256:short")
@example("busybox:" + "a" * 300)
def test_any_reference_text_is_a_reference_or_refused(text):
    ref = refused_or(reference.parse, text)
    if ref is not None:
        assert ref.tag or ref.digest
        assert not any(c.isspace() for c in str(ref))
    refused_or(ids.split_name, text)
    # what run accepts is what one of the two grammars accepts
    run_takes = refused_or(lambda t: checks.check_image(t) or True, text)
    if "@" not in text:
        assert bool(run_takes) == (refused_or(ids.split_name, text) is not None)
    elif run_takes:
        assert ref is not None


# ---------------------------------------------------------- container names

@given(st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}", fullmatch=True))
def test_a_container_name_of_docker_s_grammar_is_accepted(name):
    assume(not ids.is_id(name))
    assert ids.check_container_name(name) == name


@given(pieces("a", "Z", "0", "_", ".", "-", "/", " ", "\n", "\x01", "é", "ps_", "0123456789ab",
              "a" * 200))
@example("a" * 256)
@example("a/../b")
def test_any_container_name_is_docker_s_grammar_or_refused(name):
    ok = refused_or(ids.check_container_name, name) is not None
    assert ok == bool(re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name, re.ASCII)
                      and len(name) <= 255 and not ids.is_id(name))


# ----------------------------------------------------------------- volumes

paths_ = st.lists(st.sampled_from(["a", "b", "..", ".", "", "x y", "é"]), min_size=1,
                  max_size=4).map(lambda p: "/" + "/".join(p))


@given(paths_, paths_, st.sampled_from(["", ":ro", ":rw"]))
def test_a_volume_spec_parses_to_absolute_normal_paths(host, target, mode):
    parsed = refused_or(spec.parse_volume, f"{host}:{target}{mode}")
    assume(parsed is not None)   # a path with ':' in it is not one
    host_path, target_path, readonly = parsed
    for p in (host_path, target_path):
        assert p.startswith("/") and os.path.normpath(p) == p
    assert readonly == (mode == ":ro")


@given(pieces("/", "x", ":", "ro", "rw", "zz", ",", "..", ".", "/proc", "/sys", "/dev",
              "/dev/pts", "/dev/shm", " "))
@example("/x:/")
@example("/x:/proc/sys")
@example("/x:/x/../..")
def test_any_volume_spec_is_a_mount_or_refused(text):
    parsed = refused_or(spec.parse_volume, text)
    if parsed is None:
        return
    source, target, _ = parsed
    # a host path, a volume's name, or '' (anonymous): never a relative path
    assert target.startswith("/") and (source == "" or source.startswith("/") or
                                       re.fullmatch(r"[a-zA-Z0-9][\w.-]+", source, re.ASCII))
    allowed = refused_or(lambda t: checks.check_target(t, "volume") or True, target)
    covered = target == "/" or target == "/dev" or any(
        target == t or target.startswith(t + "/") for t in ("/proc", "/sys", "/dev/pts"))
    assert bool(allowed) != covered


@given(pieces("/t", ":", "size=", "1m", "10%", "mode=", "1777", "uid=", "0", ",", "noexec",
              "huge=never", "x", "²"))
def test_any_tmpfs_is_a_mount_tmpfs_takes_or_refused(spec_text):
    parsed = refused_or(checks.parse_tmpfs, spec_text)
    if parsed is not None:
        path, opts = parsed
        assert path.startswith("/") and os.path.normpath(path) == path
        for opt in opts.split(",") if opts else ():
            assert opt.partition("=")[0] in ("size", "nr_blocks", "nr_inodes", "mode", "uid",
                                             "gid", "huge")


# -------------------------------------------------- env, user, host, dns

@given(pieces("A", "=", "", "_", "\x00", "x", " "))
def test_any_env_entry_is_refused_only_without_a_key(item):
    refused = refused_or(lambda i: checks.check_env(i) or True, item) is None
    assert refused == (not item.partition("=")[0])


@given(pieces("0", "1", "4294967294", "4294967295", "99999999999", ":", "root", "²", "٣", ""))
def test_any_user_is_a_name_an_id_in_range_or_refused(user):
    if refused_or(lambda u: checks.check_user(u) or True, user):
        name, _, group = user.partition(":")
        assert name
        for part in (name, group):
            if part.isdigit():
                assert part.isascii() and int(part) <= checks.MAX_ID


@given(pieces("a", "-", ".", "0", "_", " ", "\n", "é", "a" * 63))
@example("x\n10.0.0.1 evil")
def test_any_hostname_is_one_line_and_short_or_refused(name):
    if refused_or(lambda n: checks.check_hostname(n) or True, name):
        assert 0 < len(name) <= 64 and name.isascii() and name.isprintable()
        assert " " not in name and not name.startswith(("-", "."))


@given(st.one_of(st.ip_addresses().map(str), pieces("1", ".", ":", "::", "a", "\n", " ")))
def test_any_dns_server_is_an_address_or_refused(server):
    import ipaddress

    if refused_or(lambda s: checks.check_dns(s) or True, server):
        ipaddress.ip_address(server)
        assert "\n" not in server


# -------------------------------------------------------- ulimits, sysctls

@given(st.sampled_from(sorted(security.RLIMITS)), st.integers(0, security.RLIM_MAX),
       st.integers(0, security.RLIM_MAX))
def test_an_ulimit_round_trips(name, a, b):
    soft, hard = min(a, b), max(a, b)
    assert security.parse_ulimit(f"{name}={soft}:{hard}") == (security.RLIMITS[name], soft, hard)
    assert security.parse_ulimit(f"{name}={soft}") == (security.RLIMITS[name], soft, soft)


@given(pieces("nofile", "nproc", "=", ":", "1", "-1", "unlimited", "99999999999999999999",
              "²", "bogus", " "))
def test_any_ulimit_is_a_limit_or_refused(item):
    parsed = refused_or(security.parse_ulimit, item)
    if parsed is not None:
        resource, soft, hard = parsed
        assert resource in security.RLIMITS.values() and 0 <= soft <= hard
        assert hard <= security.RLIM_MAX or hard == security.RLIM_INFINITY


@given(pieces("net.", "ipv4.", "ip_forward", "kernel.", "core_pattern", "shmmax", "fs.mqueue.",
              "=", "1", "/", "\n", "\x00", " "),
       st.sampled_from(["bridge", "host", "none"]))
def test_any_sysctl_is_a_namespaced_one_or_refused(item, network):
    out = refused_or(lambda i: security.parse_sysctl(i, network), item)
    if out is not None:
        key = out.partition("=")[0]
        assert (key in security.IPC_SYSCTLS or key.startswith("fs.mqueue.")
                or (key.startswith("net.") and network != "host"))
        assert "\n" not in out and "\0" not in out


# -------------------------------------------- the whole request, as the library takes it

BAD_FIELDS = [
    dict(image="BusyBox"), dict(image=""), dict(image="a::b"), dict(memory=1), dict(memory=-1),
    dict(memory=1 << 64), dict(cpus=0.0), dict(cpus=float("inf")), dict(cpus=float("nan")),
    dict(cpu_shares=-1), dict(pids_limit=-5), dict(pids_limit=1 << 40), dict(name="a b"),
    dict(name="x" * 300), dict(hostname="a\nb"), dict(hostname=""), dict(workdir="rel"),
    dict(user="99999999999"), dict(env=["=x"]), dict(env=["A=\0"]), dict(dns=["x"]),
    dict(volumes=["r/el:/x"]), dict(volumes=["/x:/proc"]), dict(volumes=["/x:/"]),
    dict(volumes=["/x\0:/y"]), dict(tmpfs=["/sys"]), dict(tmpfs=["x"]), dict(ports=["0:80"]),
    dict(ports=["80:80"], network="none"), dict(ulimits=["nofile=x"]),
    dict(sysctls=["kernel.core_pattern=|x"]), dict(security_opt=["bogus"]),
    dict(cap_add=["bogus"]), dict(command=["a\0b"]), dict(entrypoint=["\0"]),
]


@pytest.mark.parametrize("fields", BAD_FIELDS, ids=lambda f: repr(f)[:50])
def test_the_library_refuses_what_the_cli_refuses(fields):
    """create.check_request, which every start goes through, refuses each
    bad field with RunRefused (125), whatever called it."""
    fields = dict(fields)
    req = spec.RunRequest(fields.pop("image", "busybox"), fields.pop("command", ["true"]),
                          **fields)
    with pytest.raises(RunRefused):
        create.check_request(req)


good_or_bad = {
    "memory": st.one_of(st.integers(-2, 1 << 65), st.just(None)),
    "cpus": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    "cpu_shares": st.one_of(st.none(), st.integers(-5, 1 << 20)),
    "pids_limit": st.one_of(st.none(), st.integers(-10, 1 << 30)),
    "name": st.one_of(st.none(), pieces("a", "b", "_", " ", "/", "\n")),
    "hostname": st.one_of(st.none(), pieces("a", ".", "-", " ", "\n")),
    "workdir": st.one_of(st.none(), pieces("/", "a", "..", "\0")),
    "user": st.one_of(st.none(), pieces("0", ":", "root", "99999999999", "²")),
    "env": st.lists(pieces("A", "=", "1", "\0", ""), max_size=3),
    "dns": st.lists(st.one_of(st.ip_addresses().map(str), pieces("1", ".", "x")), max_size=2),
    "volumes": st.lists(pieces("/x", ":", "/y", "/proc", "ro", "rw", "zz", "..", "rel"),
                        max_size=2),
    "tmpfs": st.lists(pieces("/t", ":", "size=1m", "/dev", "rel"), max_size=2),
    "ports": st.lists(pieces("80", ":", "0", "/udp", "1.2.3.4"), max_size=2),
    "ulimits": st.lists(pieces("nofile", "=", "1", ":", "x"), max_size=2),
    "sysctls": st.lists(pieces("net.ipv4.ip_forward", "kernel.core_pattern", "=", "1"),
                        max_size=2),
    "cap_add": st.lists(st.sampled_from(["NET_ADMIN", "ALL", "bogus", "chown"]), max_size=2),
    "network": st.sampled_from(["bridge", "none", "host"]),
}


@given(st.fixed_dictionaries({}, optional=good_or_bad), pieces(*REF_BITS))
def test_any_request_is_checked_or_refused_never_a_crash(fields, image):
    req = spec.RunRequest(image or "busybox", ["true"], **fields)
    try:
        ports = create.check_request(req)
    except RunRefused:
        return
    assert isinstance(ports, list)
    # what passed is within the ranges the kernel takes
    assert req.memory == 0 or checks.MIN_MEMORY <= req.memory <= checks.MAX_INT64
    assert req.cpus is None or checks.MIN_CPUS <= req.cpus <= (os.cpu_count() or 1)
    for vol in req.volumes:  # a bind's host path is absolute, a name is a valid one
        source = spec.parse_volume(vol)[0]
        assert source == "" or source.startswith("/") or re.fullmatch(r"[a-zA-Z0-9][\w.-]+",
                                                                      source, re.ASCII)


def test_a_run_refusal_is_never_a_plain_bocker_error():
    """RunRefused is what main() turns into 125 (tests/unit/test_cli_boundary.py)."""
    assert issubclass(RunRefused, InvalidArgument) and issubclass(InvalidArgument, BockerError)
    assert RunRefused.exit_code == 125


@given(st.text())
@example("a\nb\rc\x00d\x1be\u2028f")
def test_an_error_line_is_one_line_whatever_it_says(text):
    """main() and output.each print every error through output.error."""
    import contextlib
    import io

    from bocker.cli import output

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        output.error(InvalidArgument(f"invalid thing '{text}'"))
    line = err.getvalue()
    assert line.startswith("bocker: ") and line.endswith("\n")
    assert len(line[:-1].splitlines()) == 1
