"""Runs the cells of a plan through an executor, one record per cell; resumes; isolates
failures.

The coordinator (this module) sorts the cells: those whose record already holds every
requested T are *cached*, incompatible ones get a *skipped* record with their reason, and
the rest are grouped into work units (cells sharing a trained ANN go together, so the ANN
is trained once, by one worker) and handed to the chosen executor. The workers write the
records (snnbench_suite.work); a unit whose worker died is reported back and its
unrecorded cells are recorded as failed with the reason, and the run goes on.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from snnbench_suite.cells import Cell, canonical_json
from snnbench_suite.errors import UsageError
from snnbench_suite.execute import RunSettings, resolve_recipe
from snnbench_suite.matrix import ResolvedExecutor, RunPlan
from snnbench_suite.plugins import Plugins
from snnbench_suite.progress import Reporter
from snnbench_suite.provenance import environment, make_deterministic
from snnbench_suite.results import (
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    RecordSchemaError,
    completed_steps,
    existing_record,
    write_json_atomic,
    write_record,
)
from snnbench_suite.specs import CellEvent, ExecutorRequest, UnitOutcome, WorkUnit
from snnbench_suite.train import with_epochs
from snnbench_suite.work import (
    OUTCOME_COMPLETE,
    UnitWorker,
    base_record,
    cell_holder,
    cell_lock,
    now,
    plugin_versions,
    run_unit,
    state_dir,
    worker_device,
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


# Worker outcome / record status -> the display's state of a cell.
_DISPLAY = {STATUS_OK: "done", STATUS_FAILED: "failed", STATUS_SKIPPED: "skipped",
            OUTCOME_COMPLETE: "cached"}


def ann_group_key(plugins: Plugins, cell: Cell) -> str | None:
    """Cells with equal keys need the same trained ANN (None: the cell trains none).

    The ANN cache key also covers the data's fingerprint and the code, known only once
    loaded; cells equal here are equal there for the same files and code."""
    method = plugins.methods.get(cell.method)
    recipe = resolve_recipe(method, cell.method_params)
    if recipe is None:
        return None
    dataset = plugins.datasets.get(cell.dataset)
    config = with_epochs(recipe.training or dataset.ann_training, cell.epochs)
    return canonical_json([cell.architecture, cell.width, cell.dataset, cell.dataset_version,
                           cell.dataset_params, recipe.name, recipe.version,
                           recipe.batch_norm, vars(config), cell.seed])


def group_cells(plugins: Plugins, cells: Sequence[Cell], jobs: int) -> list[list[Cell]]:
    """Cells sharing an ANN in one group; largest groups first. While there are fewer
    groups than workers, the largest is split: its halves wait on the ANN cache's lock, so
    the ANN is still trained once, and the cells after it run in parallel."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        key = ann_group_key(plugins, cell) or f"cell:{cell.cell_id}"
        groups.setdefault(key, []).append(cell)
    ordered = sorted(groups.values(), key=len, reverse=True)
    while len(ordered) < jobs and len(ordered[0]) > 1:
        largest = ordered.pop(0)
        half = (len(largest) + 1) // 2
        ordered = sorted([*ordered, largest[:half], largest[half:]], key=len, reverse=True)
    return ordered


def _unit_label(cells: Sequence[Cell]) -> str:
    first = cells[0]
    return (f"{first.architecture} / {first.dataset} / seed {first.seed}: "
            f"{', '.join(dict.fromkeys(c.method for c in cells))}")


