"""cgroup driver choice and the v2 file writes, against temporary trees."""
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bocker.kernel import cgroups


def test_read_mounts_parses_hybrid(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
        "31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu\n"
        "32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "33 30 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
    assert cgroups.read_mounts(str(info)) == [
        ("/sys/fs/cgroup/cpu", "cgroup", "rw,cpu"),
        ("/sys/fs/cgroup/memory", "cgroup", "rw,memory"),
        ("/sys/fs/cgroup/unified", "cgroup2", "rw")]


def test_hybrid_with_empty_v2_uses_v1(tmp_path):
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("hugetlb\n")
    d = cgroups.choose_driver([("/c/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct"),
                               ("/c/memory", "cgroup", "rw,memory"),
                               (str(unified), "cgroup2", "rw")])
    assert d.version == 1
    assert d.hierarchies == {"cpu": "/c/cpu,cpuacct", "cpuacct": "/c/cpu,cpuacct",
                             "memory": "/c/memory"}
    # co-mounted controllers share one directory
    assert len(d._dirs("x")) == 2


def test_pure_v2(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    d = cgroups.choose_driver([(str(tmp_path), "cgroup2", "rw")])
    assert d.version == 2 and d.mount == str(tmp_path)


def test_no_cgroups():
    with pytest.raises(OSError):
        cgroups.choose_driver([])


def test_v2_limit_files(tmp_path):
    (tmp_path / "memory.swap.max").write_text("max\n")
    cgroups.write_v2_limits(str(tmp_path), cgroups.Limits(memory=1 << 29, cpu_shares=1024,
                                                          cpus=1.5, pids=64))
    read = lambda n: (tmp_path / n).read_text()  # noqa: E731
    assert read("memory.max") == str(1 << 29)
    assert read("memory.swap.max") == str(1 << 29)  # Docker's: as much swap as memory
    assert read("cpu.weight") == str(cgroups.shares_to_weight(1024))
    assert read("cpu.max") == "150000 100000"
    assert read("pids.max") == "64"


@pytest.mark.parametrize("swap, written", [(-1, "max"), (3 << 28, str(1 << 28)),
                                           (1 << 29, "0")])
def test_v2_memory_swap(tmp_path, swap, written):
    # Docker's --memory-swap is memory+swap; v2's swap.max is the swap alone
    (tmp_path / "memory.swap.max").write_text("max\n")
    cgroups.write_v2_limits(str(tmp_path), cgroups.Limits(memory=1 << 29, memory_swap=swap))
    assert (tmp_path / "memory.swap.max").read_text() == written


def test_memory_swap_without_swap_accounting_is_refused(tmp_path):
    # (no memory.swap.max here); the default and -1 need no file
    cgroups.write_v2_limits(str(tmp_path), cgroups.Limits(memory=1 << 29, memory_swap=-1))
    cgroups.write_v2_limits(str(tmp_path), cgroups.Limits(memory=1 << 29))
    with pytest.raises(OSError) as e:
        cgroups.write_v2_limits(str(tmp_path), cgroups.Limits(memory=1 << 29,
                                                              memory_swap=1 << 30))
    assert "no swap accounting" in e.value.strerror


def test_v1_limit_files(tmp_path):
    # memsw: twice the memory unless told; cpuset only when asked (its own hierarchy)
    for ctrl in ("memory", "cpu", "cpuset"):
        (tmp_path / ctrl / "p" / "c").mkdir(parents=True)
    (tmp_path / "memory" / "p" / "c" / "memory.memsw.limit_in_bytes").write_text("")
    for key, value in (("cpuset.cpus", "0-3"), ("cpuset.mems", "0")):
        (tmp_path / "cpuset" / key).write_text(value)
        (tmp_path / "cpuset" / "p" / key).write_text("")
    d = cgroups.V1Driver({"memory": str(tmp_path / "memory"), "cpu": str(tmp_path / "cpu")},
                         str(tmp_path / "cpuset"))
    os.environ["BOCKER_CGROUP_PARENT"], saved = "p", os.environ.get("BOCKER_CGROUP_PARENT")
    try:
        (tmp_path / "cpuset" / "p" / "c").rmdir()
        d._write_limits("c", cgroups.Limits(memory=1 << 29, cpuset_cpus="1"))
        assert d.procs_paths("c")[-1] == str(tmp_path / "cpuset" / "p" / "c" / "tasks")
    finally:
        os.environ.pop("BOCKER_CGROUP_PARENT")
        if saved is not None:
            os.environ["BOCKER_CGROUP_PARENT"] = saved
    mem = tmp_path / "memory" / "p" / "c"
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(1 << 30)
    cpuset = tmp_path / "cpuset" / "p"
    assert (cpuset / "cpuset.cpus").read_text() == "0-3"   # the parent got its parent's
    assert (cpuset / "c" / "cpuset.cpus").read_text() == "1"
    assert (cpuset / "c" / "cpuset.mems").read_text() == "0"
    assert not (tmp_path / "cpu" / "p" / "c" / "cpu.shares").exists()  # none asked


def test_v2_no_limits_writes_nothing(tmp_path):
    cgroups.write_v2_limits(str(tmp_path), cgroups.Limits())
    assert os.listdir(tmp_path) == []


@given(st.integers(min_value=-10, max_value=1 << 20))
def test_shares_to_weight_in_range(shares):
    assert 1 <= cgroups.shares_to_weight(shares) <= 10000


def test_shares_to_weight_known_points():
    assert cgroups.shares_to_weight(2) == 1
    assert cgroups.shares_to_weight(262144) == 10000
    assert cgroups.shares_to_weight(1024) == 39
