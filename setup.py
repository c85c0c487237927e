"""bocker: a small, fast container runtime in Python over a C shim."""
import os

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext

C_FLAGS = ["-Wall", "-Wextra", "-Werror", "-O2"]


# (source, program, extra link flags): the programs beside the shim.
# bocker-init runs inside containers (`run --init`, bind-mounted at
# /dev/init), so it is static: it needs no libc of the image's
# (libc6-dev's libc.a, see scripts/provision.sh).
PROGRAMS = (("monitor.c", "bocker-monitor", []), ("init.c", "bocker-init", ["-static"]))


class BuildShimAndMonitor(build_ext):
    """Build the cffi shim, then csrc/monitor.c as bocker/bocker-monitor
    (the small program that keeps a detached container) and csrc/init.c
    as bocker/bocker-init (`run --init`'s reaping PID 1)."""

    def run(self):
        super().run()
        out_dir = "bocker" if self.inplace else os.path.join(self.build_lib, "bocker")
        for source, program, link_flags in PROGRAMS:
            objects = self.compiler.compile([os.path.join("csrc", source)],
                                            output_dir=self.build_temp, extra_postargs=C_FLAGS,
                                            depends=[os.path.join("csrc", "formats.h")])
            self.compiler.link_executable(objects, program, output_dir=out_dir,
                                          extra_postargs=link_flags)

    def get_outputs(self):
        return super().get_outputs() + [os.path.join(self.build_lib, "bocker", program)
                                        for _, program, _ in PROGRAMS]


setup(
    name="bocker",
    version="0.1.0",
    description="Docker in a few hundred lines of Python and C",
    packages=find_packages(include=["bocker", "bocker.*"]),
    package_data={"bocker.confine": ["profiles/*.json"]},  # the default seccomp profile
    python_requires=">=3.9",
    setup_requires=["cffi>=1.15"],
    cffi_modules=["csrc/build_shim.py:ffibuilder"],
    cmdclass={"build_ext": BuildShimAndMonitor},
    install_requires=["cffi>=1.15", "click>=8.0", "btrfsutil", "requests>=2.25",
                      "zstandard>=0.18"],
    # atheris: tests/fuzz (x86-64 Linux wheels only; elsewhere the fuzz
    # test runs its own seeded mutator instead of building it from source)
    extras_require={"test": ["pytest", "hypothesis", "pexpect", "bcrypt", "matplotlib",
                             "atheris; platform_system == 'Linux' and "
                             "platform_machine == 'x86_64'"],
                    "bench": ["matplotlib"]},
    entry_points={"console_scripts": ["bocker=bocker.cli:main",
                                        "bocker-py=bocker.cli:main",
                                        "bocker-server=bocker.server.main:main",
                                        "bocker-oci=bocker.oci.cli:main"]},
    zip_safe=False,
)
