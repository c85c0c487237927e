"""Freezing a container's cgroup (pause/unpause): cgroup v1's freezer
hierarchy (freezer.state) or v2's cgroup.freeze, through the driver of
bocker/kernel/cgroups.py, waiting until the kernel says it is done."""
import os
import time

from bocker.errors import BockerError
from bocker.kernel import cgroups

SETTLE_TIMEOUT = 10.0  # seconds a freeze may take (a task in D state delays v1)


def _where(driver, name):
    d = driver.controller_dir(name, "freezer")
    if d is None:
        raise BockerError("this host has no freezer cgroup controller: cannot pause")
    return d


def frozen(name, driver=None):
    """True if the container's group is frozen (v1: FROZEN, not FREEZING);
    False too when the group is gone."""
    driver = driver or cgroups.driver()
    d = driver.controller_dir(name, "freezer")
    try:
        if d is None:
            return False
        if driver.version == 1:
            return _read(os.path.join(d, "freezer.state")).strip() == "FROZEN"
        return "frozen 1" in _read(os.path.join(d, "cgroup.events")).splitlines()
    except FileNotFoundError:
        return False


def set_frozen(name, on, driver=None):
    """Freeze (on) or thaw the group; returns once the kernel says so."""
    driver = driver or cgroups.driver()
    d = _where(driver, name)
    if driver.version == 1:
        path, value = os.path.join(d, "freezer.state"), "FROZEN" if on else "THAWED"
    else:
        path, value = os.path.join(d, "cgroup.freeze"), "1" if on else "0"
    if not os.path.exists(path):
        raise BockerError("the container's cgroup has no freezer (made by an older bocker?)")
    deadline = time.monotonic() + SETTLE_TIMEOUT
    attempt = 0
    while True:
        # v1 stays FREEZING while a task sleeps uninterruptibly: writing
        # again retries the tasks not frozen yet
        if attempt % 10 == 0:
            cgroups.write_value(path, value)
        if frozen(name, driver) == on:
            return
        if time.monotonic() > deadline:
            if on:  # never leave it half frozen
                cgroups.write_value(path, "THAWED" if driver.version == 1 else "0")
            raise BockerError(f"could not {'freeze' if on else 'thaw'} the container's "
                              f"cgroup in {SETTLE_TIMEOUT:g}s")
        attempt += 1
        time.sleep(0.001 * min(attempt, 20))


def _read(path, limit=4096):
    with open(path, "rb") as f:
        return f.read(limit).decode("ascii", "replace")
