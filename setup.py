"""bocker: a small, fast container runtime in Python over a C shim."""
import os

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext

# setuptools has no build_scripts of its own: this is its copy of distutils'
from distutils.ccompiler import new_compiler  # noqa: E402
from distutils.command.build_scripts import build_scripts  # noqa: E402
from distutils.sysconfig import customize_compiler  # noqa: E402

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


CLIENT_SOURCE = os.path.join("csrc", "client.c")


class BuildClient(build_scripts):
    """Compile csrc/client.c as the script `bocker`: the native client of
    the warm server (docs/architecture.md, "The CLI").  The stock build_scripts cannot
    carry a compiled program (it reads every script as text, for its
    shebang), so this one compiles instead of copying; install_scripts then
    puts it beside the console scripts, in $BIN, as a real file, for a
    wheel (`pip install .`) and an editable install (which runs
    install_scripts too) alike."""

    def run(self):
        compiler = new_compiler()
        customize_compiler(compiler)
        self.mkpath(self.build_dir)
        temp = os.path.join(self.get_finalized_command("build").build_temp, "client")
        objects = compiler.compile([CLIENT_SOURCE], output_dir=temp, extra_postargs=C_FLAGS)
        compiler.link_executable(objects, "bocker", output_dir=self.build_dir)
        self._change_modes([os.path.join(self.build_dir, "bocker")])

    def get_outputs(self):
        return [os.path.join(self.build_dir, "bocker")]

    def get_source_files(self):
        return [CLIENT_SOURCE]


setup(
    name="bocker",
    version="0.1.0",
    description="Docker in a few hundred lines of Python and C",
    packages=find_packages(include=["bocker", "bocker.*"]),
    package_data={"bocker.confine": ["profiles/*.json"]},  # the default seccomp profile
    python_requires=">=3.9",
    setup_requires=["cffi>=1.15"],
    cffi_modules=["csrc/build_shim.py:ffibuilder"],
    # the one "script" is the C client, compiled by BuildClient into `bocker`
    scripts=[CLIENT_SOURCE],
    cmdclass={"build_ext": BuildShimAndMonitor, "build_scripts": BuildClient},
    install_requires=["cffi>=1.15", "click>=8.0", "btrfsutil", "requests>=2.25",
                      "zstandard>=0.18"],
    # atheris: tests/fuzz (x86-64 Linux wheels only; elsewhere the fuzz
    # test runs its own seeded mutator instead of building it from source)
    extras_require={"test": ["pytest", "hypothesis", "pexpect", "bcrypt", "matplotlib",
                             "atheris; platform_system == 'Linux' and "
                             "platform_machine == 'x86_64'"],
                    "bench": ["matplotlib"]},
    # `bocker` is the C client (scripts above); it execs bocker-py when no
    # server serves it, and spawns bocker-server on first use
    entry_points={"console_scripts": ["bocker-py=bocker.cli:main",
                                        "bocker-server=bocker.server.main:main",
                                        "bocker-oci=bocker.oci.cli:main"]},
    zip_safe=False,
)
