"""bocker.build.context and the path rules of copying/chown (no root)."""
import os

import pytest
from hypothesis import given, strategies as st

from bocker.build import chown, context, copying
from bocker.build.context import Tree, compile_match, split_source
from bocker.build.errors import BuildError


# ------------------------------------------------------------ Go's filepath.Match

# Cases of Go's own filepath.Match tests, single components only (COPY
# matches one component at a time); None: ErrBadPattern.
GO_CASES = [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True),
    ("a*", "abc", True), ("a*b*c*d*e*", "axbxcxdxe", True), ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True), ("ab[e-g]", "abc", False), ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False), ("ab[^e-g]", "abc", True), ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False), ("a?b", "a☺b", True), ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False), ("a[^a][^a][^a]b", "a☺b", False), ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False), ("[\\]a]", "]", True), ("[\\-]", "-", True),
    ("[x\\-]", "x", True), ("[x\\-]", "-", True), ("[x\\-]", "z", False),
    ("[\\-x]", "x", True), ("[\\-x]", "-", True), ("[\\-x]", "a", False),
    ("[]a]", "]", None), ("[-]", "-", None), ("[x-]", "x", None), ("[-x]", "x", None),
    ("\\", "a", None), ("[a-b-c]", "a", None), ("[", "a", None), ("[^", "a", None),
    ("[^bc", "a", None), ("a[", "a", None), ("*x", "xxx", True), ("[z-a]", "m", False),
    ("a.c", "abc", False), ("(a)", "(a)", True),
]


@pytest.mark.parametrize("pattern,name,want", GO_CASES)
def test_go_match(pattern, name, want):
    if want is None:
        with pytest.raises(BuildError, match="syntax error in pattern"):
            compile_match(pattern)
    else:
        assert bool(compile_match(pattern).fullmatch(name)) is want


@given(st.text(alphabet="ab*?[]^-\\.x", max_size=8), st.text(alphabet="ab.x-]", max_size=6))
def test_match_never_crashes(pattern, name):
    # a malformed pattern is a BuildError, never re.error or IndexError
    try:
        regex = compile_match(pattern)
    except BuildError:
        return
    found = regex.fullmatch(name)
    assert found is None or found.group() == name


@given(st.text(alphabet="abc.", min_size=1, max_size=6))
def test_literal_matches_itself(name):
    assert compile_match(name).fullmatch(name)


# ------------------------------------------------------------ path rules

def test_split_source_cleans_and_refuses_escapes():
    assert split_source("/a/./b//c/", False) == ("a", "b", "c")
    assert split_source("a/../b", False) == ("b",)
    assert split_source(".", False) == ()
    for bad in ("../x", "a/../../x", "/.."):
        with pytest.raises(BuildError, match="outside the build context"):
            split_source(bad, False)
    # in a rootfs '..' above the top stays at the top, as the kernel's IN_ROOT
    assert split_source("/../../etc/passwd", True) == ("etc", "passwd")


def test_dest_path():
    assert copying.dest_path("/app/", "/") == (("app",), True)
    assert copying.dest_path("app", "/w") == (("w", "app"), False)
    assert copying.dest_path(".", "/w") == (("w",), True)
    assert copying.dest_path("x/.", "/") == (("x",), True)
    assert copying.dest_path("/", "/w") == ((), True)
    assert copying.dest_path("../../etc", "/w") == (("etc",), False)


def test_parse_chmod():
    assert copying.parse_chmod("755") == 0o755
    assert copying.parse_chmod("04755") == 0o4755
    assert copying.parse_chmod(None) is None
    for bad in ("", "8", "u+x", "77777", "0x1", "-1"):
        with pytest.raises(BuildError, match="--chmod"):
            copying.parse_chmod(bad)


def test_several_sources_need_a_dir_dest(tmp_path):
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "a").write_text("a")
    (tmp_path / "ctx" / "b").write_text("b")
    with Tree.context(str(tmp_path / "ctx")) as t:
        sources = t.sources(["a", "b"])
        with pytest.raises(BuildError, match="must be a directory and end with a /"):
            copying.copy(t, sources, str(tmp_path), "/x")


