"""Docker's further resource and device flags against the real kernel:
the cgroup files they write (v1 here; the v2 driver against the host's
cgroup2 mount where it has the controllers, else into a directory laid
out as one), the refusals a host that cannot enforce one gives, and
--device / the devices cgroup under attack."""
import os
import subprocess
import tempfile

import pytest

from bocker.kernel import cgroupextra, cgroups
from runfixtures import cgroup_file as _cgroup, detached as _detached, inspect as _inspect

V1 = cgroups.driver().version == 1
v1_only = pytest.mark.skipif(not V1, reason="a cgroup v1 controller's file")


def _refused(bocker, *args):
    proc = bocker("run", "--rm", *args, "busybox", "true")
    assert proc.returncode == 125, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


# ------------------------------------------------------------ memory

def test_memory_reservation_swappiness_oom_kill_disable(bocker, cleanup):
    cid = _detached(bocker, cleanup, "-m", "256m", "--memory-reservation", "128m",
                    "--memory-swappiness", "10", "--oom-kill-disable", "busybox", "sleep", "60")
    host = _inspect(bocker, cid)["HostConfig"]
    assert (host["MemoryReservation"], host["MemorySwappiness"], host["OomKillDisable"]) == \
        (128 << 20, 10, True)
    if V1:
        assert _cgroup(cid, "memory", "memory.soft_limit_in_bytes") == str(128 << 20)
        assert _cgroup(cid, "memory", "memory.swappiness") == "10"
        assert "oom_kill_disable 1" in _cgroup(cid, "memory", "memory.oom_control")


@v1_only
def test_memory_swappiness_zero_is_written(bocker, cleanup):
    cid = _detached(bocker, cleanup, "--memory-swappiness", "0", "busybox", "sleep", "60")
    assert _cgroup(cid, "memory", "memory.swappiness") == "0"


def test_defaults_write_nothing_new(bocker, cleanup):
    cid = _detached(bocker, cleanup, "busybox", "sleep", "60")
    host = _inspect(bocker, cid)["HostConfig"]
    assert (host["MemoryReservation"], host["CpuQuota"], host["Devices"],
            host["CgroupnsMode"]) == (0, 0, [], "private")
    if V1:
        assert "oom_kill_disable 0" in _cgroup(cid, "memory", "memory.oom_control")
        assert _cgroup(cid, "cpu", "cpu.cfs_quota_us") == "-1"
        assert not os.path.isdir(cgroups.driver()._devices_dir(cid))


@pytest.mark.parametrize("argv, message", [
    (["-m", "64m", "--memory-reservation", "128m"], "memory reservation"),
    (["--memory-swappiness", "101"], "--memory-swappiness"),
    (["--oom-score-adj", "1001"], "--oom-score-adj"),
    (["--cpus", "1", "--cpu-quota", "50000"], "Conflicting options"),
    (["--cpu-quota", "999"], "less than 1ms"),
    (["--cpu-period", "100"], "--cpu-period"),
    (["--cpuset-mems", "0-x"], "--cpuset-mems"),
    (["--blkio-weight", "5"], "--blkio-weight"),
    (["--blkio-weight-device", "/dev/null:500"], "not a block device"),
    (["--device-read-bps", "/etc/passwd:1mb"], "not a block device"),
    (["--device-write-iops", "/nonexistent:10"], "No such file"),
    (["--device-write-bps", "/dev/null"], "use /DEVICE:RATE"),
    (["--device", "/etc/passwd:/dev/x"], "not a device"),
    (["--device", "/etc/passwd"], "below /dev"),
    (["--device", "/dev/null:/etc/x"], "below /dev"),
    (["--device", "/dev/null:/dev/x:rwx"], "PERMS"),
    (["--device-cgroup-rule", "c 7:3 rwx"], "--device-cgroup-rule"),
])
def test_refused_in_one_line(bocker, argv, message):
    assert message in _refused(bocker, *argv)


def test_kernel_memory_warns_and_has_no_effect(bocker, cleanup):
    proc = bocker("run", "-d", "--kernel-memory", "64m", "busybox", "sleep", "60", check=True)
    cid = proc.stdout.strip()
    cleanup.append(cid)
    assert "--kernel-memory is deprecated" in proc.stderr
    assert _inspect(bocker, cid)["HostConfig"]["KernelMemory"] == 64 << 20
    if V1:
        assert int(_cgroup(cid, "memory", "memory.kmem.limit_in_bytes")) > 1 << 62


# ------------------------------------------------------------ oom score

