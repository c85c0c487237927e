"""Docker's shell-word rules for Dockerfile arguments (pure).

What Docker's lexer does, not what a POSIX shell does:
- '...' is literal (no escapes, no expansion);
- "..." expands variables; inside it the escape char escapes only `"`,
  `$` and itself, any other escape is kept as written;
- outside quotes the escape char makes the next char literal (a trailing
  one is dropped);
- $NAME, ${NAME}, ${NAME:-word} ${NAME-word} ${NAME:+word} ${NAME+word}
  ${NAME:?word} ${NAME?word}; `word` is itself expanded; an unset name is
  empty; a `$` not followed by a name is a literal `$`;
- ${NAME#pat} ${NAME##pat} ${NAME%pat} ${NAME%%pat} ${NAME/pat/r}
  ${NAME//pat/r} (shortest/longest prefix, suffix; first/every match) with
  `*` and `?` wildcards, matched by an automaton (no backtracking);
- split_words splits on unquoted whitespace, also inside what an unquoted
  expansion produced (as Docker's lexer does); expand keeps whitespace.
Every failure is a BuildError without a line (the caller adds it with
BuildError.at).  Results are bounded so that `ENV A=$A$A` cannot grow
without end.
"""
from bocker.build.errors import BuildError

MAX_RESULT = 1 << 20  # characters one expansion may produce
MAX_WORDS = 65536     # words one instruction may have
_SPACE = " \t\n\r\v\f"
_MODIFIERS = (":-", ":+", ":?", "-", "+", "?", "##", "#", "%%", "%", "//", "/")
MAX_PATTERN_VALUE = 4096  # characters of a value that # % / patterns work on


def _is_name_start(ch):
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _is_name_char(ch):
    return _is_name_start(ch) or ("0" <= ch <= "9")