# ------------------------------------------------------------ trees

class Ignore:
    """A stand-in for bocker.build.ignore.Matcher: exact paths and their children."""

    def __init__(self, ignored, keep=()):
        self.paths, self.keep = set(ignored), set(keep)

    def ignored(self, rel):
        if rel in self.keep:
            return False
        return any(rel == p or rel.startswith(p + "/") for p in self.paths)

    def may_include_below(self, rel):
        return any(k.startswith(rel + "/") for k in self.keep)


@pytest.fixture
def ctx(tmp_path):
    root = tmp_path / "ctx"
    (root / "src" / "deep").mkdir(parents=True)
    (root / "src" / "a.c").write_text("int a;")
    (root / "src" / "b.c").write_text("int b;")
    (root / "src" / "b.h").write_text("//")
    (root / "src" / "deep" / "c.c").write_text("int c;")
    (root / "secret").mkdir()
    (root / "secret" / "key").write_text("k")
    (root / "secret" / "public").write_text("p")
    (root / "readme").write_text("r")
    os.symlink("readme", root / "inside")
    os.symlink("/etc/passwd", root / "abs")
    os.symlink("../outside", root / "rel")
    (tmp_path / "outside").write_text("host file")
    os.symlink(str(tmp_path), root / "up")
    return root


def names(sources):
    return ["/".join(s.parts) for s in sources]


def test_globs_sorted_per_component(ctx):
    with Tree.context(str(ctx)) as t:
        assert names(t.sources(["src/*.c"])) == ["src/a.c", "src/b.c"]
        assert names(t.sources(["src/?.[ch]"])) == ["src/a.c", "src/b.c", "src/b.h"]
        assert names(t.sources(["*/deep/*.c"])) == ["src/deep/c.c"]
        assert names(t.sources(["/src/[^a].c"])) == ["src/b.c"]
        with pytest.raises(BuildError, match="no source files were specified"):
            t.sources(["*.none"])
        with pytest.raises(BuildError, match="syntax error in pattern"):
            t.sources(["src/[a"])


def test_top_symlink_followed_inside(ctx):
    with Tree.context(str(ctx)) as t:
        [s] = t.sources(["inside"])
        assert (s.parts, s.name, s.is_dir) == (("readme",), "inside", False)


@pytest.mark.parametrize("pattern", ["abs", "rel", "up/outside", "up/ctx/readme", "../outside",
                                     "src/../../outside"])
def test_escapes_refused(ctx, pattern):
    with Tree.context(str(ctx)) as t:
        with pytest.raises(BuildError, match="outside the build context"):
            t.sources([pattern])


def test_escape_control(ctx):
    # without the guard (a host path lookup) these names do reach the host file
    assert (ctx / "rel").read_text() == "host file"
    assert (ctx / "up" / "outside").read_text() == "host file"


def test_rootfs_resolves_in_root(tmp_path):
    root = tmp_path / "stage"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("stage's")
    os.symlink("/etc/passwd", root / "abs")
    os.symlink("../../../etc", root / "up")
    with Tree.rootfs(str(root)) as t:
        assert names(t.sources(["/abs"])) == ["etc/passwd"]
        assert names(t.sources(["up/passwd"])) == ["etc/passwd"]
        assert names(t.sources(["/../../etc/passwd"])) == ["etc/passwd"]
        [s] = t.sources(["abs"])
        for e in t.entries(s):   # (an entry opens while it is the current one)
            with e.open() as f:
                assert f.read() == b"stage's"


def test_dockerignore_invisible(ctx):
    m = Ignore(["secret", "src/b.c"], keep=["secret/public"])
    with Tree.context(str(ctx), m) as t:
        with pytest.raises(BuildError, match="not found"):
            t.sources(["secret/key"])
        with pytest.raises(BuildError, match="not found"):
            t.sources(["src/b.c"])
        assert names(t.sources(["src/*.c"])) == ["src/a.c"]
        assert names(t.sources(["secret/*"])) == ["secret/public"]
        [s] = t.sources(["."])
        rels = ["/".join(e.rel) for e in t.entries(s)]
        assert "secret/public" in rels and "secret" in rels
        assert "secret/key" not in rels and "src/b.c" not in rels and "src/a.c" in rels


