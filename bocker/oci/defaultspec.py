"""`bocker-oci spec`: the config.json a new bundle starts from, runc's
default (a read-only rootfs/ running `sh` on a terminal, the usual
kernel filesystems, three capabilities, the masked and read-only /proc
and /sys paths) with a cgroup namespace as well; or, rootless, runc's
rootless variant (a user namespace mapping the caller, no network
namespace, /sys bound from the host, no cgroup limits)."""
import os

SPEC_VERSION = "1.0.2"
CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
NOSUID_NOEXEC_NODEV = ["nosuid", "noexec", "nodev"]


def _mounts():
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": NOSUID_NOEXEC_NODEV + ["mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": list(NOSUID_NOEXEC_NODEV)},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": NOSUID_NOEXEC_NODEV + ["ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": NOSUID_NOEXEC_NODEV + ["relatime", "ro"]},
    ]


def default_spec(rootless=False):
    """A new config.json (a dict).  rootless: for the calling user
    without privileges (runc spec --rootless)."""
    spec = {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            # no ambient set: without the same caps inheritable the kernel
            # refuses to raise them (runc's spec asks for them anyway)
            "capabilities": {s: list(CAPS) for s in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "bocker",
        "mounts": _mounts(),
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount",
                                                 "cgroup")],
            "maskedPaths": list(MASKED),
            "readonlyPaths": list(READONLY),
        },
    }
    if rootless:
        _rootless(spec)
    return spec


def _rootless(spec):
    linux = spec["linux"]
    linux["uidMappings"] = [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
    # an unprivileged user can make no network namespace worth having
    # (no way to connect it) and may write no cgroup limits
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"]
    linux["namespaces"].append({"type": "user"})
    linux.pop("resources")
    mounts = []
    for m in spec["mounts"]:
        if m["destination"].startswith("/sys"):
            continue          # sysfs needs the network namespace's owner: bound below
        if "options" in m:    # one mapped id: no gid=5 for devpts
            m["options"] = [o for o in m["options"] if not o.startswith(("uid=", "gid="))]
        mounts.append(m)
    mounts.append({"destination": "/sys", "type": "none", "source": "/sys",
                   "options": ["rbind"] + NOSUID_NOEXEC_NODEV + ["ro"]})
    mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": NOSUID_NOEXEC_NODEV + ["relatime", "ro"]})
    spec["mounts"] = mounts
