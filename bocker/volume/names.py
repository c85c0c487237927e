"""Volume names: Docker's local driver's rule, and anonymous names."""
import os
import re

from bocker.errors import InvalidArgument

# Docker's local driver: [a-zA-Z0-9][a-zA-Z0-9_.-]+ ; bounded so that
# <root>/volumes/<name>/_data stays far below PATH_MAX and NAME_MAX.
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{1,127}\Z", re.ASCII)
ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # Docker 23+ marks them so


def is_name(text):
    """True if text is a valid volume name."""
    return isinstance(text, str) and NAME.match(text) is not None


def check(text):
    """text, if it is a valid volume name; else InvalidArgument (one line)."""
    if not is_name(text):
        shown = ascii(text)[:80] if isinstance(text, str) else type(text).__name__
        raise InvalidArgument(f"{shown} includes invalid characters for a local volume name, "
                              f"only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed (at most "
                              f"128). If you intended to pass a host directory, use an "
                              f"absolute path")
    return text


def anonymous():
    """A new anonymous volume's name: 64 hex digits, as Docker's."""
    return os.urandom(32).hex()  # (not secrets: its import costs a run with -v 5 ms)
