"""The steps that are more than a config change: RUN (runstep.py's
container), COPY/ADD (context.py's trees, copying.py), WORKDIR (its
directory made when missing) and the config-only instructions' entries.
Each takes the build (builder._Build: its paths, options, printer and
entries) and the stage's state."""
import copy as copying_state
import os

from bocker.build import cache, instructions, stages, words
from bocker.build.errors import BuildError

MAX_IGNORE = 1 << 20  # .dockerignore's bound (as the Dockerfile's)


def config_step(b, state, ins):
    """A config-only instruction: applied, keyed by the config it leaves
    (and the args in scope); WORKDIR's missing directory makes it a
    filesystem step."""
    trial = copying_state.deepcopy(state)
    created_by = instructions.apply(trial, ins, b.options.build_args, b.global_args,
                                    b.escape)
    # the args' names, not their values: a changed --build-arg misses at
    # its first use (a RUN's key, or a config it expands into), not at its
    # ARG, as Docker's cache does
    extra = {"config": trial.config, "args": sorted(trial.args),
             "author": trial.author, "cmd_set": trial.cmd_set}
    key = cache.step_key(state.key, ins.keyword, ins.args, ins.flags, extra)
    state.config, state.args = trial.config, trial.args
    state.author, state.cmd_set = trial.author, trial.cmd_set
    fill = None
    if ins.keyword == "WORKDIR" and not _has_dir(b, state, state.config["WorkingDir"]):
        fill = _make_dir(state.config["WorkingDir"])
    b.entry(key, state, created_by, fill)


def _make_dir(path):
    """WORKDIR's fill: the directory made in the step's snapshot."""
    from bocker.runtime import workdir

    def fill(target):
        workdir.ensure(target, path)
        return 0  # a directory: nothing a layer's size counts
    return fill


def _has_dir(b, state, path):
    from bocker.runtime import workdir

    root = os.open(cache.rootfs(b.paths, state.rootfs_key), os.O_PATH | os.O_DIRECTORY)
    try:
        return workdir._exists(root, path.lstrip("/"))
    finally:
        os.close(root)


def run(b, state, ins):
    """RUN: keyed by its argv, the build args in scope and the SHELL; on a
    miss run in a container of the parent's snapshot (runstep.py)."""
    from bocker.build import runstep

    for name, _ in ins.flags:  # (the parser refuses them first)
        raise BuildError(f"RUN --{name} is not supported", line=ins.line)
    argv = instructions.command_form(state, ins)
    args = [(k, v) for k, v in state.args.items() if v is not None]
    key = cache.step_key(state.key, "RUN", argv, ins.flags,
                         {"args": args, "shell": state.shell()})
    shown = " ".join(argv)
    prefix = f"|{len(args)} " + " ".join(f"{k}={v}" for k, v in args) + " " if args else ""
    created_by = f"RUN {prefix}{shown} # buildkit"
    parent = cache.rootfs(b.paths, state.rootfs_key)
    # Docker's proxy args reach every RUN undeclared, and stay out of its key
    proxies = [f"{k}={v}" for k, v in b.options.build_args.items()
               if k in stages.PREDEFINED_ARGS and k not in state.args]

    def execute():
        return runstep.run(
            b.paths, parent, argv, env=state.run_env() + proxies,
            user=state.config.get("User"),
            workdir=state.config.get("WorkingDir"), network=b.options.network,
            printer=b.out, what=ins.original, line=ins.line,
            store=lambda rootfs: b.store(key, state, created_by, rootfs_from=rootfs))
    b.entry(key, state, created_by, None, execute=execute)


def copy(b, state, ins):
    """COPY/ADD: keyed by the sources' digest (what the copy would read),
    the destination, the flags and WORKDIR; on a miss copied into a
    writable snapshot of the parent."""
    from bocker.build import copying

    kw = ins.keyword
    flags = {}
    for name, value in ins.flags:
        if name not in ("from", "chown", "chmod", "link") or (name == "from" and kw == "ADD"):
            raise BuildError(f"{kw} --{name} is not supported",
                             line=ins.line)
        flags[name] = words.expand(value or "", state.scope(), b.escape)
    items = (list(ins.json) if ins.json is not None
             else words.split_words(ins.args, state.scope(), b.escape))
    if len(items) < 2:
        raise BuildError(f"{kw} requires at least two arguments",
                         line=ins.line)
    srcs, dest = items[:-1], items[-1]
    tree = _tree(b, flags.get("from"), ins)
    try:
        sources = tree.sources(srcs, keyword=kw)
        digest = tree.digest(sources)
        workdir = state.config.get("WorkingDir") or "/"
        key = cache.step_key(state.key, kw, [srcs, dest], sorted(flags.items()),
                             {"digest": digest, "workdir": workdir})
        created_by = f"{kw} {' '.join(srcs)} {dest} # buildkit"

        def fill(target):  # (the bytes it wrote: the entry's size, no walk)
            return copying.copy(tree, sources, target, dest, chown=flags.get("chown") or None,
                         chmod=flags.get("chmod") or None, workdir=workdir, keyword=kw)
        b.entry(key, state, created_by, fill)
    finally:
        tree.close()


def _tree(b, source, ins):
    from bocker.build import context

    if not source:
        return context.Tree.context(b.options.context, _ignore(b))
    other = b.previous_stage(source, len(b.done))
    if other is not None:
        return context.Tree.rootfs(cache.rootfs(b.paths, other.rootfs_key),
                                   where=f"stage {source}")
    from bocker.image import images

    image_id, _ = b.base_image(source, b.options.platform, ins.line)
    return context.Tree.rootfs(images.rootfs(b.paths, image_id), where=f"image {source}")


def _ignore(b):
    if b.matcher is None:
        from bocker.build import ignore

        path = os.path.join(b.options.context, ".dockerignore")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            text = ""
        except OSError as e:
            raise BuildError(f"cannot read .dockerignore: {e.strerror}") from None
        else:
            with os.fdopen(fd, "rb") as f:
                data = f.read(MAX_IGNORE + 1)
            if len(data) > MAX_IGNORE:
                raise BuildError(".dockerignore is larger than 1 MiB")
            text = data.decode(errors="replace")
        b.matcher = ignore.Matcher(ignore.parse(text))
    return b.matcher
