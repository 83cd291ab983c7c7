"""The hook contract of snnbench: every hook a plugin may implement.

Hooks are called with keyword arguments only. A plugin implements a hook by defining a
function of the same name decorated with `snnbench_suite.hookimpl`; it may accept any
subset of the arguments listed here. A function whose name starts with `snnbench_` but is
not listed here is an error naming the plugin (pluggy's check_pending).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from snnbench_suite.cells import Cell
    from snnbench_suite.specs import (
        ArchitectureSpec,
        DatasetSpec,
        ExecutorSpec,
        MethodSpec,
        TableSpec,
    )

PROJECT_NAME = "snnbench_suite"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --- registration: called once per plugin when the plugin manager is built ----------


@hookspec
def snnbench_register_methods(register: Callable[[MethodSpec], None]) -> None:
    """Register methods by calling `register(MethodSpec(...))` once per method.

    Called once, while the registries are built. `register` validates the spec at once
    (type, name, parameters) and records this plugin as its origin; it raises on a
    duplicate name. The return value is ignored.
    """


@hookspec
def snnbench_register_architectures(register: Callable[[ArchitectureSpec], None]) -> None:
    """Register architectures by calling `register(ArchitectureSpec(...))`.

    Called once, while the registries are built. The return value is ignored.
    """


@hookspec
def snnbench_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register datasets by calling `register(DatasetSpec(...))`.

    Called once, while the registries are built. The return value is ignored.
    """


@hookspec
def snnbench_register_tables(register: Callable[[TableSpec], None]) -> None:
    """Register table layouts by calling `register(TableSpec(...))`.

    Called once, while the registries are built. The return value is ignored.
    """


@hookspec
def snnbench_register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    """Register executors by calling `register(ExecutorSpec(...))` once per executor.

    An executor decides where the cells of a run execute: `snnbench run --executor NAME
    -j N` (or the matrix file's `executor:` section) picks it, `snnbench list executors`
    lists it. The runner groups the cells into work units (cells sharing a trained ANN go
    together) and calls `spec.run(request)` once per run with an ExecutorRequest;
    the executor hands each unit to `request.work` somewhere (a local process, a Slurm
    job, a Ray task), which writes the records itself, and reports each unit back with
    `request.unit_done` or, when its worker died, `request.unit_lost`.

    The built-in `local`, `slurm` and `ray` executors use exactly this hook. An executor
    whose optional dependency is missing is still registered: its `available()` says which
    extra to install. Called once, while the registries are built; the return value is
    ignored.
    """


# --- run events: called by the runner, in this order, for every cell it runs ---------


@hookspec
def snnbench_cell_started(cell: Cell) -> None:
    """Called just before `cell` runs (not for cells skipped because they are complete).

    Called in the process that runs the cell: the run's own process with `-j 1`, else a
    pool worker, Slurm job or Ray task, each of which loads the plugins itself.
    """


@hookspec
def snnbench_cell_finished(cell: Cell, record: dict[str, Any]) -> None:
    """Called after the record of `cell` is written, whatever its status (ok / failed).

    `record` is the dict that was written; treat it as read-only.
    """


# --- provenance -----------------------------------------------------------------------


@hookspec
def snnbench_environment_info() -> dict[str, Any]:  # type: ignore[empty-body]
    """Return a dict of facts about the environment, merged into every record's provenance.

    Called once per worker of a run (the `snnbench run` process itself with `-j 1`; each
    pool worker, Slurm job or Ray task otherwise), before its first cell. Keys from
    different plugins are merged; later plugins win.
    """
