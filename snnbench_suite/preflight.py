"""Before any cell runs: every architecture of the plan is built once for each dataset it
meets and fed one blank sample, so a model that cannot take the dataset's input (an input
smaller than it can take, a fixed image size) stops the run with exit 2 and a message,
instead of failing one cell per method and seed after others have trained."""

from __future__ import annotations

import torch

from snnbench_suite.cells import canonical_json
from snnbench_suite.errors import UsageError
from snnbench_suite.execute import CellRunner, RunSettings
from snnbench_suite.matrix import RunPlan
from snnbench_suite.plugins import Plugins
from snnbench_suite.progress import Reporter

# What a builder or a forward pass raises when the input does not fit the model: shapes
# too small for its pooling, a patch grid that does not divide, a fixed image size.
INPUT_MISMATCH = (ValueError, RuntimeError, AssertionError)


def check_architectures(plugins: Plugins, plan: RunPlan, settings: RunSettings) -> None:
    """Raise UsageError naming the architecture, the dataset and the builder's complaint
    for the first (architecture, width, dataset) of the plan that cannot take its input.
    Skipped cells are not checked; everything runs on the CPU, in the default precision."""
    runner = CellRunner(plugins, settings, Reporter())
    seen: set[str] = set()
    for cell in plan.cells:
        key = canonical_json([cell.architecture, cell.width, cell.dataset,
                              cell.dataset_params])
        if cell.cell_id in plan.skipped or key in seen:
            continue
        seen.add(key)
        data = runner.dataset(cell)
        build = runner.architecture_builder(cell, data)
        try:
            model = build().eval()
            with torch.no_grad():
                model(torch.zeros(1, *data.info.input_shape))
        except INPUT_MISMATCH as exc:
            shape = "x".join(str(n) for n in data.info.input_shape)
            reason = str(exc).rstrip(".")
            raise UsageError(
                f"architecture {cell.architecture!r} (width {cell.width}) cannot take "
                f"{cell.dataset}'s {shape} input: {reason}. Choose another architecture "
                f"for this dataset, or a dataset with larger inputs (`snnbench list "
                f"architectures` shows what each one is for).") from None