def test_oom_score_adj_inherited_and_for_exec(bocker, cleanup):
    out = bocker("run", "--rm", "--oom-score-adj", "500", "busybox", "sh", "-c",
                 "cat /proc/1/oom_score_adj; cat /proc/self/oom_score_adj", check=True).stdout
    assert out.split() == ["500", "500"]
    cid = _detached(bocker, cleanup, "--oom-score-adj", "300", "busybox", "sleep", "60")
    assert bocker("exec", cid, "cat", "/proc/self/oom_score_adj",
                  check=True).stdout.strip() == "300"
    assert _inspect(bocker, cid)["HostConfig"]["OomScoreAdj"] == 300


def test_negative_oom_score_adj_set_or_refused_in_one_line(bocker):
    """Lowering a score needs CAP_SYS_RESOURCE (this sandbox's root may lack it)."""
    proc = bocker("run", "--rm", "--oom-score-adj", "-200", "busybox", "cat",
                  "/proc/self/oom_score_adj")
    if proc.returncode == 0:
        assert proc.stdout.strip() == "-200"
    else:
        assert proc.returncode == 125 and "needs CAP_SYS_RESOURCE" in proc.stderr, proc.stderr


# ------------------------------------------------------------ cpu

def test_cpu_period_and_quota(bocker, cleanup):
    cid = _detached(bocker, cleanup, "--cpu-period", "50000", "--cpu-quota", "25000",
                    "busybox", "sleep", "60")
    host = _inspect(bocker, cid)["HostConfig"]
    assert (host["CpuPeriod"], host["CpuQuota"]) == (50000, 25000)
    if V1:
        assert _cgroup(cid, "cpu", "cpu.cfs_period_us") == "50000"
        assert _cgroup(cid, "cpu", "cpu.cfs_quota_us") == "25000"
    else:
        assert _cgroup(cid, "cpu", "cpu.max") == "25000 50000"


def test_cpuset_mems(bocker):
    out = bocker("run", "--rm", "--cpuset-mems", "0", "busybox",
                 "grep", "Mems_allowed_list", "/proc/self/status", check=True).stdout
    assert out.split() == ["Mems_allowed_list:", "0"]


def test_cpu_rt_runtime_refused_unless_the_host_can(bocker):
    # bocker's parent group has no real-time budget (nor does v2 have one)
    assert "--cpu-rt-runtime:" in _refused(bocker, "--cpu-rt-period", "1000000",
                                           "--cpu-rt-runtime", "950")


# ------------------------------------------------------------ block I/O

def _block_device():
    """A block device node of the host (a loop device: always present here)."""
    for name in sorted(os.listdir("/dev")):
        if name.startswith("loop") and name[4:].isdigit():
            return "/dev/" + name
    pytest.skip("no loop device node")


def test_device_throttles_resolved_to_major_minor(bocker, cleanup):
    dev = _block_device()
    st = os.stat(dev)
    mm = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    cid = _detached(bocker, cleanup, "--device-read-bps", f"{dev}:1mb",
                    "--device-write-bps", f"{dev}:2097152", "--device-read-iops", f"{dev}:100",
                    "--device-write-iops", f"{dev}:50", "busybox", "sleep", "60")
    host = _inspect(bocker, cid)["HostConfig"]
    assert host["BlkioDeviceReadBps"] == [{"Path": dev, "Rate": 1 << 20}]
    assert host["BlkioDeviceWriteIOps"] == [{"Path": dev, "Rate": 50}]
    if V1:
        assert _cgroup(cid, "blkio", "blkio.throttle.read_bps_device") == f"{mm} {1 << 20}"
        assert _cgroup(cid, "blkio", "blkio.throttle.write_bps_device") == f"{mm} {2 << 20}"
        assert _cgroup(cid, "blkio", "blkio.throttle.read_iops_device") == f"{mm} 100"
        assert _cgroup(cid, "blkio", "blkio.throttle.write_iops_device") == f"{mm} 50"


@v1_only
def test_blkio_weight_written_or_refused_as_the_kernel_allows(bocker, cleanup):
    proc = bocker("run", "-d", "--blkio-weight", "300", "busybox", "sleep", "60")
    if proc.returncode == 0:
        cid = proc.stdout.strip()
        cleanup.append(cid)
        weight = cgroupextra._weight_file(cgroups.driver()._dir("blkio", cid), "weight")
        with open(weight) as f:
            assert f.read().split()[-1] == "300"
    else:
        assert proc.returncode == 125 and "needs the CFQ or BFQ" in proc.stderr, proc.stderr


# ------------------------------------------------------------ update

