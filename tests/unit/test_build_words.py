"""Docker's shell words: expansion, splitting, ENV/LABEL/ARG pairs."""
import pytest
from hypothesis import given, settings, strategies as st

from bocker.build.errors import BuildError
from bocker.build.words import MAX_RESULT, expand, pairs, split_words

ENV = {"A": "x y", "E": "", "N": "1", "V": "v1.2.3", "X": "xxyy", "P": "/tmp/tmp/bar.txt",
       "D": "/tmp", "S": "/foo*/*/*.txt", "G": "\\*/"}


@pytest.mark.parametrize("text,want", [
    ("$A", "x y"), ("${A}b", "x yb"), ("pre$N.post", "pre1.post"),
    ("$U", ""), ("${U}", ""), ("$", "$"), ("a$", "a$"), ("$-", "$-"),
    ("${E:-d}", "d"), ("${E-d}", ""), ("${U-d}", "d"), ("${U:-$N$N}", "11"),
    ("${V#v}", "1.2.3"), ("${V%.*}", "v1.2"), ("${V%%.*}", "v1"), ("${V##*.}", "3"),
    ("${X#*x*y}", "y"), ("${X#*}", "xxyy"), ("${X##*x}", "yy"), ("${X%y*}", "xxy"),
    ("${X%%y*}", "xx"), ("${X#$U}", "xxyy"), ('${X%"y"}', "xxy"), ("${X#\\x}", "xyy"),
    ("${X#?}", "xyy"), ("${U#x}", ""), ("${X/y/Z}", "xxZy"), ("${X//y/Z}", "xxZZ"),
    ("${X/x*/-}", "-"), ("${X///}", "xxyy"), ("${P//$D/}", "/bar.txt"),
    ("${S/$G/.}", "/foo.*/*.txt"),  # an escape in a variable's value is literal, as Docker's
    ("${A:+w}", "w"), ("${E:+w}", ""), ("${E+w}", "w"), ("${U+w}", ""),
    ("${A:?no}", "x y"), ("${E?no}", ""),
    ("'$A'", "$A"), ('"$A"', "x y"), ('"${A}"', "x y"),
    ("\\$A", "$A"), ('"\\$A"', "$A"), ('"a\\"b"', 'a"b'), ('"a\\\\b"', "a\\b"),
    ('"a\\nb"', "a\\nb"),  # Docker keeps other escapes in double quotes
    ("a\\ b", "a b"), ("a\\", "a"), ("a  b", "a  b"), ("'a\\b'", "a\\b"),
    ("${U:-'q r'}", "q r"), ('${U:-"$N"}', "1"),
])
def test_expand(text, want):
    assert expand(text, ENV) == want


def test_expand_backtick_escape():
    assert expand("a`$A`\\b", ENV, escape="`") == "a$A\\b"
    assert expand('"x`"y"', ENV, escape="`") == 'x"y'


@pytest.mark.parametrize("text,fragment", [
    ("'abc", "single-quote"), ('"abc', "double-quote"), ("${A", "missing '}'"),
    ("${}", "bad substitution"), ("${A^x}", "unsupported modifier"),
    ("${U:?is required}", "U: is required"), ("${E:?}", "E: is not allowed to be unset"),
    ("${U?}", "U:"), ("${X:#x}", "unsupported modifier"), ("${X//y}", "/replacement"),
    ("${X#x", "missing '}'"),
])
def test_expand_errors(text, fragment):
    with pytest.raises(BuildError) as e:
        expand(text, ENV)
    assert fragment in str(e.value)
    assert e.value.line is None
    assert str(e.value.at(7)).startswith("Dockerfile:7: ")


def test_expand_without_env_keeps_variables():
    assert expand('"$A" ${B:-c} \'d\'', None) == "$A ${B:-c} d"


