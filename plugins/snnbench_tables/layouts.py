"""The leaderboard, the per-T curve and the tidy records layout."""

from __future__ import annotations

import pandas as pd

from snnbench_suite import TableSpec
from snnbench_tables.common import (
    NOT_RUN,
    accuracy_text,
    ann_text,
    cell_groups,
    finish,
    not_ok_summary,
    reported_for,
    reported_text,
    reproduced,
    steps_of,
    t_columns,
)

RECORD_COLUMNS = ["method", "architecture", "dataset", "seed", "T", "top1", "top5",
                  "ann_top1", "firing_rate", "status", "method_version", "t_source",
                  "cell_id", "error"]
# Shown when present (the cost metrics and the environment each record was made in).
OPTIONAL_RECORD_COLUMNS = ["metric", "map", "map50", "ann_map", "ann_map50", "sops",
                           "dense_macs", "effective_macs", "effective_acs", "energy_pj",
                           "build_seconds", "eval_seconds", "params", "ann_macs",
                           "ann_energy_pj", "metrics_version", "energy_table", "width",
                           "variant", "device", "torch"]
KIND_ORDER = {"reproduced": 0, "reported": 1}


def records(frame: pd.DataFrame) -> pd.DataFrame:
    """One tidy row per (cell, T); failed and skipped cells keep a row with their status."""
    ours = reproduced(frame)
    columns = [*RECORD_COLUMNS, *[c for c in OPTIONAL_RECORD_COLUMNS if c in ours.columns]]
    # Per-T converted ANNs (cqplus's clamp-quantized CNN): next to ann_top1, and only
    # when some record has one, so tables of other methods keep their columns.
    if "converted_ann_top1" in ours.columns and ours["converted_ann_top1"].notna().any():
        columns.insert(columns.index("ann_top1") + 1, "converted_ann_top1")
    return ours[columns].reset_index(drop=True)


def leaderboard(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows dataset x method x architecture, one column per T: mean ± std over seeds (n).

    A T no seed reached reads 'failed (n=...)' or 'skipped: reason', never a number; the
    'not ok' column counts the cells of the row that gave no number. Published numbers on
    the table's datasets are added as rows whose source names the paper."""
    ours = reproduced(frame)
    theirs, _ = reported_for(frame)
    steps = sorted(set(steps_of(ours[ours["status"] == "ok"])) | set(steps_of(theirs)))
    with_source = not theirs.empty
    rows = []
    for (dataset, method, arch), group in ours.groupby(
            ["dataset", "method_label", "arch_label"], sort=True):
        row = {"dataset": dataset, "method": method, "architecture": arch,
               "ANN": ann_text(group)}
        row.update({f"T={t}": accuracy_text(group, t) for t in steps})
        row.update({"not ok": not_ok_summary(group), "source": "reproduced",
                    "_kind": "reproduced", "_dataset": dataset,
                    "_architecture": group["architecture"].iloc[0]})
        rows.append(row)
    keys = ["dataset", "method", "architecture", "paper_short", "where"]
    for (dataset, method, arch, paper, where), group in theirs.groupby(keys, sort=True):
        ann = group["ann_score"].dropna()
        row = {"dataset": dataset, "method": method, "architecture": arch,
               "ANN": f"{ann.iloc[0]:.2f}" if not ann.empty else "not reported"}
        for t in steps:
            at = group[group["T"] == t]
            row[f"T={t}"] = reported_text(at.iloc[0]) if not at.empty else NOT_RUN
        row.update({"not ok": "", "source": f"reported: {paper}, {where}",
                    "_kind": "reported", "_dataset": dataset, "_architecture": arch})
        rows.append(row)
    rows.sort(key=lambda r: (r["dataset"], r["method"], r["architecture"],
                             KIND_ORDER[r["_kind"]], r["source"]))
    columns = ["dataset", "method", "architecture", "ANN", *t_columns(steps), "not ok"]
    if with_source:
        columns.append("source")
    return finish(rows, columns, best={c: "max" for c in t_columns(steps)},
                  best_by=["dataset"], papers=sorted(set(theirs["paper"])),
                  empty_reason="no records")


def curve(frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracy at every T, one row per (dataset, method, architecture, T): mean, std, n."""
    rows = []
    for base, group, ok, steps in cell_groups(frame):
        if not steps:
            rows.append({**base, "T": NOT_RUN, "score (%)": accuracy_text(group, None),
                         "std": NOT_RUN, "n": 0, "how T was obtained": NOT_RUN})
        for t in steps:
            values = ok.loc[ok["T"] == t, "score"].dropna()
            sources = sorted({str(s) for s in ok.loc[ok["T"] == t, "t_source"].dropna()})
            rows.append({
                **base, "T": t,
                "score (%)": f"{values.mean():.2f}" if len(values) else "not recorded",
                "std": f"{values.std(ddof=1):.2f}" if len(values) > 1 else NOT_RUN,
                "n": len(values), "how T was obtained": "; ".join(sources) or NOT_RUN,
            })
    columns = ["dataset", "method", "architecture", "T", "score (%)", "std", "n",
               "how T was obtained"]
    return finish(rows, columns, best={"score (%)": "max"},
                  best_by=["dataset", "architecture", "T"], empty_reason="no records")


LEADERBOARD = TableSpec(name="leaderboard", build=leaderboard, reference=True,
                        description="method x architecture per dataset; score at each T")
CURVE = TableSpec(name="curve", build=curve,
                  description="score at every T: mean, std and n over seeds")
RECORDS = TableSpec(name="records", build=records,
                    description="one tidy row per (cell, T), for further analysis")