def test_update_new_limits_live_and_across_restart(bocker, cleanup):
    # (a cpuset group is made only for a container that asks for one)
    cid = _detached(bocker, cleanup, "-m", "256m", "--cpuset-cpus", "0", "busybox", "sleep",
                    "600")
    bocker("update", "--memory-reservation", "64m", "--cpu-period", "40000",
           "--cpu-quota", "20000", "--cpuset-mems", "0", cid, check=True)

    def check():
        host = _inspect(bocker, cid)["HostConfig"]
        assert (host["MemoryReservation"], host["CpuPeriod"], host["CpuQuota"],
                host["CpusetMems"]) == (64 << 20, 40000, 20000, "0")
        if V1:
            assert _cgroup(cid, "memory", "memory.soft_limit_in_bytes") == str(64 << 20)
            assert _cgroup(cid, "cpu", "cpu.cfs_period_us") == "40000"
            assert _cgroup(cid, "cpu", "cpu.cfs_quota_us") == "20000"
            assert _cgroup(cid, "cpuset", "cpuset.mems") == "0"

    check()
    bocker("restart", "-t", "0", cid, check=True)
    check()


def test_update_refusals(bocker, cleanup):
    cid = _detached(bocker, cleanup, "--cpus", "1", "-m", "64m", "busybox", "sleep", "60")
    for argv, message in ((["--cpu-quota", "20000"], "Conflicting options"),
                          (["--memory-reservation", "128m"], "memory reservation"),
                          (["--blkio-weight", "2000"], "--blkio-weight")):
        proc = bocker("update", *argv, cid)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert _inspect(bocker, cid)["HostConfig"]["CpuQuota"] == 0


# ------------------------------------------------------------ cgroupns

def test_cgroupns_private_by_default_host_on_request(bocker):
    own = bocker("run", "--rm", "busybox", "cat", "/proc/self/cgroup", check=True).stdout
    host = bocker("run", "--rm", "--cgroupns", "host", "busybox", "cat", "/proc/self/cgroup",
                  check=True).stdout
    parent = cgroups.parent_name()
    assert parent not in own
    assert f"/{parent}/" in host


# ------------------------------------------------------------ devices

@pytest.fixture
def loop_device():
    """A loop device attached to a small file holding a known first block."""
    fd, image = tempfile.mkstemp(prefix="bocker-resflags-")
    os.write(fd, b"bocker-device-test" + b"\0" * (1 << 20))
    os.close(fd)
    dev = subprocess.run(["losetup", "-f", "--show", image], capture_output=True, text=True,
                         check=True).stdout.strip()
    try:
        st = os.stat(dev)
        yield dev, os.major(st.st_rdev), os.minor(st.st_rdev)
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)
        os.unlink(image)


def _read_first(bocker, *args, path):
    return bocker("run", "--rm", *args, "busybox", "sh", "-c",
                  f"head -c 18 {path}")


def test_device_is_made_and_opens(bocker, loop_device):
    dev, major, minor = loop_device
    proc = _read_first(bocker, "--device", f"{dev}:/dev/xdisk", path="/dev/xdisk")
    assert proc.returncode == 0 and proc.stdout == "bocker-device-test", proc.stderr


@v1_only
def test_device_perms_enforced_by_the_devices_cgroup(bocker, loop_device):
    dev, major, minor = loop_device
    proc = bocker("run", "--rm", "--device", f"{dev}:/dev/xdisk:r", "busybox", "sh", "-c",
                  "head -c 18 /dev/xdisk; echo; echo x > /dev/xdisk && echo WROTE")
    assert proc.stdout.startswith("bocker-device-test")
    assert "WROTE" not in proc.stdout and "not permitted" in proc.stderr, proc.stderr


def test_attack_no_device_no_host_disk(bocker, loop_device):
    dev, major, minor = loop_device
    # the default: no CAP_MKNOD
    proc = bocker("run", "--rm", "busybox", "mknod", "/dev/d", "b", str(major), str(minor))
    assert proc.returncode != 0
    # nodev outside /dev: even a node there cannot be opened
    proc = bocker("run", "--rm", "--cap-add", "MKNOD", "busybox", "sh", "-c",
                  f"mknod /tmp/d b {major} {minor} && head -c 18 /tmp/d")
    assert "bocker-device-test" not in proc.stdout
    if V1:
        # /dev is not nodev: the devices cgroup allows mknod but not the open
        proc = bocker("run", "--rm", "--cap-add", "MKNOD", "busybox", "sh", "-c",
                      f"mknod /dev/d b {major} {minor} && head -c 18 /dev/d")
        assert "bocker-device-test" not in proc.stdout
        assert "not permitted" in proc.stderr, proc.stderr


