"""Tables are a pure function of records: records -> tidy frame -> layout -> text."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from snnbench_suite.errors import UsageError
from snnbench_suite.plugins import Plugins
from snnbench_suite.results import load_records, records_frame

FORMATS = ("md", "csv")


def mean_std_cell(values: pd.Series) -> str:
    """'97.50 ± 0.42 (n=3)'; one value gives '97.50 (n=1)'."""
    clean = values.dropna()
    if clean.empty:
        return "—"
    if len(clean) == 1:
        return f"{clean.iloc[0]:.2f} (n=1)"
    return f"{clean.mean():.2f} ± {clean.std(ddof=1):.2f} (n={len(clean)})"


def _markdown_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value is pd.NA:
        return ""
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(_markdown_value(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_markdown_value(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def render(frame: pd.DataFrame, fmt: str) -> str:
    if fmt == "md":
        return to_markdown(frame)
    if fmt == "csv":
        return str(frame.to_csv(index=False))
    raise UsageError(f"unknown table format {fmt!r}; use one of {', '.join(FORMATS)}")


def build_table(plugins: Plugins, results_dir: Path, layout: str) -> pd.DataFrame:
    spec = plugins.tables.get(layout)
    records = load_records(results_dir)
    if not records:
        raise UsageError(f"no records in {results_dir}; run `snnbench run` first")
    return spec.build(records_frame(records))
