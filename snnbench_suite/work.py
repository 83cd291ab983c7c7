"""The worker side of a run: runs the cells of a work unit and writes their records.

`run_unit` is what every executor calls, in whatever process runs the unit (the
coordinator itself for `-j 1`, a pool worker, a Slurm job, a Ray task). It holds each
cell's lock while it runs the cell, re-reads the cell's record under that lock and runs
only what is missing, so concurrent runs on one results folder never run a cell twice
and never overwrite each other's work. Records are written atomically the moment a cell
finishes; a worker killed at any moment leaves either the old record or the new one.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from snnbench_suite.cells import Cell
from snnbench_suite.devices import WorkerDevice, assign_worker_device
from snnbench_suite.execute import CellRunner, RunSettings, resolve_recipe
from snnbench_suite.locking import FileLock, holder_info, read_holder
from snnbench_suite.plugins import Plugins, load_plugins
from snnbench_suite.progress import Reporter
from snnbench_suite.provenance import (
    config_hash,
    deterministic_flags,
    environment,
    make_deterministic,
    thread_counts,
)
from snnbench_suite.results import (
    SCHEMA_VERSION,
    STATUS_FAILED,
    STATUS_OK,
    RecordSchemaError,
    completed_steps,
    existing_record,
    write_record,
)
from snnbench_suite.specs import CellEvent, UnitOutcome, WorkUnit
from snnbench_suite.train import EpochReport

EventSink = Callable[[CellEvent], None]
OUTCOME_COMPLETE = "complete"  # the cell already had a complete record


def state_dir(results_dir: Path) -> Path:
    """Bookkeeping of runs inside a results folder (locks, run manifests, job logs);
    hidden, and not `*.json` at the top level, so it is never read as a record."""
    return results_dir / ".snnbench"


def cell_lock(results_dir: Path, cell: Cell) -> FileLock:
    return FileLock(state_dir(results_dir) / "locks" / f"{cell.cell_id}.lock",
                    holder_info(cell=cell.label))


def cell_holder(results_dir: Path, cell_id: str) -> dict[str, Any] | None:
    """Who runs `cell_id` right now (host, pid, since), or None."""
    return read_holder(state_dir(results_dir) / "locks" / f"{cell_id}.lock")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def pin_threads(threads: int | None) -> None:
    """Pin torch's thread pools, so N workers on one machine do not oversubscribe it."""
    if not threads:
        return
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # only settable before the first parallel work; harmless when it is late
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for libraries a cell starts later


def plugin_versions(plugins: Plugins) -> dict[str, dict[str, Any]]:
    return {s.name: {"distribution": s.distribution, "version": s.version}
            for s in plugins.statuses if s.status == "loaded"}