class _Lexer:
    """One pass over `text`; `words` collects split words (split mode)
    or one string (expand mode)."""

    def __init__(self, text, env, escape, split):
        if not isinstance(text, str):
            raise BuildError("an argument is not text")
        if escape not in ("\\", "`"):
            raise BuildError(f"invalid escape character {escape!r}")
        self.text, self.env, self.escape, self.split = text, env, escape, split
        self.pos = 0
        self.words = []
        self.word = []
        self.in_word = False
        self.size = 0
        self.glob = None  # a list of pattern tokens when reading a # % / pattern

    # -- output -------------------------------------------------------
    def _grow(self, n):
        self.size += n
        if self.size > MAX_RESULT:
            raise BuildError(f"an expanded argument is longer than {MAX_RESULT} characters")

    def raw(self, s):
        """Literal text: never split."""
        self._grow(len(s))
        self.word.append(s)
        self.in_word = True
        if self.glob is not None:
            self.glob.extend(("c", ch) for ch in s)

    def globbing(self, s):
        """Unquoted text of a pattern: `*` and `?` are wildcards, the
        escape char makes the next literal (also in a variable's value,
        as Docker's)."""
        self._grow(len(s))
        i = 0
        while i < len(s):
            ch = s[i]
            if ch == self.escape and i + 1 < len(s):
                i += 1
                self.glob.append(("c", s[i]))
            else:
                self.glob.append((ch,) if ch in "*?" else ("c", ch))
            i += 1

    def expanded(self, s):
        """An unquoted expansion's value: split on whitespace in split mode."""
        if self.glob is not None:
            self.globbing(s)
        elif not self.split:
            self.raw(s)
            return
        self._grow(len(s))
        for ch in s:
            if ch in _SPACE:
                self.end_word()
            else:
                self.word.append(ch)
                self.in_word = True

    def end_word(self):
        if self.in_word:
            if len(self.words) >= MAX_WORDS:
                raise BuildError(f"more than {MAX_WORDS} words in one instruction")
            self.words.append("".join(self.word))
        self.word = []
        self.in_word = False

    # -- scanning -----------------------------------------------------
    def peek(self, k=0):
        i = self.pos + k
        return self.text[i] if i < len(self.text) else ""

    def run(self, stop=None):
        """Scan to the end (or to an unquoted char of `stop`, consumed and
        returned)."""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if stop is not None and ch in stop:
                self.pos += 1
                return ch
            if self.split and stop is None and ch in _SPACE:
                self.pos += 1
                self.end_word()
            elif ch == "'":
                self.pos += 1
                self.single_quote()
            elif ch == '"':
                self.pos += 1
                self.double_quote()
            elif ch == self.escape:
                self.pos += 1
                if self.pos < len(self.text):
                    self.raw(self.text[self.pos])
                    self.pos += 1
            elif ch == "$":
                self.pos += 1
                self.expanded(self.dollar())
            elif self.glob is not None:
                self.globbing(ch)
                self.pos += 1
            else:
                self.raw(ch)
                self.pos += 1
        if stop is not None:
            raise BuildError("missing '}' in variable substitution")
        return None

    def single_quote(self):
        end = self.text.find("'", self.pos)
        if end < 0:
            raise BuildError("unexpected end of statement while looking for matching single-quote")
        self.raw(self.text[self.pos:end])
        self.pos = end + 1

    def double_quote(self):
        self.in_word = True  # "" is an empty word, not nothing
        while True:
            if self.pos >= len(self.text):
                raise BuildError(
                    "unexpected end of statement while looking for matching double-quote")
            ch = self.text[self.pos]
            self.pos += 1
            if ch == '"':
                return
            if ch == self.escape:
                nxt = self.peek()
                if nxt in ('"', "$", self.escape):
                    self.raw(nxt)
                    self.pos += 1
                elif nxt:  # kept as written: Docker does no \n etc.
                    self.raw(ch)
            elif ch == "$":
                self.raw(self.dollar())
            else:
                self.raw(ch)

    def name(self):
        start = self.pos
        if self.peek() and "0" <= self.peek() <= "9":
            self.pos += 1  # $1: one digit, as a shell's positional parameter
            return self.text[start:self.pos]
        while self.peek() and _is_name_char(self.peek()):
            self.pos += 1
        return self.text[start:self.pos]

    def lookup(self, name):
        if self.env is None:
            return None
        value = self.env.get(name)
        return value if isinstance(value, str) else None

    def dollar(self):
        """After a `$`: the value it stands for (or a literal `$`)."""
        if self.env is None:
            return "$" + self._verbatim_dollar()
        ch = self.peek()
        if ch == "{":
            self.pos += 1
            return self.braces()
        if ch and (_is_name_start(ch) or "0" <= ch <= "9"):
            return self.lookup(self.name()) or ""
        return "$"

    def _verbatim_dollar(self):
        """No env: keep `$NAME`/`${...}` as written (quote removal only)."""
        if self.peek() != "{":
            return ""
        depth, start = 0, self.pos
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            depth += ch == "{"
            depth -= ch == "}"
            if depth == 0:
                return self.text[start:self.pos]
        raise BuildError("missing '}' in variable substitution")

    def sub_word(self, stop, glob=False):
        """The word from here to an unquoted char of `stop`: (text, the
        pattern tokens if glob, the stop char)."""
        sub = _Lexer(self.text, self.env, self.escape, split=False)
        sub.pos, sub.size = self.pos, self.size
        if glob:
            sub.glob = []
        ended = sub.run(stop=stop)
        self.pos = sub.pos
        return "".join(sub.word), sub.glob, ended

    def pattern_op(self, name, mod):
        """${V#p} ${V##p} ${V%p} ${V%%p} ${V/p/r} ${V//p/r}."""
        _, tokens, ended = self.sub_word("/}" if mod[0] == "/" else "}", glob=True)
        replacement = ""
        if mod[0] == "/":
            if ended != "/":
                raise BuildError(f"bad substitution: ${{{name}{mod}...}} needs a"
                                 " /replacement")
            replacement = self.sub_word("}")[0]
        value = self.lookup(name) or ""
        if not tokens or not value:
            return value
        if len(value) > MAX_PATTERN_VALUE or len(tokens) > MAX_PATTERN_VALUE:
            raise BuildError(f"{name} is too long for a pattern substitution"
                             f" (at most {MAX_PATTERN_VALUE} characters)")
        if mod[0] == "#":
            ends = _prefix_matches(tokens, value)
            if not ends:
                return value
            return value[(max(ends) if mod == "##" else min(ends)):]
        if mod[0] == "%":
            starts = [len(value) - k for k in _prefix_matches(tokens[::-1], value[::-1])]
            if not starts:
                return value
            return value[:(min(starts) if mod == "%%" else max(starts))]
        return _replace(tokens, value, replacement, every=mod == "//")

    def braces(self):
        name = self.name()
        if not name or not (_is_name_start(name[0]) or name.isdigit()):
            raise BuildError("bad substitution: a ${...} needs a variable name")
        if self.peek() == "}":
            self.pos += 1
            return self.lookup(name) or ""
        mod = next((m for m in _MODIFIERS if self.text.startswith(m, self.pos)), None)
        if not self.peek():
            raise BuildError("missing '}' in variable substitution")
        if mod is None:
            got = self.peek() or "end of text"
            raise BuildError(f"unsupported modifier ({got}) in substitution of {name}")
        self.pos += len(mod)
        if mod[0] in "#%/":
            return self.pattern_op(name, mod)
        word = self.sub_word("}")[0]
        value = self.lookup(name)
        unset = value is None or (mod.startswith(":") and value == "")
        if mod.endswith("-"):
            return word if unset else value
        if mod.endswith("+"):
            return "" if unset else word
        if unset:  # ? and :?
            raise BuildError(f"{name}: {word or 'is not allowed to be unset'}")
        return value


