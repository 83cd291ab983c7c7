"""snnbench: a plugin-based benchmark suite and leaderboard harness for spiking networks.

The public API is exactly what this module exports (`__all__`): the hookimpl marker, the
spec classes a plugin registers, the errors it may raise, the spiking toolkit `snn` and
the detection toolkit `detection` (subpackages with their own `__all__`), a few
evaluation and table helpers, and `testing` for plugin authors' tests. Every other module
(`snnbench_suite.runner`, `.plugins`, `.execute`, ...) is private: it may change in any
release. docs/plugins.md is the reference.

The heavy parts (torch, pandas) are imported on first use, so `import snnbench_suite` and
the plugin loading stay cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from snnbench_suite.cells import Cell
from snnbench_suite.errors import (
    ConversionError,
    DataCorruptError,
    DataMissingError,
    DuplicateNameError,
    InvalidSpecError,
    PluginError,
    SnnbenchError,
    TrainingDivergedError,
    UnknownNameError,
    UsageError,
)
from snnbench_suite.hookspecs import PROJECT_NAME as ENTRY_POINT_GROUP
from snnbench_suite.hookspecs import hookimpl
from snnbench_suite.specs import (
    AnnRecipe,
    ArchitectureRequest,
    ArchitectureSpec,
    CellEvent,
    DatasetInfo,
    DatasetRequest,
    DatasetSpec,
    DatasetSplits,
    ExecutorRequest,
    ExecutorSpec,
    MethodContext,
    MethodSpec,
    TableSpec,
    TrainConfig,
    WorkUnit,
)

if TYPE_CHECKING:
    from snnbench_suite import detection, snn, testing
    from snnbench_suite.evaluation import evaluate_ann, input_sequence
    from snnbench_suite.tables import mean_std_cell

# name -> (module, attribute or None for the module itself), imported on first access.
_LAZY: dict[str, tuple[str, str | None]] = {
    "snn": ("snnbench_suite.snn", None),
    "detection": ("snnbench_suite.detection", None),
    "testing": ("snnbench_suite.testing", None),
    "evaluate_ann": ("snnbench_suite.evaluation", "evaluate_ann"),
    "input_sequence": ("snnbench_suite.evaluation", "input_sequence"),
    "mean_std_cell": ("snnbench_suite.tables", "mean_std_cell"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'snnbench_suite' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ENTRY_POINT_GROUP",
    "AnnRecipe",
    "ArchitectureRequest",
    "ArchitectureSpec",
    "Cell",
    "CellEvent",
    "ConversionError",
    "DataCorruptError",
    "DataMissingError",
    "DatasetInfo",
    "DatasetRequest",
    "DatasetSpec",
    "DatasetSplits",
    "DuplicateNameError",
    "ExecutorRequest",
    "ExecutorSpec",
    "InvalidSpecError",
    "MethodContext",
    "MethodSpec",
    "PluginError",
    "SnnbenchError",
    "TableSpec",
    "TrainConfig",
    "TrainingDivergedError",
    "UnknownNameError",
    "UsageError",
    "WorkUnit",
    "detection",
    "evaluate_ann",
    "hookimpl",
    "input_sequence",
    "mean_std_cell",
    "snn",
    "testing",
]