def test_ignored_target_of_a_symlink_invisible(ctx):
    os.symlink("secret/key", ctx / "tokey")
    with Tree.context(str(ctx), Ignore(["secret"])) as t:
        with pytest.raises(BuildError, match="not found"):
            t.sources(["tokey"])


def test_fifo_refused(ctx):
    os.mkfifo(ctx / "src" / "pipe")
    with Tree.context(str(ctx)) as t:
        with pytest.raises(BuildError, match="FIFO"):
            t.sources(["src/pipe"])
        [s] = t.sources(["src"])
        with pytest.raises(BuildError, match="FIFO"):
            list(t.entries(s))


def test_url_refused(ctx):
    with Tree.context(str(ctx)) as t:
        with pytest.raises(BuildError, match="ADD from a URL is not supported"):
            t.sources(["https://example.com/x.tgz"], keyword="ADD")
        with pytest.raises(BuildError, match="URL"):
            t.sources(["http://example.com/x"], keyword="COPY")


def test_digest_follows_what_copy_reads(ctx):
    with Tree.context(str(ctx)) as t:
        def d(*p):
            return t.digest(t.sources(list(p)))
        first = d("src")
        assert d("src") == first
        (ctx / "src" / "a.c").write_text("int A;")   # same size, new content
        os.utime(ctx / "src" / "a.c", ns=(1, 1))
        changed = d("src")
        assert changed != first
        os.utime(ctx / "src" / "a.c", ns=(2, 2))     # mtime alone: as BuildKit's, a hit
        assert d("src") == changed
        os.chmod(ctx / "src" / "a.c", 0o600)
        assert d("src") != changed
        before = d("readme")
        (ctx / "unrelated").write_text("x")          # a file the COPY does not read
        assert d("readme") == before
        assert d("readme") != d("inside")            # a different name in dest


def test_digest_ignores_ignored(ctx):
    with Tree.context(str(ctx), Ignore(["secret/key"])) as t:
        before = t.digest(t.sources(["."]))
        (ctx / "secret" / "key").write_text("changed")
        assert t.digest(t.sources(["."])) == before


# ------------------------------------------------------------ --chown

def test_chown_resolve(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n"
                                             "app:x:1000:1001::/home/app:/bin/sh\nbad:x:y:z\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    r = str(tmp_path)
    assert chown.resolve(r, "app") == (1000, 1001)
    assert chown.resolve(r, "app:staff") == (1000, 50)
    assert chown.resolve(r, "1234") == (1234, 1234)
    assert chown.resolve(r, "1234:7") == (1234, 7)
    assert chown.resolve(r, "0:staff") == (0, 50)
    for bad, what in (("nobody", "unable to find user"), ("app:nogroup", "unable to find group"),
                      ("", "invalid"), ("a:b:c", "invalid"), ("app:", "invalid"),
                      ("4294967295", "out of range"), ("bad", "unable to find user")):
        with pytest.raises(BuildError, match=what):
            chown.resolve(r, bad)


def test_chown_files_resolved_in_root(tmp_path):
    # the image's /etc/passwd is an absolute symlink: it resolves inside
    # the image (its /host/passwd), never to the host's /etc/passwd
    (tmp_path / "etc").mkdir()
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "passwd").write_text("img:x:7:8::/:/bin/sh\n")
    os.symlink("/host/passwd", tmp_path / "etc" / "passwd")
    assert chown.resolve(str(tmp_path), "img") == (7, 8)
    assert "root:" in open("/etc/passwd").read()     # the host's has root...
    with pytest.raises(BuildError, match="unable to find user root"):
        chown.resolve(str(tmp_path), "root")          # ...the image's has not


def test_chown_fifo_refused(tmp_path):
    (tmp_path / "etc").mkdir()
    os.mkfifo(tmp_path / "etc" / "passwd")
    with pytest.raises(BuildError, match="passwd"):
        chown.resolve(str(tmp_path), "app")


def test_module_names():
    assert context.MAX_DEPTH >= 64
