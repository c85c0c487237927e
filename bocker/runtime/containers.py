"""Containers: the public API of bocker.runtime (the CLI, tests and
benchmarks call these names; each lives in the module that does its job).

The flow of one start, `run(paths, req)`, with the module of each step:

1. run.run                     the one library call `bocker run` makes
2. create.check_request        refuse what cannot run (125), parse -p once
3. create.create               directory, btrfs snapshot, userns ids, record
                               (recordshape.new_record: the request stored
                               once; records.save writes it)
4. start.launch, in order:
   - spec.resolve_user/build_env   user, home, environment
   - networking.lease_address      --network bridge: network.json read
                                   once, an address leased
   - mounts                        /etc files, -v, --tmpfs
   - cgroup create                 the cgroup driver (kernel.cgroups)
   - stdio.Fds / stdio.Stdio       the child's fds, each closed once
   - clone                         native.spawn (or under bocker-monitor)
   - userns hand-over              --userns auto: id maps, idmapped rootfs
   - networking.wire               eth0, guard, published ports
   - go byte, reports.check        the child's step reports -> 125/126/127
   - record marked running
   every step registers its undo on the start's ExitStack.
5. attached.attach_and_wait     a client of the container's monitor (which
                                owns its output and log, and reaps it):
                                relay stdio and signals until its exit code
6. finish.finish                release cgroup, address, ports, ids; record
                                the end (run.wait_attached, in-process; if
                                no client is there to, the monitor runs
                                `python -m bocker.runtime.finish`)

The other verbs: signals (kill, stop, wait), lifecycle (start, remove,
commit), restarter (restart; and the restart policies), exec_in (exec),
records (load, list_all, resolve).
"""
from bocker.errors import NoSuchContainer

# name -> the module that defines it.  Imported on first use (PEP 562), so
# that `bocker run` loads the start path only, not exec or the other verbs.
_HOME = {"run": "run", "create_and_start": "start", "Started": "start",
         "attach_and_wait": "attached", "attach": "attached",
         "wait_attached": "run", "finish": "finish", "exec_in": "exec_in",
         "kill": "signals", "stop": "signals", "wait": "signals", "start": "lifecycle",
         "restart": "restarter",
         "remove": "lifecycle", "commit": "lifecycle", "list_all": "records",
         "load": "records", "resolve": "records", "RunRequest": "spec"}

__all__ = ["NoSuchContainer", *_HOME]


def __getattr__(name):
    """The API name from its module, imported now."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"bocker.runtime.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
