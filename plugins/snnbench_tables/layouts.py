"""The leaderboard and the tidy records layout."""

from __future__ import annotations

import pandas as pd

from snnbench_suite import TableSpec, mean_std_cell

RECORD_COLUMNS = ["method", "architecture", "dataset", "seed", "T", "top1", "top5",
                  "ann_top1", "firing_rate", "status", "method_version", "t_source",
                  "cell_id", "error"]


def records(frame: pd.DataFrame) -> pd.DataFrame:
    """One tidy row per (cell, T); failed and skipped cells keep a row with their status."""
    return frame[RECORD_COLUMNS].reset_index(drop=True)


def leaderboard(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows dataset x method x architecture, one column per T: mean ± std over seeds (n).

    A failed or skipped cell is counted in a 'not ok' column, never as a zero."""
    keys = ["dataset", "method", "architecture"]
    rows = []
    ok = frame[frame["status"] == "ok"]
    steps = sorted(int(t) for t in ok["T"].dropna().unique())
    for key, group in frame.groupby(keys, sort=True):
        good = group[group["status"] == "ok"]
        row = dict(zip(keys, key, strict=True))
        per_cell = good.drop_duplicates("cell_id")
        row["ANN"] = mean_std_cell(per_cell["ann_top1"])
        for t in steps:
            row[f"T={t}"] = mean_std_cell(good.loc[good["T"] == t, "top1"])
        bad = group[group["status"] != "ok"].drop_duplicates("cell_id")
        row["not ok"] = ", ".join(
            f"{n} {status}" for status, n in bad["status"].value_counts().sort_index().items()
        )
        rows.append(row)
    columns = [*keys, "ANN", *[f"T={t}" for t in steps], "not ok"]
    return pd.DataFrame(rows, columns=columns)


LEADERBOARD = TableSpec(name="leaderboard", build=leaderboard,
                        description="method x architecture per dataset; top-1 at each T")
RECORDS = TableSpec(name="records", build=records,
                    description="one tidy row per (cell, T), for further analysis")
