"""Go's glob patterns as Python regular expressions, for the two places a
build matches names: COPY's sources (Go's filepath.Match, one path
component at a time: context.py) and .dockerignore (Docker's
patternmatcher, which adds `**` and builds a Go regexp, so a reversed
range such as `[z-a]` is an error there where filepath.Match only
matches nothing: ignore.py).

`*` is any run of non-separators, `?` one non-separator, `[...]` /
`[^...]` a class of characters and ranges (never the separator), `\\`
escapes the next character; anything else is itself.
"""
import re


class PatternError(ValueError):
    """A malformed pattern; str() says what is wrong (the caller names it)."""


def translate(pattern, *, doublestar=False, reversed_ranges_match_nothing=False):
    """The regex (a string, matched whole) of pattern.  doublestar: `**`
    is any run of characters, separators included, and `**/` any run of
    whole directories (patternmatcher's).  reversed_ranges_match_nothing:
    a range lo-hi with lo > hi matches nothing (filepath.Match's) instead
    of being a PatternError."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*" and doublestar and i + 1 < n and pattern[i + 1] == "*":
            i += 2
            if i < n and pattern[i] == "/":
                i += 1  # `**/` is `**`
            out.append(".*" if i >= n else "(?:.*/)?")
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i + 1 >= n:
                raise PatternError("it ends with an escape")
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            cls, i = _char_class(pattern, i + 1, reversed_ranges_match_nothing)
            out.append(cls)
            continue
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _char_class(pattern, i, reversed_match_nothing):
    """A `[...]` class whose body starts at i: (regex, index after `]`).
    Go's rules: `^` negates, `\\` escapes, a class holds at least one
    character or range."""
    n = len(pattern)
    negate = i < n and pattern[i] == "^"
    i += negate
    ranges = []
    while True:
        if i < n and pattern[i] == "]" and ranges:
            i += 1
            break
        lo, i = _class_char(pattern, i)
        hi = lo
        if i < n and pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
            if hi < lo and not reversed_match_nothing:
                raise PatternError(f"range {lo}-{hi} is empty")
        ranges.append((lo, hi))
    body = "".join(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}"
                   for lo, hi in ranges if lo <= hi)
    if not body:  # (every range reversed) Python's re would refuse `[z-a]`
        return ("[^/]" if negate else "(?!)"), i
    # a class never matches the separator, as in Go
    return (f"(?!/)[^{body}]" if negate else f"(?!/)[{body}]"), i


def _class_char(pattern, i):
    """One character of a class at i (an escape taken): (char, next index)."""
    n = len(pattern)
    if i >= n or pattern[i] in "-]":
        raise PatternError("syntax error in a [...] class")
    if pattern[i] == "\\":
        i += 1
        if i >= n:
            raise PatternError("it ends with an escape")
    return pattern[i], i + 1