class RunState:
    """The coordinator's view of every cell, fed by worker events, unit outcomes and the
    results folder; drives the display and the summary. Idempotent: the same news twice
    (a live event, then the unit's outcome) counts once."""

    def __init__(self, plugins: Plugins, settings: RunSettings, steps: Sequence[int],
                 reporter: Reporter) -> None:
        self.plugins = plugins
        self.settings = settings
        self.steps = list(steps)
        self.reporter = reporter
        self.cells: dict[str, Cell] = {}
        self.state: dict[str, str] = {}
        self.outcome: dict[str, str] = {}
        self._env: dict[str, Any] | None = None
        self.started_at = now()

    def add(self, cell: Cell, state: str = "pending") -> None:
        self.cells[cell.cell_id] = cell
        self.state[cell.cell_id] = state

    def final(self, cell_id: str) -> bool:
        return cell_id in self.outcome

    def set(self, cell_id: str, state: str, detail: str = "") -> None:
        if self.final(cell_id) or self.state.get(cell_id) == state:
            return
        self.state[cell_id] = state
        if state in _DISPLAY.values():
            self.outcome[cell_id] = state
        self.reporter.cell_state(cell_id, self.cells[cell_id].label, state, detail)

    # --- what executors call ----------------------------------------------------------

    def report(self, event: CellEvent) -> None:
        cell_id = event.cell_id
        if event.kind == "cell_started" and cell_id in self.cells:
            self.set(cell_id, "running", event.worker)
        elif event.kind == "cell_finished" and cell_id in self.cells:
            self.set(cell_id, _DISPLAY.get(event.status or "", "failed"))
        elif event.kind == "epoch" and event.epoch is not None:
            self.reporter.cell_epoch(cell_id or "", event.label, event.epoch)
        elif event.kind == "message":
            self.reporter.message(event.text)

    def unit_done(self, unit: WorkUnit, outcome: UnitOutcome) -> None:
        for cell_id, status in outcome.items():
            if cell_id in self.cells:
                self.set(cell_id, _DISPLAY.get(status, "failed"))
        self.unit_lost(unit, "its worker returned without running it",
                       [c for c in unit.cell_ids if c not in outcome])

    def unit_lost(self, unit: WorkUnit, reason: str,
                  cell_ids: Sequence[str] | None = None) -> None:
        for cell_id in unit.cell_ids if cell_ids is None else cell_ids:
            if cell_id in self.cells and not self.final(cell_id):
                self.set(cell_id, self.record_lost(self.cells[cell_id], reason), reason)

    def refresh(self) -> None:
        """Read the results folder: cells recorded or running elsewhere (cluster jobs)."""
        results = self.settings.results_dir
        for cell_id in self.cells:
            if self.final(cell_id):
                continue
            try:
                record = existing_record(results, cell_id)
            except Exception:  # noqa: BLE001 - a display refresh must not end the run
                record = None
            if record is not None and record.get("status") == STATUS_FAILED and \
                    record.get("finished_at", "") >= self.started_at:
                self.set(cell_id, "failed")
            elif record is not None and set(self.steps) <= completed_steps(record) and \
                    record.get("finished_at", "") >= self.started_at:
                self.set(cell_id, "done")
            elif cell_holder(results, cell_id) is not None:
                self.set(cell_id, "running")

    # --- records the coordinator writes -------------------------------------------------

    @property
    def env(self) -> dict[str, Any]:
        if self._env is None:
            self._env = environment(self.settings.device, plugin_versions(self.plugins))
        return self._env

    def record_lost(self, cell: Cell, reason: str) -> str:
        """Record `cell` as failed with `reason`, unless it has a complete record or
        another process holds it now; returns the display state."""
        results = self.settings.results_dir
        lock = cell_lock(results, cell)
        if not lock.acquire(blocking=False):
            return "running"
        try:
            previous = existing_record(results, cell.cell_id)
            done = completed_steps(previous)
            if set(self.steps) <= done:
                return "done"
            record = base_record(self.plugins, cell, self.steps, self.env)
            record.update(
                status=STATUS_FAILED,
                per_T=[e for e in (previous or {}).get("per_T", []) if int(e["T"]) in done],
                error={"type": "WorkerLost", "message": reason}, finished_at=now())
            write_record(results, record)
            return "failed"
        finally:
            lock.release()

    def write_skipped(self, cell: Cell, reason: str) -> None:
        results = self.settings.results_dir
        with cell_lock(results, cell):
            previous = existing_record(results, cell.cell_id)
            if previous is not None and previous.get("status") == STATUS_SKIPPED and \
                    (previous.get("error") or {}).get("message") == reason:
                return
            record = base_record(self.plugins, cell, self.steps, self.env)
            record.update(status=STATUS_SKIPPED, per_T=[], finished_at=now(),
                          error={"type": "Incompatible", "message": reason})
            write_record(results, record)

    def summary(self) -> RunSummary:
        summary = RunSummary()
        lists = {"done": summary.ran, "cached": summary.complete, "failed": summary.failed,
                 "skipped": summary.skipped}
        for cell_id in self.cells:
            lists.get(self.outcome.get(cell_id, "failed"), summary.failed).append(cell_id)
        return summary


