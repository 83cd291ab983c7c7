"""Built-in table layouts of snnbench."""

from collections.abc import Callable

from snnbench_suite import TableSpec, hookimpl
from snnbench_tables.layouts import CURVE, LEADERBOARD, RECORDS
from snnbench_tables.paper_layouts import ABLATION, CALIBRATION, COMPARISON, EFFICIENCY


@hookimpl
def snnbench_register_tables(register: Callable[[TableSpec], None]) -> None:
    for spec in (LEADERBOARD, COMPARISON, CALIBRATION, ABLATION, CURVE, EFFICIENCY, RECORDS):
        register(spec)
