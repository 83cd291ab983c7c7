"""Plots from records: accuracy against T per method (one figure per dataset and
architecture, the spread over seeds as a band) and accuracy against energy per dataset.

Drawn with matplotlib's Agg backend (no display needed). SVG output is made repeatable:
a fixed hash salt for element ids and no date in the metadata; PNG carries no software
version. Text is drawn as paths, so an SVG looks the same without the fonts installed.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from snnbench_suite.errors import UsageError
from snnbench_suite.table_data import SCORE_NAMES

KINDS = ("acc-vs-T", "acc-vs-energy")
PLOT_FORMATS = ("png", "svg")
LINE_STYLES = ("-", "--", ":", "-.")
_RC = {"svg.hashsalt": "snnbench", "svg.fonttype": "path", "font.size": 9,
       "axes.grid": True, "grid.alpha": 0.3}


@dataclass(frozen=True)
class Figure:
    """One drawn figure: where it goes (without suffix) and its bytes per format."""

    stem: str  # e.g. "digits/acc_vs_T_vgg11"
    title: str
    data: dict[str, bytes]
    dataset: str
    architecture: str | None = None  # None: the figure shows every architecture


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "unnamed"


def _save(fig: Any, formats: Sequence[str]) -> dict[str, bytes]:
    data = {}
    for fmt in formats:
        buffer = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buffer, format=fmt, metadata=metadata, dpi=120, bbox_inches="tight")
        data[fmt] = buffer.getvalue()
    return data


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    ok = frame[(frame["status"] == "ok") & frame["T"].notna() & frame["score"].notna()]
    return ok.assign(T=ok["T"].astype(int))


def accuracy_series(frame: pd.DataFrame) -> pd.DataFrame:
    """What acc-vs-T draws: per dataset, architecture, method and T, the mean and std of
    score (top-1, or mAP for detection, in percent) over seeds and their number n (std is
    NaN for one seed: no band)."""
    ok = _ok(frame)
    keys = ["dataset", "metric", "arch_label", "architecture", "method_label", "T"]
    stats = ok.groupby(keys, sort=True)["score"].agg(["mean", "std", "count"])
    return stats.rename(columns={"count": "n"}).reset_index()


def energy_series(frame: pd.DataFrame) -> pd.DataFrame:
    """What acc-vs-energy draws: per dataset, method, architecture and T, the mean energy
    per sample (µJ) and mean score over seeds; rows without an energy are left out."""
    ok = _ok(frame)
    if "energy_pj" not in ok.columns:
        ok = ok.assign(energy_pj=float("nan"))
    ok = ok[ok["energy_pj"].notna()]
    stats = ok.groupby(["dataset", "metric", "method_label", "arch_label", "T"], sort=True)[
        ["energy_pj", "score"]].mean().reset_index()
    stats["energy_uj"] = stats.pop("energy_pj") * 1e-6
    return stats


def _ann_points(frame: pd.DataFrame) -> pd.DataFrame:
    ok = _ok(frame)
    if "ann_energy_pj" not in ok.columns:
        return ok.iloc[0:0]
    cells = ok.drop_duplicates("cell_id")
    cells = cells[cells["ann_energy_pj"].notna() & cells["ann_score"].notna()]
    return cells.groupby(["dataset", "arch_label"], sort=True)[
        ["ann_energy_pj", "ann_score"]].mean().reset_index()


def accuracy_vs_t(frame: pd.DataFrame, formats: Sequence[str] = PLOT_FORMATS
                  ) -> list[Figure]:
    """One figure per (dataset, architecture): mean score against T for each method, with
    mean ± std over seeds as a band (no band where only one seed ran)."""
    plt = _pyplot()
    figures = []
    series = accuracy_series(frame)
    for (dataset, arch), group in series.groupby(["dataset", "arch_label"], sort=True):
        with plt.rc_context(_RC):
            fig, ax = plt.subplots(figsize=(5.5, 3.6))
            methods = sorted(group["method_label"].unique())
            colours = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
            for method, stats in group.groupby("method_label", sort=True):
                line = ax.plot(stats["T"], stats["mean"], marker="o", markersize=3,
                               label=f"{method} (n={int(stats['n'].max())})",
                               color=colours(methods.index(method) % colours.N))[0]
                if (stats["n"] > 1).any():
                    spread = stats["std"].fillna(0.0)
                    ax.fill_between(stats["T"], stats["mean"] - spread,
                                    stats["mean"] + spread, color=line.get_color(),
                                    alpha=0.2, linewidth=0)
            ax.set_xscale("log", base=2)
            steps = sorted(group["T"].unique())
            ax.set_xticks(steps, [str(t) for t in steps])
            ax.minorticks_off()
            ax.set_xlabel("time steps T")
            ax.set_ylabel(SCORE_NAMES[str(group["metric"].iloc[0])])
            ax.set_title(f"{dataset} / {arch}: accuracy against T")
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
            data = _save(fig, formats)
            plt.close(fig)
        figures.append(Figure(stem=f"{_safe(dataset)}/acc_vs_T_{_safe(arch)}",
                              title=f"{dataset} / {arch}: accuracy against T", data=data,
                              dataset=str(dataset),
                              architecture=str(group["architecture"].iloc[0])))
    return figures


def accuracy_vs_energy(frame: pd.DataFrame, formats: Sequence[str] = PLOT_FORMATS
                       ) -> list[Figure]:
    """One figure per dataset: mean score against mean energy per sample (µJ) for every
    method and architecture, one point per T joined in order of T; each ANN as a star."""
    plt = _pyplot()
    figures = []
    series = energy_series(frame)
    anns = _ann_points(frame)
    for dataset, group in series.groupby("dataset", sort=True):
        with plt.rc_context(_RC):
            fig, ax = plt.subplots(figsize=(5.5, 3.6))
            # One colour per method, one line style per architecture: many methods stay
            # apart without running out of colours.
            methods = sorted(group["method_label"].unique())
            archs = sorted(group["arch_label"].unique())
            colours = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
            for (method, arch), stats in group.groupby(["method_label", "arch_label"],
                                                        sort=True):
                line = ax.plot(stats["energy_uj"], stats["score"], marker="o",
                               markersize=3, label=f"{method} / {arch}",
                               color=colours(methods.index(method) % colours.N),
                               linestyle=LINE_STYLES[archs.index(arch) % len(LINE_STYLES)]
                               )[0]
                ax.annotate(f"T={stats['T'].iloc[-1]}",
                            (stats["energy_uj"].iloc[-1], stats["score"].iloc[-1]),
                            fontsize=6, color=line.get_color(), xytext=(3, 0),
                            textcoords="offset points")
            for _, ann in anns[anns["dataset"] == dataset].iterrows():
                point = (ann["ann_energy_pj"] * 1e-6, ann["ann_score"])
                ax.plot(*point, marker="*", markersize=9, linestyle="none", color="black")
                ax.annotate(f"ANN {ann['arch_label']}", point, fontsize=6, xytext=(4, -8),
                            textcoords="offset points")
            ax.set_xscale("log")
            ax.set_xlabel("energy per sample (µJ, log scale)")
            ax.set_ylabel(SCORE_NAMES[str(group["metric"].iloc[0])])
            ax.set_title(f"{dataset}: accuracy against energy")
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
            data = _save(fig, formats)
            plt.close(fig)
        figures.append(Figure(stem=f"{_safe(dataset)}/acc_vs_energy",
                              title=f"{dataset}: accuracy against energy", data=data,
                              dataset=str(dataset)))
    return figures


def draw(frame: pd.DataFrame, kinds: Sequence[str] = KINDS,
         formats: Sequence[str] = PLOT_FORMATS) -> tuple[list[Figure], list[str]]:
    """The figures of `kinds`, and notes for the kinds that had nothing to draw."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise UsageError(f"unknown plot kind {unknown[0]!r}; use one of {', '.join(KINDS)}")
    bad = [f for f in formats if f not in PLOT_FORMATS]
    if bad:
        raise UsageError(f"unknown plot format {bad[0]!r}; use {', '.join(PLOT_FORMATS)}")
    figures: list[Figure] = []
    notes: list[str] = []
    if "acc-vs-T" in kinds:
        drawn = accuracy_vs_t(frame, formats)
        figures += drawn
        if not drawn:
            notes.append("acc-vs-T: no ok records to plot")
    if "acc-vs-energy" in kinds:
        drawn = accuracy_vs_energy(frame, formats)
        figures += drawn
        if not drawn:
            notes.append("acc-vs-energy: no record has an energy per T (energy_pj); "
                         "run with an snnbench that records metrics")
    return figures, notes


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half an image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_figures(figures: Sequence[Figure], output_dir: Path) -> list[Path]:
    paths = []
    for figure in figures:
        for fmt, data in sorted(figure.data.items()):
            path = output_dir / f"{figure.stem}.{fmt}"
            write_bytes_atomic(path, data)
            paths.append(path)
    return paths
