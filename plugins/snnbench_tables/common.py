"""Helpers shared by the built-in layouts: cells that never pass a failure off as a number.

The frame a layout receives is the tidy records frame (one row per cell and T; a failed or
skipped cell has one row with T empty). `score` / `ann_score` are each dataset's own
metric in percent (top-1, or COCO mAP for detection), named in the table's footer.
Layouts registered with `reference=True` also get the published numbers as rows with
`source == "reported"`. `frame.attrs["datasets"]` names the datasets asked for.

The frame a layout returns may carry hidden columns (names starting with "_", not shown):
`_kind` ("reproduced" or "reported"), `_dataset` and `_architecture` (the HTML page's
filters). Its attrs may hold `best` ({column: "max" | "min"}), `best_by` (columns that
group rows for `best`), `best_rowwise` (columns compared within each row), `papers` (keys
of the reference papers shown) and `notes` (lines printed under the table).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pandas as pd

from snnbench_suite import mean_std_cell

NOT_RUN = "—"
FAMILY_TYPES = {"conversion": "ANN2SNN", "direct_training": "SNN training",
                "distillation": "distillation"}
HIDDEN = ["_kind", "_dataset", "_architecture"]


def reproduced(frame: pd.DataFrame) -> pd.DataFrame:
    if "source" not in frame.columns:
        return frame
    return frame[frame["source"] != "reported"]


def cell_groups(frame: pd.DataFrame
                ) -> Iterator[tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, list[int]]]:
    """The reproduced records per (dataset, method, architecture), in order: the row's
    identifying columns, all of the group's records, its ok records and their steps."""
    for (dataset, method, arch), group in reproduced(frame).groupby(
            ["dataset", "method_label", "arch_label"], sort=True):
        base = {"dataset": dataset, "method": method, "architecture": arch,
                "_kind": "reproduced", "_dataset": dataset,
                "_architecture": group["architecture"].iloc[0]}
        ok = group[group["status"] == "ok"]
        yield base, group, ok, steps_of(ok)


def reported(frame: pd.DataFrame) -> pd.DataFrame:
    if "source" not in frame.columns:
        return frame.iloc[0:0]
    return frame[frame["source"] == "reported"]


def selected_datasets(frame: pd.DataFrame) -> list[str] | None:
    datasets = frame.attrs.get("datasets")
    return None if datasets is None else list(datasets)


def reported_for(frame: pd.DataFrame, fallback_methods: Iterable[str] | None = None
                 ) -> tuple[pd.DataFrame, list[str]]:
    """Published rows on the table's datasets. When there are none and `fallback_methods`
    is given, the published rows of those methods on any dataset, with a note saying so
    (the embedded datasets have no published numbers; a reader still wants to see what
    the papers report next to what the suite reproduces)."""
    rows = reported(frame)
    datasets = selected_datasets(frame)
    if datasets is None:
        return rows, []
    matching = rows[rows["dataset"].isin(datasets)]
    if not matching.empty or fallback_methods is None:
        return matching, []
    others = rows[rows["method"].isin(list(fallback_methods))]
    if others.empty:
        return others, []
    shown = ", ".join(sorted(others["dataset"].unique()))
    return others, [f"no published numbers for {', '.join(datasets)}; the reported rows are "
                    f"the papers' own results on {shown}, for comparison of trends only"]


def status_text(group: pd.DataFrame) -> str:
    """What a cell shows when no seed has a number: failed / skipped: reason / —."""
    statuses = set(group["status"])
    if "failed" in statuses:
        n = group.loc[group["status"] == "failed", "cell_id"].nunique()
        return f"failed (n={n})"
    if "skipped" in statuses:
        reasons = sorted({str(e) for e in group.loc[group["status"] == "skipped", "error"]
                          if e is not None and not (isinstance(e, float) and math.isnan(e))})
        return "skipped: " + "; ".join(reasons) if reasons else "skipped"
    return NOT_RUN


def accuracy_text(group: pd.DataFrame, T: int | None, column: str = "score") -> str:
    """mean ± std (n) over the ok seeds at T; when no cell of the group gave a number at
    all, what happened to them (failed / skipped: reason)."""
    ok = group[group["status"] == "ok"]
    at = ok if T is None else ok[ok["T"] == T]
    values = at[column].dropna()
    if not values.empty:
        return mean_std_cell(values)
    if not at.empty:
        return "not recorded"
    # Other seeds or steps of this row gave numbers: this T was simply not run (the row's
    # failures are counted where the layout shows them, e.g. the 'not ok' column).
    return NOT_RUN if not ok.empty else status_text(group)


def reported_text(row: pd.Series) -> str:
    """A published number as the paper gives it: '93.30 ± 0.08 (n=5)', '95.06'."""
    text = f"{float(row['score']):.2f}"
    std = row.get("top1_std")
    if std is not None and not pd.isna(std):
        text += f" ± {float(std):.2f}"
    n = row.get("n")
    if n is not None and not pd.isna(n):
        text += f" (n={int(n)})"
    return text


def not_ok_summary(group: pd.DataFrame) -> str:
    """'1 failed, 2 skipped' for the cells of a row that gave no number."""
    bad = group[~group["status"].isin(["ok", "reported"])].drop_duplicates("cell_id")
    counts = bad["status"].value_counts().sort_index()
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def steps_of(frame: pd.DataFrame) -> list[int]:
    return sorted(int(t) for t in frame["T"].dropna().unique())


def t_columns(steps: Sequence[int]) -> list[str]:
    return [f"T={t}" for t in steps]


def ann_text(group: pd.DataFrame) -> str:
    per_cell = group[group["status"] == "ok"].drop_duplicates("cell_id")
    return mean_std_cell(per_cell["ann_score"])


def significant(value: float, digits: int = 4) -> str:
    """A fixed-width-free, exponent-free number with about `digits` significant digits."""
    if value is None or pd.isna(value):
        return "not recorded"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = min(6, max(0, digits - 1 - magnitude))
    return f"{value:.{decimals}f}"


def finish(rows: list[dict], columns: list[str], **attrs: object) -> pd.DataFrame:
    """The display frame with its hidden columns last and the given attrs."""
    frame = pd.DataFrame(rows, columns=[*columns, *HIDDEN])
    frame.attrs.update(attrs)
    return frame
