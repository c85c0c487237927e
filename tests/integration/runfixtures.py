"""Run-test support: a container's inspect record, a detached container
(removed at teardown through the `cleanup` fixture, or not), and one of
its cgroup files read back from whichever driver runs it.

    from runfixtures import cgroup_file, detach, detached, inspect
"""
import json
import os

from bocker.kernel import cgroups


def inspect(bocker, ref):
    """The `bocker inspect` record of one container (or image) ref."""
    return json.loads(bocker("inspect", ref, check=True).stdout)[0]


def detach(bocker, *args):
    """Run a detached container; its id (the caller removes it)."""
    return bocker("run", "-d", *args, check=True).stdout.strip()


def detached(bocker, cleanup, *args):
    """Run a detached container that the `cleanup` fixture removes; its id."""
    cid = detach(bocker, *args)
    cleanup.append(cid)
    return cid


def cgroup_file(cid, controller, name):
    """The stripped contents of a container's cgroup file `name`: on v2
    its one group, on v1 the group of `controller` (cpuset and devices
    keep their own layout in the v1 driver)."""
    cg = cgroups.driver()
    if cg.version == 2:
        directory = cg._dir(cid)
    elif controller == "cpuset":
        directory = cg._cpuset_dir(cid)
    elif controller == "devices":
        directory = cg._devices_dir(cid)
    else:
        directory = cg._dir(controller, cid)
    with open(os.path.join(directory, name)) as f:
        return f.read().strip()
