"""The subset of Go's text/template that Docker users write in --format.

Actions: {{.Field}}, {{.A.B}}, {{.Method "arg"}}, {{.}}, {{$}}, {{$v}},
{{json .X}}, {{index .M "k"}}, pipelines {{.X | lower}}, {{if P}}...
{{else if P}}...{{else}}...{{end}}, {{range P}}...{{else}}...{{end}}
(with {{range $i, $v := P}}), {{with P}}...{{end}}, comments {{/* */}},
trim markers {{- and -}}; literals: "strings" (Go escapes), `raw`,
numbers, true, false, nil.  Functions: Go's and, or, not, eq, ne, lt, le,
gt, ge, len, index, print, printf, println, slice; Docker's json, join,
split, lower, upper, title, truncate, pad.

Data is Python values: a dict is a Go map (a missing key is <no value>),
any other object is a struct (its attribute; a callable one is a method
taking the action's arguments; a missing one is an error).  Every failure
is a TemplateError (exit 125), one line, never a traceback.

No library is used: PyPI has no maintained pure-Python text/template
(only a CGo wrapper), and this subset is small.
"""
import json as _json
import re

from bocker.errors import BockerError


class TemplateError(BockerError):
    """A template that does not parse or fails to execute: Docker's 125."""

    exit_code = 125


class _Missing:
    """Go's <no value>: a map's missing key."""

    def __repr__(self):
        return "<no value>"

    def __bool__(self):
        return False


MISSING = _Missing()

# ---------------------------------------------------------------- lexing

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?
                   |\d+(?:[eE][-+]?\d+)?))
  | (?P<declare>:=)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<punct>[|(),=])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _unquote(text, where):
    """A Go interpreted string literal's value (\\n, \\t, \\xNN, \\uNNNN ...)."""
    out, i, body = [], 0, text[1:-1]
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in ("x", "u", "U"):
            size = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = body[i + 2:i + 2 + size]
            if len(digits) != size or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise TemplateError(f"template: {where}: invalid escape in {text}")
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise TemplateError(f"template: {where}: invalid escape in {text}")
            out.append(chr(code))
            i += 2 + size
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            raise TemplateError(f"template: {where}: invalid escape in {text}")
    return "".join(out)


def _lex_action(body, where):
    """The tokens of one action's inside: (kind, text) pairs."""
    tokens, pos = [], 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if not m:
            raise TemplateError(f"template: {where}: unexpected {body[pos]!r} in action")
        kind = m.lastgroup
        if kind != "space":
            tokens.append((kind, m.group()))
        pos = m.end()
    return tokens


def _split(source):
    """The template as ('text', str) and ('action', body, where) pieces,
    with Go's {{- and -}} trimming the whitespace beside them."""
    pieces, pos, line = [], 0, 1
    while True:
        start = source.find("{{", pos)
        if start < 0:
            pieces.append(("text", source[pos:]))
            return pieces
        text = source[pos:start]
        inner = start + 2
        if source.startswith("- ", inner) or source.startswith("-\t", inner) or \
                source.startswith("-\n", inner):
            text = text.rstrip(" \t\r\n")
            inner += 1
        pieces.append(("text", text))
        line += source.count("\n", pos, start)
        where = f"{line}:{start - (source.rfind(chr(10), 0, start) + 1) + 1}"
        if source.startswith("/*", _skip_space(source, inner)):
            close = source.find("*/", inner)
            end = source.find("}}", close + 2) if close >= 0 else -1
            if close < 0 or end < 0 or source[close + 2:end].strip(" -") != "":
                raise TemplateError(f"template: {where}: unclosed comment")
            pos = end + 2
            if source[close + 2:end].strip() == "-":
                pos = _trim_after(source, pos)
            continue
        end = _find_close(source, inner, where)
        body = source[inner:end]
        pos = end + 2
        if body.endswith(" -") or body.endswith("\t-") or body.endswith("\n-"):
            body = body[:-1]
            pos = _trim_after(source, pos)
        pieces.append(("action", body, where))
        line += source.count("\n", start, pos)


def _skip_space(source, i):
    while i < len(source) and source[i] in " \t\r\n":
        i += 1
    return i


