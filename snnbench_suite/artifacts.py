"""Content-addressed cache of trained networks, so methods and runs that share an ANN train
it once, and a run repeated with a warm cache does not train its SNNs again.

Two kinds live side by side under the cache folder: `anns/` (the ANNs methods ask the
runner for) and `trained/` (networks a method trains itself through `ctx.train`, such as
TET's SNNs or CQ+'s retrained CNN). A network is stored as `<key>.safetensors` (weights
only: loading never unpickles objects) plus `<key>.json` holding the weights' SHA-256,
what training reported and what it is. The JSON is written last, so an artifact without
it is incomplete; one whose checksum does not match is corrupt. Both are ignored (and
then rebuilt by the caller). The key covers the code the network depends on
(`code_version`), so changed code never reuses stale weights.

Workers of one run, concurrent runs and cluster jobs share a cache folder: `lock(key)` is
held while a network is looked up, trained and stored, so each is trained once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from snnbench_suite.cells import canonical_json
from snnbench_suite.locking import FileLock, holder_info
from snnbench_suite.results import write_json_atomic

CACHE_FORMAT = "1"
_CORE_TRAINING_MODULES = ("train.py", "execute.py")


def artifact_key(parts: Any) -> str:
    return hashlib.sha256(canonical_json([CACHE_FORMAT, parts]).encode()).hexdigest()[:24]


@lru_cache(maxsize=256)
def _file_digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return "unreadable"


def _source_file(function: Callable[..., Any]) -> str | None:
    """The file defining `function` (or class), or None for built-in or generated code."""
    try:
        return inspect.getsourcefile(inspect.unwrap(function))
    except TypeError:
        return None


def code_version(*functions: Callable[..., Any]) -> dict[str, str]:
    """What the trained ANN depends on besides its configuration: torch's version, the
    source of snnbench's training code and of the module defining each function (e.g. the
    architecture's builder). Hashing the sources, not a release number, means an edited
    architecture retrains while an unrelated commit keeps the cache."""
    here = Path(__file__).resolve().parent
    version = {"torch": torch.__version__.split("+")[0]}
    for name in _CORE_TRAINING_MODULES:
        version[name] = _file_digest(str(here / name))
    for function in functions:
        target = inspect.unwrap(function)
        source = _source_file(target)
        label = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"
        version[label] = _file_digest(source) if source else "unknown"
    return version


def source_folder_version(*functions: Callable[..., Any]) -> dict[str, str]:
    """A digest of every Python source file in the package (folder) of each function's
    module: for trained networks, whose behaviour depends on helpers (surrogate gradients,
    neuron dynamics) that no single module holds."""
    version = {}
    for function in functions:
        source = _source_file(function)
        if not source:
            continue
        folder = Path(source).resolve().parent
        digest = hashlib.sha256()
        for path in sorted(folder.glob("*.py")):
            digest.update(f"{path.name}:{_file_digest(str(path))}|".encode())
        # Named by the package's import name: folder names alone can repeat.
        package = str(getattr(inspect.unwrap(function), "__module__", "")).rpartition(".")[0]
        version[package or str(folder)] = digest.hexdigest()[:16]
    return version


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """One stored network, as `snnbench cache list` shows it."""

    key: str
    size_bytes: int
    state: str  # "ok", "incomplete" (no metadata) or "corrupt" (checksum mismatch)
    about: dict[str, Any]
    top1: float | None
    created: str | None


def state_digest(model: torch.nn.Module) -> str:
    """A hash of a model's parameters and buffers (names, dtypes, shapes, values): the
    initial state of a network about to be trained, which its seed, architecture and
    method all shape."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes()
                      if value.numel() else b"")
    return digest.hexdigest()[:24]


CACHE_KINDS = ("anns", "trained")


class WeightCache:
    """Trained weights and what their training reported, under `root/<kind>/`."""

    def __init__(self, root: Path, kind: str = "anns") -> None:
        if kind not in CACHE_KINDS:
            raise ValueError(f"unknown cache kind {kind!r}; use one of {', '.join(CACHE_KINDS)}")
        self.kind = kind
        self.folder = root / kind

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.safetensors", self.folder / f"{key}.json"

    def lock(self, key: str) -> FileLock:
        """The lock of one entry; hold it to check, train and store that ANN."""
        return FileLock(self.folder / ".locks" / f"{key}.lock",
                        holder_info(artifact=f"{self.kind}/{key}"))

    def load(self, key: str, model: torch.nn.Module) -> dict[str, Any] | None:
        """Load the weights of `key` into `model` and return its info, or None when the
        artifact is absent, incomplete, corrupt or does not fit the model."""
        weights, meta_path = self._paths(key)
        if not weights.exists() or not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("sha256") != _sha256(weights):
                return None
            model.load_state_dict(load_file(str(weights)), strict=True)
        except (OSError, ValueError, RuntimeError, json.JSONDecodeError):
            return None  # a damaged artifact is rebuilt, never trusted
        info: dict[str, Any] = meta["info"]
        return info

    def store(self, key: str, model: torch.nn.Module, info: dict[str, Any],
              about: dict[str, Any] | None = None) -> None:
        weights, meta_path = self._paths(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {name: tensor.detach().cpu().contiguous()
                 for name, tensor in model.state_dict().items()}
        fd, tmp_name = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
        os.close(fd)
        try:
            save_file(state, tmp_name)
            with open(tmp_name, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp_name, weights)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        write_json_atomic(meta_path, {"sha256": _sha256(weights), "info": info,
                                      "about": about or {}, "created": created})

    def entries(self, verify: bool = True) -> list[CacheEntry]:
        """Every stored network; with `verify`, each checksum is recomputed."""
        if not self.folder.is_dir():
            return []
        found = []
        for weights in sorted(self.folder.glob("*.safetensors")):
            key = weights.stem
            meta_path = self.folder / f"{key}.json"
            size = weights.stat().st_size
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                found.append(CacheEntry(key, size, "incomplete", {}, None, None))
                continue
            state = "ok"
            if verify and meta.get("sha256") != _sha256(weights):
                state = "corrupt"
            info = meta.get("info") or {}
            top1 = info.get("top1")
            found.append(CacheEntry(key, size, state, meta.get("about") or {},
                                    float(top1) if top1 is not None else None,
                                    meta.get("created")))
        return found

    def clear(self) -> int:
        """Remove every stored network not being trained right now; returns how many went.

        An entry whose lock is held belongs to a running worker and is left alone."""
        if not self.folder.is_dir():
            return 0
        removed = 0
        for weights in sorted(self.folder.glob("*.safetensors")):
            key = weights.stem
            lock = self.lock(key)
            if not lock.acquire(blocking=False):
                continue
            try:
                for path in self._paths(key):
                    path.unlink(missing_ok=True)
                removed += 1
            finally:
                lock.release()
        for stray in self.folder.glob(".*.tmp"):  # left by a worker killed while storing
            key = stray.name[1:].split(".")[0]
            lock = self.lock(key)
            if lock.acquire(blocking=False):
                stray.unlink(missing_ok=True)
                lock.release()
        locks = self.folder / ".locks"
        if locks.is_dir() and not any(locks.iterdir()):
            shutil.rmtree(locks, ignore_errors=True)
        return removed
