""".dockerignore with Docker's semantics (pure).

parse(): one pattern a line; a line starting with `#` is a comment; blanks
trimmed; `!` marks an exception; each pattern is cleaned as a path (`./`,
`//`, `a/..` folded) and a leading `/` dropped: patterns are relative to
the context root.

Matcher: a pattern matches a path when it matches the whole path or one of
its parent directories (so `dir` ignores everything below dir).  Within a
pattern `*` is any run of characters but `/`, `?` one character but `/`,
`[...]` a class as Go's filepath.Match (`^` negates, `\\` escapes), `\\x` a
literal x, and `**` any number of directories (`**/x`, `a/**/b`; a final
`a/**` everything below a).  The last pattern that matches decides: `!`
patterns re-include.
"""
import posixpath
import re

from bocker.build import globs
from bocker.build.errors import BuildError

MAX_TEXT = 1 << 20
MAX_PATTERNS = 10_000


def parse(text):
    """The patterns of a .dockerignore's text, in order (exceptions keep
    their leading `!`).  BuildError if it is too large or a pattern is bad."""
    if not isinstance(text, str) or len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT:
        raise BuildError(f".dockerignore is not text of at most {MAX_TEXT} bytes")
    out = []
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), 1):
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = _clean(pattern)
        if invert:
            pattern = "!" + pattern
        try:
            _Pattern(pattern)
        except BuildError as e:
            raise BuildError(f".dockerignore:{number}: {e.reason}") from None
        out.append(pattern)
        if len(out) > MAX_PATTERNS:
            raise BuildError(f".dockerignore has more than {MAX_PATTERNS} patterns")
    return out


def _clean(path):
    """Go's filepath.Clean, then a leading `/` dropped."""
    path = posixpath.normpath(path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")  # normpath keeps a leading //, Clean does not
    if len(path) > 1 and path.startswith("/"):
        path = path[1:]
    return path


class _Pattern:
    """One compiled pattern."""

    def __init__(self, text):
        self.exclusion = text.startswith("!")
        body = text[1:].strip() if self.exclusion else text.strip()
        if not body:
            raise BuildError(f"illegal exclusion pattern: {text!r}")
        self.text = _clean(body)
        self.regex = re.compile(_translate(self.text), re.DOTALL)
        self.parts = self.text.split("/")

    def match(self, path):
        return self.regex.fullmatch(path) is not None


def _translate(pattern):
    """The pattern as a Python regular expression (matched whole):
    patternmatcher's rules, `**` included (globs.py)."""
    try:
        return globs.translate(pattern, doublestar=True)
    except globs.PatternError as e:
        raise BuildError(f"bad pattern {pattern!r}: {e}") from None


def _component_match(pattern, name):
    """Does one pattern component (no `/`, not `**`) match one name?"""
    return re.fullmatch(_translate(pattern), name, re.DOTALL) is not None


class Matcher:
    """The patterns of a .dockerignore, ready to ask about paths."""

    def __init__(self, patterns):
        self.patterns = [_Pattern(p) for p in patterns if p.strip()]
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def ignored(self, relpath):
        """Is this path ('/'-separated, relative to the context root)
        ignored?  The root itself never is."""
        path = _clean(relpath.strip("/")) if relpath else "."
        if path in (".", "/", ""):
            return False
        parents = path.split("/")[:-1]
        matched = False
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue  # only a pattern that could change the answer is tried
            hit = pat.match(path) or any(pat.match("/".join(parents[:k + 1]))
                                         for k in range(len(parents)))
            if hit:
                matched = not pat.exclusion
        return matched

    def may_include_below(self, reldir):
        """Could something below the (ignored) directory reldir be
        re-included by an exception?  False means a walk may skip it."""
        if not self.has_exclusions:
            return False
        dirparts = _clean(reldir.strip("/")).split("/")
        return any(pat.exclusion and _prefix_may_match(pat.parts, dirparts)
                   for pat in self.patterns)


def _prefix_may_match(parts, dirparts):
    """Could the pattern components `parts` match the directory dirparts
    or something below it?"""
    for k, name in enumerate(dirparts):
        if k >= len(parts):
            return True  # the pattern matched a parent: everything below is in
        if "**" in parts[k]:
            return True  # any depth: cannot rule it out
        if not _component_match(parts[k], name):
            return False
    return True
