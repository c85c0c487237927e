"""A stage being built: its config, history, build args in scope and the
cache entries it stands on.  Pure: no file is read or written here."""
import copy
import time

DEFAULT_SHELL = ("/bin/sh", "-c")
# BuildKit gives an image without a PATH (scratch) the default one
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's predefined build args: usable with --build-arg without an ARG,
# and left out of the image's history (as Docker does)
PREDEFINED_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                   "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


class StageState:
    """What a stage is after its last step: config (Docker's image config),
    history (image history entries), args (the ARGs in scope, name ->
    value, declared order), key (the last step's cache key), rootfs_key
    (the last entry with a filesystem), layers (the keys of its filesystem
    steps), base (the image record's build.base), author (MAINTAINER),
    cmd_set (a CMD in this stage: ENTRYPOINT keeps it)."""

    def __init__(self, index, name, config=None, history=None):
        self.index, self.name = index, name
        self.config = copy.deepcopy(config or {})
        self.history = copy.deepcopy(history or [])
        self.args = {}
        self.key = None
        self.rootfs_key = None
        self.layers = []
        self.base = {}
        self.author = None
        self.cmd_set = False
        self.os, self.architecture = "linux", None

    def shell(self):
        """The SHELL a shell-form RUN, CMD or ENTRYPOINT runs through."""
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    def env(self):
        """The config's Env as a dict (later entries win)."""
        out = {}
        for item in self.config.get("Env") or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def set_env(self, key, value):
        """Set one variable in the config's Env, in place if it is there."""
        env = list(self.config.get("Env") or [])
        for i, item in enumerate(env):
            if item.partition("=")[0] == key:
                env[i] = f"{key}={value}"
                break
        else:
            env.append(f"{key}={value}")
        self.config["Env"] = env

    def scope(self):
        """The variables an instruction's words expand with: the ARGs in
        scope under the config's Env (ENV wins, as Docker's)."""
        return {**{k: v for k, v in self.args.items() if v is not None}, **self.env()}

    def run_env(self):
        """A RUN's environment: ARGs in scope (with a value), then Env."""
        return [f"{k}={v}" for k, v in self.args.items()
                if v is not None and k not in self.env()] + list(self.config.get("Env") or [])

    def add_history(self, created_by, empty_layer):
        """One history entry for a step (BuildKit's shape)."""
        entry = {"created": _rfc3339(time.time()), "created_by": created_by,
                 "comment": "buildkit.dockerfile.v0"}
        if empty_layer:
            entry["empty_layer"] = True
        self.history.append(entry)


def from_stage(index, name, other):
    """A stage FROM a previous stage: its config, history, entries, base."""
    s = StageState(index, name, other.config, other.history)
    s.key, s.rootfs_key = other.key, other.rootfs_key
    s.layers, s.base = list(other.layers), dict(other.base)
    s.author, s.os, s.architecture = other.author, other.os, other.architecture
    return s


def _rfc3339(t):
    from bocker.runtime import inspectview

    return inspectview.rfc3339(t)
