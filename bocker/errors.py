"""Errors a user can cause.  The CLI prints their message on one line and
exits 1 (or the exit code they carry); anything else is a bug."""


class BockerError(Exception):
    """A one-line, user-facing failure."""

    exit_code = 1


class NotFound(BockerError):
    """A named image, container or file does not exist."""


class NoSuchImage(NotFound):
    def __init__(self, ref):
        super().__init__(f"No image named '{ref}' exists")


class NoSuchContainer(NotFound):
    def __init__(self, ref):
        super().__init__(f"No container named '{ref}' exists")


class Ambiguous(BockerError):
    def __init__(self, ref, candidates):
        names = ", ".join(sorted(candidates))
        super().__init__(f"'{ref}' is ambiguous: it matches {names}")


class Conflict(BockerError):
    """A name another container holds: Docker's 125 (the run never started)."""

    exit_code = 125


class CorruptRecord(BockerError):
    """A record file that is not what bocker wrote (torn, garbage): named,
    so that the one container or image can be removed and the rest work."""

    def __init__(self, kind, ident, path, detail):
        remove = "rm -f" if kind == "container" else "rmi -f"
        super().__init__(f"{kind} {ident}: {path} is corrupt ({str(detail)[:80]}): "
                         f"'bocker {remove} {ident}' removes it")
        self.ident = ident


class InvalidArgument(BockerError):
    """A malformed option or argument."""


class RunRefused(InvalidArgument):
    """A run refused before anything was made (a bad option): Docker's 125."""

    exit_code = 125


class NotSetUp(BockerError):
    """The host lacks what `bocker setup` makes."""


class StartError(BockerError):
    """The container could not start; exit code follows Docker (125-127)."""

    def __init__(self, message, exit_code=125):
        super().__init__(message)
        self.exit_code = exit_code
