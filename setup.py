"""bocker: a small, fast container runtime in Python over a C shim."""
from setuptools import find_packages, setup

setup(
    name="bocker",
    version="0.1.0",
    description="Docker in a few hundred lines of Python and C",
    packages=find_packages(include=["bocker", "bocker.*"]),
    python_requires=">=3.9",
    setup_requires=["cffi>=1.15"],
    cffi_modules=["csrc/build_shim.py:ffibuilder"],
    install_requires=["cffi>=1.15", "click>=8.0", "btrfsutil", "requests>=2.25",
                      "zstandard>=0.18"],
    extras_require={"test": ["pytest", "hypothesis", "pexpect", "bcrypt"]},
    entry_points={"console_scripts": ["bocker=bocker.cli:main"]},
    zip_safe=False,
)
