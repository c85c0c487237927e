"""Hostile layer tars, made in code (no binary blob is committed): the
seed corpus of the extractor's fuzzer, and the structure-aware builder
that turns fuzzer bytes into a tar of chosen entries.

The target rootfs is <top>/rootfs and the things no layer may touch are
in <top>/outside, so "../outside/victim" is the path out of the rootfs.
"""
import gzip
import io
import tarfile

ESCAPE = "../outside/victim"


def _octal(n, width):
    out = b"%0*o\0" % (width - 1, n)
    assert len(out) == width, f"{n} does not fit {width - 1} octal digits"
    return out


def gnu_sparse(name, regions, realsize, fill=b"x"):
    """An old-GNU sparse member ('S'): data only for regions [(offset,
    numbytes)], the rest of its realsize holes; tarfile cannot write one."""
    stored = sum(n for _, n in regions)
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108], h[108:116], h[116:124] = _octal(0o644, 8), _octal(0, 8), _octal(0, 8)
    h[124:136], h[136:148] = _octal(stored, 12), _octal(0, 12)
    h[156:157], h[257:265] = b"S", b"ustar  \0"
    for i, (offset, numbytes) in enumerate(regions[:4]):
        h[386 + 24 * i:398 + 24 * i] = _octal(offset, 12)
        h[398 + 24 * i:410 + 24 * i] = _octal(numbytes, 12)
    h[483:495] = _octal(realsize, 12)
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    data = fill * stored
    return bytes(h) + data + b"\0" * (-len(data) % 512)


def build(entries, fmt=tarfile.PAX_FORMAT, tail=b""):
    """A tar of entries (name, kind, extra[, pax headers]); kind is one of
    file, dir, sym, link, fifo, chr, blk.  tail: raw members appended
    before the end-of-archive blocks (gnu_sparse's)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for entry in entries:
            name, kind, extra = entry[0], entry[1], entry[2] if len(entry) > 2 else None
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 1_000_000_000, 0o644
            if len(entry) > 3:
                info.pax_headers = dict(entry[3])
            data = None
            if kind == "file":
                data = extra if isinstance(extra, bytes) else (extra or name).encode()
                info.size = len(data)
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind in ("sym", "link"):
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = extra or ""
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind in ("chr", "blk"):
                info.type = tarfile.CHRTYPE if kind == "chr" else tarfile.BLKTYPE
                info.devmajor, info.devminor = extra or (1, 3)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
        if tail:
            tf.fileobj.write(tail)
            tf.offset += len(tail)
    return buf.getvalue()


def seeds():
    """{name: archive bytes}: one of each way a layer has tried to escape
    or to exhaust the host."""
    huge = {"mtime": "9" * 400, "uid": "99999999999999999999", "size": "0",
            "SCHILY.xattr.trusted.x": "y", "path": "p" * 5000}
    return {
        "dotdot": build([("../escape", "file")]),
        "dotdot-deep": build([("a/b/../../../outside/victim", "file", b"pwned")]),
        "absolute": build([("/etc/passwd", "file", b"root::0:0::/:/bin/sh\n")]),
        "symlink-then-file": build([("lnk", "sym", "../outside"), ("lnk/victim", "file", b"p")]),
        "symlink-absolute": build([("etc", "sym", "/"), ("etc/victim", "file", b"p")]),
        "symlink-to-victim": build([("v", "sym", ESCAPE), ("v", "file", b"pwned")]),
        "hardlink-outside": build([("h", "link", ESCAPE)]),
        "hardlink-absolute": build([("h", "link", "/outside/victim")]),
        "hardlink-through-symlink": build([("d", "sym", "../outside"), ("h", "link", "d/victim")]),
        "symlink-loop": build([("a", "sym", "b"), ("b", "sym", "a"), ("a/x", "file")]),
        "whiteout-escape": build([(".wh...", "file"), ("lnk", "sym", ".."),
                                  ("lnk/.wh.outside", "file")]),
        "opaque-through-symlink": build([("lnk", "sym", "../outside"),
                                         ("lnk/.wh..wh..opq", "file")]),
        "device-nodes": build([("dev/sda", "blk", (8, 0)), ("dev/mem", "chr", (1, 1)),
                               ("dev/big", "chr", (0o7777777, 0o7777777))]),
        "fifo-then-file": build([("f", "fifo"), ("f", "file", b"x")]),
        "huge-pax": build([("x", "file", b"x", huge)]),
        "long-gnu-name": build([("d/" * 2000 + "f", "file")], fmt=tarfile.GNU_FORMAT),
        "deep-dirs": build([("a/" * 600, "dir")]),
        "sparse-bomb": build([], tail=gnu_sparse("big", [(1 << 32, 512)], (1 << 32) + 512)),
        "sparse-backwards": build([], tail=gnu_sparse("b", [(4096, 512), (0, 512)], 8192)),
        "sparse-past-size": build([], tail=gnu_sparse("p", [(8192, 512)], 1024)),
        "truncated": build([("a", "file", b"x" * 5000)])[:1500],
        "gzip": gzip.compress(build([("lnk", "sym", "/"), ("lnk/outside/victim", "file")])),
        "gzip-truncated": gzip.compress(build([("a", "file", b"y" * 4000)]))[:-20],
        "garbage": b"\xff" * 1024,
        "empty": b"",
    }


class Bytes:
    """Fuzzer bytes consumed as choices (atheris's FuzzedDataProvider is
    not needed, so the same builder runs without atheris)."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def byte(self):
        """The next byte (0 once the input is used up)."""
        self.pos += 1
        return self.data[self.pos - 1] if self.pos <= len(self.data) else 0

    def pick(self, options):
        """One of options, chosen by the next byte."""
        return options[self.byte() % len(options)]

    def rest(self):
        """What is left of the input."""
        out, self.pos = self.data[self.pos:], len(self.data)
        return out