def _trim_after(source, pos):
    while pos < len(source) and source[pos] in " \t\r\n":
        pos += 1
    return pos


def _find_close(source, i, where):
    """Where the action opened before i ends: the first }} outside a literal."""
    quote = None
    while i < len(source):
        c = source[i]
        if quote:
            if c == "\\" and quote != "`":
                i += 2
                continue
            if c == quote:
                quote = None
            elif c == "\n" and quote != "`":
                break
        elif c in "\"'`":
            quote = c
        elif source.startswith("}}", i):
            return i
        i += 1
    raise TemplateError(f"template: {where}: unclosed action")


# ---------------------------------------------------------------- parsing

class _Node:
    __slots__ = ()


class _Text(_Node):
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


class _Action(_Node):
    __slots__ = ("pipe", "where")

    def __init__(self, pipe, where):
        self.pipe, self.where = pipe, where


class _Block(_Node):
    __slots__ = ("kind", "pipe", "body", "orelse", "where")

    def __init__(self, kind, pipe, where):
        self.kind, self.pipe, self.where = kind, pipe, where
        self.body, self.orelse = [], []


class _Pipe:
    """cmd | cmd | ...; each cmd a list of operands; names: $x := declarations."""
    __slots__ = ("cmds", "names")

    def __init__(self, cmds, names):
        self.cmds, self.names = cmds, names


def _parse_pipe(tokens, where, allow_decl=False):
    names = []
    decl = next((i for i, t in enumerate(tokens) if t[0] == "declare"), None)
    if decl is not None:
        if not allow_decl:
            raise TemplateError(f"template: {where}: unexpected := here")
        left = [t for t in tokens[:decl] if t != ("punct", ",")]
        if not left or len(left) > 2 or any(k != "var" or "." in t for k, t in left):
            raise TemplateError(f"template: {where}: bad variable declaration")
        names = [t for _, t in left]
        tokens = tokens[decl + 1:]
    cmds, pos = [], 0
    cmd = []
    while pos < len(tokens):
        kind, text = tokens[pos]
        if (kind, text) == ("punct", "|"):
            if not cmd:
                raise TemplateError(f"template: {where}: missing command before |")
            cmds.append(cmd)
            cmd = []
            pos += 1
            continue
        operand, pos = _parse_operand(tokens, pos, where)
        cmd.append(operand)
    if not cmd:
        raise TemplateError(f"template: {where}: missing value for command")
    cmds.append(cmd)
    return _Pipe(cmds, names)


def _parse_operand(tokens, pos, where):
    kind, text = tokens[pos]
    if kind == "punct" and text == "(":
        depth, end = 0, pos
        while end < len(tokens):
            if tokens[end] == ("punct", "("):
                depth += 1
            elif tokens[end] == ("punct", ")"):
                depth -= 1
                if depth == 0:
                    break
            end += 1
        if end >= len(tokens):
            raise TemplateError(f"template: {where}: unclosed left paren")
        inner = _parse_pipe(tokens[pos + 1:end], where)
        pos = end + 1
        # (pipe).Field
        if pos < len(tokens) and tokens[pos][0] == "field":
            op = ("chain", inner, tokens[pos][1].split(".")[1:])
            return op, pos + 1
        return ("pipe", inner), pos
    if kind == "punct":
        raise TemplateError(f"template: {where}: unexpected {text!r} in operand")
    if kind == "string":
        return ("lit", _unquote(text, where)), pos + 1
    if kind == "raw":
        return ("lit", text[1:-1]), pos + 1
    if kind == "char":
        value = _unquote('"' + text[1:-1] + '"', where)
        if len(value) != 1:
            raise TemplateError(f"template: {where}: malformed character constant {text}")
        return ("lit", ord(value)), pos + 1
    if kind == "number":
        try:
            value = int(text, 0) if re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|\d+)", text) \
                else float(text)
        except ValueError:
            raise TemplateError(f"template: {where}: bad number syntax: {text}") from None
        return ("lit", value), pos + 1
    if kind == "field":
        return ("field", text.split(".")[1:]), pos + 1
    if kind == "dot":
        return ("dot",), pos + 1
    if kind == "var":
        name, *path = text.split(".")
        return ("var", name, path), pos + 1
    if kind == "ident":
        name, *path = text.split(".")
        if name in ("true", "false"):
            return ("lit", name == "true"), pos + 1
        if name == "nil":
            return ("lit", None), pos + 1
        if name in _KEYWORDS:
            raise TemplateError(f"template: {where}: unexpected {name} in operand")
        if name not in FUNCS:
            raise TemplateError(f'template: {where}: function "{name}" not defined')
        if path:
            raise TemplateError(f"template: {where}: unexpected . after {name}")
        return ("func", name), pos + 1
    raise TemplateError(f"template: {where}: unexpected {text!r}")  # pragma: no cover


