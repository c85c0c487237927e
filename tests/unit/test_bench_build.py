"""benchmarks/build.py's arithmetic and choices (no root, nothing run)."""
import pytest

from benchmarks import build


def test_defaults_and_quick():
    opts = build.parse_args([])
    assert (opts.rounds, opts.builds, opts.warmup) == (3, 3, 1)
    quick = build.parse_args(["--quick"])
    assert (quick.rounds, quick.builds, quick.warmup) == (1, 1, 0)
    assert build.parse_args(["--quick", "--rounds", "4"]).rounds == 4


def test_only_takes_names_and_prefixes():
    only = build.parse_args(["--only", "bocker,buildah-cold"]).only
    chosen = [n for n in build.SYSTEMS if build.wanted(only, n)]
    assert chosen == ["bocker-cold", "bocker-cached", "buildah-cold"]
    assert [n for n in build.SYSTEMS if build.wanted([], n)] == list(build.SYSTEMS)


def test_ratios_divide_by_bocker_of_the_same_kind():
    stats = {"bocker-cold": {"kind": "cold", "median_block": 800.0},
             "bocker-cached": {"kind": "cached", "median_block": 100.0},
             "buildah-cold": {"kind": "cold", "median_block": 880.0},
             "buildah-cached": {"kind": "cached", "median_block": 300.0}}
    build.ratios(stats)
    assert stats["buildah-cold"]["x_bocker"] == pytest.approx(1.1)
    assert stats["buildah-cached"]["x_bocker"] == 3.0
    assert stats["bocker-cold"]["x_bocker"] == 1.0
    del stats["bocker-cached"]
    build.ratios(stats)       # bocker's row skipped: no ratio, no crash
    assert stats["buildah-cached"]["x_bocker"] is None


def test_dockerfile_is_multi_stage_from_the_given_bases():
    text = build.DOCKERFILE.format(debian="d:latest", busybox="b:latest")
    froms = [ln.split()[1] for ln in text.splitlines() if ln.startswith("FROM")]
    assert froms == ["d:latest", "b:latest"]
    assert "COPY --from=compile /hello" in text and "gcc -O2 -static" in text


def test_mounts_under_a_fresh_directory_is_empty(tmp_path):
    assert build.mounts_under(str(tmp_path)) == []
    assert "/" in build.mounts_under("/")
