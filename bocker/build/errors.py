"""The one error a build's user causes: a bad Dockerfile, a bad argument,
a failed step."""
from bocker.errors import BockerError


class BuildError(BockerError):
    """A one-line build failure (exit 1).  `line` is the Dockerfile's
    1-based line it concerns, or None; str() is the whole message,
    `Dockerfile:<line>: <reason>` when the line is known."""

    exit_code = 1

    def __init__(self, reason, line=None):
        self.reason = reason
        self.line = line
        super().__init__(f"Dockerfile:{line}: {reason}" if line is not None else reason)

    def at(self, line):
        """This error placed at a Dockerfile line (unchanged if it has
        one already): `except BuildError as e: raise e.at(ins.line)`."""
        return self if self.line is not None else BuildError(self.reason, line)
