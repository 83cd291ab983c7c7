"""Layouts shaped like the tables of the papers: SOTA comparison, calibration levels,
the EnOF ablation, and accuracy against cost."""

from __future__ import annotations

from typing import Any

import pandas as pd

from snnbench_suite import TableSpec, mean_std_cell
from snnbench_tables.common import (
    FAMILY_TYPES,
    NOT_RUN,
    accuracy_text,
    ann_text,
    cell_groups,
    finish,
    not_ok_summary,
    reported_for,
    reported_text,
    reproduced,
    significant,
    status_text,
    steps_of,
    t_columns,
)

ACCURACY = "accuracy (%)"


def _source(paper: str, where: str, note: object) -> str:
    text = f"reported: {paper}, {where}"
    if isinstance(note, str) and note:
        text += f" ({note})"
    return text


def _suffix(label: str, method: str) -> str:
    """What a method label adds to the method's name (a version or a variant)."""
    return label[len(method):] if label.startswith(method) else f" [{label}]"


def comparison(frame: pd.DataFrame) -> pd.DataFrame:
    """Method | Type | Architecture | Dataset | T | accuracy | Source, as in the papers'
    state-of-the-art tables: published rows beside the rows this suite reproduced."""
    ours = reproduced(frame)
    theirs, notes = reported_for(frame, fallback_methods=sorted(set(ours["method"])))
    rows = []
    for (dataset, method, arch), group in ours.groupby(
            ["dataset", "method_label", "arch_label"], sort=True):
        base = {"method": method, "type": FAMILY_TYPES.get(str(group["family"].iloc[0]),
                                                          str(group["family"].iloc[0])),
                "architecture": arch, "dataset": dataset, "_kind": "reproduced",
                "_dataset": dataset, "_architecture": group["architecture"].iloc[0]}
        bad = not_ok_summary(group)
        source = "reproduced" + (f" ({bad})" if bad else "")
        steps = steps_of(group[group["status"] == "ok"])
        if not steps:
            rows.append({**base, "T": NOT_RUN, ACCURACY: status_text(group),
                         "source": source})
        for t in steps:
            rows.append({**base, "T": t, ACCURACY: accuracy_text(group, t), "source": source})
    for _, number in theirs.iterrows():
        arch = number["architecture"]
        if number["paper_architecture"]:
            arch += f" ({number['paper_architecture']})"
        rows.append({
            "method": number["method"], "type": FAMILY_TYPES[number["family"]],
            "architecture": arch, "dataset": number["dataset"], "T": int(number["T"]),
            ACCURACY: reported_text(number),
            "source": _source(number["paper_short"], number["where"], number["note"]),
            "_kind": "reported", "_dataset": number["dataset"],
            "_architecture": number["architecture"],
        })
    rows.sort(key=lambda r: (r["dataset"], r["_architecture"], _t_key(r["T"]),
                             r["_kind"] != "reported", r["method"], r["source"]))
    columns = ["method", "type", "architecture", "dataset", "T", ACCURACY, "source"]
    empty = not any(r["_kind"] == "reproduced" for r in rows)
    return finish([] if empty else rows, columns, best={ACCURACY: "max"},
                  best_by=["dataset", "architecture", "T"], notes=notes,
                  papers=sorted(set(theirs["paper"])), empty_reason="no records")


def _t_key(value: object) -> tuple[int, int]:
    return (1, 0) if not isinstance(value, int) else (0, value)


CALIBRATION_LEVELS = {"calib.none": "None", "calib.light": "Light", "calib": "Advanced"}


def calibration(frame: pd.DataFrame) -> pd.DataFrame:
    """Architecture x {None, Light, Advanced} calibration at each T, as in the calibration
    paper: calib.none (max thresholds), calib.light (bias calibration) and calib
    (bias then potential calibration, plus weight calibration on large datasets)."""
    ours = reproduced(frame)
    ours = ours[ours["method"].isin(list(CALIBRATION_LEVELS))].copy()
    theirs, notes = reported_for(frame, fallback_methods=list(CALIBRATION_LEVELS))
    theirs = theirs[theirs["method"].isin(list(CALIBRATION_LEVELS))]
    levels = list(CALIBRATION_LEVELS.values())
    columns = ["dataset", "architecture", "T", "ANN", *levels, "source"]
    if ours.empty:
        return finish([], columns,
                      empty_reason="needs records of calib.none, calib.light or calib")
    ours["setting"] = [_suffix(label, method).strip() for label, method
                       in zip(ours["method_label"], ours["method"], strict=True)]
    rows = []
    for (dataset, arch, setting), group in ours.groupby(
            ["dataset", "arch_label", "setting"], sort=True):
        label = f"{arch} {setting}".strip()
        steps: list[int | None] = [*steps_of(group[group["status"] == "ok"])] or [None]
        by_level = {CALIBRATION_LEVELS[m]: g for m, g in group.groupby("method")}
        for t in steps:
            row = {"dataset": dataset, "architecture": label, "T": NOT_RUN if t is None else t,
                   "ANN": ann_text(group), "source": "reproduced", "_kind": "reproduced",
                   "_dataset": dataset, "_architecture": group["architecture"].iloc[0]}
            for level in levels:
                g = by_level.get(level)
                row[level] = NOT_RUN if g is None else accuracy_text(g, t)
            rows.append(row)
    keys = ["dataset", "architecture", "T", "paper_short", "where"]
    for (dataset, arch, t, paper, where), group in theirs.groupby(keys, sort=True):
        first = group.iloc[0]
        name = f"{arch} ({first['paper_architecture']})" if first["paper_architecture"] else arch
        ann = group["ann_score"].dropna()
        row = {"dataset": dataset, "architecture": name, "T": int(t),
               "ANN": f"{ann.iloc[0]:.2f}" if not ann.empty else "not reported",
               "source": _source(paper, where, first["note"]), "_kind": "reported",
               "_dataset": dataset, "_architecture": arch}
        for method, level in CALIBRATION_LEVELS.items():
            match = group[group["method"] == method]
            row[level] = reported_text(match.iloc[0]) if not match.empty else "not reported"
        rows.append(row)
    rows.sort(key=lambda r: (r["dataset"], r["_architecture"], _t_key(r["T"]),
                             r["_kind"] != "reported", r["architecture"], r["source"]))
    return finish(rows, columns, best_rowwise=levels, notes=notes,
                  papers=sorted(set(theirs["paper"])))


