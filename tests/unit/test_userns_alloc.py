"""The --userns=auto id blocks: /etc/subuid parsing, the pool, and the
symlink allocations under a directory (no root needed)."""
import os
import tempfile
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bocker.confine import userns
from bocker.errors import InvalidArgument
from bocker.runtime import spec

SIZE = userns.SIZE


def test_parse_subid_takes_only_bockers_wellformed_lines():
    text = ("bocker:200000:65536\nalice:100000:65536\n# comment\nbocker:x:1\n"
            "bocker:-5:10\nbocker:300000:0\n bocker:400000:131072 \nbocker:1:2:3\n")
    assert userns.parse_subid(text) == [(200000, 65536), (400000, 131072)]


@given(st.lists(st.tuples(st.integers(0, 2**32 + SIZE), st.integers(0, 4 * SIZE)), max_size=8))
def test_blocks_are_whole_disjoint_and_inside_their_ranges(ranges):
    out = userns.blocks(ranges)
    assert len(out) == len(set(out))
    for base in out:
        assert base > 0 and base + SIZE <= 2**32 - 1  # never host root, never (uid_t)-1
        assert any(start <= base and base + SIZE <= start + count for start, count in ranges)


def test_blocks_split_a_range_and_skip_host_root():
    assert userns.blocks([(0, 3 * SIZE)]) == [SIZE, 2 * SIZE]
    assert userns.blocks([(10, 2 * SIZE + 5)]) == [10, 10 + SIZE]
    assert userns.blocks([(10, SIZE - 1)]) == []


def test_pool_from_files_needs_both(tmp_path):
    sub_u, sub_g = tmp_path / "subuid", tmp_path / "subgid"
    sub_u.write_text(f"bocker:1000000:{2 * SIZE}\n")
    builtin = userns.pool(str(sub_u), str(tmp_path / "missing"))
    assert next(iter(builtin)) == (userns.POOL_START,) * 2 and len(builtin) == userns.POOL_BLOCKS
    sub_g.write_text("bocker:5000000:65536\n")
    assert list(userns.pool(str(sub_u), str(sub_g))) == [(1000000, 5000000)]


def test_builtin_pool_is_disjoint_and_far_from_ordinary_users():
    uids = [u for u, _ in userns.pool("/nonexistent", "/nonexistent")]
    assert len(uids) == userns.POOL_BLOCKS
    assert min(uids) >= 100_000_000 and max(uids) + SIZE < 0x70000000
    assert all(b - a == SIZE for a, b in zip(uids, uids[1:]))


def test_allocate_reuses_nothing_and_release_frees(tmp_path):
    d = str(tmp_path / "userns")
    cands = [(SIZE * i, SIZE * i + 7) for i in range(1, 4)]
    assert userns.allocate(d, "ps_a", cands) == cands[0]
    assert userns.allocate(d, "ps_b", cands) == cands[1]
    assert userns.allocations(d) == {cands[0][0]: "ps_a", cands[1][0]: "ps_b"}
    userns.release(d, "ps_a")
    userns.release(d, "ps_a")  # idempotent
    assert userns.allocate(d, "ps_c", cands) == cands[0]


def test_full_pool_prunes_the_gone_once(tmp_path):
    d = str(tmp_path / "userns")
    cands = [(SIZE, SIZE), (2 * SIZE, 2 * SIZE)]
    userns.allocate(d, "ps_gone", cands)
    userns.allocate(d, "ps_live", cands)
    assert userns.allocate(d, "ps_new", cands, lambda: ["ps_live"]) == cands[0]
    with pytest.raises(userns.PoolFull):
        userns.allocate(d, "ps_more", cands, lambda: ["ps_live", "ps_new"])
    assert userns.allocations(d) == {SIZE: "ps_new", 2 * SIZE: "ps_live"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), max_size=40))
def test_allocations_never_overlap(ops):
    """Any sequence of allocate/release: every live container holds
    exactly one block, no two hold the same, the pool is never exceeded."""
    cands = [(SIZE * i, SIZE * (i + 10)) for i in range(1, 5)]
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "userns")
        held = {}
        for is_alloc, n in ops:
            cid = f"ps_{n}"
            if is_alloc and cid not in held:
                try:
                    held[cid] = userns.allocate(d, cid, cands, lambda: list(held) + [cid])
                except userns.PoolFull:
                    assert len(held) == len(cands)
            elif not is_alloc:
                userns.release(d, cid)
                held.pop(cid, None)
        assert userns.allocations(d) == {b[0]: c for c, b in held.items()}
        assert len(set(held.values())) == len(held) <= len(cands)


def test_concurrent_allocations_get_distinct_blocks(tmp_path):
    d = str(tmp_path / "userns")
    cands = [(SIZE * i, SIZE * i) for i in range(1, 41)]
    got, barrier = {}, threading.Barrier(20)

    def take(i):
        barrier.wait()
        got[i] = userns.allocate(d, f"ps_{i}", cands)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got.values())) == 20


def test_map_text_is_what_the_kernel_reads():
    assert userns.map_text(userns.id_map(134217728)) == "0 134217728 65536\n"


def test_mode_from_option_environment_and_default(monkeypatch):
    monkeypatch.delenv("BOCKER_USERNS", raising=False)
    assert spec.RunRequest("img").userns == "host"
    monkeypatch.setenv("BOCKER_USERNS", "auto")
    assert spec.RunRequest("img").userns == "auto"
    assert spec.RunRequest("img", userns="host").userns == "host"
    assert spec.RunRequest("img", userns="").userns == "host"
    with pytest.raises(InvalidArgument):
        spec.RunRequest("img", userns="keep-id")


def test_record_from_before_userns_stays_host(monkeypatch):
    monkeypatch.setenv("BOCKER_USERNS", "auto")
    data = spec.RunRequest("img", userns="host").to_dict()
    del data["userns"]
    assert spec.RunRequest.from_dict(data).userns == "host"
    assert spec.RunRequest.from_dict({**data, "userns": "auto"}).userns == "auto"


@pytest.mark.parametrize("kwargs", [{"privileged": True}, {"network": "host"}])
def test_check_refuses_what_a_user_namespace_cannot_do(kwargs):
    with pytest.raises(Exception, match="--userns=host"):
        userns.check(spec.RunRequest("img", userns="auto", **kwargs))
    userns.check(spec.RunRequest("img", userns="host", **kwargs))
