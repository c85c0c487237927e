"""cffi build script for bocker._shim (API mode, out of line).

The declarations come from the CDEF block of shim.h, so the header is the
single source of truth for what Python can call.
"""
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


def _cdef_text():
    with open(os.path.join(HERE, "shim.h")) as f:
        header = f.read()
    match = re.search(r"/\* CDEF-BEGIN \*/(.*)/\* CDEF-END \*/", header, re.S)
    return match.group(1)


ffibuilder = FFI()
ffibuilder.cdef(_cdef_text())
ffibuilder.set_source(
    "bocker._shim",
    '#include "shim.h"',
    sources=[os.path.relpath(os.path.join(HERE, name))
             for name in ("shim.c", "seccomp.c", "userns.c")],
    include_dirs=[os.path.relpath(HERE)],
    libraries=["seccomp"],  # Debian libseccomp-dev: compiles profiles to BPF
    extra_compile_args=["-Wall", "-Wextra", "-Werror", "-O2"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
