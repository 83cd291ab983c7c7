"""Runs the cells of a plan, one record per cell; resumes; isolates failures.

A cell whose record already holds every requested T is not run again. A cell that raises
is recorded as failed with its error and the run goes on. Each record is written the
moment its cell finishes.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from snnbench_suite.cells import Cell
from snnbench_suite.execute import CellRunner, RunSettings, resolve_recipe
from snnbench_suite.matrix import RunPlan
from snnbench_suite.plugins import Plugins
from snnbench_suite.progress import Reporter
from snnbench_suite.provenance import environment
from snnbench_suite.results import (
    SCHEMA_VERSION,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    completed_steps,
    existing_record,
    write_record,
)


@dataclass
class RunSummary:
    ran: list[str] = field(default_factory=list)
    complete: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _incompatibility(plugins: Plugins, cell: Cell) -> str | None:
    method = plugins.methods.get(cell.method)
    dataset = plugins.datasets.get(cell.dataset)
    if dataset.modality not in method.modalities:
        return (f"method {cell.method!r} supports {', '.join(method.modalities)} data; "
                f"dataset {cell.dataset!r} is {dataset.modality}")
    if dataset.task not in method.tasks:
        return (f"method {cell.method!r} supports {', '.join(method.tasks)}; "
                f"dataset {cell.dataset!r} is {dataset.task}")
    return None


def _plugin_versions(plugins: Plugins) -> dict[str, str | None]:
    return {s.distribution or s.name: s.version for s in plugins.statuses if s.status == "loaded"}


def _base_record(plugins: Plugins, cell: Cell, steps: Sequence[int],
                 env: dict[str, Any]) -> dict[str, Any]:
    method = plugins.methods.get(cell.method)
    return {
        "schema_version": SCHEMA_VERSION,
        "cell_id": cell.cell_id,
        "cell": cell.to_dict(),
        "requested_T": list(steps),
        "method": {
            "name": method.name, "family": method.family, "version": method.version,
            "t_mode": method.t_mode, "traits": dict(method.traits),
            "origin": plugins.methods.origin(cell.method),
            "ann_recipe": getattr(resolve_recipe(method, cell.method_params), "name", None),
        },
        "architecture": {"name": cell.architecture, "width": cell.width,
                         "origin": plugins.architectures.origin(cell.architecture)},
        "provenance": {**env, "seed": cell.seed},
    }


def run_plan(plan: RunPlan, plugins: Plugins, settings: RunSettings,
             reporter: Reporter) -> RunSummary:
    torch.use_deterministic_algorithms(True, warn_only=True)
    env = environment(settings.device, _plugin_versions(plugins))
    for extra in plugins.manager.hook.snnbench_environment_info():
        env.update(extra or {})
    runner = CellRunner(plugins, settings, reporter)
    summary = RunSummary()
    reporter.run_started(len(plan.cells))
    try:
        for cell in plan.cells:
            _run_one(cell, plan, plugins, settings, reporter, runner, env, summary)
    finally:
        reporter.run_finished()
    return summary


def _run_one(cell: Cell, plan: RunPlan, plugins: Plugins, settings: RunSettings,
             reporter: Reporter, runner: CellRunner, env: dict[str, Any],
             summary: RunSummary) -> None:
    previous = existing_record(settings.results_dir, cell.cell_id)
    done = completed_steps(previous)
    missing = [t for t in plan.steps if t not in done]
    if not missing:
        summary.complete.append(cell.cell_id)
        reporter.cell_complete(cell.label)
        return
    record = _base_record(plugins, cell, plan.steps, env)
    reason = _incompatibility(plugins, cell)
    if reason is not None:
        record.update(status=STATUS_SKIPPED, error={"type": "Incompatible", "message": reason},
                      per_T=[], finished_at=_now())
        write_record(settings.results_dir, record)
        summary.skipped.append(cell.cell_id)
        reporter.cell_finished(cell.label, "skipped")
        return
    plugins.manager.hook.snnbench_cell_started(cell=cell)
    reporter.cell_started(cell.label)
    started = time.perf_counter()
    kept = [e for e in (previous or {}).get("per_T", []) if int(e["T"]) in done]
    try:
        result = runner.run(cell, missing)
    except Exception as exc:  # one failing cell must not stop the matrix
        record.update(
            status=STATUS_FAILED, per_T=kept,
            error={"type": type(exc).__name__, "message": str(exc),
                   "traceback": traceback.format_exc(limit=20)},
        )
        summary.failed.append(cell.cell_id)
        reporter.message(f"[red]failed[/] {cell.label}: {type(exc).__name__}: {exc}")
    else:
        entries = {int(e["T"]): e for e in kept}
        entries.update({int(e["T"]): e for e in result.pop("per_T")})
        record.update(status=STATUS_OK, error=None, **result,
                      per_T=[entries[t] for t in sorted(entries)])
        summary.ran.append(cell.cell_id)
    record["timings"] = {**record.get("timings", {}),
                         "cell_s": round(time.perf_counter() - started, 3)}
    record["finished_at"] = _now()
    write_record(settings.results_dir, record)
    reporter.cell_finished(cell.label, record["status"])
    plugins.manager.hook.snnbench_cell_finished(cell=cell, record=record)
