"""`bocker-oci features` (the runtime spec's features.md document) and
`--version`."""
import platform

from bocker.oci.state import OCI_VERSION

VERSION = "0.1.0"

MOUNT_OPTIONS = [
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand",
    "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime",
    "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared",
    "rslave", "runbindable", "rw", "shared", "slave", "strictatime", "suid", "sync",
    "unbindable"]
SECCOMP_ACTIONS = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                   "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                   "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"]
SECCOMP_OPERATORS = ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                     "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"]
SECCOMP_ARCHS = ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64",
                 "SCMP_ARCH_ARM"]


def features():
    """The features object: what this runtime accepts and applies."""
    from bocker.confine import capabilities

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": sorted("CAP_" + name.upper().removeprefix("CAP_")
                                   for name in capabilities.NUMBERS),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True, "actions": SECCOMP_ACTIONS,
                        "operators": SECCOMP_OPERATORS, "archs": SECCOMP_ARCHS},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.opencontainers.runtime-spec.features.bocker-oci.version": VERSION},
    }


def version_text():
    """--version: three lines, as runc prints them."""
    return (f"bocker-oci version {VERSION}\nspec: {OCI_VERSION}\n"
            f"python: {platform.python_version()}")
