"""Every test in tests/ checks something: a test that cannot fail is a defect.

A test function counts as checking when its body (nested functions
included) has an `assert`, a `raise AssertionError`, a `pytest.raises`,
`pytest.fail` or `pytest.warns`, or calls by name a function of its own
module, or one imported from another module under tests/ (conftest,
netfixtures, ...), that checks in the same sense.  Fixtures that check at
teardown (no_leaks, netleak) do not count: they say nothing leaked, not
that the test's call did what it should.
"""
import ast
import pathlib
import textwrap

TESTS = pathlib.Path(__file__).resolve().parent.parent
_PYTEST_CHECKS = {"raises", "fail", "warns"}
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _is_check(node):
    """True for a node that fails the test on its own when a result is wrong."""
    if isinstance(node, ast.Assert):
        return True
    if isinstance(node, ast.Raise) and node.exc is not None:
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        return isinstance(exc, ast.Name) and exc.id == "AssertionError"
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "pytest"
            and node.func.attr in _PYTEST_CHECKS)


class _Scan:
    """Modules {relative path: source}, parsed, with the names each one can
    call: its own top-level functions and what it imports with `from X
    import name` from a module X beside it (pytest puts a test's own
    directory on sys.path, so tests import siblings by bare name)."""

    def __init__(self, sources):
        self.trees = {path: ast.parse(text) for path, text in sources.items()}
        self.defs = {m: {n.name: n for n in t.body if isinstance(n, _FUNCTIONS)}
                     for m, t in self.trees.items()}
        self.scope = {}
        for m, tree in self.trees.items():
            scope = {name: (m, name) for name in self.defs[m]}
            for node in tree.body:
                if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                    continue
                sibling = str(pathlib.PurePath(m).with_name(f"{node.module}.py"))
                if sibling in self.trees:
                    for alias in node.names:
                        scope[alias.asname or alias.name] = (sibling, alias.name)
            self.scope[m] = scope
        self._memo = {}

    def checks(self, module, fn, _stack=()):
        """True if fn checks something itself or through a helper it calls."""
        for node in ast.walk(fn):
            if _is_check(node):
                return True
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                target = self.scope[module].get(node.func.id)
                if target and target not in _stack and self._helper_checks(target, _stack):
                    return True
        return False

    def _helper_checks(self, target, stack):
        if target not in self._memo:
            module, name = target
            fn = self.defs[module].get(name)
            self._memo[target] = fn is not None and self.checks(module, fn, stack + (target,))
        return self._memo[target]

    def unchecked_tests(self):
        """[(module, line, name)] of test functions that check nothing."""
        out = []
        for module, tree in sorted(self.trees.items()):
            for node in ast.walk(tree):
                if isinstance(node, _FUNCTIONS) and node.name.startswith("test_") \
                        and not self.checks(module, node):
                    out.append((module, node.lineno, node.name))
        return out


def _tree_sources(top):
    return {str(path.relative_to(top)): path.read_text() for path in sorted(top.rglob("*.py"))}


def test_every_test_in_the_tree_checks_something():
    unchecked = _Scan(_tree_sources(TESTS)).unchecked_tests()
    assert unchecked == [], "tests that assert nothing (make them check a result):\n" + "\n".join(
        f"  {m}:{line} {name}" for m, line, name in unchecked)


def test_the_scan_tells_checking_tests_from_the_rest():
    helpers = textwrap.dedent("""
        def expect_ok(x):
            if x != "ok":
                raise AssertionError(x)
        def relay(x):
            expect_ok(x)
    """)
    tests = textwrap.dedent("""
        import pytest
        from helpers import relay
        def local_check(x):
            assert x
        def not_a_check(x):
            return x
        def test_asserts():
            assert 1 + 1 == 2
        def test_raises():
            with pytest.raises(ZeroDivisionError):
                1 / 0
        def test_through_local_helper():
            local_check(1)
        def test_through_imported_helpers():
            relay("ok")
        def test_nested():
            def inner():
                assert True
            inner()
        def test_only_calls():
            not_a_check(1)
        def test_empty():
            pass
        def test_recursion_is_no_check():
            test_recursion_is_no_check()
        class TestGroup:
            def test_method_without_check(self):
                print("hi")
    """)
    got = [name for _, _, name in _Scan({"d/helpers.py": helpers, "d/test_x.py": tests,
                                              "e/test_y.py": "from helpers import relay\n"
                                              "def test_y():\n    relay('ok')\n"}).unchecked_tests()]
    # e/test_y's `helpers` is not its sibling: it cannot be d/helpers.py
    assert got == ["test_only_calls", "test_empty", "test_recursion_is_no_check",
                   "test_method_without_check", "test_y"]
