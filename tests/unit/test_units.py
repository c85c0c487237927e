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


@pytest.mark.parametrize("bad", ["", "m", "0", "-1m", "1.", ".5g", "1e3", "12x", "g12"])
def test_parse_size_rejects(bad):
    with pytest.raises(InvalidArgument):
        units.parse_size(bad)


@given(st.integers(min_value=1, max_value=1 << 40), st.sampled_from(["", "k", "m", "g"]))
def test_parse_size_scales(n, unit):
    factor = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]
    if n * factor <= units.MAX_SIZE:
        assert units.parse_size(f"{n}{unit}") == n * factor
    else:
        with pytest.raises(InvalidArgument):
            units.parse_size(f"{n}{unit}")


def test_parse_cpus():
    assert units.parse_cpus("1.5") == 1.5
    for bad in ("0", "-1", "x", "nan"):
        with pytest.raises(InvalidArgument):
            units.parse_cpus(bad)


@pytest.mark.parametrize("text,number", [("KILL", 9), ("kill", 9), ("SIGTERM", 15),
                                         ("sighup", 1), ("9", 9), ("0", 0), ("USR1", 10)])
def test_parse_signal(text, number):
    assert units.parse_signal(text) == number


@pytest.mark.parametrize("bad", ["", "SIG", "NOPE", "-9", "9.0", "SIGRTMIN+1"])
def test_parse_signal_rejects(bad):
    with pytest.raises(InvalidArgument) as e:
        units.parse_signal(bad)
    assert str(e.value) == f"invalid signal '{bad}'"


def test_parse_tail():
    assert units.parse_tail("all") is None
    assert (units.parse_tail("0"), units.parse_tail("25")) == (0, 25)
    for bad in ("", "-1", "ALL", "1.5", "x"):
        with pytest.raises(InvalidArgument):
            units.parse_tail(bad)