_KEYWORDS = ("if", "else", "end", "range", "with", "define", "template", "block",
             "break", "continue")


def _parse(source):
    """The tree of source: a list of nodes."""
    root = []
    # open blocks: [block, the list being filled, chained]; an {{else if}}
    # opens a chained if inside its parent's else, closed by the same {{end}}
    stack = []
    current = root
    for piece in _split(source):
        if piece[0] == "text":
            if piece[1]:
                current.append(_Text(piece[1]))
            continue
        _, body, where = piece
        tokens = _lex_action(body, where)
        if not tokens:
            raise TemplateError(f"template: {where}: missing value for command")
        head = tokens[0]
        word = head[1] if head[0] == "ident" else None
        if word in ("if", "range", "with"):
            block = _Block(word, _parse_pipe(tokens[1:], where, allow_decl=True), where)
            current.append(block)
            stack.append([block, block.body, False])
            current = block.body
        elif word == "else":
            if not stack or stack[-1][1] is stack[-1][0].orelse:
                raise TemplateError(f"template: {where}: unexpected {{{{else}}}}")
            top = stack[-1]
            top[1] = current = top[0].orelse
            rest = tokens[1:]
            if rest and rest[0] == ("ident", "if") and top[0].kind == "if":
                inner = _Block("if", _parse_pipe(rest[1:], where, allow_decl=True), where)
                current.append(inner)
                stack.append([inner, inner.body, True])
                current = inner.body
            elif rest:
                raise TemplateError(f"template: {where}: unexpected tokens after else")
        elif word == "end":
            if len(tokens) > 1:
                raise TemplateError(f"template: {where}: unexpected tokens after end")
            if not stack:
                raise TemplateError(f"template: {where}: unexpected {{{{end}}}}")
            while stack.pop()[2]:
                pass
            current = stack[-1][1] if stack else root
        elif word in _KEYWORDS:
            raise TemplateError(f"template: {where}: {{{{{word}}}}} is not supported")
        else:
            current.append(_Action(_parse_pipe(tokens, where, allow_decl=True), where))
    if stack:
        raise TemplateError(f"template: {stack[-1][0].where}: unexpected EOF "
                            f"(missing {{{{end}}}})")
    return root


# ---------------------------------------------------------------- values

