"""csrc/client.c builds warning-free with the project's flags, and its
socket name is the FNV-1a hash docs/architecture.md specifies (the Python server must
compute the same name from the same bin directory, or no client ever
finds its server)."""
import ast
import ctypes
import os
import shutil
import subprocess
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bocker.server import address

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENT = os.path.join(REPO, "csrc", "client.c")

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def project_c_flags():
    """setup.py's C_FLAGS, read without running setup()."""
    with open(os.path.join(REPO, "setup.py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "C_FLAGS"
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no C_FLAGS")


@pytest.fixture(scope="module")
def build_dir():
    d = tempfile.mkdtemp(prefix="bocker-client-build-")
    yield d
    shutil.rmtree(d)


@pytest.fixture(scope="module")
def fnv(build_dir):
    """client.c's own hash function, from a shared-object build of it."""
    lib = os.path.join(build_dir, "client.so")
    subprocess.run(["gcc", *project_c_flags(), "-shared", "-fPIC",
                    "-Dmain=bocker_client_main", "-o", lib, CLIENT], check=True)
    func = ctypes.CDLL(lib).bocker_fnv1a64
    func.restype = ctypes.c_uint64
    func.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return lambda data: func(data, len(data))


def test_the_flags_are_the_strict_ones():
    assert {"-Wall", "-Wextra", "-Werror"} <= set(project_c_flags())


def test_client_compiles_without_a_warning(build_dir):
    out = os.path.join(build_dir, "bocker")
    proc = subprocess.run(["gcc", *project_c_flags(), "-o", out, CLIENT],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert os.access(out, os.X_OK)


def test_known_fnv1a_values(fnv):
    # the published FNV-1a 64 test vectors, for the C and the server's hash
    for data, want in ((b"", 0xcbf29ce484222325), (b"a", 0xaf63dc4c8601ec8c),
                       (b"foobar", 0x85944171f73967e8)):
        assert fnv(data) == address.fnv1a64(data) == want


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fnv1a_matches_the_python_one(fnv, data):
    assert fnv(data) == address.fnv1a64(data)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="\0"), max_size=120))
def test_fnv1a_of_utf8_paths(fnv, path):
    data = ("/" + path).encode("utf-8", "surrogatepass")
    assert fnv(data) == address.fnv1a64(data)
