"""CLI lists -> validated cells. Everything is checked before anything runs or is written.

Bad names (with did-you-mean), bad T, unknown --set keys and parameter values that fail a
method's own check are UsageErrors (exit 2).
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from snnbench_suite.cells import Cell, canonical_json
from snnbench_suite.errors import UsageError
from snnbench_suite.plugins import Plugins
from snnbench_suite.specs import DatasetRequest

DEFAULT_DATASET = "digits"
DEFAULT_ARCHITECTURE = "vgg11"


def split_list(text: str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise UsageError(f"{what}: expected a comma-separated list such as 'a,b', got {text!r}")
    return items


def parse_steps(text: str) -> tuple[list[int], list[str]]:
    """'1,2,4,32' -> [1, 2, 4, 32]; returns the sorted unique values and notes."""
    values: list[int] = []
    for item in split_list(text, "--T"):
        try:
            value = int(item)
        except ValueError:
            raise UsageError(
                f"--T: {item!r} is not a positive integer; give time steps like --T 1,2,4,32"
            ) from None
        if value < 1:
            raise UsageError(f"--T: {value} is not a positive integer (T >= 1)")
        values.append(value)
    notes = []
    unique = sorted(set(values))
    if len(unique) != len(values):
        duplicates = sorted({v for v in values if values.count(v) > 1})
        notes.append(f"--T: duplicate values {duplicates} are run once")
    return unique, notes


def parse_seeds(text: str) -> list[int]:
    seeds = []
    for item in split_list(text, "--seeds"):
        try:
            seed = int(item)
        except ValueError:
            raise UsageError(f"--seeds: {item!r} is not an integer") from None
        if seed < 0:
            raise UsageError(f"--seeds: {seed} is negative; seeds are integers >= 0")
        seeds.append(seed)
    return list(dict.fromkeys(seeds))


def _coerce(raw: str, default: Any, key: str) -> Any:
    """Parse `raw` as the type of the parameter's default."""
    try:
        if isinstance(default, bool):
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, str):
            return raw
    except ValueError:
        raise UsageError(
            f"--set {key}={raw}: expected a {type(default).__name__} like {default!r}"
        ) from None
    return yaml.safe_load(raw)


@dataclass
class Overrides:
    """Parsed --set values, keyed by target name (method, dataset or architecture)."""

    values: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, items: Sequence[str]) -> Overrides:
        values: dict[str, dict[str, str]] = {}
        for item in items:
            key, sep, raw = item.partition("=")
            target, dot, param = key.strip().rpartition(".")
            if not sep or not dot or not target or not param:
                raise UsageError(
                    f"--set {item!r}: expected NAME.PARAM=VALUE, e.g. --set robust.percentile=99.99"
                )
            values.setdefault(target, {})[param] = raw
        return cls(values)


def _resolve(target: str, declared: dict[str, Any], raw: dict[str, str]) -> dict[str, Any]:
    resolved = dict(declared)
    for param, value in raw.items():
        if param not in declared:
            close = difflib.get_close_matches(param, list(declared), n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            known = ", ".join(sorted(declared)) or "(none)"
            raise UsageError(
                f"--set {target}.{param}: {target!r} has no parameter {param!r}.{hint} "
                f"Its parameters: {known}."
            )
        resolved[param] = _coerce(value, declared[param], f"{target}.{param}")
    return resolved


@dataclass
class RunPlan:
    cells: list[Cell]
    steps: list[int]
    notes: list[str]


def build_plan(
    plugins: Plugins,
    *,
    methods: Sequence[str],
    architectures: Sequence[str],
    datasets: Sequence[str],
    seeds: Sequence[int],
    steps: Sequence[int],
    overrides: Overrides,
    epochs: int | None,
) -> RunPlan:
    """Validate every name and parameter and return the cells of the matrix."""
    method_specs = {name: plugins.methods.get(name) for name in dict.fromkeys(methods)}
    arch_specs = {name: plugins.architectures.get(name) for name in dict.fromkeys(architectures)}
    data_specs = {name: plugins.datasets.get(name) for name in dict.fromkeys(datasets)}
    if epochs is not None and epochs < 0:
        raise UsageError(f"--epochs: {epochs} is negative; give 0 or more")

    targets = set(method_specs) | set(arch_specs) | set(data_specs)
    for base in list(method_specs):  # '--set calib.x=' also reaches 'calib.light'
        targets.add(base.split(".")[0])
    unknown = sorted(set(overrides.values) - targets)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(targets), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UsageError(
            f"--set: {unknown[0]!r} is not a method, architecture or dataset of this run.{hint} "
            f"In this run: {', '.join(sorted(targets))}."
        )

    method_params: dict[str, dict[str, Any]] = {}
    for name, spec in method_specs.items():
        raw = dict(overrides.values.get(name.split(".")[0], {}) if "." in name else {})
        raw.update(overrides.values.get(name, {}))
        params = _resolve(name, dict(spec.params), raw)
        if spec.check_params is not None:
            try:
                spec.check_params(params)
            except ValueError as exc:
                raise UsageError(f"method {name!r}: {exc}") from None
        method_params[name] = params
    widths: dict[str, float] = {}
    for name, spec in arch_specs.items():
        width = _resolve(name, {"width": float(spec.default_width)},
                         overrides.values.get(name, {}))["width"]
        if not width > 0:
            raise UsageError(f"--set {name}.width={width}: the width multiplier must be > 0")
        widths[name] = width
    dataset_params = {
        name: _resolve(name, dict(spec.params), overrides.values.get(name, {}))
        for name, spec in data_specs.items()
    }

    cells = [
        Cell(
            method=m, method_version=method_specs[m].version,
            architecture=a, width=widths[a],
            dataset=d, dataset_version=data_specs[d].version,
            seed=s, method_params=method_params[m], dataset_params=dataset_params[d],
            epochs=epochs,
        )
        for d, a, m, s in itertools.product(data_specs, arch_specs, method_specs, seeds)
    ]
    return RunPlan(cells=cells, steps=list(steps), notes=[])


def check_datasets(plugins: Plugins, plan: RunPlan, *, data_root: Path | None,
                   cache_dir: Path) -> None:
    """Run each dataset's pre-flight `check` once per dataset and parameters, so missing
    files are a UsageError (exit 2) before any cell runs, not one failed cell per seed."""
    seen: set[str] = set()
    for cell in plan.cells:
        key = canonical_json([cell.dataset, cell.dataset_params])
        spec = plugins.datasets.get(cell.dataset)
        if key in seen or spec.check is None:
            continue
        seen.add(key)
        # The same request CellRunner.dataset builds: its cache lives in <cache>/datasets.
        spec.check(DatasetRequest(params=dict(cell.dataset_params), data_root=data_root,
                                  cache_dir=cache_dir / "datasets"))