def truth(value):
    """Go's truth: false, 0, nil, and empty strings, lists and maps are false."""
    if value is None or value is MISSING:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def show(value):
    """A value as Go's fmt %v prints it."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{show(k)}:{show(value[k])}"
                                 for k in sorted(value, key=str)) + "]"
    return str(value)


def _field(value, name, where):
    if isinstance(value, dict):
        return value.get(name, MISSING)
    if value is None or value is MISSING:
        raise TemplateError(f"template: {where}: nil pointer evaluating .{name}")
    if isinstance(value, (str, int, float, bool, list, tuple)) or name.startswith("_"):
        raise TemplateError(f"template: {where}: can't evaluate field {name} in type "
                            f"{_type(value)}")
    try:
        return getattr(value, name)
    except AttributeError:
        raise TemplateError(f"template: {where}: can't evaluate field {name} in type "
                            f"{_type(value)}") from None
    except (KeyError, TypeError, ValueError, IndexError) as e:  # a row's field on a bad record
        raise TemplateError(f"template: {where}: error calling {name}: {e}") from None


def _type(value):
    return {str: "string", int: "int", float: "float64", bool: "bool", list: "[]interface {}",
            tuple: "[]interface {}", dict: "map[string]interface {}"}.get(
        type(value), type(value).__name__)


class _Scope:
    """The variables in force: $ and those of the enclosing ranges."""

    def __init__(self, variables):
        self.variables = variables

    def child(self):
        return _Scope(dict(self.variables))


class _Exec:
    def __init__(self, out):
        self.out = out
        self.steps = 0

    def nodes(self, nodes, dot, scope):
        for node in nodes:
            if isinstance(node, _Text):
                self.out.append(node.text)
            elif isinstance(node, _Action):
                value = self.pipe(node.pipe, dot, scope, node.where)
                if not node.pipe.names:
                    self.out.append(show(value))
            else:
                self.block(node, dot, scope)

    def block(self, node, dot, scope):
        inner = scope.child()
        value = self.pipe(node.pipe, dot, inner, node.where, declare=node.kind != "range")
        if node.kind == "if":
            self.nodes(node.body if truth(value) else node.orelse, dot, inner)
        elif node.kind == "with":
            if truth(value):
                self.nodes(node.body, value, inner)
            else:
                self.nodes(node.orelse, dot, inner)
        else:
            items = _range_items(value, node.where)
            if not items:
                self.nodes(node.orelse, dot, inner)
            for key, item in items:
                # nested ranges that print nothing are bounded too (by steps)
                self.steps += 1
                if self.steps > STEPS_MAX:
                    raise TemplateError(f"template: {node.where}: too many range steps")
                loop = inner.child()
                names = node.pipe.names
                if len(names) == 1:
                    loop.variables[names[0]] = item
                elif len(names) == 2:
                    loop.variables[names[0]], loop.variables[names[1]] = key, item
                self.nodes(node.body, item, loop)

    def pipe(self, pipe, dot, scope, where, declare=True):
        value, have = None, False
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, scope, where, [value] if have else [])
            have = True
        if declare and pipe.names:
            scope.variables[pipe.names[-1]] = value
        return value

    def command(self, cmd, dot, scope, where, piped):
        head = cmd[0]
        args = cmd[1:]
        if head[0] == "func":
            values = [self.operand(a, dot, scope, where) for a in args] + piped
            return _call(FUNCS[head[1]], values, where, head[1])
        if head[0] in ("field", "var", "chain") and (args or piped):
            # a method with arguments: {{.Label "k"}}
            method = self.operand(head, dot, scope, where, call=False)
            if not callable(method):
                raise TemplateError(f"template: {where}: {_name(head)} has arguments but "
                                    f"cannot take them")
            values = [self.operand(a, dot, scope, where) for a in args] + piped
            return _call(method, values, where, _name(head))
        if args or piped:
            raise TemplateError(f"template: {where}: can't give argument to non-function "
                                f"{_name(head)}")
        return self.operand(head, dot, scope, where)

    def operand(self, op, dot, scope, where, call=True):
        kind = op[0]
        if kind == "lit":
            return op[1]
        if kind == "dot":
            return dot
        if kind == "pipe":
            return self.pipe(op[1], dot, scope.child(), where)
        if kind == "func":
            return _call(FUNCS[op[1]], [], where, op[1])
        if kind == "field":
            base, path = dot, op[1]
        elif kind == "chain":
            base, path = self.pipe(op[1], dot, scope.child(), where), op[2]
        else:
            if op[1] not in scope.variables:
                raise TemplateError(f'template: {where}: undefined variable "{op[1]}"')
            base, path = scope.variables[op[1]], op[2]
        for i, name in enumerate(path):
            base = _field(base, name, where)
            if callable(base) and (call or i < len(path) - 1):
                base = _call(base, [], where, name)
        return base


def _call(fn, values, where, name):
    try:
        return fn(*values)
    except TemplateError as e:
        if str(e).startswith("template:"):
            raise
        raise TemplateError(f"template: {where}: error calling {name}: {e}") from None
    except TypeError:
        raise TemplateError(f"template: {where}: wrong number or type of args for "
                            f"{name}") from None
    except (ValueError, KeyError, IndexError, OverflowError, AttributeError) as e:
        raise TemplateError(f"template: {where}: error calling {name}: {e}") from None


def _name(op):
    if op[0] == "field":
        return "." + ".".join(op[1])
    if op[0] == "var":
        return ".".join([op[1], *op[2]])
    return "(...)"


def _range_items(value, where):
    if value is None or value is MISSING:
        return []
    if isinstance(value, dict):
        return [(k, value[k]) for k in sorted(value, key=str)]
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    if isinstance(value, int) and not isinstance(value, bool):
        if value > STEPS_MAX:
            raise TemplateError(f"template: {where}: range over {value}: too many steps")
        return [(i, i) for i in range(max(0, value))]
    raise TemplateError(f"template: {where}: range can't iterate over {show(value)}")


# ---------------------------------------------------------------- functions

def _json_fn(value):
    """Docker's json: compact, no HTML escaping, no newline."""
    if value is MISSING:
        return "null"
    return _json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_plain)