@v1_only
def test_attack_device_allows_only_that_device(bocker, loop_device):
    dev, major, minor = loop_device
    other = minor + 1
    proc = bocker("run", "--rm", "--device", dev, "--cap-add", "MKNOD", "busybox", "sh", "-c",
                  f"mknod /dev/other b {major} {other} && head -c 1 /dev/other")
    assert "not permitted" in proc.stderr, proc.stderr


def test_privileged_control_opens_what_it_makes(bocker, loop_device):
    """The control: --privileged (no devices group, every capability) can
    make and open the node, so the attack tests above would see it."""
    dev, major, minor = loop_device
    proc = bocker("run", "--rm", "--privileged", "busybox", "sh", "-c",
                  f"mknod /dev/d b {major} {minor} && head -c 18 /dev/d")
    assert proc.stdout == "bocker-device-test", proc.stderr


@v1_only
def test_device_cgroup_rule(bocker, loop_device):
    dev, major, minor = loop_device
    proc = bocker("run", "--rm", "--cap-add", "MKNOD", "--device-cgroup-rule",
                  f"b {major}:* r", "busybox", "sh", "-c",
                  f"mknod /dev/d b {major} {minor} && head -c 18 /dev/d")
    assert proc.stdout == "bocker-device-test", proc.stderr


# ------------------------------------------------------------ v2 driver

def test_v2_files_written(tmp_path):
    """The v2 driver's writes, into a directory laid out as a v2 group
    (this hybrid host's cgroup2 mount has none of these controllers)."""
    for name in ("memory.low", "cpu.max", "cpuset.mems", "io.weight", "io.max"):
        (tmp_path / name).write_text("")
    limits = cgroups.Limits(memory_reservation=64 << 20, cpu_period=50000, cpu_quota=20000,
                            cpuset_mems="0", blkio_weight=300,
                            throttles={"device_read_bps": [(7, 3, 1024)],
                                       "device_write_iops": [(7, 3, 9)]})
    cgroups.write_v2_limits(str(tmp_path), limits)
    assert (tmp_path / "memory.low").read_text() == str(64 << 20)
    assert (tmp_path / "cpu.max").read_text() == "20000 50000"
    assert (tmp_path / "cpuset.mems").read_text() == "0"
    assert (tmp_path / "io.weight").read_text() == "default 300"
    assert (tmp_path / "io.max").read_text() == "7:3 rbps=1024 wiops=9"


@pytest.mark.parametrize("limits, message", [
    (dict(swappiness=10), "--memory-swappiness: not supported on cgroup v2"),
    (dict(cpu_rt_runtime=950), "--cpu-rt-runtime"),
    (dict(device_rules=["c 7:* rwm"]), "--device-cgroup-rule"),
    (dict(blkio_weight=300), "no io controller"),
])
def test_v2_refusals(tmp_path, limits, message):
    with pytest.raises(OSError, match=message):
        cgroups.write_v2_limits(str(tmp_path), cgroups.Limits(**limits))


def test_v2_oom_kill_disable_warns(tmp_path, capsys):
    cgroups.write_v2_limits(str(tmp_path), cgroups.Limits(oom_kill_disable=True))
    assert "--oom-kill-disable: not supported on cgroup v2" in capsys.readouterr().err


# ------------------------------------------------------------ v2 driver, real containers


def _v2_run(paths, req):
    from bocker.runtime import containers

    null = os.open(os.devnull, os.O_WRONLY)
    try:
        started = containers.create_and_start(paths, req)
        return containers.wait_attached(paths, started, null, null)
    finally:
        os.close(null)


def test_v2_device_node_made_without_a_devices_program(paths, v2_driver, loop_device):
    from bocker.runtime import containers

    dev, major, minor = loop_device
    req = containers.RunRequest("busybox", ["sh", "-c", "head -c 18 /dev/xdisk | grep -q "
                                            "bocker-device-test"],
                                remove=True, memory=0, cpu_shares=0, pids_limit=-1,
                                devices=[f"{dev}:/dev/xdisk:r"])
    assert _v2_run(paths, req) == 0


def test_v2_device_cgroup_rule_refused(paths, v2_driver):
    from bocker.runtime import containers

    req = containers.RunRequest("busybox", ["true"], remove=True, memory=0, cpu_shares=0,
                                pids_limit=-1, device_cgroup_rules=["c 7:* rwm"])
    with pytest.raises(OSError, match="--device-cgroup-rule"):
        _v2_run(paths, req)


