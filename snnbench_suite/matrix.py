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
from snnbench_suite.matrix_file import Entry
from snnbench_suite.plugins import Plugins
from snnbench_suite.specs import DatasetRequest, DatasetSpec, ExecutorSpec, MethodSpec

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


def _unknown_param(target: str, param: str, declared: dict[str, Any], where: str) -> UsageError:
    close = difflib.get_close_matches(param, list(declared), n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    known = ", ".join(sorted(declared)) or "(none)"
    return UsageError(f"{where}: {target!r} has no parameter {param!r}.{hint} "
                      f"Its parameters: {known}.")


def _typed(value: Any, default: Any, where: str) -> Any:
    """A value from a matrix file, checked against the type of its default."""
    if default is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, list)
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
    else:
        ok = True
    if not ok:
        raise UsageError(f"{where}: expected a {type(default).__name__} like {default!r}, "
                         f"got {value!r}")
    return value


def _resolve(target: str, declared: dict[str, Any], raw: dict[str, str],
             entry: Entry | None = None) -> dict[str, Any]:
    """Defaults, then the values the matrix file gives `entry`, then --set overrides."""
    resolved = dict(declared)
    for param, value in (entry.params if entry else {}).items():
        where = entry.locate(param) if entry else ""
        if param not in declared:
            raise _unknown_param(target, param, declared, where)
        resolved[param] = _typed(value, declared[param], where)
    for param, value in raw.items():
        if param not in declared:
            raise _unknown_param(target, param, declared, f"--set {target}.{param}")
        resolved[param] = _coerce(value, declared[param], f"{target}.{param}")
    return resolved


@dataclass
class RunPlan:
    cells: list[Cell]
    steps: list[int]
    notes: list[str]
    # cell id -> why the cell cannot run (e.g. a method that cannot take event data)
    skipped: dict[str, str] = field(default_factory=dict)


def _entries(items: Sequence[str | Entry]) -> list[Entry]:
    return [item if isinstance(item, Entry) else Entry(item) for item in items]


def _get(registry: Any, entry: Entry) -> Any:
    """The spec an entry names; a matrix file's error says where the name is."""
    try:
        return registry.get(entry.name)
    except UsageError as exc:
        if entry.where:
            raise UsageError(f"{entry.where}: {exc}") from None
        raise


def incompatibility(method: MethodSpec, dataset: DatasetSpec) -> str | None:
    """Why `method` cannot run on `dataset`, or None."""
    if dataset.modality not in method.modalities:
        return (f"method {method.name!r} supports {', '.join(method.modalities)} data; "
                f"dataset {dataset.name!r} is {dataset.modality}")
    if dataset.task not in method.tasks:
        return (f"method {method.name!r} supports {', '.join(method.tasks)}; "
                f"dataset {dataset.name!r} is {dataset.task}")
    return None


# A classification architecture A paired with a detection dataset runs as the detector
# `det.A` (FCOS-style head on A's features) when such an architecture is registered; the
# built-in `det` family (snnbench_architectures.detection) serves every built-in backbone.
DETECTOR_FAMILY = "det"


def architecture_for(plugins: Plugins, name: str, dataset: DatasetSpec) -> str:
    """The architecture a cell of `dataset` runs for the requested `name`: `name` itself,
    or `det.<name>` when `name` cannot do the dataset's task and the detector can."""
    if dataset.task in plugins.architectures.get(name).tasks:
        return name
    wrapped = f"{DETECTOR_FAMILY}.{name}"
    try:
        spec = plugins.architectures.get(wrapped)
    except UsageError:
        return name
    return wrapped if dataset.task in spec.tasks else name


def architecture_incompatibility(plugins: Plugins, name: str, dataset: DatasetSpec
                                 ) -> str | None:
    """Why architecture `name` cannot run on `dataset` (another task), or None."""
    tasks = plugins.architectures.get(name).tasks
    if dataset.task in tasks:
        return None
    return (f"architecture {name!r} is for {', '.join(tasks)}; dataset {dataset.name!r} is "
            f"{dataset.task}")


