"""An example snnbench plugin: one conversion method (`example_halfinit`), one
architecture (`example_lenet`) and one table layout (`example_latency`).

snnbench finds this module through the entry point `example_plugin` in the group
`snnbench_suite` (see pyproject.toml) and calls the hookimpls below once each, while it
builds its registries. Everything imported from snnbench is its public API: names
exported by the top-level `snnbench_suite` package.
"""

from __future__ import annotations

from collections.abc import Callable

from snnbench_example_plugin.architecture import EXAMPLE_LENET
from snnbench_example_plugin.method import EXAMPLE_HALFINIT
from snnbench_example_plugin.table import EXAMPLE_LATENCY
from snnbench_suite import ArchitectureSpec, MethodSpec, TableSpec, hookimpl

__version__ = "0.1.0"


@hookimpl
def snnbench_register_methods(register: Callable[[MethodSpec], None]) -> None:
    register(EXAMPLE_HALFINIT)


@hookimpl
def snnbench_register_architectures(register: Callable[[ArchitectureSpec], None]) -> None:
    register(EXAMPLE_LENET)


@hookimpl
def snnbench_register_tables(register: Callable[[TableSpec], None]) -> None:
    register(EXAMPLE_LATENCY)