def test_v2_oom_kill_disable_warns_and_runs(paths, v2_driver, capfd):
    from bocker.runtime import containers

    req = containers.RunRequest("busybox", ["true"], remove=True, memory=0, cpu_shares=0,
                                pids_limit=-1, oom_kill_disable=True)
    assert _v2_run(paths, req) == 0
    assert "--oom-kill-disable: not supported on cgroup v2" in capfd.readouterr().err


def test_oom_kill_disable_without_memory_warns(bocker):
    proc = bocker("run", "--rm", "--oom-kill-disable", "busybox", "true", check=True)
    assert "without a -m/--memory limit may be dangerous" in proc.stderr
    quiet = bocker("run", "--rm", "-m", "64m", "--oom-kill-disable", "busybox", "true",
                   check=True)
    assert "dangerous" not in quiet.stderr


# ------------------------------------------------------------ --cgroup-parent

def _group_line(pid, controller):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f.read().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(",") or (controller == "" and names == ""):
                return path
    return None


def _all_points():
    cg = cgroups.driver()
    if cg.version == 2:
        return [cg.mount]
    return sorted(set(cg.hierarchies.values()) | {p for p in (cg.cpuset, cg.devices) if p})


def test_cgroup_parent_relative(bocker, cleanup):
    parent = cgroups.parent_name()
    cid = _detached(bocker, cleanup, "--cgroup-parent", "web/tier", "-m", "64m",
                    "--cpuset-cpus", "0", "busybox", "sleep", "60")
    pid = _inspect(bocker, cid)["State"]["Pid"]
    want = f"/{parent}/web/tier/{cid}"
    assert _inspect(bocker, cid)["HostConfig"]["CgroupParent"] == "web/tier"
    if V1:
        assert _group_line(pid, "memory") == want and _group_line(pid, "cpuset") == want
        mem = os.path.join(cgroups.driver().hierarchies["memory"], want[1:])
        with open(os.path.join(mem, "memory.limit_in_bytes")) as f:
            assert f.read().strip() == str(64 << 20)
    # the verbs find it where it is
    bocker("update", "-m", "128m", cid, check=True)
    if V1:
        with open(os.path.join(mem, "memory.limit_in_bytes")) as f:
            assert f.read().strip() == str(128 << 20)
    assert bocker("exec", cid, "true").returncode == 0
    bocker("restart", "-t", "0", cid, check=True)
    pid = _inspect(bocker, cid)["State"]["Pid"]
    if V1:
        assert _group_line(pid, "memory") == want
    bocker("rm", "-f", cid, check=True)
    for point in _all_points():  # its own parents go with it
        assert not os.path.exists(os.path.join(point, parent, "web")), point


def test_cgroup_parent_absolute(bocker, cleanup):
    parent = cgroups.parent_name()
    absolute = f"/{parent}/abs-parent"  # below the session's group: the leak check sees it
    try:
        cid = _detached(bocker, cleanup, "--cgroup-parent", absolute, "busybox", "sleep", "60")
        pid = _inspect(bocker, cid)["State"]["Pid"]
        if V1:
            assert _group_line(pid, "memory") == f"{absolute}/{cid}"
        bocker("rm", "-f", cid, check=True)
        for point in _all_points():
            assert not os.path.exists(os.path.join(point, absolute[1:], cid))
    finally:
        for point in _all_points():  # an absolute parent stays, as Docker leaves it
            try:
                os.rmdir(os.path.join(point, absolute[1:]))
            except FileNotFoundError:
                pass


@pytest.mark.parametrize("value", ["../escape", "a/../../b", "a/./b", "x y", "/", "a\nb"])
def test_cgroup_parent_refused(bocker, value):
    assert "--cgroup-parent" in _refused(bocker, "--cgroup-parent", value)


def test_v2_cgroup_parent_relative(paths, v2_driver):
    from bocker.runtime import containers

    req = containers.RunRequest("busybox", ["sleep", "30"], remove=True, memory=0,
                                cpu_shares=0, pids_limit=-1, cgroup_parent="web/tier")
    started = containers.create_and_start(paths, req)
    try:
        with open(f"/proc/{started.pid}/cgroup") as f:
            line = [ln for ln in f.read().splitlines() if ln.startswith("0::")][0]
        assert line == f"0::/{cgroups.parent_name()}/web/tier/{started.id}"
    finally:
        os.kill(started.pid, 9)
        null = os.open(os.devnull, os.O_WRONLY)
        containers.wait_attached(paths, started, null, null)
        os.close(null)
    assert not os.path.exists(os.path.join(v2_driver.mount, cgroups.parent_name(), "web"))
