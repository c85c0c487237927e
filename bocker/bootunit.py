"""`bocker setup --systemd`: a systemd unit that runs `bocker setup` at
every boot (the root mounted again, its bridge and NAT made again, the
containers whose restart policy says so started), installed and enabled
without starting anything now; and its removal by `--teardown`.

Enabling is what `systemctl enable` does for WantedBy=multi-user.target:
a symlink in the unit directory's multi-user.target.wants/.  The unit
directory is /etc/systemd/system unless $BOCKER_SYSTEMD_UNIT_DIR names
another (the tests' own); only the real one is announced to a running
systemd (daemon-reload).
"""
import hashlib
import os
import re
import subprocess
import sys

from bocker import state
from bocker.errors import BockerError

SYSTEM_UNIT_DIR = "/etc/systemd/system"
TARGET = "multi-user.target"

# Characters a path may have to go into a unit file unquoted and unescaped
# (no '%': systemd's specifiers; no space, quote or backslash).
_PLAIN = re.compile(r"[A-Za-z0-9/._+@:=,-]+")


def unit_dir():
    """The directory units are written to."""
    return os.environ.get("BOCKER_SYSTEMD_UNIT_DIR") or SYSTEM_UNIT_DIR


def unit_name(root):
    """bocker-setup.service for the default root, else one named after a
    digest of the root (several roots, several units)."""
    if root == state.DEFAULT_ROOT:
        return "bocker-setup.service"
    return f"bocker-setup-{hashlib.sha256(root.encode()).hexdigest()[:12]}.service"


def _plain(value, what):
    if not _PLAIN.fullmatch(value):
        raise BockerError(f"cannot name {what} {ascii(value)} in a systemd unit: "
                          "use a path of letters, digits and /._+@:=,-")
    return value


def unit_text(root, python=None, environ=None):
    """The unit: oneshot, after the local filesystems and the network,
    running this bocker's `setup` for root (the interpreter and package
    this command runs, and the cgroup parent it uses)."""
    import bocker

    environ = os.environ if environ is None else environ
    python = _plain(python or sys.executable, "the interpreter")
    package_dir = _plain(os.path.dirname(os.path.dirname(os.path.abspath(bocker.__file__))),
                         "bocker's directory")
    env = [f"PYTHONPATH={package_dir}"]
    if environ.get("BOCKER_CGROUP_PARENT"):
        env.append("BOCKER_CGROUP_PARENT=" + _plain(environ["BOCKER_CGROUP_PARENT"],
                                                    "the cgroup parent"))
    root = _plain(root, "the root")
    lines = [
        "# Written by `bocker setup --systemd`; `bocker setup --teardown` removes it.",
        "[Unit]",
        f"Description=bocker setup of {root}: its root, bridge and NAT, and its containers' "
        "restart policies",
        "After=local-fs.target network.target",
        f"RequiresMountsFor={os.path.dirname(root) or '/'}",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        *(f"Environment={e}" for e in env),
        f"ExecStart={python} -m bocker.cli --root {root} setup",
        "",
        "[Install]",
        f"WantedBy={TARGET}",
        "",
    ]
    return "\n".join(lines)


def install(root, log=print):
    """Write and enable the unit for root; returns what teardown removes
    ({"unit": path, "link": path})."""
    directory = unit_dir()
    path = os.path.join(directory, unit_name(root))
    wants = os.path.join(directory, f"{TARGET}.wants")
    link = os.path.join(wants, os.path.basename(path))
    text = unit_text(root)
    os.makedirs(wants, 0o755, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)
    if os.path.lexists(link) and os.readlink(link) != path:
        os.unlink(link)
    if not os.path.lexists(link):
        os.symlink(path, link)
    _reload(directory)
    log(f"Installed {path} (enabled for {TARGET}: `bocker setup` runs at every boot)")
    return {"unit": path, "link": link}


def remove(made, log=print):
    """Undo install(made): the link and the unit, if they are still what
    it wrote."""
    link, path = made.get("link"), made.get("unit")
    if link and os.path.islink(link) and os.readlink(link) == path:
        os.unlink(link)
    if path and os.path.exists(path):
        os.unlink(path)
        log(f"Removed {path}")
    if path:
        _reload(os.path.dirname(path))


def _reload(directory):
    # Tell a running systemd about a change in its own unit directory;
    # another directory (a test's) is nobody's business but ours.
    if directory != SYSTEM_UNIT_DIR or not os.path.isdir("/run/systemd/system"):
        return
    try:
        subprocess.run(["systemctl", "daemon-reload"], check=False, capture_output=True)
    except FileNotFoundError:
        pass
