"""`snnbench verify`: re-run recorded cells and list every metric that differs.

On CPU with deterministic settings a cell gives the same numbers every time, so any
difference is a finding: changed code, a changed environment, or a tampered record.
Each cell is re-run from scratch by default (a fresh cache), pinned to the torch thread
count its record was made with (CPU reductions can depend on it). With `--use-cache` the
ANNs come from that cache, but what methods train themselves is always trained again:
loading it would only re-check the evaluation.
"""

from __future__ import annotations

import math
import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from snnbench_suite.cells import Cell
from snnbench_suite.errors import UsageError
from snnbench_suite.execute import CellRunner, RunSettings
from snnbench_suite.plugins import Plugins
from snnbench_suite.progress import Reporter
from snnbench_suite.provenance import make_deterministic
from snnbench_suite.results import STATUS_OK, load_records

# Keys that describe how long or where, not what was computed.
_IGNORED = {"source", "seconds", "seconds_per_epoch", "started_at", "finished_at"}
_IGNORED_PARTS = ("seconds", "time", "latency", "throughput", "wall")


def _ignored(key: str) -> bool:
    lowered = key.lower()
    return (lowered in _IGNORED or lowered.endswith("_s") or lowered.endswith("_ms")
            or any(part in lowered for part in _IGNORED_PARTS))


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key in sorted(value):
            if not _ignored(str(key)):
                yield from _leaves(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def metrics_of(record: dict[str, Any]) -> dict[str, Any]:
    """Every computed value of a record: per T, the ANN's, and what each build noted."""
    found: dict[str, Any] = {}
    for entry in record.get("per_T") or []:
        found.update(_leaves({k: v for k, v in entry.items() if k != "T"},
                             f"T={entry.get('T')}"))
    found.update(_leaves(record.get("ann") or {}, "ann"))
    for i, build in enumerate(record.get("builds") or []):
        found.update(_leaves(build, f"builds[{i}]"))
    return found


def _same(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return a == b or abs(a - b) <= tolerance
    return bool(a == b)


@dataclass(frozen=True)
class Difference:
    cell_id: str
    label: str
    metric: str
    recorded: Any
    rerun: Any


@dataclass
class VerifyReport:
    checked: list[str]
    compared: int
    differences: list[Difference]
    notes: list[str]


def choose(records: list[dict[str, Any]], sample: int, seed: int) -> list[dict[str, Any]]:
    ok = [r for r in records if r.get("status") == STATUS_OK and r.get("per_T")]
    if not ok:
        raise UsageError("no complete records to verify; run `snnbench run` first")
    if sample >= len(ok):
        return ok
    return random.Random(seed).sample(ok, sample)


def verify(plugins: Plugins, results_dir: Path, *, sample: int, seed: int,
           settings: RunSettings, tolerance: float = 0.0, fresh_cache: bool = True,
           progress: Callable[[str], None] = lambda text: None) -> VerifyReport:
    if sample < 1:
        raise UsageError(f"--sample: {sample}; give the number of cells to re-run (>= 1)")
    chosen = choose(load_records(results_dir), sample, seed)
    make_deterministic()
    report = VerifyReport(checked=[], compared=0, differences=[], notes=[])
    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="snnbench-verify-") as scratch:
        run_settings = replace(settings, results_dir=Path(scratch) / "results")
        run_settings = replace(run_settings, trained_cache_dir=Path(scratch) / "trained")
        if fresh_cache:
            run_settings = replace(run_settings, cache_dir=Path(scratch) / "cache")
        for record in chosen:
            cell = Cell.from_dict(record["cell"])
            method = plugins.methods.get(cell.method)
            if method.version != cell.method_version:
                report.notes.append(f"{cell.label}: recorded with method version "
                                    f"{cell.method_version}, now {method.version}; not re-run")
                continue
            provenance = record.get("provenance") or {}
            threads = provenance.get("torch_threads")
            torch.set_num_threads(int(threads) if threads else default_threads)
            steps = sorted(int(e["T"]) for e in record["per_T"])
            progress(f"re-running {cell.label} at T = {', '.join(map(str, steps))}")
            result = CellRunner(plugins, run_settings, Reporter()).run(cell, steps)
            before, after = metrics_of(record), metrics_of(result)
            report.checked.append(cell.cell_id)
            for metric in sorted(set(before) | set(after)):
                report.compared += 1
                a, b = before.get(metric), after.get(metric)
                if not _same(a, b, tolerance):
                    report.differences.append(Difference(cell.cell_id, cell.label, metric, a, b))
            if str(provenance.get("device", "cpu")) != str(run_settings.device):
                report.notes.append(f"{cell.label}: recorded on {provenance.get('device')}, "
                                    f"re-run on {run_settings.device}; numbers may differ")
            if provenance.get("torch") not in (None, torch.__version__):
                report.notes.append(f"{cell.label}: recorded with torch "
                                    f"{provenance.get('torch')}, re-run with {torch.__version__}")
    torch.set_num_threads(default_threads)
    return report