ABLATION_ROWS = (("sdt", "baseline", False, False), ("laf_repact.laf", "+L_AF", True, False),
                 ("laf_repact.repact", "+RepAct", False, True),
                 ("laf_repact", "+L_AF +RepAct", True, True))


def ablation(frame: pd.DataFrame) -> pd.DataFrame:
    """EnOF-SNN's ablation: baseline (sdt), +L_AF, +RepAct and both, at each T."""
    ours = reproduced(frame)
    methods = [m for m, *_ in ABLATION_ROWS]
    ours = ours[ours["method"].isin(methods)]
    steps = steps_of(ours[ours["status"] == "ok"])
    rows = []
    for (dataset, arch), group in ours.groupby(["dataset", "arch_label"], sort=True):
        for method, name, laf, repact in ABLATION_ROWS:
            runs = group[group["method"] == method]
            row = {"dataset": dataset, "architecture": arch, "variant": name,
                   "L_AF": "✓" if laf else "✗", "RepAct": "✓" if repact else "✗",
                   "method": method, "_kind": "reproduced", "_dataset": dataset,
                   "_architecture": group["architecture"].iloc[0]}
            for t in steps:
                row[f"T={t}"] = NOT_RUN if runs.empty else accuracy_text(runs, t)
            rows.append(row)
    columns = ["dataset", "architecture", "variant", "L_AF", "RepAct", "method",
               *t_columns(steps)]
    return finish(rows, columns, best={c: "max" for c in t_columns(steps)},
                  best_by=["dataset", "architecture"],
                  empty_reason="needs records of sdt, laf_repact.laf, laf_repact.repact or "
                  "laf_repact")


def _mean(values: pd.Series, scale: float = 1.0) -> str:
    clean = values.dropna()
    return "not recorded" if clean.empty else significant(float(clean.mean()) * scale)


def efficiency(frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracy against cost per sample at each T (means over seeds): firing rate, SOPs,
    effective MACs and ACs, energy, and the energy of the ANN on the same hardware model."""
    rows: list[dict[str, Any]] = []
    for base, group, ok, steps in cell_groups(frame):
        if not steps:
            status = status_text(group)
            rows.append({**base, "T": NOT_RUN, ACCURACY: status,
                         **dict.fromkeys(EFFICIENCY_COSTS, status)})
        for t in steps:
            at = ok[ok["T"] == t]
            energy, ann_energy = at["energy_pj"].dropna(), at["ann_energy_pj"].dropna()
            ratio = (f"{energy.mean() / ann_energy.mean():.3f}"
                     if len(energy) and len(ann_energy) and ann_energy.mean() > 0
                     else "not recorded")
            rows.append({
                **base, "T": t, ACCURACY: mean_std_cell(at["score"]),
                "firing rate (%)": _mean(at["firing_rate"], 100.0),
                "SOPs (M)": _mean(at["sops"], 1e-6),
                "eff. MACs (M)": _mean(at["effective_macs"], 1e-6),
                "eff. ACs (M)": _mean(at["effective_acs"], 1e-6),
                "energy (µJ)": _mean(at["energy_pj"], 1e-6),
                "ANN energy (µJ)": _mean(at["ann_energy_pj"], 1e-6),
                "energy / ANN": ratio,
            })
    columns = ["dataset", "method", "architecture", "T", ACCURACY, *EFFICIENCY_COSTS]
    return finish(rows, columns,
                  best={ACCURACY: "max", "firing rate (%)": "min", "SOPs (M)": "min",
                        "energy (µJ)": "min", "energy / ANN": "min"},
                  best_by=["dataset", "T"], empty_reason="no records")


EFFICIENCY_COSTS = ["firing rate (%)", "SOPs (M)", "eff. MACs (M)", "eff. ACs (M)",
                    "energy (µJ)", "ANN energy (µJ)", "energy / ANN"]

COMPARISON = TableSpec(name="comparison", build=comparison, reference=True,
                       description="papers' SOTA table: method, type, architecture, T, "
                       "accuracy; reported beside reproduced")
CALIBRATION = TableSpec(name="calibration", build=calibration, reference=True,
                        description="architecture x None / Light / Advanced calibration "
                        "(calib.none / calib.light / calib) at each T")
ABLATION = TableSpec(name="ablation", build=ablation,
                     description="EnOF-SNN ablation: baseline / +L_AF / +RepAct / both x T")
EFFICIENCY = TableSpec(name="efficiency", build=efficiency,
                       description="accuracy, firing rate, SOPs, effective MACs/ACs and "
                       "energy per sample at each T")
