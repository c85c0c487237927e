"""The start path's orchestration without root, behind host.Host (the
seam youki's Syscall trait is): the order a failed start undoes its
steps, that every fd of a start is closed exactly once, how the child's
reports become exit codes, and that a record stores its request once."""
import contextlib
import json
import os
import shutil

import pytest

from bocker import ids, state
from bocker.errors import StartError
from bocker.runtime import create, records, recordshape, reports, spec, start
from bocker.runtime.host import Host
from bocker.runtime.stdio import Fds

# ------------------------------------------------------------ reports


@pytest.mark.parametrize("reports_, code, message", [
    ([("execve", 2, 5)], 127, "executable file not found: /bin/x"),
    ([("execve", 13, 5)], 126, "cannot execute /bin/x: Permission denied"),
    ([("chdir", 2, 3)], 125, "chdir: No such file or directory"),
    ([("mount /data", 0, 1), ("pivot_root", 22, 2)], 125, "pivot_root: Invalid argument"),
])
def test_a_failed_step_becomes_dockers_exit_code(reports_, code, message):
    err = reports.decode(reports_, ["/bin/x"])
    assert isinstance(err, StartError)
    assert (err.exit_code, str(err)) == (code, message)


def test_reports_without_a_failure_decode_to_none():
    assert reports.decode([("chdir", 0, 1), ("execve", 0, 2), ("exec done", 0, 3)],
                          ["/bin/x"]) is None


def test_check_raises_the_decoded_error():
    r, w = os.pipe()
    os.close(w)

    def read(fd):
        os.close(fd)
        return [("execve", 2, 1)]

    with pytest.raises(StartError) as e:
        reports.check(r, 1, ["nope"], read_reports=read)
    assert e.value.exit_code == 127


# ---------------------------------------------------------------- Fds

def test_fds_close_each_once_and_never_a_released_one():
    closed = []
    fds = Fds(close=closed.append)
    fds.add(3, [4, 5], -1, 6)
    fds.close(4, 4, 99)         # twice, and one never tracked
    assert fds.release(5) == 5  # its new owner closes it
    fds.close_all()
    fds.close_all()             # the undo may run after a success popped nothing
    assert sorted(closed) == [3, 4, 6]


# ------------------------------------------------------ the request once

def test_request_round_trip():
    req = spec.RunRequest("img", ["sh", "-c", "x"], name="n", env=["A=1"], ports=[8080],
                          cap_add=["NET_ADMIN"], sysctls=["net.ipv4.ip_forward=1"],
                          read_only=True, userns="auto", pids_limit=-1)
    again = spec.RunRequest.from_dict(json.loads(json.dumps(req.to_dict())))
    assert again.to_dict() == req.to_dict()


def test_request_from_an_older_record_takes_defaults(monkeypatch):
    monkeypatch.setenv("BOCKER_USERNS", "auto")
    old = {"image": "img", "command": ["true"], "network": "none", "memory": 1 << 20,
           "gone_option": 1}  # before confinement and userns; an option since removed
    req = spec.RunRequest.from_dict(old)
    assert (req.image, req.command, req.network, req.memory) == ("img", ["true"], "none", 1 << 20)
    assert req.userns == "host"  # not what $BOCKER_USERNS says today
    assert (req.cap_add, req.sysctls, req.read_only, req.pids_limit) == ([], [], False, None)


def _old_record():
    """A container.json as bocker wrote it before the request was stored once."""
    maps = {"UidMap": [{"ContainerID": 0, "HostID": 200000, "Size": 65536}],
            "GidMap": [{"ContainerID": 0, "HostID": 200000, "Size": 65536}]}
    return {"Id": "ps_0123456789ab", "Name": "old", "Created": 1.0, "Image": "img_0123456789ab",
            "ImageName": "busybox", "Path": "sleep", "Args": ["9"],
            "Config": {"Cmd": ["sleep", "9"], "Env": ["PATH=/bin"], "Hostname": "h",
                       "WorkingDir": "", "User": "", "Image": "busybox"},
            "State": {"Status": "exited", "Running": False, "Pid": 0, "ExitCode": 0},
            "HostConfig": {"Memory": 1, "UsernsMode": "auto", **maps},
            "Confinement": {"Seccomp": "default"}, "NetworkSettings": {},
            "Spec": {"image": "busybox", "command": ["sleep", "9"], "memory": 1 << 20,
                     "userns": "auto"}}


def test_an_older_record_loads_and_is_stored_once(tmp_path):
    paths = state.Paths(str(tmp_path))
    old = _old_record()
    os.makedirs(paths.container(old["Id"]))
    state.write_json(records.record_path(paths, old["Id"]), old)
    rec = records.load(paths, old["Id"])
    assert rec["HostConfig"]["UidMap"] == old["HostConfig"]["UidMap"]
    assert rec["HostConfig"]["Memory"] == 1 << 20  # from the request, the one source
    assert rec["Confinement"]["UserNamespace"]["Mode"] == "auto"
    assert (rec["Path"], rec["Args"], rec["ImageName"]) == ("sleep", ["9"], "busybox")
    records.save(paths, rec)
    on_disk = state.read_json(records.record_path(paths, old["Id"]))
    assert not set(recordshape.DERIVED) & set(on_disk)
    assert "Image" not in on_disk["Config"]
    assert on_disk["IdMaps"]["GidMap"] == old["HostConfig"]["GidMap"]
    assert records.load(paths, old["Id"])["HostConfig"] == rec["HostConfig"]


