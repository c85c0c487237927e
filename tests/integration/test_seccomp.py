"""The seccomp filter in a real container: what bocker's default profile
refuses and with which errno, what --cap-add opens, and the same calls
succeeding under seccomp=unconfined (the control).

The image holds busybox and seccomp_probe.c, built static here, which
makes one raw system call and prints its errno name."""
import json
import os
import shutil
import subprocess

import pytest

from bocker import hostsetup
from bocker.confine import seccomp
from bocker.image import images
from bocker.kernel import native
from bocker.runtime import containers, spec

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE = "seccomp-probe"
AF_VSOCK, SOCK_STREAM, AF_INET = 40, 1, 2
CLONE_NEWUSER = 0x10000000
SIGCHLD = 17


def nr(name):
    """The native number of a system call, from libseccomp's tables."""
    number = native.seccomp_resolve(name)
    assert number is not None, name
    return number


@pytest.fixture(scope="module")
def probe_image(paths, tmp_path_factory):
    """An image with busybox and /probe; removed at the end."""
    if not shutil.which("gcc"):
        pytest.skip("gcc (and libc6-dev) needed to build the probe")
    work = tmp_path_factory.mktemp("seccomp-probe")
    rootfs = work / "rootfs"
    hostsetup.make_busybox_rootfs(str(rootfs))
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Werror", "-o", str(rootfs / "probe"),
                    os.path.join(HERE, "seccomp_probe.c")], check=True)
    images.init(paths, str(rootfs), IMAGE)
    yield str(rootfs / "probe")
    images.remove(paths, IMAGE)


def probe(paths, *args, cap_add=(), security_opt=(), privileged=False):
    """Run /probe ARGS in a fresh container; its one line of output."""
    req = spec.RunRequest(IMAGE, ["/probe", *map(str, args)], network="none", remove=True,
                          privileged=privileged, cap_add=cap_add, security_opt=security_opt)
    r, w = os.pipe()
    try:
        code = containers.run(paths, req, w, w)
        os.close(w)
        w = -1
        out = os.read(r, 4096).decode()
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    assert code == 0, out
    return out.strip()


UNCONFINED = ["seccomp=unconfined"]


def test_io_uring_refused(paths, probe_image):
    assert probe(paths, nr("io_uring_setup"), 1, 0) == "EPERM"
    with open("/proc/sys/kernel/io_uring_disabled") as f:
        if f.read().strip() == "0":  # the host allows io_uring: the control
            assert probe(paths, nr("io_uring_setup"), 1, 0, security_opt=UNCONFINED) == "EFAULT"


@pytest.mark.parametrize("call, args, allowed", [
    ("kcmp", ("self", "self", 99, 0, 0), "EINVAL"),     # a bad type, once past the filter
    ("pidfd_getfd", (-1, 0, 0), "EBADF"),
])
def test_ptrace_group_needs_cap_sys_ptrace(paths, probe_image, call, args, allowed):
    assert probe(paths, nr(call), *args) == "EPERM"
    assert probe(paths, nr(call), *args, cap_add=["SYS_PTRACE"]) == allowed
    assert probe(paths, nr(call), *args, security_opt=UNCONFINED) == allowed


def test_vsock_refused_other_families_not(paths, probe_image):
    assert probe(paths, nr("socket"), AF_VSOCK, SOCK_STREAM, 0) == "EPERM"
    # junk in the upper half of the int argument, which the kernel drops
    assert probe(paths, nr("socket"), (1 << 32) | AF_VSOCK, SOCK_STREAM, 0) == "EPERM"
    assert probe(paths, nr("socket"), AF_INET, SOCK_STREAM, 0) == "OK"
    # families above vsock's, allowed by the ranges past it: the kernel answers
    for family in (41, 43, 44, 47, 48, 63, 64, 255):
        assert probe(paths, nr("socket"), family, SOCK_STREAM, 0) != "EPERM", family
    assert probe(paths, nr("socket"), 256, SOCK_STREAM, 0) == "EPERM"


def test_personality_only_docker_values(paths, probe_image):
    for value in (0x0, 0x8, 0x20000, 0x20008, 0xffffffff):
        assert probe(paths, nr("personality"), value) == "OK", hex(value)
    assert probe(paths, nr("personality"), 0x1234) == "EPERM"
    assert probe(paths, nr("personality"), 0x1234, security_opt=UNCONFINED) == "OK"


