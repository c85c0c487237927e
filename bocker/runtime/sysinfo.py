"""`bocker info` and `bocker version`: what this host and root are, in
the shapes of Docker's /info and /version (the keys its --format names)."""
import os
import platform


def version_string():
    """bocker's own version (the installed package's)."""
    try:
        from importlib.metadata import version

        return version("bocker")
    except Exception:  # noqa: BLE001 - not installed (a source tree): say so
        return "unknown"


def _arch():
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def version():
    """Docker's version shape: Client and Server (bocker is both)."""
    v = version_string()
    uname = os.uname()
    client = {"Version": v, "ApiVersion": "bocker", "PythonVersion": platform.python_version(),
              "Os": "linux", "Arch": _arch(), "Context": "default"}
    server = {"Version": v, "ApiVersion": "bocker", "Os": "linux", "Arch": _arch(),
              "KernelVersion": uname.release,
              "Components": [{"Name": "Engine", "Version": v,
                              "Details": {"KernelVersion": uname.release}}]}
    return {"Client": client, "Server": server}


def info(paths):
    """Docker's info shape for this root: container counts, images, the
    storage and cgroup drivers, kernel, OS, CPUs, memory."""
    from bocker.image import images
    from bocker.kernel import cgroups
    from bocker.runtime import records, stats

    ctrs = records.list_all(paths)
    running = [r for r in ctrs if r["State"].get("Running")]
    paused = [r for r in running if r["State"].get("Paused")]
    try:
        cg = cgroups.driver()
        cg_version = str(cg.version)
    except OSError:
        cg_version = ""
    uname = os.uname()
    return {
        "Containers": len(ctrs), "ContainersRunning": len(running) - len(paused),
        "ContainersPaused": len(paused), "ContainersStopped": len(ctrs) - len(running),
        "Images": len(images.list_all(paths)), "Driver": "btrfs",
        "DockerRootDir": paths.root, "CgroupDriver": "cgroupfs", "CgroupVersion": cg_version,
        "KernelVersion": uname.release, "OperatingSystem": os_name(), "OSType": "linux",
        "Architecture": uname.machine, "NCPU": os.cpu_count() or 0,
        "MemTotal": stats.host_memory(), "Name": uname.nodename,
        "ServerVersion": version_string(),
    }


def os_name(path="/etc/os-release"):
    """PRETTY_NAME of os-release (bounded read), else 'Linux'."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 14).decode("utf-8", "replace")
    except OSError:
        return "Linux"
    for line in data.splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            value = value.strip().strip('"').strip("'")
            return value if value.isprintable() else "Linux"
    return "Linux"
