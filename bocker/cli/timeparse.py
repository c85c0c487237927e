"""Docker's --since/--until times: RFC 3339 (2026-01-02T15:04:05Z, with
fractions or an offset; a date alone; no zone: local time), a Unix
timestamp (1700000000 or 1700000000.5), or a Go duration before now
(10m, 1h30m, 45s)."""
import re
import time

from bocker.errors import InvalidArgument

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class TimeError(InvalidArgument):
    """A --since/--until value of none of Docker's forms: 125."""

    exit_code = 125


def parse(text, option="--since", now=None):
    """Seconds since the epoch for text (see the module's forms)."""
    now = time.time() if now is None else now
    text = (text or "").strip()
    if re.fullmatch(r"\d{1,12}(\.\d{1,9})?", text):
        return float(text)
    if _DURATION.match(text) and "".join(m.group() for m in _DURATION.finditer(text)) == text:
        seconds = sum(float(m.group(1)) * _UNIT[m.group(2)] for m in _DURATION.finditer(text))
        return now - seconds
    stamp = _iso(text)
    if stamp is None:
        raise TimeError(f"invalid value for {option}: '{text[:64]}' (an RFC 3339 time, "
                        f"a Unix timestamp or a duration such as 10m)")
    return stamp


def _iso(text):
    from datetime import datetime

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?", text):
        return None
    body = text.replace("Z", "+00:00")
    # Python reads at most 6 fraction digits: Docker's 9 are cut to 6
    body = re.sub(r"(\.\d{6})\d+", r"\1", body)
    try:
        when = datetime.fromisoformat(body)
    except ValueError:
        return None
    try:
        if when.tzinfo is None:
            return time.mktime(when.timetuple()) + when.microsecond / 1e6
        return when.timestamp()
    except (OverflowError, ValueError, OSError):  # year 1 and such: no epoch time
        return None
