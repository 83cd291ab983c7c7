"""snnbench: a plugin-based benchmark suite and leaderboard harness for spiking networks.

The public API for plugin authors is what this module exports.
"""

from snnbench_suite.hookspecs import hookimpl, hookspec
from snnbench_suite.specs import (
    AnnRecipe,
    ArchitectureRequest,
    ArchitectureSpec,
    DatasetInfo,
    DatasetRequest,
    DatasetSpec,
    DatasetSplits,
    MethodContext,
    MethodSpec,
    TableSpec,
    TrainConfig,
)

__all__ = [
    "AnnRecipe",
    "ArchitectureRequest",
    "ArchitectureSpec",
    "DatasetInfo",
    "DatasetRequest",
    "DatasetSpec",
    "DatasetSplits",
    "MethodContext",
    "MethodSpec",
    "TableSpec",
    "TrainConfig",
    "hookimpl",
    "hookspec",
]