def _prefix_matches(tokens, value):
    """The lengths k for which value[:k] matches the pattern tokens
    (`*`, `?`, ("c", ch)): one pass of a set-of-states automaton, so
    O(len(value) * len(tokens)) whatever the pattern."""
    def closure(states):
        out, todo = set(), list(states)
        while todo:
            i = todo.pop()
            if i in out:
                continue
            out.add(i)
            if i < len(tokens) and tokens[i] == ("*",):
                todo.append(i + 1)
        return out

    states = closure({0})
    found = [0] if len(tokens) in states else []
    for k, ch in enumerate(value, 1):
        nxt = set()
        for i in states:
            if i == len(tokens):
                continue
            tok = tokens[i]
            if tok == ("*",):
                nxt.add(i)
            elif tok == ("?",) or tok[1] == ch:
                nxt.add(i + 1)
        states = closure(nxt)
        if not states:
            break
        if len(tokens) in states:
            found.append(k)
    return found


def _replace(tokens, value, replacement, every):
    """The first (or every) longest match of the pattern replaced."""
    out, i, done = [], 0, False
    while i < len(value):
        ends = [] if done else _prefix_matches(tokens, value[i:])
        longest = max(ends) if ends else 0
        if longest:
            out.append(replacement)
            i += longest
            done = not every
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def expand(text, env, escape="\\"):
    """One word: variables substituted from `env` (name → str; None: left
    as written), quotes and escapes removed, whitespace kept.  BuildError on bad syntax or a
    `${V:?msg}` whose V is unset."""
    lex = _Lexer(text, env, escape, split=False)
    lex.run()
    return "".join(lex.word)


def split_words(text, env=None, escape="\\"):
    """Whitespace-separated words, quotes and escapes removed; expanded
    from `env` if given (`$X` left as written if env is None)."""
    lex = _Lexer(text, env, escape, split=True)
    lex.run()
    lex.end_word()
    return lex.words


def _raw_words(text, escape):
    """Words as written (quotes and escapes kept), split on unquoted
    whitespace: Docker's first pass over ENV/LABEL/ARG."""
    words, cur, quote, i = [], [], None, 0
    while i < len(text):
        ch = text[i]
        if quote is None and ch in _SPACE:
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
            if ch == escape and i + 1 < len(text) and quote != "'":
                cur.append(text[i + 1])
                i += 1
            elif ch in "'\"" and quote is None:
                quote = ch
            elif ch == quote:
                quote = None
        i += 1
        if len(words) > MAX_WORDS:
            raise BuildError(f"more than {MAX_WORDS} words in one instruction")
    if cur:
        words.append("".join(cur))
    return words


def pairs(text, env, escape="\\", keyword="ENV"):
    """ENV/LABEL `K=V K2="a b"` (or the legacy `ENV K the rest`), ARG
    `NAME[=default] ...`: [(key, value)], keys and values expanded from
    `env` (the environment before the instruction: Docker expands a whole
    ENV with it, so `ENV A=1 B=$A` gives B the old A).  ARG's value is
    None when it has no default."""
    words = _raw_words(text.strip(), escape)
    if not words:
        raise BuildError(f"{keyword} requires at least one argument")
    if keyword in ("ENV", "LABEL") and "=" not in words[0]:
        # the legacy form: KEY the rest of the line (one pair)
        key = words[0]
        rest = text.strip()[len(key):].lstrip(_SPACE)
        if not rest:
            raise BuildError(f"{keyword} names {key!r} but gives it no value"
                             f" (use {keyword} {key}=VALUE)")
        return [(_key(keyword, expand(key, env, escape)), expand(rest, env, escape))]
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq and keyword != "ARG":
            raise BuildError(f"Syntax error - can't find = in {word!r}."
                             f" Must be of the form: name=value")
        key = _key(keyword, expand(key, env, escape))
        out.append((key, expand(value, env, escape) if eq else None))
    return out


def _key(keyword, key):
    if not key:
        raise BuildError(f"{keyword} has an empty or invalid name ''")
    if "\0" in key or (keyword != "LABEL" and ("=" in key or any(c in _SPACE for c in key))):
        raise BuildError(f"{keyword} has an invalid name {key!r}")
    return key
