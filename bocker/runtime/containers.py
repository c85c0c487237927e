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
5. attached.attach_and_wait     tee output to ours and the log, reap
6. finish.finish                release cgroup, address, ports, ids; record
                                the end (a detached container's monitor
                                runs `python -m bocker.runtime.finish`)

The other verbs: signals (kill, stop, wait), lifecycle (start, remove,
commit), exec_in (exec), records (load, list_all, resolve).
"""
from bocker.errors import NoSuchContainer
from bocker.runtime.attached import attach_and_wait
from bocker.runtime.exec_in import exec_in
from bocker.runtime.finish import finish
from bocker.runtime.lifecycle import commit, remove, start
from bocker.runtime.records import list_all, load, resolve
from bocker.runtime.run import run
from bocker.runtime.signals import kill, stop, wait
from bocker.runtime.spec import RunRequest
from bocker.runtime.start import Started, create_and_start

__all__ = ["RunRequest", "Started", "run", "create_and_start", "attach_and_wait", "finish",
           "stop", "kill", "wait", "start", "exec_in", "remove", "commit", "list_all", "load",
           "resolve", "NoSuchContainer"]