def _write_manifest(path: Path, plan: RunPlan, executor: ResolvedExecutor,
                    state: RunState, finished: bool) -> None:
    """What `snnbench status` reads: the run's cells, so it can tell pending ones."""
    write_json_atomic(path, {
        "started": state.started_at, "finished": now() if finished else None,
        "host": socket.gethostname(), "pid": os.getpid(),
        "executor": executor.spec.name, "jobs": executor.jobs, "steps": plan.steps,
        "cells": [{"cell_id": c.cell_id, "label": c.label} for c in plan.cells],
        "states": dict(state.state) if finished else None,
    })


def _refuse_unreadable_records(plan: RunPlan, settings: RunSettings) -> None:
    """A cell whose record has a schema this snnbench cannot read is neither re-run (that
    would overwrite it) nor taken as done: the run stops before it starts (exit 2)."""
    problems = []
    for cell in plan.cells:
        try:
            existing_record(settings.results_dir, cell.cell_id)
        except RecordSchemaError as exc:
            problems.append(str(exc))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UsageError(f"{problems[0]}{more}")


def run_plan(plan: RunPlan, plugins: Plugins, settings: RunSettings, reporter: Reporter,
             executor: ResolvedExecutor | None = None, *, strict_plugins: bool = False,
             disabled_plugins: Sequence[str] = ()) -> RunSummary:
    """Run every cell of `plan` that is not recorded yet; return what happened."""
    from snnbench_suite.matrix import resolve_executor

    make_deterministic()
    executor = executor or resolve_executor(plugins, "local", {}, jobs=1)
    # Workers elsewhere (a Slurm node, a Ray worker) may start in another folder.
    settings = replace(settings, results_dir=settings.results_dir.resolve(),
                       cache_dir=settings.cache_dir.resolve(),
                       data_root=settings.data_root.resolve() if settings.data_root else None)
    _refuse_unreadable_records(plan, settings)
    state = RunState(plugins, settings, plan.steps, reporter)
    for cell in plan.cells:
        state.add(cell)
    reporter.run_started([(c.cell_id, c.label) for c in plan.cells], executor.jobs)
    manifest = state_dir(settings.results_dir) / "runs" / (
        f"{time.strftime('%Y%m%d-%H%M%S')}-{socket.gethostname()}-{os.getpid()}.json")
    _write_manifest(manifest, plan, executor, state, finished=False)
    try:
        pending = []
        for cell in plan.cells:
            if set(plan.steps) <= completed_steps(existing_record(settings.results_dir,
                                                                  cell.cell_id)):
                state.set(cell.cell_id, "cached")
            elif cell.cell_id in plan.skipped:
                state.write_skipped(cell, plan.skipped[cell.cell_id])
                state.set(cell.cell_id, "skipped", plan.skipped[cell.cell_id])
            else:
                pending.append(cell)
        groups = group_cells(plugins, pending, executor.jobs) if pending else []
        units = tuple(
            WorkUnit(index=i, cells=tuple(cells), steps=tuple(plan.steps), settings=settings,
                     label=_unit_label(cells), strict_plugins=strict_plugins,
                     disabled_plugins=tuple(disabled_plugins))
            for i, cells in enumerate(groups))
        if units:
            here = UnitWorker(plugins, settings)
            request = ExecutorRequest(
                units=units, work=run_unit,
                work_here=lambda unit: here.run(unit, state.report),
                jobs=executor.jobs, params=dict(executor.params),
                results_dir=settings.results_dir, scratch_dir=state_dir(settings.results_dir),
                unit_done=state.unit_done, unit_lost=state.unit_lost, report=state.report,
                refresh=state.refresh,
                worker_env=lambda i, n: worker_device(settings, (i, n)).env,
            )
            executor.spec.run(request)
        for unit in units:  # an executor that returned early still leaves no cell unrecorded
            state.unit_lost(unit, f"the {executor.spec.name} executor returned without "
                            "running it", [c for c in unit.cell_ids if not state.final(c)])
    finally:
        reporter.run_finished()
    _write_manifest(manifest, plan, executor, state, finished=True)
    return state.summary()