def test_expansion_is_bounded():
    env = {"A": "x" * (MAX_RESULT // 2 + 1)}
    with pytest.raises(BuildError, match="longer than"):
        expand("$A$A", env)


@pytest.mark.parametrize("text,want", [
    ("a b  c", ["a", "b", "c"]), ("'a b' c", ["a b", "c"]), ('"a b"c d', ["a bc", "d"]),
    ("$A z", ["x", "y", "z"]),           # an unquoted expansion is split, as Docker does
    ('"$A" z', ["x y", "z"]), ("a\\ b", ["a b"]), ('""', [""]), ("", []), ("  ", []),
    ("$E", []), ("\t a \n b ", ["a", "b"]),
])
def test_split_words(text, want):
    assert split_words(text, ENV) == want


def test_split_words_without_env():
    assert split_words("$A 'b c'") == ["$A", "b c"]


@pytest.mark.parametrize("text,want", [
    ("A=1", [("A", "1")]), ('A=1 B="x y" C=$N', [("A", "1"), ("B", "x y"), ("C", "1")]),
    ("A=$A", [("A", "x y")]), ("K=a\\ b", [("K", "a b")]), ("K=", [("K", "")]),
    ("K='$N'", [("K", "$N")]), ('"K"=v', [("K", "v")]),
    ("K v", [("K", "v")]), ("K  a  b \"c\"", [("K", "a  b c")]),  # legacy ENV K V...
    ("K $N", [("K", "1")]),
])
def test_env_pairs(text, want):
    assert pairs(text, ENV) == want


def test_label_pairs():
    assert pairs('"com.example.a b"="v 1" x=y', ENV, keyword="LABEL") == [
        ("com.example.a b", "v 1"), ("x", "y")]
    assert pairs("maintainer me", ENV, keyword="LABEL") == [("maintainer", "me")]


def test_arg_pairs():
    assert pairs("A B=$N C=", ENV, keyword="ARG") == [("A", None), ("B", "1"), ("C", "")]


@pytest.mark.parametrize("text,keyword,fragment", [
    ("", "ENV", "at least one"), ("K", "ENV", "no value"), ("A=1 B", "ENV", "can't find ="),
    ("=v", "ENV", "empty or invalid"), ("=v", "ARG", "empty or invalid"), ('"a b"=1', "ENV", "invalid name"),
    ('A="x', "ENV", "double-quote"),
])
def test_pair_errors(text, keyword, fragment):
    with pytest.raises(BuildError, match=fragment):
        pairs(text, ENV, keyword=keyword)


def test_pattern_values_are_bounded():
    with pytest.raises(BuildError, match="too long"):
        expand("${A#x}", {"A": "x" * 5000})


# -- properties ---------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab*?", max_size=6), st.text(alphabet="ab", max_size=8))
def test_prefix_removal_matches_fnmatch(pattern, value):
    import fnmatch

    prefixes = [k for k in range(len(value) + 1)
                if fnmatch.fnmatchcase(value[:k], pattern)]
    env = {"V": value}
    want_short = value[min(prefixes):] if prefixes else value
    want_long = value[max(prefixes):] if prefixes else value
    assert expand("${V#" + pattern + "}", env) == want_short
    assert expand("${V##" + pattern + "}", env) == want_long

_TEXT = st.text(alphabet=st.sampled_from(list("ab $\\'\"{}:-+?=`\t_1")), max_size=40)


@settings(max_examples=400, deadline=None)
@given(_TEXT, st.sampled_from(["\\", "`"]))
def test_expand_raises_only_build_errors(text, escape):
    for fn in (lambda: expand(text, ENV, escape), lambda: split_words(text, ENV, escape),
               lambda: pairs(text, ENV, escape), lambda: pairs(text, ENV, escape, "ARG")):
        try:
            assert isinstance(fn(), (str, list))
        except BuildError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_single_quoted_text_round_trips(s):
    s = s.replace("'", "")
    assert expand(f"'{s}'", ENV) == s


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_escaped_text_round_trips(s):
    # every char escaped: literal, whatever it is
    assert expand("".join("\\" + c for c in s), ENV) == s


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\0"), min_size=0,
                        max_size=10), max_size=6))
def test_split_words_inverts_quoting(words):
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    assert split_words(quoted, ENV) == words


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True),
                       st.text(alphabet=st.characters(blacklist_characters="\0"), max_size=8),
                       min_size=1, max_size=4))
def test_env_pairs_round_trip(env):
    # what an ENV line written with every value double quoted and escaped gives back
    def q(v):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'
    text = " ".join(f"{k}={q(v)}" for k, v in env.items())
    assert pairs(text, {}) == list(env.items())
