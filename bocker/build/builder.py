"""`bocker build`: a Dockerfile built step by step, each step's result a
cache entry (build/cache.py) standing on its parent's, the last stage's
top entry snapshotted into a new image.

build(paths, options, out) parses the Dockerfile, builds the stages up to
--target in order (FROM an image, `scratch` or a previous stage), runs
each instruction or takes its cache hit, and commits the image."""
import copy
import dataclasses

from bocker.build import cache, instructions, stages, steps, words
from bocker.build.errors import BuildError


@dataclasses.dataclass
class BuildOptions:
    """What `bocker build` was asked for (the CLI checks the types)."""
    context: str
    dockerfile_text: str
    tags: tuple = ()
    build_args: dict = dataclasses.field(default_factory=dict)
    target: str = None
    no_cache: bool = False
    pull: bool = False
    platform: str = None
    labels: dict = dataclasses.field(default_factory=dict)
    network: str = "bridge"


def build(paths, options, out):
    """Build options' Dockerfile in its context with the printer out
    (build/output.py); returns the image ID."""
    from bocker.build import dockerfile
    from bocker.kernel import store

    store.require_btrfs(paths.root)
    parsed = dockerfile.parse(options.dockerfile_text)
    if parsed.syntax:
        out.line(f"note: '# syntax={parsed.syntax}' is ignored (bocker has one builder)")
    with cache.building(paths):
        return _Build(paths, options, out, parsed).run()


