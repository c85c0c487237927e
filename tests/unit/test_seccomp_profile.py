"""Seccomp profiles without root: parsing and validating Docker/OCI JSON,
the includes/excludes reading against capabilities, arch and kernel, and
the compiled program's shape (libseccomp runs as any user)."""
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bocker.confine import capabilities, seccomp
from bocker.errors import InvalidArgument

ALLOW = seccomp.ACTIONS["SCMP_ACT_ALLOW"]
ERRNO = seccomp.ACTIONS["SCMP_ACT_ERRNO"]
DEFAULT_CAPS = capabilities.effective()


def parse(obj):
    return seccomp.parse(json.dumps(obj).encode(), "test.json")


def names_in(rules):
    return {name for name, _, _ in rules}


def rules_named(rules, name):
    return [(action, args) for n, action, args in rules if n == name]


def default_plan(caps=DEFAULT_CAPS, machine="x86_64", release="6.1.0-18-amd64"):
    return seccomp.plan(seccomp.default_profile(), caps, machine, release)


# ------------------------------------------------------------ the default profile

def test_default_refuses_with_eperm_and_knows_only_native_x86_64():
    default, arches, _, _ = default_plan()
    assert default == ERRNO | 1
    assert arches == ["x86_64"]          # i386 and x32 refused as foreign ABIs
    assert default_plan(machine="aarch64")[1] == ["aarch64"]


def test_default_leaves_out_io_uring_and_the_cap_gated_groups():
    rules = names_in(default_plan()[2])
    assert not {"io_uring_setup", "io_uring_enter", "io_uring_register"} & rules
    gated = {"kcmp", "pidfd_getfd", "process_madvise", "mount", "umount2", "unshare", "setns",
             "bpf", "perf_event_open", "reboot", "init_module", "finit_module", "acct", "iopl",
             "settimeofday", "clock_settime", "mbind", "set_mempolicy", "syslog", "vhangup",
             "open_by_handle_at", "keyctl", "add_key", "userfaultfd", "kexec_load"}
    assert not gated & rules
    assert {"read", "openat", "execve", "ptrace", "chroot", "name_to_handle_at"} <= rules


@pytest.mark.parametrize("cap, calls", [
    ("SYS_PTRACE", {"kcmp", "pidfd_getfd", "process_madvise"}),
    ("SYS_ADMIN", {"mount", "unshare", "setns", "fsopen", "sethostname", "bpf"}),
    ("SYS_BOOT", {"reboot"}), ("SYS_MODULE", {"init_module", "finit_module", "delete_module"}),
    ("SYS_PACCT", {"acct"}), ("SYS_RAWIO", {"iopl", "ioperm"}),
    ("SYS_TIME", {"settimeofday", "clock_settime"}), ("SYS_NICE", {"mbind", "set_mempolicy"}),
    ("SYSLOG", {"syslog"}), ("BPF", {"bpf"}), ("PERFMON", {"perf_event_open"}),
    ("DAC_READ_SEARCH", {"open_by_handle_at"}), ("SYS_TTY_CONFIG", {"vhangup"}),
])
def test_cap_add_opens_its_group(cap, calls):
    caps = capabilities.effective(add=[cap])
    assert calls <= names_in(default_plan(caps)[2])
    assert not calls & names_in(default_plan(capabilities.effective(drop=[cap]))[2])


def test_clone_without_namespaces_unless_sys_admin():
    clone = rules_named(default_plan()[2], "clone")
    assert clone == [(ALLOW, ((0, seccomp.OPS["SCMP_CMP_MASKED_EQ"], 0x7E020000, 0),))]
    assert rules_named(default_plan()[2], "clone3") == [(ERRNO | 38, ())]
    admin = default_plan(capabilities.effective(add=["SYS_ADMIN"]))[2]
    assert (ALLOW, ()) in rules_named(admin, "clone")
    assert rules_named(admin, "clone3") == [(ALLOW, ())]


def test_personality_only_dockers_values():
    eq = seccomp.OPS["SCMP_CMP_EQ"]
    values = sorted(args[0][2] for action, args in rules_named(default_plan()[2], "personality")
                    if action == ALLOW and args[0][1] == eq)
    assert values == [0x0, 0x8, 0x20000, 0x20008, 0xffffffff]


def _socket_allows(rules, family):
    """Evaluate the socket rules as the kernel filter would, on arg0."""
    ops = {v: k for k, v in seccomp.OPS.items()}
    for action, args in rules_named(rules, "socket"):
        (index, op, value, two), = args
        test = {"SCMP_CMP_LT": family < value, "SCMP_CMP_EQ": family == value,
                "SCMP_CMP_MASKED_EQ": family & value == two}[ops[op]]
        if test and action == ALLOW:
            return True
    return False


@given(st.integers(0, 2**64 - 1))
def test_socket_families(family):
    rules = default_plan()[2]
    low = family & 0xffffffff
    if family >> 32 or low >= 256 or low == 40:
        assert not _socket_allows(rules, family)
    else:
        assert _socket_allows(rules, family)


