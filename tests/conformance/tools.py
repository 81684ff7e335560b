"""The two builders, driven the same way on the same case: build the materialized context, describe
the image (describe.py) and run its default command. `BuildKit` is used by refresh.py only (it needs
the anchors' dockerd); `Pybuild` by the tests."""
from __future__ import annotations

import json
import os
import subprocess
import tarfile
import tempfile

from base import BASE_REF, CHANGES, base_digest, base_tar_path, import_into_docker, import_into_pybuild
from describe import describe_image
from model import Case, materialize

RUN_TIMEOUT = 30


def _run_result(argv: list[str], env=None) -> dict:
    """The default command's exit code, stdout and stderr (apart: the order in which two pipes'
    lines reach the client is not the container's to decide)."""
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=RUN_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return {"exit": "timeout"}
    return {"exit": p.returncode, "stdout": p.stdout.decode("utf-8", "replace"),
            "stderr": p.stderr.decode("utf-8", "replace")}


def run_case(tool, case: Case, keep_dir: str | None = None) -> dict:
    """{"image": description, "run": {...}} or {"error": True, "message": last line}."""
    with tempfile.TemporaryDirectory(prefix=f"conf-{case.name}-", dir=keep_dir) as ctx:
        os.chmod(ctx, 0o755)
        materialize(case, ctx)
        tag = f"conformance/{case.name.lower()}:1"
        ok, message = tool.build(case, ctx, tag)
    if not ok:
        return {"error": True, "message": message}
    try:
        image = tool.describe(tag)
        run = tool.run(tag)
    finally:
        tool.remove(tag)
    return {"image": image, "run": run}


class BuildKit:
    """The oracle: DOCKER_BUILDKIT=1 docker build against the anchors' private dockerd."""

    def __init__(self, docker: str = "/usr/bin/docker", no_cache: bool = False):
        self.docker = [docker]
        self.no_cache = no_cache
        self.env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        base = base_tar_path()
        if not self._has_base(base_digest(base)):
            # (re-imported only when it differs: a concurrent refresh's builds need it meanwhile)
            subprocess.run([*self.docker, "rmi", "-f", BASE_REF], capture_output=True, env=self.env)
            import_into_docker(self.docker, base)
        config, _ = self._saved(BASE_REF)
        self.base_layers = len(config["rootfs"]["diff_ids"])
        self.base_history = len(config.get("history") or [])

    def _has_base(self, digest: str) -> bool:
        p = subprocess.run([*self.docker, "image", "inspect", "-f", "{{json .RootFS.Layers}} {{json .Config.Cmd}}",
                            BASE_REF], capture_output=True, text=True, env=self.env)
        if p.returncode != 0:
            return False
        layers, _, cmd = p.stdout.strip().partition(" ")
        return json.loads(layers) == [digest] and json.loads(cmd) == json.loads(CHANGES[0].removeprefix("CMD "))

    def version(self) -> str:
        out = subprocess.run([*self.docker, "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True,
                             env=self.env, check=True)
        return f"dockerd {out.stdout.strip()} (BuildKit builtin frontend)"

    def build(self, case: Case, ctx: str, tag: str) -> tuple[bool, str]:
        argv = [*self.docker, "build", "--network=host", "--progress=plain", "-t", tag]
        if self.no_cache:
            argv.append("--no-cache")
        for k, v in case.build_args:
            argv += ["--build-arg", f"{k}={v}"]
        if case.target:
            argv += ["--target", case.target]
        p = subprocess.run([*argv, ctx], capture_output=True, text=True, env=self.env)
        lines = (p.stderr or p.stdout).strip().splitlines()
        return p.returncode == 0, (lines[-1] if lines else "")

    def _saved(self, tag: str):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "image.tar")
            subprocess.run([*self.docker, "save", "-o", path, tag], check=True, env=self.env, capture_output=True)
            out = os.path.join(tmp, "x")
            os.mkdir(out)
            with tarfile.open(path) as tar:
                tar.extractall(out, filter="fully_trusted")
            with open(os.path.join(out, "manifest.json")) as f:
                manifest = json.load(f)[0]
            with open(os.path.join(out, manifest["Config"])) as f:
                config = json.load(f)
            layers = []
            for rel in manifest["Layers"]:
                with open(os.path.join(out, rel), "rb") as f:
                    layers.append(f.read())
        return config, layers

    def describe(self, tag: str) -> dict:
        import io

        config, layers = self._saved(tag)
        return describe_image(config, [lambda b=b: io.BytesIO(b) for b in layers], self.base_layers, self.base_history)

    def run(self, tag: str) -> dict:
        return _run_result([*self.docker, "run", "--rm", "--network=none", tag], env=self.env)

    def remove(self, tag: str) -> None:
        subprocess.run([*self.docker, "rmi", "-f", tag], capture_output=True, env=self.env)


class Pybuild:
    """pybuild, as a user runs it (the CLI), on a store of its own."""

    def __init__(self, root: str, pybuild: list[str]):
        self.root = root
        self.cli = [*pybuild, "--root", root]
        import_into_pybuild(self.cli, base_tar_path())
        from cache.store import Store

        self.store = Store.open(root)
        base = self.store.resolve(BASE_REF)
        self.base_layers = len(base.diff_ids)
        self.base_history = len(base.history)

    def build(self, case: Case, ctx: str, tag: str) -> tuple[bool, str]:
        argv = [*self.cli, "build", "--progress=plain", "--network=host", "-t", tag]
        for k, v in case.build_args:
            argv += ["--build-arg", f"{k}={v}"]
        if case.target:
            argv += ["--target", case.target]
        p = subprocess.run([*argv, ctx], capture_output=True, text=True)
        if "Traceback (most recent call last)" in p.stderr:
            raise AssertionError(f"{case.name}: pybuild printed a traceback:\n{p.stderr}")
        lines = p.stderr.strip().splitlines()
        return p.returncode == 0, (lines[-1] if lines else "")

    def describe(self, tag: str) -> dict:
        image = self.store.resolve(tag)
        openers = [lambda d=desc.digest: self.store.blobs.open(d) for desc in image.layers]
        return describe_image(image.config, openers, self.base_layers, self.base_history)

    def run(self, tag: str) -> dict:
        return _run_result([*self.cli, "run", "--rm", "--network=none", tag])

    def remove(self, tag: str) -> None:
        subprocess.run([*self.cli, "rmi", tag], capture_output=True)
