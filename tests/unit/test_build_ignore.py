""".dockerignore: parsing, Docker's matching, and the matcher against an
independent component-by-component reference."""
import pytest
from hypothesis import given, settings, strategies as st

from bocker.build.errors import BuildError
from bocker.build.ignore import MAX_TEXT, Matcher, parse


def test_parse_cleans_and_skips():
    text = "# comment\n\n  *.md  \n!README.md\n/abs/x\n./rel/\na//b/../c\n! spaced\n #x\n"
    assert parse(text) == ["*.md", "!README.md", "abs/x", "rel", "a/c", "!spaced", "#x"]
    assert parse("\ufeffa\r\nb\n") == ["a", "b"]
    assert parse("/\n") == ["/"]


@pytest.mark.parametrize("text,fragment", [
    ("a\n!\n", ".dockerignore:2: illegal exclusion"), ("[a\n", ".dockerignore:1: bad pattern"),
    ("x\n[]\n", ".dockerignore:2: bad pattern"), ("[z-a]\n", "empty"), ("a\\\n", "escape"),
])
def test_parse_errors(text, fragment):
    with pytest.raises(BuildError, match=fragment.replace("[", "\\[")):
        parse(text)


def test_parse_bound():
    with pytest.raises(BuildError, match="at most"):
        parse("a\n" * (MAX_TEXT // 2 + 1))


def ignored(patterns, path):
    return Matcher(parse("\n".join(patterns))).ignored(path)


@pytest.mark.parametrize("patterns,path,want", [
    (["*.md"], "a.md", True), (["*.md"], "x/a.md", False),          # not recursive
    (["**/*.md"], "x/y/a.md", True), (["**/*.md"], "a.md", True),
    (["*.md", "!README.md"], "README.md", False), (["*.md", "!README.md"], "b.md", True),
    (["!README.md", "*.md"], "README.md", True),                     # last match wins
    (["build"], "build/x/y", True), (["build"], "src/build", False),
    (["/build/"], "build", True), (["./tmp"], "tmp/a", True),
    (["tmp/**"], "tmp", False), (["tmp/**"], "tmp/a/b", True),
    (["a/**/b"], "a/b", True), (["a/**/b"], "a/x/y/b", True), (["a/**/b"], "a/x/c", False),
    (["**"], "anything/at/all", True),
    (["?.c"], "a.c", True), (["?.c"], "ab.c", False), (["[ab].c"], "b.c", True),
    (["[^ab].c"], "b.c", False), (["[^ab].c"], "c.c", True), (["[a-c]x"], "bx", True),
    (["\\*"], "*", True), (["\\*"], "a", False), (["*"], ".hidden", True),
    (["node_modules", "!node_modules/keep"], "node_modules/keep/f", False),
    (["node_modules", "!node_modules/keep"], "node_modules/other", True),
    (["x"], "", False), (["*"], ".", False),                         # never the root
])
def test_docker_matching(patterns, path, want):
    assert ignored(patterns, path) is want


def test_may_include_below():
    m = Matcher(parse("node_modules\n!node_modules/keep/*.js\n!**/important\n"))
    assert m.may_include_below("node_modules")
    assert m.may_include_below("node_modules/keep")
    m = Matcher(parse("node_modules\n!node_modules/keep\nbuild\n"))
    assert m.may_include_below("node_modules")
    assert not m.may_include_below("build")
    assert not m.may_include_below("node_modules/other")
    assert not Matcher(parse("a\n")).may_include_below("a")


# -- against a reference ------------------------------------------------

def _ref_component(p, s):
    """Go's filepath.Match for one component, char by char."""
    if not p:
        return not s
    c = p[0]
    if c == "*":
        return any(_ref_component(p[1:], s[k:]) for k in range(len(s) + 1))
    if not s:
        return False
    if c == "?":
        return _ref_component(p[1:], s[1:])
    if c == "[":
        end = p.index("]", 2)
        body, neg = p[1:end], p[1] == "^"
        body = body[1:] if neg else body
        hit = any(lo <= s[0] <= hi for lo, _, hi in
                  (r.partition("-") if "-" in r else (r, "", r) for r in _ranges(body)))
        return hit != neg and _ref_component(p[end + 1:], s[1:])
    return s[0] == c and _ref_component(p[1:], s[1:])


def _ranges(body):
    out, i = [], 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            out.append(body[i:i + 3])
            i += 3
        else:
            out.append(body[i])
            i += 1
    return out


def _ref_parts(pp, sp):
    """Components against components; `**` any number of them (one or
    more when it is the last)."""
    if not pp:
        return not sp
    if pp[0] == "**":
        if len(pp) == 1:
            return len(sp) >= 1
        return any(_ref_parts(pp[1:], sp[k:]) for k in range(len(sp) + 1))
    return bool(sp) and _ref_component(pp[0], sp[0]) and _ref_parts(pp[1:], sp[1:])


def _ref_ignored(patterns, path):
    parts = path.split("/")
    matched = False
    for pat in patterns:
        exclusion = pat.startswith("!")
        pp = (pat[1:] if exclusion else pat).split("/")
        if any(_ref_parts(pp, parts[:k]) for k in range(1, len(parts) + 1)):
            matched = not exclusion
    return matched


_COMPONENTS = st.sampled_from(["a", "b", "ab", ".x", "*", "?", "a*", "*b", "[ab]", "[^a]",
                               "[a-b]?", "**"])
_PATTERN = st.builds(lambda neg, parts: ("!" if neg else "") + "/".join(parts),
                     st.booleans(), st.lists(_COMPONENTS, min_size=1, max_size=4))
_PATH = st.lists(st.sampled_from(["a", "b", "ab", "ba", ".x", "c"]), min_size=1,
                 max_size=5).map("/".join)


@settings(max_examples=600, deadline=None)
@given(st.lists(_PATTERN, min_size=1, max_size=4), _PATH)
def test_matcher_agrees_with_reference(patterns, path):
    assert Matcher(parse("\n".join(patterns))).ignored(path) == _ref_ignored(patterns, path)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PATTERN, min_size=1, max_size=4), _PATH)
def test_may_include_below_is_safe(patterns, path):
    # if something below an ignored dir is not ignored, the walk must not skip the dir
    m = Matcher(parse("\n".join(patterns)))
    parts = path.split("/")
    for k in range(1, len(parts)):
        d = "/".join(parts[:k])
        if m.ignored(d) and not m.ignored(path):
            assert m.may_include_below(d)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parse_raises_only_build_errors(text):
    try:
        assert Matcher(parse(text)).ignored("a/b") in (True, False)
    except BuildError:
        pass