class EventReporter(Reporter):
    """What a CellRunner reports (epochs, messages), sent on as CellEvents of the cell
    that is running."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.cell: Cell | None = None

    def _event(self, kind: str, **fields: Any) -> None:
        cell = self.cell
        self.sink(CellEvent(kind=kind, cell_id=cell.cell_id if cell else None,
                            label=cell.label if cell else "", worker=worker_name(), **fields))

    def epoch(self, report: EpochReport) -> None:
        self._event("epoch", epoch=report)

    def message(self, text: str) -> None:
        self._event("message", text=text)


def from_earlier_run(previous: dict[str, Any] | None, items: list[dict[str, Any]]
                     ) -> list[dict[str, Any]]:
    """Entries (per-T results, builds) a resumed cell keeps from its previous record, each
    stamped with the run that computed it: the record's own provenance describes the run
    that finished it, which may be another commit. A stamp already there is kept."""
    if previous is None or not items:
        return items
    provenance = previous.get("provenance") or {}
    stamp = {"finished_at": previous.get("finished_at"), "git": provenance.get("git"),
             "snnbench_version": provenance.get("snnbench_version")}
    return [{**item, "computed_in": item.get("computed_in") or stamp} for item in items]


def base_record(plugins: Plugins, cell: Cell, steps: Sequence[int],
                env: dict[str, Any]) -> dict[str, Any]:
    method = plugins.methods.get(cell.method)
    dataset = plugins.datasets.get(cell.dataset)
    recipe = resolve_recipe(method, cell.method_params)
    # What configures the cell's numbers; not the T asked for (each T's number does not
    # depend on which other T were asked for).
    config = {
        "cell": cell.to_dict(),
        "method": {"version": method.version, "t_mode": method.t_mode},
        "ann_recipe": None if recipe is None else {
            "name": recipe.name, "version": recipe.version, "batch_norm": recipe.batch_norm,
            "training": None if recipe.training is None else vars(recipe.training)},
        "dataset_training": {"ann": vars(dataset.ann_training),
                             "snn": vars(dataset.snn_training)},
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "cell_id": cell.cell_id,
        "cell": cell.to_dict(),
        "requested_T": list(steps),
        "method": {
            "name": method.name, "family": method.family, "version": method.version,
            "t_mode": method.t_mode, "traits": dict(method.traits),
            "origin": plugins.methods.origin(cell.method),
            "ann_recipe": getattr(recipe, "name", None),
        },
        "architecture": {"name": cell.architecture, "width": cell.width,
                         "origin": plugins.architectures.origin(cell.architecture)},
        "provenance": {**env, "seed": cell.seed, "config_hash": config_hash(config),
                       "dataset_fingerprint": None, "worker": worker_name(),
                       "torch_threads": torch.get_num_threads(), "threads": thread_counts(),
                       "deterministic": deterministic_flags()},
    }


class UnitWorker:
    """Runs units in one process, keeping its plugins, environment and CellRunner."""

    def __init__(self, plugins: Plugins, settings: RunSettings) -> None:
        self.plugins = plugins
        self.settings = settings
        self.reporter = EventReporter(lambda event: None)
        self.runner = CellRunner(plugins, settings, self.reporter)
        self.env = environment(settings.device, plugin_versions(plugins))
        for extra in plugins.manager.hook.snnbench_environment_info():
            self.env.update(extra or {})

    def run(self, unit: WorkUnit, sink: EventSink) -> dict[str, str]:
        self.reporter.sink = sink
        self.runner.forget_anns()  # units share no ANN in memory; the disk cache has them
        results = self.settings.results_dir
        outcome: dict[str, str] = {}
        deferred: list[Cell] = []
        for cell in unit.cells:
            lock = cell_lock(results, cell)
            if not lock.acquire(blocking=False):
                deferred.append(cell)  # another run has it; come back once it is done
                continue
            try:
                outcome[cell.cell_id] = self.run_cell(cell, unit.steps, sink)
            finally:
                lock.release()
        for cell in deferred:
            holder = cell_holder(results, cell.cell_id) or {}
            self.reporter.cell = cell
            self.reporter.message(
                f"waiting for {cell.label}: run by {holder.get('host', '?')} "
                f"pid {holder.get('pid', '?')}")
            with cell_lock(results, cell):
                outcome[cell.cell_id] = self.run_cell(cell, unit.steps, sink)
        self.reporter.cell = None
        return outcome

    def run_cell(self, cell: Cell, steps: Sequence[int], sink: EventSink) -> str:
        """Run what `cell` misses (call with its lock held); returns the outcome."""
        results = self.settings.results_dir
        self.reporter.cell = cell
        try:
            previous = existing_record(results, cell.cell_id)
        except RecordSchemaError as exc:  # never overwrite a record we cannot read
            self.reporter.message(f"[red]not run[/] {cell.label}: {exc}")
            sink(CellEvent("cell_finished", cell.cell_id, cell.label, STATUS_FAILED,
                           worker=worker_name()))
            return STATUS_FAILED
        done = completed_steps(previous)
        missing = [t for t in steps if t not in done]
        if not missing:
            sink(CellEvent("cell_finished", cell.cell_id, cell.label, OUTCOME_COMPLETE,
                           worker=worker_name()))
            return OUTCOME_COMPLETE
        record = base_record(self.plugins, cell, steps, self.env)
        self.plugins.manager.hook.snnbench_cell_started(cell=cell)
        sink(CellEvent("cell_started", cell.cell_id, cell.label, worker=worker_name()))
        started = time.perf_counter()
        kept = from_earlier_run(previous, [e for e in (previous or {}).get("per_T", [])
                                           if int(e["T"]) in done])
        try:
            result = self.runner.run(cell, missing)
        except Exception as exc:  # one failing cell must not stop the matrix
            record.update(
                status=STATUS_FAILED, per_T=kept,
                error={"type": type(exc).__name__, "message": str(exc),
                       "traceback": traceback.format_exc(limit=20)},
            )
            self.reporter.message(f"[red]failed[/] {cell.label}: {type(exc).__name__}: {exc}")
        else:
            entries = {int(e["T"]): e for e in kept}
            entries.update({int(e["T"]): e for e in result.pop("per_T")})
            # The builds that produced the kept entries stay with them: per-T builds of
            # those T, and an anytime build (T None) when it served any of them.
            earlier_builds = from_earlier_run(previous, [
                b for b in (previous or {}).get("builds", [])
                if kept and (b.get("T") is None or int(b["T"]) in done)])
            builds = earlier_builds + list(result.pop("builds", []))
            record.update(status=STATUS_OK, error=None, **result, builds=builds,
                          per_T=[entries[t] for t in sorted(entries)])
            record["provenance"]["dataset_fingerprint"] = (
                (record.get("dataset") or {}).get("fingerprint"))
        record["timings"] = {**record.get("timings", {}),
                             "cell_s": round(time.perf_counter() - started, 3)}
        record["finished_at"] = now()
        write_record(results, record)
        self.plugins.manager.hook.snnbench_cell_finished(cell=cell, record=record)
        sink(CellEvent("cell_finished", cell.cell_id, cell.label, record["status"],
                       worker=worker_name()))
        return str(record["status"])


_WORKERS: dict[Any, UnitWorker] = {}


def _process_worker(unit: WorkUnit) -> UnitWorker:
    """This process's UnitWorker for the unit's plugins and settings (built once)."""
    key = (unit.strict_plugins, unit.disabled_plugins, repr(unit.settings))
    if key not in _WORKERS:
        plugins = load_plugins(strict=unit.strict_plugins, disabled=unit.disabled_plugins)
        _WORKERS[key] = UnitWorker(plugins, unit.settings)
    return _WORKERS[key]


def worker_device(settings: RunSettings, slot: tuple[int, int]) -> WorkerDevice:
    """The device and environment of worker `slot[0]` of `slot[1]` on one machine."""
    return assign_worker_device(slot[0], slot[1], settings.device, settings.gpus_per_cell)


def run_unit(unit: WorkUnit, events: EventSink | None = None, threads: int | None = None,
             slot: tuple[int, int] | None = None) -> UnitOutcome:
    """Run `unit` in this process: the `work` function of every ExecutorRequest.

    Loads the plugins (once per process), pins torch to `threads` threads, takes worker
    slot's GPU(s) when given, runs each cell under its lock and writes its record;
    returns cell id -> outcome. `events` receives live CellEvents when given.
    """
    if slot is not None:
        assigned = worker_device(unit.settings, slot)
        if assigned.env:  # before CUDA is first touched in this process
            os.environ.update(assigned.env)
            unit = replace(unit, settings=replace(unit.settings,
                                                  device=torch.device(assigned.device)))
    pin_threads(threads)
    make_deterministic()
    return _process_worker(unit).run(unit, events or (lambda event: None))
