"""Errors of a build the user caused (a stand-in until helper A's lands)."""
from bocker.errors import BockerError


class BuildError(BockerError):
    """A build that cannot go on: one line; line is the Dockerfile line, if known."""

    def __init__(self, message, line=None):
        super().__init__(message)
        self.line = line
