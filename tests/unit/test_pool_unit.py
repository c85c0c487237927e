"""The rootfs pool's pure parts: entry names, the ELF interpreter
parser, where a command is looked up, and the worker -> server notes."""
import os
import struct

from hypothesis import given, strategies as st

from bocker.runtime import pool

IMG = "img_0123456789ab"
image_ids = st.text("0123456789abcdef", min_size=12, max_size=12).map(lambda h: f"img_{h}")


@given(image_ids, st.integers(1, 2**22), st.integers(0, 2**40))
def test_entry_name_round_trip(image_id, pid, n):
    name = pool.entry_name(image_id, pid, n)
    assert pool.parse_entry(name) == (image_id, pid, n)
    assert pool.parse_transient(name) is None


@given(st.text(max_size=40))
def test_parse_entry_never_raises_and_only_takes_well_formed(text):
    parsed = pool.parse_entry(text)
    if parsed is not None:
        assert pool.entry_name(*parsed) == text


def test_parse_entry_refuses_near_misses():
    for name in (f"{IMG}.12", f"{IMG}.12.3.4", f"{IMG}.012.3", f"{IMG}.0.3",
                 f"{IMG}.+1.3", f"{IMG}.1.-3", f"{IMG}.1. 3", "ps_0123456789ab.1.2",
                 f".{IMG}.1.2", f"{IMG}.١.2", "img_0123456789AB.1.2", ".1.2", ""):
        assert pool.parse_entry(name) is None, name


def test_transient_names():
    name = pool._transient(77)
    assert pool.parse_transient(name) == 77
    assert pool.parse_entry(name) is None
    for bad in (".0.1", "1.2.3", ".x.1", ".1.x", ".1", "..1"):
        assert pool.parse_transient(bad) is None, bad


def _elf64(interp=b"/lib/ld-musl-x86_64.so.1\0", order="<", phnum=2):
    phoff, phentsize = 64, 56
    data_at = phoff + phentsize * phnum
    head = b"\x7fELF" + bytes([2, 1 if order == "<" else 2]) + bytes(10)
    head += struct.pack(order + "HHIQQQIHHHHHH", 2, 62, 1, 0, phoff, 0, 0, 64,
                        phentsize, phnum, 0, 0, 0)
    table = struct.pack(order + "IIQQQQQQ", 1, 5, 0, 0, 0, 0, 0, 0)  # PT_LOAD
    table += struct.pack(order + "IIQQQQQQ", 3, 4, data_at, 0, 0, len(interp), len(interp), 1)
    return head + table + interp


def _reader(data):
    return lambda off, size: data[off:off + size]


def test_elf_interp_of_a_dynamic_elf_both_byte_orders():
    assert pool.elf_interp(_reader(_elf64())) == "/lib/ld-musl-x86_64.so.1"
    assert pool.elf_interp(_reader(_elf64(order=">"))) == "/lib/ld-musl-x86_64.so.1"


def test_elf_interp_refuses_relative_oversized_and_non_elf():
    assert pool.elf_interp(_reader(_elf64(interp=b"lib/ld.so\0"))) is None
    assert pool.elf_interp(_reader(_elf64(interp=b"/" * 5000))) is None
    assert pool.elf_interp(_reader(b"#!/bin/sh\n")) is None
    assert pool.elf_interp(_reader(b"")) is None


def test_elf_interp_of_the_host_binaries():
    # the host's own: a dynamic /bin/ls names an absolute interpreter
    with open("/bin/ls", "rb") as f:
        data = f.read()
    interp = pool.elf_interp(_reader(data))
    assert interp and interp.startswith("/") and os.path.exists(interp)


@given(st.binary(max_size=400))
def test_elf_interp_never_raises_on_junk(data):
    result = pool.elf_interp(_reader(b"\x7fELF" + data))
    assert result is None or result.startswith("/")


@given(st.integers(0, 199), st.integers(0, 255))
def test_elf_interp_never_raises_on_a_damaged_header(at, byte):
    data = bytearray(_elf64())
    data[at % len(data)] = byte
    result = pool.elf_interp(_reader(bytes(data)))
    assert result is None or result.startswith("/")


def test_candidates_follow_execvp():
    path = "/usr/bin:relative:/bin"
    assert pool._candidates("true", path, None) == ["/usr/bin/true", "/bin/true"]
    assert pool._candidates("/bin/sh", path, "/w") == ["/bin/sh"]
    assert pool._candidates("./run", path, "/w") == ["/w/./run"]
    assert pool._candidates("./run", path, "rel") == ["/./run"]
    for bad in ("", "a\0b", None, ["sh"], "x" * 5000):
        assert pool._candidates(bad, path, None) == []
    many = ":".join(f"/d{i}" for i in range(100))
    assert len(pool._candidates("x", many, None)) == pool.PATH_DIRS


def test_image_command_and_path_from_a_hostile_config():
    assert pool._command({"Cmd": ["sh"]}) == "sh"
    assert pool._command({"Entrypoint": ["/e"], "Cmd": ["x"]}) == "/e"
    assert pool._command({"Cmd": [7]}) is None
    assert pool._image_path({"Env": ["A=1", "PATH=/x:/y"]}) == "/x:/y"
    assert pool._image_path({"Env": "PATH=/evil"}) == pool._image_path({})


def test_notes_of_a_forked_worker_reach_the_parent():
    # the parent imported the module (the pipe is its); the child is a worker
    class P:
        root = "/tmp/bocker-pool-unit-root"
        pool = os.path.join(root, "pool")

    pool.open_channel()  # as the server does before it forks its workers
    pid = os.fork()
    if pid == 0:
        try:
            pool.note_use(P, IMG, "/bin/true")
            pool.note_use(P, "img_../../x", "sh")   # refused by the parent
            pool._tell("W", P.root, IMG)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    try:
        pool.after_command()
        local = pool._pools[P.root]
        assert list(local.wanted) == [IMG]
        assert list(local.wanted[IMG]) == ["/bin/true"]
    finally:
        pool._pools.pop(P.root, None)


def test_in_process_notes_go_to_a_local_pool_only_if_there_is_one():
    class P:
        root = "/tmp/bocker-pool-unit-root2"
        pool = os.path.join(root, "pool")

    pool.note_use(P, IMG, "sh")
    assert P.root not in pool._pools
    local = pool.LocalPool(P)
    try:
        for i in range(pool.IMAGES + 2):
            pool.note_use(P, f"img_{i:012x}", "sh")
        assert len(local.wanted) == pool.IMAGES  # the most recent only
        assert pool.take_rootfs(P, IMG, "/nonexistent/dest") is False  # no pool dir: no raise
    finally:
        pool._pools.pop(P.root, None)