def test_new_namespaces_refused(paths, probe_image):
    assert probe(paths, nr("unshare"), CLONE_NEWUSER) == "EPERM"
    assert probe(paths, nr("unshare"), CLONE_NEWUSER, security_opt=UNCONFINED) == "OK"
    # clone with a namespace flag never forks
    assert probe(paths, nr("clone"), CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0) == "EPERM"


def test_clone3_answers_enosys(paths, probe_image):
    assert probe(paths, nr("clone3"), 0, 0) == "ENOSYS"
    assert probe(paths, nr("clone3"), 0, 0, security_opt=UNCONFINED) == "EINVAL"


def test_syscall_newer_than_profile_answers_enosys(paths, probe_image):
    names = {n for r in seccomp.default_profile().rules for n in r.names}
    newest = max(native.seccomp_resolve(n) or -1 for n in names)
    args = (newest + 1, -1, 0, 0, 0)
    assert probe(paths, *args) == "ENOSYS"   # not the default EPERM
    # the control: as on the host, whatever the kernel makes of it
    host = subprocess.run([probe_image, *map(str, args)], capture_output=True, text=True)
    assert probe(paths, *args, security_opt=UNCONFINED) == host.stdout.strip()


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64's foreign ABIs")
def test_foreign_abis_refused(paths, probe_image):
    assert probe(paths, "int80", 20) == "ENOSYS"                  # i386 getpid
    assert probe(paths, 0x40000000 | nr("getpid")) == "ENOSYS"    # x32 getpid
    host = subprocess.run([probe_image, "int80", "20"], capture_output=True, text=True)
    assert probe(paths, "int80", 20, security_opt=UNCONFINED) == host.stdout.strip()


def test_privileged_is_unconfined(paths, probe_image):
    assert probe(paths, nr("personality"), 0x1234, privileged=True) == "OK"


def test_profile_file(paths, probe_image, tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}))
    opt = [f"seccomp={profile}"]
    assert probe(paths, nr("personality"), 0, security_opt=opt) == "EACCES"
    # an allowing default sets no ENOSYS bound (it would be personality's
    # number, below unshare's): calls the profile does not name stay allowed
    assert probe(paths, nr("unshare"), CLONE_NEWUSER, security_opt=opt) == "OK"


def test_bad_profile_is_a_one_line_error(paths, probe_image, tmp_path):
    profile = tmp_path / "bad.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_NOPE"}')
    with pytest.raises(seccomp.InvalidArgument, match="defaultAction 'SCMP_ACT_NOPE'"):
        probe(paths, 0, security_opt=[f"seccomp={profile}"])


def test_cli_flags(paths, probe_image, bocker):
    kcmp = [str(nr("kcmp")), "self", "self", "99", "0", "0"]
    run = ["run", "--rm", "--network", "none"]
    assert bocker(*run, IMAGE, "/probe", *kcmp, check=True).stdout == "EPERM\n"
    assert bocker(*run, "--cap-add", "SYS_PTRACE", IMAGE, "/probe", *kcmp,
                  check=True).stdout == "EINVAL\n"
    assert bocker(*run, "--security-opt", "seccomp=unconfined", IMAGE, "/probe", *kcmp,
                  check=True).stdout == "EINVAL\n"
    bad = bocker(*run, "--security-opt", "seccomp=/no/such.json", IMAGE, "/probe", "0")
    assert bad.returncode != 0
    assert bad.stderr.strip().count("\n") == 0 and "/no/such.json" in bad.stderr


@pytest.mark.parametrize("opts, expected", [([], "EPERM"), (["--cap-add", "SYS_PTRACE"], "EINVAL")])
def test_exec_gets_the_containers_filter(paths, probe_image, bocker, opts, expected):
    cid = bocker("run", "-d", "--network", "none", *opts, IMAGE, "sleep", "30",
                 check=True).stdout.strip()
    try:
        out = bocker("exec", cid, "/probe", str(nr("kcmp")), "self", "self", "99", "0", "0",
                     check=True)
        assert out.stdout.strip() == expected
    finally:
        bocker("rm", "-f", cid, check=True)
