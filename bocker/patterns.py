"""Regular expressions compiled on first use, not at import.

Compiling a pattern costs 0.1-0.3 ms; a CLI process imports a dozen
modules whose validators a plain `run` never calls (sysctl keys, cpusets,
seccomp profile names, published ports), so compiling them at import is
~2 ms of every direct start.  lazy(...) stands in for re.compile(...):
the same methods and attributes, compiled the first time one is used."""
import re


class lazy:  # noqa: N801 - named as the re.compile it replaces
    """re.compile(pattern, flags), done when first used."""

    __slots__ = ("_args", "_compiled")

    def __init__(self, pattern, flags=0):
        self._args = (pattern, flags)
        self._compiled = None

    def __getattr__(self, name):
        # only for names the slots lack: match, fullmatch, pattern, ...
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(*self._args)
        return getattr(compiled, name)

    def __repr__(self):
        return f"lazy({self._args[0]!r})"