def _plain(value):
    if hasattr(value, "as_json"):
        return value.as_json()
    raise TemplateError(f"json: unsupported type {_type(value)}")


def _index(item, *keys):
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key, "")
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise TemplateError(f"index: cannot index slice with {show(key)}")
            if not 0 <= key < len(item):
                raise TemplateError(f"index: index out of range: {key}")
            item = item[key]
        elif item is None or item is MISSING:
            raise TemplateError("index of untyped nil")
        else:
            raise TemplateError(f"can't index item of type {_type(item)}")
    return item


def _len(value):
    if isinstance(value, (str, list, tuple, dict)):
        return len(value)
    raise TemplateError(f"len of type {_type(value)}")


def _slice(item, *idx):
    if not isinstance(item, (str, list, tuple)):
        raise TemplateError(f"can't slice item of type {_type(item)}")
    if len(idx) > 2 or not all(isinstance(i, int) and not isinstance(i, bool) and
                               0 <= i <= len(item) for i in idx):
        raise TemplateError("slice: index out of range")
    return item[slice(*idx)] if idx else item


def _compare(op):
    def fn(a, *bs):
        if not bs:
            raise TemplateError("missing argument for comparison")
        for b in bs:
            if isinstance(a, bool) != isinstance(b, bool) or (
                    not isinstance(a, type(b)) and not isinstance(b, type(a)) and
                    not (isinstance(a, (int, float)) and isinstance(b, (int, float)))):
                if a is None or b is None or a is MISSING or b is MISSING:
                    result = op == "eq" and a is b or op == "ne" and a is not b
                    if op in ("eq", "ne"):
                        if result if op == "eq" else not result:
                            return op == "eq"
                        continue
                raise TemplateError(f"incompatible types for comparison: {show(a)} and "
                                    f"{show(b)}")
            try:
                ok = {"eq": a == b, "ne": a != b}.get(op)
                if ok is None:
                    ok = {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
            except TypeError:
                raise TemplateError(f"invalid type for comparison: {show(a)}") from None
            if op == "eq" and ok:
                return True
            if op != "eq":
                return ok
        return False
    return fn


def _and(*args):
    if not args:
        raise TemplateError("and: missing arguments")
    for a in args:
        if not truth(a):
            return a
    return args[-1]


def _or(*args):
    if not args:
        raise TemplateError("or: missing arguments")
    for a in args:
        if truth(a):
            return a
    return args[-1]


def _print(*args):
    # Go's fmt.Sprint: a space between operands when neither is a string
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(show(a))
    return "".join(out)


_VERB = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d+))?([a-zA-Z%])")


