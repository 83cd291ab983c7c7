"""Built-in table layouts of snnbench."""

from collections.abc import Callable

from snnbench_suite import TableSpec, hookimpl
from snnbench_tables.layouts import LEADERBOARD, RECORDS


@hookimpl
def snnbench_register_tables(register: Callable[[TableSpec], None]) -> None:
    register(LEADERBOARD)
    register(RECORDS)
