"""patterns.lazy: a stand-in for re.compile, compiled on first use."""
import re

from hypothesis import given, strategies as st

from bocker import patterns

_CASES = [(r"[a-z_][a-z0-9_]{0,63}\Z", 0), (r"[0-9]{1,4}(-[0-9]{1,4})?\Z", re.ASCII),
          (r"^(?:(?P<ip>[0-9.]+):)?(?P<host>\d+)$", 0)]


def test_nothing_is_compiled_before_first_use():
    p = patterns.lazy(r"(unbalanced")  # an error would show at compile time
    assert p._compiled is None
    try:
        p.match("x")
    except re.error:
        pass
    else:
        raise AssertionError("the pattern was not compiled on use")


@given(st.text(max_size=40), st.sampled_from(_CASES))
def test_it_answers_as_the_compiled_pattern(text, case):
    lazy, real = patterns.lazy(*case), re.compile(*case)
    for method in ("match", "fullmatch", "search"):
        got, want = getattr(lazy, method)(text), getattr(real, method)(text)
        assert (got and got.groups()) == (want and want.groups())
    assert lazy.pattern == real.pattern and lazy.flags == real.flags