NAME_PARTS = ["a", "b", "lnk", "..", ".", "", "outside", "victim", "etc", "dev", ".wh.a",
              ".wh..wh..opq", ".wh..wh.plnk", "x" * 120, "\udcff", "é", "rootfs"]
LINK_TARGETS = ["a", "b", "..", "/", "/outside", "../outside", ESCAPE, "/outside/victim",
                "lnk", "lnk/victim", "a/b", "", "/proc/self/root", "../../../../"]
KINDS = ["file", "dir", "sym", "link", "fifo", "chr", "blk", "file", "dir", "sym"]
PAX = [{}, {}, {"mtime": "1e400"}, {"uid": "-1"}, {"gid": "99999999999999999999"},
       {"SCHILY.xattr.user.x": "v"}, {"SCHILY.xattr.security.capability": "\x01"},
       {"GNU.sparse.map": "x,y"}, {"GNU.sparse.size": "a"}, {"linkpath": ESCAPE},
       {"path": "../x"}, {"size": "-5"}]


def from_bytes(data):
    """A tar chosen by data: a few entries whose names, kinds, link targets
    and PAX headers are picked from the pieces above.  None if tarfile
    itself cannot write what was chosen."""
    src = Bytes(data)
    entries = []
    for _ in range(src.byte() % 8 + 1):
        name = "/".join(src.pick(NAME_PARTS) for _ in range(src.byte() % 4 + 1))
        kind = src.pick(KINDS)
        extra = {"sym": lambda: src.pick(LINK_TARGETS), "link": lambda: src.pick(LINK_TARGETS),
                 "file": lambda: bytes(src.byte() for _ in range(src.byte() % 16)),
                 "chr": lambda: (src.byte(), src.byte()),
                 "blk": lambda: (src.byte(), src.byte())}.get(kind, lambda: None)()
        entries.append((name, kind, extra, src.pick(PAX)))
    fmt = src.pick([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
    try:
        out = build(entries, fmt=fmt)
    except (ValueError, UnicodeError, OverflowError):
        return None
    if src.byte() % 4 == 0:   # sometimes cut short, or with the rest appended
        out = out[:len(out) * src.byte() // 256]
    return out + src.rest()
