import pytest
from hypothesis import given
from hypothesis import strategies as st

from bocker import units
from bocker.errors import InvalidArgument


@pytest.mark.parametrize("text,expected", [
    ("512m", 512 << 20), ("512M", 512 << 20), ("1g", 1 << 30), ("64kb", 64 << 10),
    ("1048576", 1048576), ("10G", 10 << 30), ("2t", 2 << 40),
])
def test_parse_size(text, expected):
    assert units.parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "m", "0", "-1m", "1.5g", "12x", "g12"])
def test_parse_size_rejects(bad):
    with pytest.raises(InvalidArgument):
        units.parse_size(bad)


@given(st.integers(min_value=1, max_value=1 << 40), st.sampled_from(["", "k", "m", "g"]))
def test_parse_size_scales(n, unit):
    factor = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]
    assert units.parse_size(f"{n}{unit}") == n * factor


def test_parse_cpus():
    assert units.parse_cpus("1.5") == 1.5
    for bad in ("0", "-1", "x", "nan"):
        with pytest.raises(InvalidArgument):
            units.parse_cpus(bad)
