"""The orchestration: Dockerfile -> planned stages -> each instruction keyed, looked up, executed on
a miss -> the final image committed and tagged. Progress goes to a callback as events (dicts with a
`kind`); nothing here prints.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from grammar.errors import PybuildError, UsageError

from .cachekey import KeyParts, explain_miss
from .state import BuildState

Progress = Callable[[dict], None]


class BuildError(PybuildError):
    """A step failed: the message names the Dockerfile line and what to do."""


@dataclass(frozen=True)
class BuildOptions:
    context_dir: str
    dockerfile: str | None = None            # default: <context>/Dockerfile
    tags: tuple[str, ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()
    target: str | None = None
    no_cache: bool = False
    explain_cache: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    source_date_epoch: int | None = None
    network: str = "default"                 # RUN steps: default (own netns + slirp4netns) | host | none
    pull: str = "missing"                    # FROM images: always | missing | never (cache.registry)
    platform: str | None = None              # os/arch[/variant] picked from a pulled index
    tls_verify: bool | None = None
    explain: bool = False                    # RUN steps print each kernel step (runtime/explain.py)


@dataclass(frozen=True)
class BuildResult:
    image: object
    steps: int
    cached: int
    explanations: tuple[str, ...] = field(default=())
    cache_keys: tuple[str, ...] = field(default=())   # this build's layer steps (what --cache-to exports)


PROXY_ARGS = frozenset(n for p in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
                       for n in (p, p.lower()))


def platform_args() -> dict[str, str]:
    from cache.image import host_architecture

    arch = host_architecture()
    plat = f"linux/{arch}"
    return {"TARGETPLATFORM": plat, "TARGETOS": "linux", "TARGETARCH": arch, "TARGETVARIANT": "",
            "BUILDPLATFORM": plat, "BUILDOS": "linux", "BUILDARCH": arch, "BUILDVARIANT": ""}


def build(store, opts: BuildOptions, progress: Progress = lambda e: None) -> BuildResult:
    from grammar.cached import parse_and_lint
    from grammar.parser import read_dockerfile

    dockerfile = opts.dockerfile or os.path.join(opts.context_dir, "Dockerfile")
    text, shown = read_dockerfile(dockerfile)
    parsed, warnings = parse_and_lint(text, shown)
    for warning in warnings:
        progress({"kind": "warning", "text": str(warning)})
    run = _Build(store, opts, parsed, dockerfile, progress)
    return run.run()


class _Build:
    def __init__(self, store, opts: BuildOptions, parsed, dockerfile: str, progress: Progress):
        from grammar.expand import Expander

        self.store, self.opts, self.parsed, self.progress = store, opts, parsed, progress
        self.dockerfile = dockerfile
        self.expander = Expander(parsed.escape)
        self.build_args = dict(opts.build_args)
        self._context = None
        self.stages: dict[str, BuildState] = {}
        self.steps = self.cached = 0
        self.explanations: list[str] = []
        self.cache_keys: list[str] = []
        from contextlib import ExitStack

        self.cleanup = ExitStack()   # scratch trees of --from sources live until the build ends
        self.trees: dict[str, tuple[dict, str]] = {}

    # --- context, read once and only when a step needs it ---
    @property
    def context(self):
        if self._context is None:
            from .context import Context, ignore_matcher, stat_cache_path

            matcher = ignore_matcher(self.opts.context_dir, self.opts.dockerfile)
            self._context = Context.scan(self.opts.context_dir, matcher,
                                         stat_cache_path(self.store.root, self.opts.context_dir))
        return self._context

    # --- planning ---
    def global_scope(self) -> dict[str, str]:
        scope = dict(platform_args())
        for arg in self.parsed.global_args:
            for name, default in arg.pairs:
                value = self.build_args.get(name, default)
                if value is not None:
                    scope[name] = self.expander.expand(value, scope) if name not in self.build_args else value
        return scope

    def plan(self) -> list[int]:
        """Indexes of the stages the target needs, in Dockerfile order (unused stages skipped)."""
        stages = self.parsed.stages()
        if not stages:
            raise BuildError(f"{self.parsed.filename}: no FROM instruction", hint="start the Dockerfile with FROM")
        names = {(f.stage_name or "").lower(): i for i, (f, _) in enumerate(stages) if f.stage_name}
        if self.opts.target is None:
            target = len(stages) - 1
        elif self.opts.target.lower() in names:
            target = names[self.opts.target.lower()]
        else:
            raise UsageError(f"--target {self.opts.target}: no such stage", hint=f"stages: {', '.join(sorted(names)) or 'none named'}")
        needed, todo = set(), [target]
        while todo:
            i = todo.pop()
            if i in needed:
                continue
            needed.add(i)
            frm, body = stages[i]
            refs = [frm.image.lower()] + [(ins.from_ or "").lower() for ins in body if getattr(ins, "from_", None)]
            for ref in refs:
                if ref in names and names[ref] < i:
                    todo.append(names[ref])
                elif ref.isdigit() and int(ref) < i:
                    todo.append(int(ref))
        self.names = names
        return sorted(needed)

    def run(self) -> BuildResult:
        with self.cleanup:
            return self._run()

    def _run(self) -> BuildResult:
        scope = self.global_scope()
        stages = self.parsed.stages()
        state = None
        for i in self.plan():
            frm, body = stages[i]
            state = self.from_(frm, scope, i)
            for ins in body:
                state = self.step(state, ins)
            self.stages[str(i)] = state
            if frm.stage_name:
                self.stages[frm.stage_name.lower()] = state
        image = self.finish(state.image)
        return BuildResult(image, self.steps, self.cached, tuple(self.explanations), tuple(self.cache_keys))

    def finish(self, image):
        from .history import stamp

        if self.opts.labels:
            labels = dict(image.config_section.get("Labels") or {})
            labels.update(self.opts.labels)
            image = image.with_config(Labels=labels)
        image = stamp(image, self.created())  # times as BuildKit's: a cached rebuild keeps its id
        image = self.store.commit(image)
        for tag in self.opts.tags:
            self.store.tag(tag, image)
        self.progress({"kind": "done", "image": image.id, "tags": list(self.opts.tags)})
        return image

    def created(self) -> str | None:
        if self.opts.source_date_epoch is None:
            return None
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.opts.source_date_epoch))

    # --- FROM ---
    def from_(self, frm, scope: dict[str, str], index: int) -> BuildState:
        import xxhash
        from cache.image import Image

        ref = self.expander.expand(frm.image, scope)
        self.progress({"kind": "step", "stage": index, "text": frm.original, "line": frm.span.line})
        inherited: tuple[tuple[str, str], ...] = ()
        if ref.lower() in self.stages:
            base = self.stages[ref.lower()].image
            # BuildKit (dockerd 20.10) keeps ARG values in the stage's LLB env, which `FROM stage`
            # carries over: the parent's ARGs stay in scope (for RUN and expansion), not in the config.
            inherited = self.stages[ref.lower()].args
        elif ref == "scratch":
            base = Image.empty().with_config(WorkingDir="/")  # BuildKit's empty image has WorkingDir "/"
        else:
            base = self.base_image(ref, frm)
            self.store.hold(base)  # an `rmi` of the base meanwhile must not take what we build on
        key = xxhash.xxh3_128_hexdigest(f"from {base.id}".encode())
        base = with_default_path(base)
        args = tuple({**{k: v for k, v in scope.items() if k in platform_args()}, **dict(inherited)}.items())
        state = BuildState(image=base, key=key, args=args, stage_name=frm.stage_name)
        return self.onbuild(state, frm)

    def onbuild(self, state: BuildState, frm) -> BuildState:
        """A base's ONBUILD triggers run right after FROM, in order, then are dropped."""
        triggers = state.image.config_section.get("OnBuild") or []
        if not triggers:
            return state
        from grammar.parser import parse

        state = replace(state, image=state.image.with_config(OnBuild=None))
        text = "FROM scratch\n" + "\n".join(triggers) + "\n"
        for ins in parse(text, f"{frm.image} ONBUILD").instructions[1:]:
            state = self.step(state, ins)
        return state

    def base_image(self, ref: str, frm):
        from cache.errors import ImageNotFound

        if self.opts.pull != "always":
            from cache.platforms import matches

            try:
                image = self.store.resolve(ref, self.opts.platform)
                if not self.opts.platform or matches(image.config, self.opts.platform):
                    return image  # else: the store has it for another platform only; pull this one
            except ImageNotFound:
                pass
            if self.opts.pull == "never":
                raise BuildError(f"{self.where(frm)}: image {ref} is not in the store (--pull=never)",
                                 hint="pull it, make it with `pybuild debootstrap`, or drop --pull=never")
        from cache.registry import ensure_image

        return ensure_image(self.store, ref, self.opts.pull, self.opts.platform, self.progress,
                            tls_verify=self.opts.tls_verify)

    def from_tree(self, name: str, state: BuildState) -> tuple[dict, str]:
        """COPY --from: a built stage (by name or index) or an image, flattened once per build."""
        from cache.archive import unpack

        from .context import Context
        from .dockerignore import PatternMatcher

        ref = self.expander.expand(name, state.expansion_env())
        if ref.lower() not in self.trees:
            found = self.stages.get(ref.lower())
            image = found.image if found else self.base_image(ref, None)
            root = self.cleanup.enter_context(self.store.work_dir("from"))
            unpack(self.store, image, root)
            self.trees[ref.lower()] = (Context.scan(root, PatternMatcher([])).files, root)
        return self.trees[ref.lower()]

    def where(self, ins) -> str:
        if ins is None:
            return self.parsed.filename
        return f"{ins.span.file}:{ins.span.line}:{ins.span.column}"

    # --- one instruction ---
    def step(self, state: BuildState, ins) -> BuildState:
        from .instructions import dispatch

        self.progress({"kind": "step", "text": ins.original, "line": ins.span.line})
        handler = dispatch(ins.keyword)
        if handler is None:
            raise BuildError(f"{self.where(ins)}: {ins.keyword.upper()} is not supported by this builder yet")
        return handler(self, state, ins)

    # --- cache plumbing used by the instruction modules ---
    def layer(self, state: BuildState, ins, parts: KeyParts, make: Callable[[], object],
                       created_by: str) -> BuildState:
        """A filesystem step (builder/step.py): on a hit reuse the layer; on a miss call `make()` ->
        Layer, record it."""
        from cache.buildcache import CacheEntry
        from cache.image import now_iso

        key = parts.key()
        history = {"created_by": created_by}
        if self.created():
            history["created"] = self.created()
        entry = None if self.opts.no_cache else self.store.build_cache.get(key)
        self.steps += 1
        self.cache_keys.append(key)
        if entry is not None and entry.layer is not None:
            self.cached += 1
            self.progress({"kind": "cached", "line": ins.span.line, "text": ins.original})
            layer = _StoredLayer(entry.layer, entry.diff_id)
            made = entry.created or self._date_entry(key, entry)
        else:
            why = explain_miss(parts, self._last_parts(ins))
            if self.opts.explain_cache:
                self.explanations.append(f"{self.where(ins)}: {ins.original.strip()}: miss: {why}")
                self.progress({"kind": "explain", "line": ins.span.line, "reason": why})
            layer = make()
            made = now_iso()
            self.store.build_cache.put(key, CacheEntry(layer=layer.descriptor, diff_id=layer.diff_id,
                                                       history=history, created=made))
        history.setdefault("created", made)  # when the layer was made, as BuildKit's (builder/history.py)
        self._save_parts(ins, parts, key)
        return replace(state, image=state.image.with_layer(layer, history), key=key, steps=state.steps + 1)

    def _date_entry(self, key: str, entry) -> str:
        """A cache entry written before entries kept their layer's time: dated now, once."""
        from cache.image import now_iso

        made = now_iso()
        self.store.build_cache.put(key, replace(entry, created=made))
        return made

    def config(self, state: BuildState, ins, changes: dict, *, args=None, history: bool = True) -> BuildState:
        """A config-only step (builder/step.py): no layer; the key still advances so later steps
        depend on it; an empty_layer history entry unless `history` is False (ONBUILD, as BuildKit)."""
        args_used = tuple(sorted((k, v) for k, v in (args or {}).items() if k not in PROXY_ARGS))
        parts = KeyParts(state.key, ins.original.strip(), args_used)
        entry = None
        if history:
            entry = {"created_by": f"/bin/sh -c #(nop) {ins.original.strip()}"}
            if self.created():
                entry["created"] = self.created()
        image = state.image.with_config(history=entry, **changes)
        return replace(state, image=image, key=parts.key(), steps=state.steps + 1)

    def expand(self, state: BuildState, word: str) -> str:
        """`word` with the ARG/ENV of `state` expanded (ENV wins), as BuildKit (builder/step.py)."""
        return self.expander.expand(word, state.expansion_env())

    def _parts_path(self, ins) -> str:
        import xxhash

        ident = f"{os.path.abspath(self.dockerfile)}:{ins.span.line}:{self.opts.target}"
        return os.path.join(self.store.root, "statcache", "steps", xxhash.xxh3_64_hexdigest(ident.encode()) + ".json")

    def _last_parts(self, ins) -> dict | None:
        import json

        try:
            with open(self._parts_path(ins)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _save_parts(self, ins, parts: KeyParts, key: str) -> None:
        """Remember what this step's key was made of (for --explain-cache next time). A sidecar
        holds just the key, so a rebuild that changed nothing writes nothing (COPY of 20,000 files
        has a parts file of megabytes)."""
        import json

        path = self._parts_path(ins)
        try:
            with open(path + ".key") as f:
                if f.read() == key:
                    return
        except OSError:
            pass
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(parts.to_json()))  # dumps: the C encoder (dump() to a file is not)
        os.replace(tmp, path)
        with open(tmp, "w") as f:
            f.write(key)
        os.replace(tmp, path + ".key")


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def with_default_path(image):
    """A base whose config has no PATH gets the default one in its Env, as BuildKit gives it: RUN
    steps find their commands and `ENV PATH=/x:$PATH` extends it."""
    env = image.config_section.get("Env") or []
    if any(item.startswith("PATH=") for item in env):
        return image
    return image.with_config(Env=[*env, f"PATH={DEFAULT_PATH}"])


@dataclass(frozen=True)
class _StoredLayer:
    descriptor: object
    diff_id: str
