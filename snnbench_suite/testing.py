"""Helpers for testing plugins (and snnbench itself): a fresh plugin manager with extra
plugins registered, and the MethodContext a method gets for one cell of a run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from snnbench_suite.execute import CellRunner, RunSettings, seed_everything
from snnbench_suite.matrix import Overrides, build_plan
from snnbench_suite.plugins import Plugins, load_plugins
from snnbench_suite.progress import Reporter
from snnbench_suite.specs import MethodContext


def plugin_manager(*extra: tuple[str, object]) -> Plugins:
    """Installed plugins plus `extra` (name, module-or-object) pairs, strict loading."""
    return load_plugins(strict=True, extra=extra)


def method_context(
    plugins: Plugins,
    workdir: Path,
    *,
    method: str,
    architecture: str = "resnet20",
    dataset: str = "digits",
    T: int | None = 2,
    seed: int = 0,
    epochs: int | None = 1,
    overrides: Sequence[str] = (),
) -> MethodContext:
    """The context the runner hands `method` for one cell (its ANN trained if needed)."""
    plan = build_plan(plugins, methods=[method], architectures=[architecture],
                      datasets=[dataset], seeds=[seed], steps=[T or 1],
                      overrides=Overrides.parse(overrides), epochs=epochs)
    settings = RunSettings(results_dir=workdir / "results", cache_dir=workdir / "cache",
                           data_root=None, device=torch.device("cpu"))
    setup = CellRunner(plugins, settings, Reporter()).prepare(plan.cells[0])
    seed_everything(seed)
    return setup.context(T)


def run_cell(plugins: Plugins, workdir: Path, *, method: str, steps: Sequence[int],
             **cell: Any) -> dict[str, Any]:
    """Run one cell in-process and return its result (what the record's body holds)."""
    plan = build_plan(plugins, methods=[method],
                      architectures=[cell.get("architecture", "resnet20")],
                      datasets=[cell.get("dataset", "digits")], seeds=[cell.get("seed", 0)],
                      steps=list(steps), overrides=Overrides.parse(cell.get("overrides", ())),
                      epochs=cell.get("epochs", 1))
    settings = RunSettings(results_dir=workdir / "results", cache_dir=workdir / "cache",
                           data_root=None, device=torch.device("cpu"))
    return CellRunner(plugins, settings, Reporter()).run(plan.cells[0], list(steps))
