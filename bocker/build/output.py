"""A build's progress, in buildah's shape:

    [1/2] STEP 1/3: FROM debian AS compile   (the stage prefix only in multi-stage builds)
    --> Using cache 3f2a1b4c5d6e              (a hit: 12 hex of its key)
    <RUN output>
    --> 9a8b7c6d5e4f
    COMMIT hello:latest
    --> img_0123456789ab
    Successfully tagged hello:latest
    img_0123456789ab

Plain writes every line as it comes; tty shows a running step's output
dimmed and folds it away (ANSI: cursor up, erase) once the step is done;
quiet prints only the image ID."""
import os
import sys


class Plain:
    """Plain progress to a text stream (stdout); RUN output to its fd."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def line(self, text):
        """One line of progress."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def step(self, stage_no, stages, n, m, text):
        """A step begins."""
        prefix = f"[{stage_no}/{stages}] " if stages > 1 else ""
        self.line(f"{prefix}STEP {n}/{m}: {text[:4096]}")

    def cached(self, key):
        """The step was a cache hit."""
        self.line(f"--> Using cache {key[:12]}")

    def done(self, key):
        """The step was run and stored."""
        self.line(f"--> {key[:12]}")

    def output_fd(self):
        """The fd a RUN's output goes to (the stream's own)."""
        self.stream.flush()
        try:
            return self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            return 1

    def run_output(self, chunk):
        """Output a RUN made that the caller relays itself (tty mode)."""

    def run_finished(self, keep=False):
        """A RUN's output ended (keep: a failed step's stays shown)."""

    def committed(self, names, image_id):
        """The image is made."""
        self.line(f"COMMIT {names[0] if names else ''}".rstrip())
        self.line(f"--> {image_id}")
        for name in names:
            self.line(f"Successfully tagged {name}")
        self.line(image_id)


class Quiet(Plain):
    """-q: only the image ID."""

    def line(self, text):
        pass

    def output_fd(self):
        return -1  # a RUN's output is not relayed

    def committed(self, names, image_id):
        self.stream.write(image_id + "\n")
        self.stream.flush()


class Tty(Plain):
    """--progress tty: a running RUN's output shown dimmed, folded away
    (erased) once its step is done; every step line stays."""

    relays = True

    def __init__(self, stream=None):
        super().__init__(stream)
        self._shown = 0
        self._partial = b""

    def output_fd(self):
        return None  # the builder relays the output through run_output

    def run_output(self, chunk):
        self._partial += chunk
        *lines, self._partial = self._partial.split(b"\n")
        for raw in lines:
            text = raw.decode(errors="replace")[:200]
            self.stream.write(f"\x1b[2m  {text}\x1b[0m\n")
            self._shown += 1
        self.stream.flush()

    def run_finished(self, keep=False):
        """Fold (erase) the lines shown, unless keep (a failed step's)."""
        if self._partial:
            self.run_output(b"\n")
        if self._shown and not keep:
            self.stream.write(f"\x1b[{self._shown}F\x1b[J")
        self._shown = 0
        self.stream.flush()


def make(progress, quiet, stream=None):
    """The printer of --progress (plain, tty, auto: tty on a terminal) and -q."""
    stream = stream or sys.stdout
    if quiet:
        return Quiet(stream)
    if progress == "auto":
        try:
            progress = "tty" if os.isatty(stream.fileno()) else "plain"
        except (AttributeError, OSError, ValueError):
            progress = "plain"
    return Tty(stream) if progress == "tty" else Plain(stream)
