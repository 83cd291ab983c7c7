"""What tables are built from: the records of a folder as a tidy frame, and reported rows.

The tidy frame (results.records_frame) gains the columns every layout needs to group
rows honestly: labels that keep apart different method versions, parameter variants and
architecture widths (so a mean is never taken over things that differ), the per-T cost
metrics, and the environment each record was made in.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from snnbench_suite.errors import UsageError
from snnbench_suite.reference import Reference
from snnbench_suite.results import RECORD_SUFFIX, read_record, records_frame

# per_T keys copied into the tidy frame when results.records_frame does not provide them.
PER_T_METRICS = ("top5", "firing_rate", "sops", "dense_macs", "effective_macs",
                 "effective_acs", "energy_pj", "eval_seconds")
# record["metrics"] keys, one value per cell.
CELL_METRICS = ("params", "ann_macs", "ann_energy_pj")
SOURCE_REPRODUCED, SOURCE_REPORTED = "reproduced", "reported"
MAX_LISTED = 8


def load_table_records(results_dir: Path) -> list[dict[str, Any]]:
    """Every record in `results_dir`, sorted by file name.

    Unlike a run (which stops at the first bad file), a table needs the whole folder, so
    every unreadable record, of any schema, is named in one error."""
    if not results_dir.is_dir():
        raise UsageError(
            f"results folder {results_dir} does not exist; run `snnbench run` first or "
            "point --results at a folder of records"
        )
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in sorted(results_dir.glob(f"*{RECORD_SUFFIX}")):
        try:
            records.append(read_record(path))
        except UsageError as exc:
            problems.append(str(exc))
    if problems:
        shown = problems[:MAX_LISTED]
        more = len(problems) - len(shown)
        raise UsageError(
            f"{len(problems)} of {len(problems) + len(records)} records in {results_dir} "
            "cannot be used for a table (a table mixing schemas could compare numbers "
            "that mean different things):\n  " + "\n  ".join(shown)
            + (f"\n  ... and {more} more" if more else "")
        )
    if not records:
        raise UsageError(f"no records in {results_dir}; run `snnbench run` first")
    return records


def _finite(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _variant_params(record: dict[str, Any]) -> dict[str, Any]:
    """The settings that make two cells of one method different experiments."""
    cell = record["cell"]
    params = {f"{k}": v for k, v in (cell.get("method_params") or {}).items()}
    params.update({f"data.{k}": v for k, v in (cell.get("dataset_params") or {}).items()})
    if cell.get("epochs") is not None:
        params["epochs"] = cell["epochs"]
    return params


def _variant_labels(records: Sequence[dict[str, Any]]) -> dict[str, str]:
    """cell_id -> '' or 'k=v, ...' naming the settings in which this cell differs from
    other cells of the same method on the same dataset (e.g. a `--set` override). Cells on
    other datasets do not count: their dataset parameters are not a variant."""
    by_method: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_method[(record["cell"]["method"], record["cell"]["dataset"])].append(record)
    labels: dict[str, str] = {}
    for group in by_method.values():
        variants = [_variant_params(r) for r in group]
        keys = sorted({k for v in variants for k in v})
        differing = [k for k in keys
                     if len({_canonical(v.get(k)) for v in variants}) > 1]
        for record, params in zip(group, variants, strict=True):
            labels[record["cell_id"]] = ", ".join(
                f"{k}={_canonical(params.get(k))}" for k in differing)
    return labels


def _per_t_extras(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for record in records:
        metrics = record.get("metrics") or {}
        provenance = record.get("provenance") or {}
        git = provenance.get("git") or {}
        base = {
            "cell_id": record["cell_id"],
            "metrics_version": None if metrics.get("version") is None
            else str(metrics["version"]),
            "energy_table": _canonical(metrics["energy_table"])
            if metrics.get("energy_table") else None,
            "device": provenance.get("device"),
            "device_name": provenance.get("device_name"),
            "torch": provenance.get("torch"),
            "snnbench_version": provenance.get("snnbench_version"),
            "git_commit": git.get("commit"),
            "git_dirty": git.get("dirty"),
            **{key: _finite(metrics.get(key)) for key in CELL_METRICS},
        }
        entries = record.get("per_T") or []
        if record.get("status") != "ok" or not entries:
            rows.append({**base, "T": pd.NA, **dict.fromkeys(PER_T_METRICS, math.nan)})
            continue
        for entry in entries:
            # An entry kept when the cell was resumed says which run computed it.
            earlier = entry.get("computed_in") or {}
            own = {"git_commit": (earlier.get("git") or {}).get("commit"),
                   "git_dirty": (earlier.get("git") or {}).get("dirty"),
                   "snnbench_version": earlier.get("snnbench_version")} if earlier else {}
            rows.append({**base, **own, "T": int(entry["T"]),
                         **{key: _finite(entry.get(key)) for key in PER_T_METRICS}})
    frame = pd.DataFrame(rows)
    frame["T"] = frame["T"].astype("Int64")
    return frame


def tidy_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """results.records_frame plus labels, metrics and environment (one row per cell and T)."""
    frame = records_frame(records)
    extras = _per_t_extras(records)
    missing = [c for c in extras.columns if c not in frame.columns or c in ("cell_id", "T")]
    frame = frame.merge(extras[missing], on=["cell_id", "T"], how="left", validate="m:1")
    frame["source"] = SOURCE_REPRODUCED
    _add_scores(frame)
    variants = _variant_labels(records)
    frame["variant"] = frame["cell_id"].map(variants).fillna("")
    _add_labels(frame)
    return frame.sort_values(["dataset", "method_label", "arch_label", "seed", "T"],
                             na_position="first", kind="stable").reset_index(drop=True)


# What a dataset is scored by (DatasetInfo.metric) and how tables name it. Detection
# records hold COCO mAP as a fraction; tables show every score in percent.
SCORE_NAMES = {"top1": "top-1 accuracy (%)", "map": "COCO mAP@[.5:.95] (%)",
               "map50": "COCO mAP@.5 (%)"}
PERCENT_FRACTIONS = {"map", "map50"}


def _add_scores(frame: pd.DataFrame) -> None:
    """`score` / `ann_score`: the dataset's own metric at each T, in percent; `metric`
    names it (top1 where a record does not say)."""
    if "metric" not in frame.columns:
        frame["metric"] = "top1"
    frame["metric"] = frame["metric"].where(frame["metric"].isin(list(SCORE_NAMES)), "top1")
    scores, ann_scores = [], []
    for _, row in frame.iterrows():
        metric = row["metric"]
        scale = 100.0 if metric in PERCENT_FRACTIONS else 1.0
        scores.append(_finite(row.get(metric)) * scale)
        ann_scores.append(_finite(row.get(f"ann_{metric}")) * scale)
    frame["score"] = pd.Series(scores, index=frame.index, dtype=float)
    frame["ann_score"] = pd.Series(ann_scores, index=frame.index, dtype=float)


def score_note(frame: pd.DataFrame) -> str:
    """'score: top-1 accuracy (%)', or per dataset when the datasets differ."""
    pairs = sorted({(str(d), str(m)) for d, m in zip(frame["dataset"], frame["metric"],
                                                       strict=True)})
    names = sorted({SCORE_NAMES[m] for _, m in pairs})
    if len(names) == 1:
        return f"score: {names[0]}"
    return "score: " + "; ".join(f"{SCORE_NAMES[m]} on {d}" for d, m in pairs)


def _add_labels(frame: pd.DataFrame) -> None:
    """method_label / arch_label: the name, plus version, variant or width only where the
    frame holds more than one of them (so the common case reads as the plain name)."""
    versions = frame.groupby("method")["method_version"].nunique()
    widths = frame.groupby("architecture")["width"].nunique()

    def method_label(row: pd.Series) -> str:
        label = str(row["method"])
        if versions.get(row["method"], 1) > 1:
            label += f" v{row['method_version']}"
        if row["variant"]:
            label += f" [{row['variant']}]"
        return label

    def arch_label(row: pd.Series) -> str:
        label = str(row["architecture"])
        if widths.get(row["architecture"], 1) > 1:
            label += f" x{float(row['width']):g}"
        return label

    frame["method_label"] = frame.apply(method_label, axis=1) if len(frame) else []
    frame["arch_label"] = frame.apply(arch_label, axis=1) if len(frame) else []


def reference_frame(reference: Reference, family_of: Callable[[str], str | None]
                    ) -> pd.DataFrame:
    """One row per published number, shaped like the tidy frame (source = 'reported')."""
    rows = []
    for number in reference.numbers:
        family = number.family or family_of(number.method)
        if family is None:
            raise UsageError(
                f"reference file {reference.paper(number.paper).path}: method "
                f"{number.method!r} is not a registered method; add `family:` "
                "(conversion, direct_training or distillation) to its entry"
            )
        paper = reference.paper(number.paper)
        rows.append({
            "source": SOURCE_REPORTED, "status": SOURCE_REPORTED,
            "method": number.method, "method_label": number.method, "family": family,
            "architecture": number.architecture, "arch_label": number.architecture,
            "dataset": number.dataset, "T": number.T, "top1": number.top1,
            "score": number.top1, "metric": "top1",
            "ann_score": math.nan if number.ann_top1 is None else number.ann_top1,
            "top1_std": math.nan if number.std is None else number.std,
            "n": pd.NA if number.seeds is None else number.seeds,
            "ann_top1": math.nan if number.ann_top1 is None else number.ann_top1,
            "paper": paper.key, "paper_short": paper.short, "where": number.where,
            "note": number.note, "paper_architecture": number.paper_architecture,
        })
    frame = pd.DataFrame(rows, columns=[
        "source", "status", "method", "method_label", "family", "architecture", "arch_label",
        "dataset", "T", "top1", "score", "metric", "ann_score", "top1_std", "n", "ann_top1",
        "paper", "paper_short", "where",
        "note", "paper_architecture"])
    frame["T"] = frame["T"].astype("Int64")
    return frame.sort_values(["dataset", "method", "architecture", "T", "paper"],
                             kind="stable").reset_index(drop=True)


def _count(values: Iterable[Any]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for value in values:
        counts["unknown" if value is None else str(value)] += 1
    return ", ".join(f"{k} ({n})" if len(counts) > 1 else k for k, n in sorted(counts.items()))


def provenance_lines(records: Sequence[dict[str, Any]]) -> list[str]:
    """Method versions, metric version and environment of `records`, one line each."""
    methods = sorted({(r["cell"]["method"], str(r["cell"]["method_version"])) for r in records})
    metric_versions = [(r.get("metrics") or {}).get("version") for r in records
                       if r.get("status") == "ok"]
    energy = sorted({_energy_label((r.get("metrics") or {}).get("energy_table"))
                     for r in records if r.get("status") == "ok"} - {""})
    envs = []
    for r in records:
        p = r.get("provenance") or {}
        device = str(p.get("device") or "unknown device")
        if p.get("device_name"):
            device += f" ({p['device_name']})"
        envs.append(f"{device}, torch {p.get('torch') or 'unknown'}")
    commits = []
    for r in records:
        runs = [(r.get("provenance") or {}).get("git") or {}]
        runs += [(e.get("computed_in") or {}).get("git") or {}
                 for e in r.get("per_T") or [] if e.get("computed_in")]
        for git in {json.dumps(g, sort_keys=True): g for g in runs}.values():
            commit = git.get("commit")
            commits.append(None if not commit else commit[:7] + ("+dirty" if git.get("dirty")
                                                                 else ""))
    versions = [(r.get("provenance") or {}).get("snnbench_version") for r in records]
    lines = [
        "methods: " + ", ".join(f"{m} v{v}" for m, v in methods),
        "metrics: " + (f"v{_count(metric_versions)}" if any(v is not None for v in
                                                              metric_versions)
                       else "version not recorded")
        + (f"; energy table {', '.join(energy)}" if energy else ""),
        f"environment: {_count(envs)}",
        f"snnbench: {_count(versions)}; git {_count(commits)}",
    ]
    upgraded = [r for r in records if r.get("upgraded_from_schema") is not None]
    if upgraded:
        lines.append(f"schema: {len(upgraded)} of {len(records)} records were written with an "
                     f"older schema ({_count(r['upgraded_from_schema'] for r in upgraded)}); "
                     "the fields added since are unknown for them")
    if len({v for v in metric_versions}) > 1:
        lines.append("warning: these records were measured with different metric versions; "
                     "their cost numbers are not comparable")
    return lines


def _energy_label(table: Any) -> str:
    if not isinstance(table, dict):
        return ""
    name = table.get("name", "?")
    text = f"{name} v{table.get('version', '?')}"
    if "pj_per_mac" in table and "pj_per_ac" in table:
        text += f" ({table['pj_per_mac']} pJ/MAC, {table['pj_per_ac']} pJ/AC)"
    return text


def not_ok_lines(records: Sequence[dict[str, Any]]) -> list[str]:
    """One line per failed or skipped cell: which cell and why (first line of the error)."""
    lines = []
    for r in sorted(records, key=lambda r: r["cell_id"]):
        if r.get("status") == "ok":
            continue
        message = ((r.get("error") or {}).get("message") or "no message").strip()
        first = message.splitlines()[0] if message else "no message"
        lines.append(f"{r.get('status')}: {r['cell_id']}: {first}")
    return lines
