"""A cell: one (method, architecture, dataset, seed, parameters) combination.

T is not part of the cell: the record of a cell holds one entry per T, so asking for more
T later runs only the missing ones. The cell id hashes the canonical cell together with
the method and dataset versions, so a behaviour change gives new cells.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Cell:
    method: str
    method_version: str
    architecture: str
    width: float
    dataset: str
    dataset_version: str
    seed: int
    method_params: dict[str, Any] = field(default_factory=dict, hash=False)
    dataset_params: dict[str, Any] = field(default_factory=dict, hash=False)
    epochs: int | None = None  # the --epochs override, or None for the defaults

    @property
    def cell_id(self) -> str:
        digest = hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()
        return f"{self.method}-{self.architecture}-{self.dataset}-s{self.seed}-{digest[:12]}"

    @property
    def label(self) -> str:
        return f"{self.method} / {self.architecture} / {self.dataset} / seed {self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        return cls(**data)
