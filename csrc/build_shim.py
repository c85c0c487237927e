"""cffi build script for bocker._shim (API mode, out of line).

The declarations come from the CDEF blocks of formats.h (the exit codes C
and Python share) and shim.h, so the headers are the single source of
truth for what Python can call; cffi checks each enum value against the
compiler's.
"""
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


HEADERS = ("formats.h", "shim.h")
SOURCES = ("spawn.c", "child.c", "mounts.c", "kernfs.c", "ocimounts.c", "creds.c",
           "ocicreds.c", "exec.c", "seccomp.c", "userns.c", "syscalls.c")


def _cdef_text():
    blocks = []
    for name in HEADERS:
        with open(os.path.join(HERE, name)) as f:
            header = f.read()
        match = re.search(r"/\* CDEF-BEGIN \*/(.*)/\* CDEF-END \*/", header, re.S)
        blocks.append(match.group(1))
    return "\n".join(blocks)


ffibuilder = FFI()
ffibuilder.cdef(_cdef_text())
ffibuilder.set_source(
    "bocker._shim",
    '#include "shim.h"',
    sources=[os.path.relpath(os.path.join(HERE, name))
             for name in SOURCES],
    include_dirs=[os.path.relpath(HERE)],
    depends=[os.path.relpath(os.path.join(HERE, name))
             for name in HEADERS + ("internal.h",)],
    libraries=["seccomp"],  # Debian libseccomp-dev: compiles profiles to BPF
    extra_compile_args=["-Wall", "-Wextra", "-Werror", "-O2"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
