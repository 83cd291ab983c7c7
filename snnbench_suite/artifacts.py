"""Content-addressed cache of trained ANNs, so methods and runs that share an ANN train it once.

An ANN is stored as `<key>.safetensors` (weights only: loading never unpickles objects)
plus `<key>.json` holding the weights' SHA-256 and the ANN's metrics. The JSON is written
last, so an artifact without it is incomplete; one whose checksum does not match is
corrupt. Both are ignored (and then rebuilt by the caller).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from snnbench_suite.cells import canonical_json
from snnbench_suite.results import write_json_atomic

CACHE_FORMAT = "1"


def artifact_key(parts: Any) -> str:
    return hashlib.sha256(canonical_json([CACHE_FORMAT, parts]).encode()).hexdigest()[:24]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class AnnCache:
    """Trained ANN weights and metrics under `root/anns/`."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "anns"

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.safetensors", self.folder / f"{key}.json"

    def load(self, key: str, model: torch.nn.Module) -> dict[str, Any] | None:
        """Load the weights of `key` into `model` and return its metrics, or None when the
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

    def store(self, key: str, model: torch.nn.Module, info: dict[str, Any]) -> None:
        weights, meta_path = self._paths(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {name: tensor.detach().cpu().contiguous()
                 for name, tensor in model.state_dict().items()}
        fd, tmp_name = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
        os.close(fd)
        try:
            save_file(state, tmp_name)
            os.replace(tmp_name, weights)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        write_json_atomic(meta_path, {"sha256": _sha256(weights), "info": info})