def test_arch_and_kernel_includes():
    x86 = names_in(default_plan()[2])
    arm = names_in(default_plan(machine="aarch64")[2])
    assert "arch_prctl" in x86 and "arch_prctl" not in arm
    assert "set_tls" in arm and "set_tls" not in x86
    old = names_in(default_plan(release="4.4.0")[2])
    assert "ptrace" not in old and "ptrace" in x86   # minKernel 4.8


def test_enosys_bound_names_everything_the_profile_knows():
    known = default_plan()[3]
    assert {"kcmp", "mount", "set_mempolicy_home_node", "clone3"} <= set(known)
    assert "io_uring_setup" not in known    # not named, so below the bound: EPERM


def test_allowing_default_has_no_enosys_bound():
    prof = parse({"defaultAction": "SCMP_ACT_ALLOW",
                  "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO"}]})
    default, _, rules, known = seccomp.plan(prof, DEFAULT_CAPS, "x86_64", "6.1")
    assert (default, rules, known) == (ALLOW, [("personality", ERRNO | 1, ())], [])


def test_docker_arch_map_and_oci_architectures():
    docker = parse({"defaultAction": "SCMP_ACT_ERRNO", "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}]})
    assert seccomp.plan(docker, (), "x86_64", "6.1")[1] == ["x86_64", "x86", "x32"]
    assert seccomp.plan(docker, (), "aarch64", "6.1")[1] == ["aarch64", "arm"]
    oci = parse({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86"]})
    assert seccomp.plan(oci, (), "x86_64", "6.1")[1] == ["x86_64", "x86"]
    assert seccomp.plan(parse({"defaultAction": "SCMP_ACT_ERRNO"}), (), "x86_64", "6.1")[1] \
        == ["x86_64"]


# ------------------------------------------------------------ includes / excludes

CAPS = ["SYS_ADMIN", "SYS_PTRACE", "NET_RAW", "CHOWN"]


@given(inc=st.sets(st.sampled_from(CAPS)), exc=st.sets(st.sampled_from(CAPS)),
       held=st.sets(st.sampled_from(CAPS)), inc_arch=st.sets(st.sampled_from(["amd64", "arm64"])),
       exc_arch=st.sets(st.sampled_from(["amd64", "arm64"])),
       arch=st.sampled_from(["amd64", "arm64"]),
       min_inc=st.none() | st.tuples(st.integers(3, 7), st.integers(0, 20), st.just(0)),
       min_exc=st.none() | st.tuples(st.integers(3, 7), st.integers(0, 20), st.just(0)),
       kernel=st.tuples(st.integers(3, 7), st.integers(0, 20), st.integers(0, 200)))
def test_applies_is_dockers_reading(inc, exc, held, inc_arch, exc_arch, arch, min_inc, min_exc,
                                    kernel):
    entry = {"names": ["x"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_" + c for c in inc], "arches": sorted(inc_arch)},
             "excludes": {"caps": sorted(exc), "arches": sorted(exc_arch)}}
    if min_inc:
        entry["includes"]["minKernel"] = "%d.%d" % min_inc[:2]
    if min_exc:
        entry["excludes"]["minKernel"] = "%d.%d" % min_exc[:2]
    rule = parse({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [entry]}).rules[0]
    expected = (inc <= held and (not inc_arch or arch in inc_arch)
                and (min_inc is None or kernel >= min_inc)
                and not exc & held and arch not in exc_arch
                and (min_exc is None or kernel < min_exc))
    assert rule.applies(frozenset(held), arch, kernel) == expected


# ------------------------------------------------------------ validation

BASE = {"defaultAction": "SCMP_ACT_ERRNO"}


@pytest.mark.parametrize("profile, message", [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "defaultAction 'SCMP_ACT_NOPE'"),
    ({}, "defaultAction is missing"),
    ({**BASE, "defaultErrnoRet": 5000}, "defaultErrnoRet must be an integer from 0 to 4095"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}, "defaultErrnoRet goes only"),
    ({**BASE, "bogus": 1}, "unknown key 'bogus'"),
    ({**BASE, "flags": ["SECCOMP_FILTER_FLAG_LOG"]}, "flags are not supported"),
    ({**BASE, "syscalls": {}}, "syscalls must be a list"),
    ({**BASE, "syscalls": [{"names": ["../etc"], "action": "SCMP_ACT_ALLOW"}]}, "bad entry"),
    ({**BASE, "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]}, "no system call names"),
    ({**BASE, "syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]}, "must be a list"),
    ({**BASE, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}, "action"),
    ({**BASE, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                            "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     r"args\[0\].index must be an integer from 0 to 5"),
    ({**BASE, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                            "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}, "value"),
    ({**BASE, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]}, "op"),
    ({**BASE, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_GT"},
                                     {"index": 0, "value": 9, "op": "SCMP_CMP_LT"}]}]},
     "two conditions on the same argument"),
    ({**BASE, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                            "includes": {"minKernel": "new"}}]}, "minKernel must look like"),
    ({**BASE, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                            "excludes": {"users": []}}]}, "unknown key 'users'"),
    ({**BASE, "architectures": ["SCMP_ARCH_Z80"]}, "unknown architecture 'SCMP_ARCH_Z80'"),
    ({**BASE, "archMap": [{"architecture": "x86_64"}]}, "unknown architecture"),
])
def test_invalid_profiles(profile, message):
    with pytest.raises(InvalidArgument, match=message):
        parse(profile)


def test_size_bound_and_not_json():
    with pytest.raises(InvalidArgument, match="larger than"):
        seccomp.parse(b" " * (seccomp.MAX_PROFILE_BYTES + 1))
    with pytest.raises(InvalidArgument, match="not JSON"):
        seccomp.parse(b"{")
    with pytest.raises(InvalidArgument, match="not JSON"):
        seccomp.parse(b"[" * 100000)


def test_load_profile_missing_file(tmp_path):
    with pytest.raises(InvalidArgument, match="No such file"):
        seccomp.load_profile(str(tmp_path / "none.json"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2**65) | st.text(max_size=12)
    | st.sampled_from(["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_CMP_EQ", "read", "CAP_CHOWN",
                       "SCMP_ARCH_X86", "4.8", "amd64"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(sorted(seccomp.TOP_KEYS | seccomp.RULE_KEYS | seccomp.ARG_KEYS
                               | seccomp.COND_KEYS | {"x"})), children, max_size=5),
    max_leaves=25)


@settings(max_examples=300)
@given(json_values)
def test_any_json_parses_or_fails_in_one_line(obj):
    try:
        prof = seccomp.parse(json.dumps(obj).encode())
    except InvalidArgument as e:
        assert "\n" not in str(e) and len(str(e)) < 300
    else:
        seccomp.plan(prof, DEFAULT_CAPS, "x86_64", "6.1")


# ------------------------------------------------------------ options, compile, cache

def test_unconfined_and_privileged_have_no_filter(tmp_path):
    assert seccomp.filter_for(DEFAULT_CAPS, "unconfined") is None

    class P:
        root = str(tmp_path)
    assert seccomp.for_container(P, [], DEFAULT_CAPS, privileged=True) is None
    assert seccomp.for_container(P, ["seccomp=unconfined"], DEFAULT_CAPS) is None
    assert seccomp.for_container(P, ["seccomp:unconfined"], DEFAULT_CAPS) is None
    assert seccomp.for_container(P, [], DEFAULT_CAPS) == seccomp.filter_for(DEFAULT_CAPS)
    with pytest.raises(InvalidArgument, match="No such file"):
        seccomp.for_container(P, [f"seccomp={tmp_path}/none.json"], DEFAULT_CAPS)


def _insns(blob):
    return [struct.unpack("=HBBI", blob[i:i + 8]) for i in range(0, len(blob), 8)]


def test_compiled_program_starts_with_the_enosys_prologue():
    from bocker.kernel import native

    blob = seccomp.compile_profile(seccomp.default_profile(), DEFAULT_CAPS)
    assert len(blob) % 8 == 0 and 0 < len(blob) // 8 <= seccomp.BPF_MAXINSNS
    insns = _insns(blob)
    newest = max(native.seccomp_resolve(n) or -1 for n in default_plan()[3])
    BPF_JGT, BPF_RET = 0x25, 0x06
    assert (BPF_JGT, 0, 1, newest) in insns[:6]
    assert (BPF_RET, 0, 0, ERRNO | 38) in insns[:6]
    allowing = parse({"defaultAction": "SCMP_ACT_ALLOW",
                      "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO"}]})
    assert not any(i[0] == BPF_JGT for i in _insns(seccomp.compile_profile(allowing, ()))[:6])


def test_caps_change_the_program():
    prof = seccomp.default_profile()
    assert seccomp.compile_profile(prof, DEFAULT_CAPS) != \
        seccomp.compile_profile(prof, capabilities.effective(add=["SYS_PTRACE"]))


def test_disk_cache_is_read_back(tmp_path, monkeypatch):
    seccomp._memo.clear()
    first = seccomp.filter_for(DEFAULT_CAPS, cache_dir=str(tmp_path))
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].read_bytes() == first
    seccomp._memo.clear()

    def no_compile(*_):
        raise AssertionError("compiled again")
    monkeypatch.setattr(seccomp, "compile_profile", no_compile)
    assert seccomp.filter_for(DEFAULT_CAPS, cache_dir=str(tmp_path)) == first
    # other caps: another key, compiled afresh
    with pytest.raises(AssertionError, match="compiled again"):
        seccomp.filter_for(capabilities.effective(add=["SYS_ADMIN"]), cache_dir=str(tmp_path))


def test_corrupt_cache_entry_is_ignored(tmp_path):
    seccomp._memo.clear()
    first = seccomp.filter_for(DEFAULT_CAPS, cache_dir=str(tmp_path))
    entry, = tmp_path.iterdir()
    entry.write_bytes(b"short")
    seccomp._memo.clear()
    assert seccomp.filter_for(DEFAULT_CAPS, cache_dir=str(tmp_path)) == first
    assert entry.read_bytes() == first