class _Build:
    """One build's state: the parsed file, the stages built so far."""

    def __init__(self, paths, options, out, parsed):
        self.paths, self.options, self.out, self.parsed = paths, options, out, parsed
        self.escape = parsed.escape
        self.done = []          # StageState of every stage built, by index
        self.global_args = {}
        self.used_args = set()
        self.matcher = None

    def run(self):
        for ins in self.parsed.global_args:
            instructions.declare_global(ins, self.global_args, self.options.build_args,
                                        self.escape)
            self.used_args.update(k for k, _ in words.pairs(ins.args, {}, self.escape, "ARG"))
        todo = self.parsed.stages[:self._target_index() + 1]
        needed = self._needed(todo)
        self._todo = todo
        for stage in todo:
            # a stage the target does not need is skipped, as BuildKit does
            self.done.append(self._stage(stage, len(todo)) if stage.index in needed else None)
        final = self.done[-1]
        if self.options.labels:
            self._labels(final)
        unused = sorted(set(self.options.build_args) - self.used_args
                        - set(stages.PREDEFINED_ARGS))
        if unused:
            self.out.line(f"[Warning] one or more build args were not consumed: "
                          f"{', '.join(unused)}")
        return self._commit(final)

    def _needed(self, todo):
        """The indexes of the stages the last of todo needs: itself and,
        transitively, the stages its FROM and COPY --from name."""
        by_name = {s.name: s.index for s in todo if s.name}

        def ref(text, before):
            text = words.expand(text or "", self.global_args, self.escape).lower()
            if text in by_name and by_name[text] < before:
                return by_name[text]
            if text.isdigit() and int(text) < before:
                return int(text)
            return None

        needed, queue = set(), [todo[-1].index]
        while queue:
            i = queue.pop()
            if i in needed:
                continue
            needed.add(i)
            stage = todo[i]
            deps = [ref(stage.base, i)] + [ref(ins.flag("from"), i) for ins in stage.instructions
                                           if ins.keyword == "COPY" and ins.flag("from")]
            queue.extend(d for d in deps if d is not None)
        return needed

    def _target_index(self):
        target = self.options.target
        if target is None:
            return len(self.parsed.stages) - 1
        for s in self.parsed.stages:
            if s.name == target.lower():
                return s.index
        raise BuildError(f"target stage '{target}' could not be found")

    # ------------------------------------------------------------ a stage

    def _stage(self, stage, count):
        steps = len(stage.instructions) + 1
        base_text = words.expand(stage.base, self.global_args, self.escape)
        as_part = f" AS {stage.name}" if stage.name else ""
        self.out.step(stage.index + 1, count, 1, steps, f"FROM {base_text}{as_part}")
        state = self._from(stage, base_text)
        for n, ins in enumerate(stage.instructions, 2):
            self.out.step(stage.index + 1, count, n, steps, ins.original)
            self._instruction(state, ins)
        return state

    def _from(self, stage, base):
        platform = stage.platform and words.expand(stage.platform, self.global_args, self.escape)
        platform = platform or self.options.platform
        if not base:
            raise BuildError("FROM names no base image",
                             line=stage.from_line)
        other = self.previous_stage(base, stage.index)
        if other is not None:
            return stages.from_stage(stage.index, stage.name, other)
        state = stages.StageState(stage.index, stage.name)
        if base == "scratch":
            key = cache.step_key(None, "FROM", "scratch", (), {"platform": platform})
            self.entry(key, state, "FROM scratch", lambda target: 0)  # an empty subvolume
            # BuildKit's empty image: PATH and WorkingDir "/"
            state.config = {"Env": [stages.DEFAULT_PATH], "WorkingDir": "/"}
            state.os, state.architecture = self._platform(platform, {})
            return state
        image_id, record = self.base_image(base, platform, stage.from_line)
        from bocker.image import images

        key = cache.step_key(None, "FROM", image_id, (),
                             {"platform": platform, "created": record.get("created")})
        self.entry(key, state, f"FROM {base}", None,
                   rootfs_from=images.rootfs(self.paths, image_id), total=record.get("size"))
        state.config = copy.deepcopy(record.get("config") or {})
        if "PATH" not in state.env():  # BuildKit makes sure PATH is always set
            state.config["Env"] = list(state.config.get("Env") or []) + [stages.DEFAULT_PATH]
        state.history = [dict(h) for h in record.get("history") or [] if isinstance(h, dict)]
        build = record.get("build")
        if isinstance(build, dict) and isinstance(build.get("layers"), list):
            state.base = dict(build.get("base") or {})
            state.layers = [k for k in build["layers"] if cache.is_key(k)]
        elif isinstance(record.get("layers"), list) and record["layers"]:
            state.base = {"layers": list(record["layers"])}
        else:
            state.base = {"entry": key}
            if not state.history:  # one entry for its one layer (history lines up with layers)
                from bocker.runtime import inspectview

                state.history = [{"created": inspectview.rfc3339(record.get("created")),
                                  "created_by": f"bocker: {record.get('source') or 'image'}"}]
        state.os, state.architecture = self._platform(platform, record, base,
                                                      stage.from_line)
        return state

    def previous_stage(self, ref, index):
        """The StageState ref names (a stage name or index before index), or
        None (an image).  A stage skipped as unneeded (a reference the first
        look could not expand) is built now."""
        found = None
        for s in self._todo[:index]:
            if s.name is not None and s.name == ref.lower():
                found = s.index
        if found is None and ref.isdigit():
            if int(ref) >= index:
                raise BuildError(f"stage {ref} is not a previous stage")
            found = int(ref)
        if found is None:
            return None
        if self.done[found] is None:
            self.done[found] = self._stage(self._todo[found], len(self._todo))
        return self.done[found]

    def base_image(self, ref, platform, line):
        from bocker.errors import NoSuchImage
        from bocker.image import autopull, images

        try:
            image_id = autopull.ensure(self.paths, ref, "always" if self.options.pull else "missing",
                                       platform=platform)
        except NoSuchImage:
            raise BuildError(f"FROM {ref}: no such image", line=line) from None
        record = images.load(self.paths, image_id)
        if (record.get("config") or {}).get("OnBuild"):
            raise BuildError(f"FROM {ref}: the image has ONBUILD triggers, "
                             "which bocker does not run", line=line)
        return image_id, record

    @staticmethod
    def _platform(platform, record, ref=None, line=None):
        """(os, architecture) of the stage: scratch's (ref None) is the
        --platform asked for, else the host's; an image's is its own (one
        made here without a recorded platform is the host's), and a
        --platform it is not is refused: RUN could not run it, and the new
        image would say a platform its files are not."""
        from bocker.image import platforms

        host = platforms.host_platform()
        want = platforms.parse_platform(platform)[:2] if platform else None
        if ref is None:
            return want or (host[0], host[1])
        have = (record.get("os") or host[0], record.get("architecture") or host[1])
        if want and tuple(want) != have:
            raise BuildError(f"FROM {ref}: the image is {have[0]}/{have[1]}, not "
                             f"{want[0]}/{want[1]} (--platform)", line=line)
        return have

    # ------------------------------------------------------------ steps

    def _instruction(self, state, ins):
        try:
            return self._dispatch(state, ins)
        except BuildError as e:  # (a copy's or a word's error: placed at its line)
            raise e.at(ins.line) from None

    def _dispatch(self, state, ins):
        self._original = ins.original  # the entry's "instruction"
        kw = ins.keyword
        if kw == "ARG":
            self.used_args.update(k for k, _ in words.pairs(ins.args, {}, self.escape, "ARG"))
        if kw == "RUN":
            return steps.run(self, state, ins)
        if kw in ("COPY", "ADD"):
            return steps.copy(self, state, ins)
        if kw in instructions.CONFIG_ONLY:
            return steps.config_step(self, state, ins)
        raise BuildError(f"unknown instruction {kw}", line=ins.line)

    def _labels(self, state):
        """--label: the image's labels over the Dockerfile's (a config step
        of its own, so the final key says which labels the image has)."""
        labels = dict(state.config.get("Labels") or {})
        labels.update(self.options.labels)
        state.config["Labels"] = labels
        key = cache.step_key(state.key, "LABEL", sorted(self.options.labels.items()), (),
                             {"config": state.config})
        state.key = key
        self._original = "--label"
        if cache.lookup(self.paths, key) is None:
            cache.store_entry(self.paths, key, self._record(state, None))

    # ------------------------------------------------------------ entries

    def _record(self, state, created_by):
        return {"parent": state.key, "instruction": getattr(self, "_original", None),
                "config": state.config,
                "history": state.history[-1] if created_by and state.history else None,
                "args": list(state.args.items()), "author": state.author,
                "cmd_set": state.cmd_set}

    def entry(self, key, state, created_by, fill, rootfs_from=None, execute=None, total=None):
        """Take key's cache hit (unless --no-cache), or make the entry:
        execute() (RUN), else store with fill/rootfs_from.  Leaves state
        on the step's result."""
        is_from = (created_by or "").startswith("FROM ")
        hit = None if (self.options.no_cache and not is_from) else cache.lookup(self.paths, key)
        if hit is not None:
            if not is_from:
                self.out.cached(key)
            self._adopt(state, key, hit, is_from)
            return
        if execute is not None:
            record = execute()
        elif is_from:
            record = cache.store_entry(self.paths, key, {"parent": None,
                                                         "instruction": created_by,
                                                         "config": {}, "history": None},
                                       rootfs_from=rootfs_from, total=total, fill=fill)
        else:
            record = self.store(key, state, created_by, rootfs_from=rootfs_from, fill=fill)
        if not is_from:
            self.out.done(key)
        self._adopt(state, key, record, is_from)

    def store(self, key, state, created_by, rootfs_from=None, fill=None):
        """Store the step's entry; state holds the config after the step."""
        trial = copy.copy(state)
        trial.history = list(state.history)
        if created_by is not None:  # (ONBUILD has no history entry, as BuildKit's)
            trial.add_history(created_by, empty_layer=rootfs_from is None and fill is None)
        parent = cache.rootfs(self.paths, state.rootfs_key) if state.rootfs_key else None
        if fill is not None and rootfs_from is None:
            rootfs_from = parent
        below = cache.lookup(self.paths, state.rootfs_key) if state.rootfs_key else None
        return cache.store_entry(self.paths, key, self._record(trial, created_by),
                                 rootfs_from=rootfs_from, fill=fill,
                                 replace=self.options.no_cache,
                                 parent_total=(below or {}).get("total") or 0)

    def _adopt(self, state, key, record, is_from):
        """state becomes what the entry record says the step left."""
        if record.get("has_rootfs"):
            state.rootfs_key = key
            if not is_from:
                state.layers.append(key)
        if not is_from:
            state.config = copy.deepcopy(record["config"])
            if isinstance(record.get("history"), dict):
                state.history.append(record["history"])
            # (state.args stay the walk's: a key holds no arg's value but
            # a RUN's, so an entry's could be another build's)
            state.author, state.cmd_set = record.get("author"), bool(record.get("cmd_set"))
        state.key = key

    # ------------------------------------------------------------ commit

    def _commit(self, state):
        from bocker.image import images, tags

        names = [tags.check_name(t) for t in self.options.tags]
        reusable = [] if self.options.no_cache else images.list_all(self.paths)
        for r in reusable:  # a rebuild of the same steps is the same image, as Docker's
            if (r.get("build") or {}).get("key") == state.key and r.get("source") == "build":
                image_id = r["id"]
                break
        else:
            extra = {"history": state.history, "os": state.os,
                     "architecture": state.architecture,
                     "build": {"key": state.key, "base": state.base, "layers": state.layers}}
            if state.author:
                extra["author"] = state.author
            image_id = images.create(self.paths, "build", None, name=names[0] if names else None,
                                     config=state.config,
                                     snapshot_of=cache.rootfs(self.paths, state.rootfs_key),
                                     extra=extra)
        for name in names:
            tags.tag(self.paths, image_id, name)
        self.out.committed(names, image_id)
        return image_id