def _printf(fmt, *args):
    """Go's fmt.Sprintf for the verbs scripts use: %s %v %d %q %x %X %f %t %%."""
    if not isinstance(fmt, str):
        raise TemplateError("printf: format is not a string")
    args, out, pos = list(args), [], 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if not args:
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args.pop(0)
        if verb in "sv":
            text = show(arg)
            if prec:
                text = text[:int(prec)]
        elif verb == "q":
            text = _json.dumps(show(arg) if not isinstance(arg, str) else arg,
                               ensure_ascii=False)
        elif verb == "t":
            text = show(arg) if isinstance(arg, bool) else f"%!t({show(arg)})"
        elif verb in "dxXobc" and isinstance(arg, int) and not isinstance(arg, bool):
            text = {"d": "{}", "x": "{:x}", "X": "{:X}", "o": "{:o}", "b": "{:b}"}.get(
                verb, "").format(arg) if verb != "c" else chr(arg)
        elif verb in "xX" and isinstance(arg, str):
            text = arg.encode().hex()
            text = text.upper() if verb == "X" else text
        elif verb in "feEgG" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
            text = ("{:." + (prec or "6") + verb + "}").format(float(arg)) if verb != "g" \
                else show(float(arg))
        else:
            text = f"%!{verb}({show(arg)})"
        if width:
            if width == "*":
                raise TemplateError("printf: * width is not supported")
            w = int(width)
            if w > 4096:
                raise TemplateError("printf: width too large")
            pad = "0" if "0" in flags and "-" not in flags and verb in "dxXfeEgG" else " "
            text = text.ljust(w) if "-" in flags else text.rjust(w, pad)
        out.append(text)
    out.append(fmt[pos:])
    if args:
        out.append("%!(EXTRA " + ", ".join(show(a) for a in args) + ")")
    return "".join(out)


def _str_fn(fn, name):
    def wrapped(value):
        if not isinstance(value, str):
            value = show(value)
        return fn(value)
    wrapped.__name__ = name
    return wrapped


def _join(items, sep):
    if not isinstance(items, (list, tuple)) or not isinstance(sep, str):
        raise TemplateError("join: wants a list and a separator")
    return sep.join(show(i) for i in items)


def _split_fn(text, sep):
    if not isinstance(text, str) or not isinstance(sep, str):
        raise TemplateError("split: wants two strings")
    return text.split(sep) if sep else list(text)


def _title(text):
    # Go's strings.Title: the first letter of each word upper-cased, the rest kept
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), text)


def _truncate(text, n):
    if not isinstance(n, int) or isinstance(n, bool):
        raise TemplateError("truncate: wants a length")
    text = text if isinstance(text, str) else show(text)
    return text[:max(0, n)]


def _pad(text, left, right):
    if not all(isinstance(n, int) and 0 <= n <= 4096 for n in (left, right)):
        raise TemplateError("pad: wants two lengths")
    text = text if isinstance(text, str) else show(text)
    return " " * left + text + " " * right


def _not(value):
    return not truth(value)


FUNCS = {
    "and": _and, "or": _or, "not": _not,
    "eq": _compare("eq"), "ne": _compare("ne"), "lt": _compare("lt"), "le": _compare("le"),
    "gt": _compare("gt"), "ge": _compare("ge"),
    "len": _len, "index": _index, "slice": _slice,
    "print": _print, "printf": _printf,
    "println": lambda *a: " ".join(show(x) for x in a) + "\n",
    "json": _json_fn, "join": _join, "split": _split_fn,
    "lower": _str_fn(str.lower, "lower"), "upper": _str_fn(str.upper, "upper"),
    "title": _str_fn(_title, "title"), "truncate": _truncate, "pad": _pad,
}


# ---------------------------------------------------------------- public API

# A bound on what one template may print: a `range` over a huge number (or
# nested ranges) must not fill memory.
OUTPUT_MAX = 16 << 20
STEPS_MAX = 1_000_000


class _Bounded(list):
    def __init__(self):
        super().__init__()
        self.size = 0

    def append(self, text):
        self.size += len(text)
        if self.size > OUTPUT_MAX:
            raise TemplateError("template: output too large")
        super().append(text)


class Template:
    """A parsed template; render(data) executes it."""

    def __init__(self, source):
        if not isinstance(source, str):
            raise TemplateError("template: not a string")
        self.source = source
        try:
            self.tree = _parse(source)
        except RecursionError:
            raise TemplateError("template: nested too deeply") from None

    def render(self, data):
        """The text of the template executed on data (dot and $ are data)."""
        out = _Bounded()
        try:
            _Exec(out).nodes(self.tree, data, _Scope({"$": data}))
        except RecursionError:
            raise TemplateError("template: nested too deeply") from None
        return "".join(out)


def render(source, data):
    """Parse source and execute it on data."""
    return Template(source).render(data)
