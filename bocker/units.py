"""Parsing of sizes, signals and similar user-given quantities (pure
functions)."""
from bocker.errors import InvalidArgument

MAX_SIZE = (1 << 63) - 1  # an int64, as Docker and the kernel's limits hold sizes
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text, default_unit="", zero=False):
    """'10G', '512m', '1.5g', '64kb', '1048576' -> bytes (binary units, as
    Docker; a fraction is rounded down to a byte).  zero: '0' is allowed
    (-m 0, Docker's "no limit")."""
    t = str(text).strip().lower()
    if t.endswith("b") and len(t) > 1 and t[-2] in "kmgt":
        t = t[:-1]
    digits = t.rstrip("bkmgt")
    unit = t[len(digits):] or default_unit
    whole, dot, frac = digits.partition(".")
    # isascii: str.isdigit() is true for '²', which int() refuses
    ok = (whole.isascii() and whole.isdigit() and len(digits) <= 40
          and (not dot or (frac.isascii() and frac.isdigit())))
    if not ok or unit not in _UNITS:
        raise InvalidArgument(f"invalid size '{text}'")
    # integers only: exact (no float rounding of 1.5g), and no import
    size = int(whole) * _UNITS[unit] + (int(frac) * _UNITS[unit] // 10 ** len(frac)
                                        if frac else 0)
    if (size == 0 and not (zero and not (whole + frac).strip("0"))) or size > MAX_SIZE:
        raise InvalidArgument(f"invalid size '{text}'")
    return size


def parse_cpus(text):
    """'1.5' -> 1.5 CPUs (CFS quota); must be positive and finite."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (value > 0 and math.isfinite(value)):
        raise InvalidArgument(f"invalid --cpus '{text}'")
    return value


def parse_signal(text):
    """'KILL', 'sigterm', 'SIGHUP', '9' -> the signal's number."""
    import signal

    name = str(text).upper().removeprefix("SIG")
    if name.isascii() and name.isdigit():
        if int(name) > signal.SIGRTMAX:
            raise InvalidArgument(f"invalid signal '{text}'")
        return int(name)
    try:
        return signal.Signals["SIG" + name].value
    except KeyError:
        raise InvalidArgument(f"invalid signal '{text}'") from None


def parse_tail(text):
    """`logs --tail`: 'all' -> None (every line), 'N' -> N."""
    if text == "all":
        return None
    if not (str(text).isascii() and str(text).isdigit()):
        raise InvalidArgument(f"invalid --tail '{text}': a number or 'all'")
    return int(text)


def human_size(n):
    """Bytes as Docker shows them: 512B, 1.5kB, 2.1MB (decimal units)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return str(n)
