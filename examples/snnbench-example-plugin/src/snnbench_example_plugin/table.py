"""`example_latency`: how many time steps each SNN needs to come within a tolerance of
its ANN, from the stored records.

A table layout is a pure function of snnbench's tidy records frame (one row per cell
and T, with columns such as method, architecture, dataset, seed, T, top1, ann_top1 and
status) returning the frame to display; `snnbench table --layout example_latency`
renders it to markdown or CSV.
"""

from __future__ import annotations

import pandas as pd

from snnbench_suite import TableSpec, mean_std_cell

# Within this many points of top-1 accuracy of the ANN counts as "reached".
TOLERANCE = 1.0
KEYS = ["dataset", "method", "architecture"]
COLUMNS = [*KEYS, "ANN", "best SNN", "best at T", f"T within {TOLERANCE:g} of ANN"]


def latency(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset x method x architecture over its ok records: the ANN top-1,
    the best mean SNN top-1 and its T, and the smallest T whose mean top-1 (over seeds)
    is within TOLERANCE points of the mean ANN top-1 ("—" when no T is)."""
    ok = frame[frame["status"] == "ok"].dropna(subset=["T", "top1"])
    rows = []
    for key, group in ok.groupby(KEYS, sort=True):
        ann = group.drop_duplicates("cell_id")["ann_top1"]
        per_t = group.groupby("T")["top1"].mean().sort_index()
        ann_mean = ann.mean()
        reached = per_t[per_t >= ann_mean - TOLERANCE] if pd.notna(ann_mean) else per_t[[]]
        rows.append([
            *key,
            mean_std_cell(ann),
            f"{per_t.max():.2f}",
            int(per_t.idxmax()),
            int(reached.index[0]) if len(reached) else "—",
        ])
    return pd.DataFrame(rows, columns=COLUMNS)


EXAMPLE_LATENCY = TableSpec(
    name="example_latency",
    build=latency,
    description=f"smallest T within {TOLERANCE:g} point of the ANN's top-1 (example plugin)",
)
