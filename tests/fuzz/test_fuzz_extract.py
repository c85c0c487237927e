"""The layer extractor against hostile archives: each seed of the
fuzzer's corpus (made in code by hostile_tars.py), the regressions the
fuzzer found, and a bounded atheris run (a few thousand inputs) so CI
fuzzes on every run.  Without atheris (no wheel for this Python), the
same harness runs on inputs a seeded mutator makes from the seeds."""
import io
import os
import random
import subprocess
import sys
import tarfile

import pytest

import fuzz_extract
import hostile_tars
from bocker.image import extract
from bocker.image.extract import LayerError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUNS = 2000

fuzz_extract.setup()


@pytest.mark.parametrize("name", sorted(hostile_tars.seeds()))
def test_every_seed_keeps_the_invariants(name):
    outcome = fuzz_extract.check_archive(hostile_tars.seeds()[name])
    if name.startswith(("dotdot", "hardlink-outside")):
        assert "escapes the rootfs" in outcome
    else:
        assert outcome == "applied" or outcome  # applied, or one LayerError line


def test_a_sparse_member_keeps_its_holes(tmp_path):
    """A 2 KiB layer declaring 4 GiB of zeros once wrote them all out."""
    data = hostile_tars.seeds()["sparse-bomb"]
    assert len(data) < 16384
    extract.extract(io.BytesIO(data), str(tmp_path))
    st = os.stat(tmp_path / "big")
    assert st.st_size == (1 << 32) + 512
    assert st.st_blocks * 512 <= 64 << 10
    with open(tmp_path / "big", "rb") as f:
        f.seek(1 << 32)
        assert f.read() == b"x" * 512
        f.seek(4096)
        assert f.read(4096) == b"\0" * 4096


def test_a_sparse_map_past_its_data_is_a_layer_error(tmp_path):
    with pytest.raises(LayerError, match="sparse map runs past its size"):
        extract.extract(io.BytesIO(hostile_tars.seeds()["sparse-past-size"]), str(tmp_path))


@pytest.mark.parametrize("pax", [{"GNU.sparse.map": "x,y"}, {"GNU.sparse.size": "a"},
                                 {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}])
def test_a_bad_sparse_header_is_a_layer_error(tmp_path, pax):
    """tarfile's header parsing raised ValueError (a traceback) on these."""
    data = hostile_tars.build([("f", "file", b"data", pax)])
    with pytest.raises(LayerError):
        extract.extract(io.BytesIO(data), str(tmp_path))


def test_a_whiteout_removes_a_tree_deeper_than_python_recurses(tmp_path):
    """rmtree raised RecursionError past ~1000 levels."""
    deep = "d/" * 1500 + "f"
    extract.extract(io.BytesIO(hostile_tars.build([(deep, "file"), ("keep", "file")])),
                    str(tmp_path))
    assert fuzz_extract._rootfs_facts(str(tmp_path))[1] == 0
    extract.extract(io.BytesIO(hostile_tars.build([(".wh.d", "file")])), str(tmp_path))
    assert os.listdir(tmp_path) == ["keep"]


def test_the_harness_sees_what_it_guards():
    """The invariants can fail: an escape, an undeclared device node and a
    disk-filling write are each caught (the extractor replaced by one
    that does the harm)."""
    real = fuzz_extract._extract.extract

    def escape(fileobj, rootfs):
        with open(os.path.join(rootfs, "..", "outside", "victim"), "w") as f:
            f.write("pwned")

    def device(fileobj, rootfs):
        os.mknod(os.path.join(rootfs, "null"), 0o600 | 0o020000, os.makedev(1, 3))

    def fill(fileobj, rootfs):
        with open(os.path.join(rootfs, "big"), "wb") as f:
            f.write(b"\0" * (1 << 20))

    harms = [(escape, "changed something outside"), (fill, "bytes of file data")]
    if os.geteuid() == 0:
        harms.append((device, "device nodes nobody declared"))
    try:
        for harm, message in harms:
            fuzz_extract._extract.extract = harm
            with pytest.raises(AssertionError, match=message):
                fuzz_extract.check_archive(hostile_tars.build([("a", "file")]))
    finally:
        fuzz_extract._extract.extract = real


def _mutations(seed, count):
    """Inputs for the harness without atheris: seeds with bytes flipped,
    cut, spliced, and structure-aware ones from random bytes."""
    rng = random.Random(seed)
    seeds = list(hostile_tars.seeds().values())
    for _ in range(count):
        kind = rng.randrange(4)
        if kind == 0:
            yield b"\1" + bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
            continue
        data = bytearray(rng.choice(seeds))
        if kind == 1 and data:
            for _ in range(rng.randrange(1, 8)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == 2:
            data = data[:rng.randrange(len(data) + 1)]
        else:
            other = rng.choice(seeds)
            data = data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]
        yield b"\0" + bytes(data)


def test_the_fuzzer_finds_nothing(tmp_path):
    """RUNS inputs through the harness: atheris (coverage-guided, over the
    seeds) when it is installed, else the seeded mutator."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        outcomes = [fuzz_extract.check_input(data) for data in _mutations(1, RUNS)]
        assert len(outcomes) == RUNS
        return
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in hostile_tars.seeds().items():
        (corpus / name).write_bytes(b"\0" + data)
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "fuzz_extract.py"), f"-runs={RUNS}", "-seed=1",
         "-max_len=16384", f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"Done {RUNS} runs" in proc.stderr
    assert not [p for p in os.listdir(tmp_path) if p.startswith(("crash-", "timeout-"))]


def test_the_structured_builder_makes_tars():
    """from_bytes makes real archives (the fuzzer's structured half is not
    all tarfile errors)."""
    rng = random.Random(7)
    made = [hostile_tars.from_bytes(bytes(rng.randrange(256) for _ in range(40)))
            for _ in range(50)]
    parsed = 0
    for data in made:
        if data is None:
            continue
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tf:
                parsed += sum(1 for _ in tf) > 0
        except (tarfile.TarError, ValueError, EOFError):
            pass
    assert parsed >= 10