def build_plan(
    plugins: Plugins,
    *,
    methods: Sequence[str | Entry],
    architectures: Sequence[str | Entry],
    datasets: Sequence[str | Entry],
    seeds: Sequence[int],
    steps: Sequence[int],
    overrides: Overrides,
    epochs: int | None,
) -> RunPlan:
    """Validate every name and parameter and return the cells of the matrix.

    Names are strings (CLI lists) or Entries (a matrix file: a name with parameters and
    the place it was written, so errors point at it). Incompatible (method, dataset)
    pairs become skipped cells with their reason."""
    method_entries = _entries(methods)
    arch_entries = _entries(architectures)
    data_entries = _entries(datasets)
    method_specs = [(e, _get(plugins.methods, e)) for e in method_entries]
    arch_specs = [(e, _get(plugins.architectures, e)) for e in arch_entries]
    data_specs = [(e, _get(plugins.datasets, e)) for e in data_entries]
    if epochs is not None and epochs < 0:
        raise UsageError(f"--epochs: {epochs} is negative; give 0 or more")

    targets = {e.name for e in [*method_entries, *arch_entries, *data_entries]}
    for entry in method_entries:  # '--set calib.x=' also reaches 'calib.light'
        targets.add(entry.name.split(".")[0])
    unknown = sorted(set(overrides.values) - targets)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(targets), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UsageError(
            f"--set: {unknown[0]!r} is not a method, architecture or dataset of this run.{hint} "
            f"In this run: {', '.join(sorted(targets))}."
        )

    resolved_methods: list[tuple[MethodSpec, dict[str, Any]]] = []
    for entry, spec in method_specs:
        name = entry.name
        raw = dict(overrides.values.get(name.split(".")[0], {}) if "." in name else {})
        raw.update(overrides.values.get(name, {}))
        params = _resolve(name, dict(spec.params), raw, entry)
        if spec.check_params is not None:
            try:
                spec.check_params(params)
            except ValueError as exc:
                where = f"{entry.where}: " if entry.where else ""
                raise UsageError(f"{where}method {name!r}: {exc}") from None
        resolved_methods.append((spec, params))
    widths: list[tuple[str, float]] = []
    for entry, spec in arch_specs:
        width = _resolve(entry.name, {"width": float(spec.default_width)},
                         overrides.values.get(entry.name, {}), entry)["width"]
        if not width > 0:
            where = entry.locate("width") or f"--set {entry.name}.width={width}"
            raise UsageError(f"{where}: the width multiplier must be > 0")
        widths.append((entry.name, width))
    resolved_data = [
        (spec, _resolve(entry.name, dict(spec.params), overrides.values.get(entry.name, {}),
                        entry))
        for entry, spec in data_specs
    ]

    cells: list[Cell] = []
    skipped: dict[str, str] = {}
    for (dspec, dparams), (arch, width), (mspec, mparams), seed in itertools.product(
            resolved_data, widths, resolved_methods, seeds):
        cell = Cell(method=mspec.name, method_version=mspec.version,
                    architecture=architecture_for(plugins, arch, dspec), width=width,
                    dataset=dspec.name, dataset_version=dspec.version,
                    seed=seed, method_params=mparams, dataset_params=dparams, epochs=epochs)
        if any(c.cell_id == cell.cell_id for c in cells):
            continue  # the same cell named twice runs once
        cells.append(cell)
        reason = (incompatibility(mspec, dspec)
                  or architecture_incompatibility(plugins, cell.architecture, dspec))
        if reason is not None:
            skipped[cell.cell_id] = reason
    return RunPlan(cells=cells, steps=list(steps), notes=[], skipped=skipped)


@dataclass(frozen=True)
class ResolvedExecutor:
    """The executor of a run with its checked parameters and worker count."""

    spec: ExecutorSpec
    params: dict[str, Any]
    jobs: int


def resolve_executor(plugins: Plugins, name: str | Entry, raw: dict[str, str],
                     jobs: int) -> ResolvedExecutor:
    """Check the executor (installed? parameters?) before anything runs."""
    entry = name if isinstance(name, Entry) else Entry(name)
    spec: ExecutorSpec = _get(plugins.executors, entry)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"-j: {jobs!r} workers; give an integer >= 1")
    missing = spec.available() if spec.available is not None else None
    if missing:
        raise UsageError(f"executor {spec.name!r} cannot run here: {missing}")
    params = _resolve(spec.name, dict(spec.params), raw, entry)
    if spec.check_params is not None:
        try:
            spec.check_params(params)
        except ValueError as exc:
            raise UsageError(f"executor {spec.name!r}: {exc}") from None
    if spec.preflight is not None:
        spec.preflight(params)
    return ResolvedExecutor(spec=spec, params=params, jobs=jobs)


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