def test_host_config_is_derived_from_the_request():
    req = spec.RunRequest("img", memory=64, cpus=1.5, network="none", userns="host",
                          sysctls=["kernel.shmmax=1"], pids_limit=-1, read_only=True)
    rec = recordshape.new_record("ps_0123456789ab", req, "img_0123456789ab", {"Cmd": ["x"]})
    assert "HostConfig" not in rec and rec["Spec"] == req.to_dict()
    host = recordshape.with_view(rec)["HostConfig"]
    assert (host["Memory"], host["NanoCpus"], host["NetworkMode"]) == (64, 1_500_000_000, "none")
    assert (host["Sysctls"], host["PidsLimit"], host["ReadonlyRootfs"]) == (
        {"kernel.shmmax": "1"}, 0, True)


# ------------------------------------------------- undo order of a start

# The resource steps of one bridge start, in order, each with the name of
# its undo ("dir": the container's directory is made just before its
# snapshot, and removing it removes a half-made snapshot too).
STEPS = [("snapshot", "dir"), ("lease", "lease"), ("cgroup", "cgroup"), ("clone", "clone"),
         ("veth", "veth"), ("publish", "publish"), ("reports", None)]


class Fail(OSError):
    pass


class FakeHost(Host):
    """Records each resource step and its undo; raises at step fail_at."""

    def __init__(self, tmp, fail_at=None):
        self.log, self.fail_at, self.tmp = [], fail_at, tmp
        super().__init__(native_mod=self, cgroup_driver=self, store_mod=self, network=self)

    def _do(self, step):
        self.log.append(step)
        if step == self.fail_at:
            raise Fail(5, f"{step} failed")

    # store
    def snapshot(self, source, target):
        self._do("snapshot")
        os.mkdir(target)

    def remove_dir(self, cdir, marker):
        self.log.append("undo dir")
        shutil.rmtree(cdir)

    # cgroup driver
    def create(self, cid, limits):
        self._do("cgroup")

    def destroy(self, cid):
        self.log.append("undo cgroup")

    def clone_into(self, cid):
        return self.tmp  # any directory: the child is never born

    def oom_file(self, cid):
        return None

    # network
    SubnetFull = type("SubnetFull", (Exception,), {})
    AddressTaken = type("AddressTaken", (Exception,), {})

    def check_ready(self, bridge):
        pass

    def lease(self, lease_dir, cid, subnet):
        self._do("lease")
        return "10.9.0.2"

    def release(self, lease_dir, cid):
        self.log.append("undo lease")

    def attach(self, cid, netns, ip, subnet, bridge, table):
        self._do("veth")
        return dict(ip=ip, prefixlen=24, mac="02:00:00:00:00:01", gateway="10.9.0.1",
                    host_veth="veth-fake")

    def detach(self, cid, ip=None, table=None, mac=None):
        self.log.append("undo veth")

    def publish(self, cid, ip, ports, table):
        self._do("publish")

    def unpublish(self, cid, table):
        self.log.append("undo publish")

    # shim
    def spawn_monitored(self, rootfs, argv, env, monitor_argv, pass_fds, status_fd, **options):
        self._do("clone")
        # our own pid stands for the child's (its netns is one we may open)
        # and the monitor's; the fds passed are the monitor's to close
        return os.getpid(), os.getpid()

    def pidfd_open(self, pid):
        return os.open(os.devnull, os.O_RDONLY)

    def attach_sockets(self, dir_fd, name):
        from bocker.kernel import native

        return native.attach_sockets(dir_fd, name)

    def pidfd_send_signal(self, pidfd, sig):
        self.log.append("undo clone")

    def read_reports(self, fd):
        os.close(fd)
        if self.fail_at == "reports":
            self.log.append("reports")
            return [("chdir", 2, 1)]
        return [("exec done", 0, 1)]


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


def _start(tmp_path, host):
    paths = state.Paths(str(tmp_path / "root"))
    os.makedirs(paths.root)
    state.write_json(paths.network, {"bridge": "bocker0", "subnet": "10.9.0.0/24",
                                     "table": "bocker"})
    req = spec.RunRequest("busybox", ["true"], network="bridge", userns="host",
                          dns=["192.0.2.53"])
    from bocker.net import ports

    port = ports.Binding(80, "tcp", None, 8080, 8080)  # -p 8080:80, parsed
    with contextlib.ExitStack() as undo:
        record = create.create(paths, req, ids.new_id("img"), {}, undo, host)
        started = start.launch(paths, record, req, {}, undo, ports=[port], host=host)
        undo.pop_all()
    return paths, started


@pytest.mark.parametrize("k", range(len(STEPS)))
def test_a_failure_at_step_k_undoes_the_steps_before_it_in_reverse(tmp_path, k):
    fail_at = STEPS[k][0]
    host = FakeHost(str(tmp_path), fail_at)
    before = _open_fds()
    with pytest.raises((Fail, StartError)):
        _start(tmp_path, host)
    done = [s for s in host.log if not s.startswith("undo")]
    undone = [s[len("undo "):] for s in host.log if s.startswith("undo")]
    assert done == [s for s, _ in STEPS[:k + 1]]
    assert undone == [u for _, u in reversed(STEPS[:k]) if u] + (["dir"] if k == 0 else [])
    assert _open_fds() == before  # every fd of the start closed exactly once
    assert os.listdir(os.path.join(str(tmp_path), "root", "containers")) == []


def test_a_start_that_succeeds_undoes_nothing_and_hands_over_its_fds(tmp_path):
    host = FakeHost(str(tmp_path))
    before = _open_fds()
    paths, started = _start(tmp_path, host)
    assert not [s for s in host.log if s.startswith("undo")]
    handed = {str(fd) for fd in (started.pidfd, started.client)}
    assert _open_fds() == before | handed  # and no other fd left open
    for fd in handed:
        os.close(int(fd))
    rec = records.load(paths, started.id)
    assert rec["State"]["Running"] and rec["NetworkSettings"]["Ports"] == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
