"""Tables are a pure function of records: records -> tidy frame -> layout -> text.

`build_table` renders one layout; `generate_all` renders every layout for every dataset
(markdown and CSV) so a leaderboard folder can be regenerated with one command, and
`check_tables` regenerates them in memory and names every committed file that differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from snnbench_suite.errors import UsageError
from snnbench_suite.plugins import BUILTIN_DISTRIBUTION, Plugins
from snnbench_suite.reference import Reference, load_reference
from snnbench_suite.table_data import (
    load_table_records,
    not_ok_lines,
    provenance_lines,
    reference_frame,
    score_note,
    tidy_frame,
)
from snnbench_suite.table_formats import TableResult, best_cells, to_csv, to_latex, to_markdown

FORMATS = ("md", "latex", "csv", "html")
# What `--all` writes per dataset and layout, and what `--check` compares.
CHECKED_FORMATS = ("md", "csv")
SUFFIXES = {"md": ".md", "latex": ".tex", "csv": ".csv", "html": ".html"}


class EmptyTableError(UsageError):
    """A layout has no rows for the records it was given (e.g. `calibration` without any
    calib record)."""


def mean_std_cell(values: pd.Series) -> str:
    """'97.50 ± 0.42 (n=3)'; one value gives '97.50 (n=1)'."""
    clean = values.dropna()
    if clean.empty:
        return "—"
    if len(clean) == 1:
        return f"{clean.iloc[0]:.2f} (n=1)"
    return f"{clean.mean():.2f} ± {clean.std(ddof=1):.2f} (n={len(clean)})"


@dataclass(frozen=True)
class TableSource:
    """Everything tables are built from: the records, their tidy frame, reported rows."""

    records: list[dict[str, Any]]
    frame: pd.DataFrame
    reference: Reference
    reported: pd.DataFrame

    @property
    def datasets(self) -> list[str]:
        return sorted(self.frame["dataset"].unique())


def load_source(plugins: Plugins, results_dir: Path, reference_dir: Path | None
                ) -> TableSource:
    records = load_table_records(results_dir)
    reference = load_reference(reference_dir)

    def family_of(method: str) -> str | None:
        return plugins.methods.get(method).family if method in plugins.methods else None

    return TableSource(records=records, frame=tidy_frame(records), reference=reference,
                       reported=reference_frame(reference, family_of))


def _check_datasets(source: TableSource, datasets: Sequence[str], results: str) -> None:
    unknown = [d for d in datasets if d not in source.datasets]
    if unknown:
        raise UsageError(
            f"no records for dataset {', '.join(map(repr, unknown))} in {results}; datasets "
            f"with records: {', '.join(source.datasets)}. Run that dataset first or drop "
            "--dataset."
        )


def build_result(plugins: Plugins, source: TableSource, layout: str,
                 datasets: Sequence[str] | None = None, *, every_reported: bool = False,
                 results: str = "the results folder") -> TableResult:
    """Build one layout for `datasets` (None: all that have records). With
    `every_reported`, layouts that show published numbers show them for every dataset
    (the HTML page), not only for the datasets of the records."""
    spec = plugins.tables.get(layout)
    if datasets:
        _check_datasets(source, datasets, results)
    selected = sorted(set(datasets)) if datasets else source.datasets
    frame = source.frame[source.frame["dataset"].isin(selected)].reset_index(drop=True)
    if spec.reference:
        if source.reported.empty:  # same columns, no rows: layouts need not check
            for column in source.reported.columns.difference(frame.columns):
                frame[column] = pd.Series(dtype=object)
        else:
            frame = pd.concat([frame, source.reported], ignore_index=True)
            frame["T"] = frame["T"].astype("Int64")
    frame.attrs["datasets"] = None if every_reported else list(selected)
    display = spec.build(frame)
    if not isinstance(display, pd.DataFrame):
        raise UsageError(f"table layout {layout!r} (plugin {plugins.tables.origin(layout)}) "
                         f"returned {type(display).__name__}, not a pandas DataFrame")
    display = display.reset_index(drop=True)
    if display.empty:
        reason = display.attrs.get("empty_reason") or "no rows"
        raise EmptyTableError(f"layout {layout!r} has nothing to show for dataset "
                              f"{', '.join(selected)} ({reason})")
    records = [r for r in source.records if r["cell"]["dataset"] in selected]
    notes = [*display.attrs.get("notes", []), *not_ok_lines(records)]
    for key in display.attrs.get("papers", []):
        paper = source.reference.paper(key)
        notes.append(f"{paper.short}: {paper.citation}")
    ours = source.frame[source.frame["dataset"].isin(selected)]
    notes.append(score_note(ours))
    notes.extend(provenance_lines(records))
    return TableResult(layout=layout, description=spec.description, datasets=tuple(selected),
                       frame=display, best=best_cells(display), notes=tuple(notes))


def render(table: TableResult, fmt: str) -> str:
    if fmt == "md":
        return to_markdown(table)
    if fmt == "latex":
        return to_latex(table)
    if fmt == "csv":
        return to_csv(table)
    raise UsageError(f"unknown table format {fmt!r}; use one of {', '.join(FORMATS)}")


def build_table(plugins: Plugins, results_dir: Path, layout: str,
                datasets: Sequence[str] | None = None,
                reference_dir: Path | None = None) -> TableResult:
    source = load_source(plugins, results_dir, reference_dir)
    return build_result(plugins, source, layout, datasets, results=str(results_dir))


@dataclass(frozen=True)
class Generated:
    files: dict[str, str]  # path relative to the output folder -> text
    skipped: list[str]  # "dataset/layout: why" for tables a layout cannot fill


def shipped_layouts(plugins: Plugins) -> list[str]:
    """The layouts snnbench itself ships: what a committed leaderboard folder holds, so
    installing a third-party layout does not make `--check` fail (name it with --layout
    to include it)."""
    names = []
    for name in plugins.tables.names():
        status = plugins.status(plugins.tables.origin(name))
        if status is not None and status.distribution == BUILTIN_DISTRIBUTION:
            names.append(name)
    return names


def generate_all(plugins: Plugins, source: TableSource,
                 layouts: Sequence[str] | None = None) -> Generated:
    """Every layout (default: the shipped ones) for every dataset with records, as
    `<dataset>/<layout>.md|.csv`."""
    names = list(layouts) if layouts else shipped_layouts(plugins)
    files: dict[str, str] = {}
    skipped: list[str] = []
    for dataset in source.datasets:
        for layout in names:
            try:
                table = build_result(plugins, source, layout, [dataset])
            except EmptyTableError as exc:
                skipped.append(f"{dataset}/{layout}: {exc}")
                continue
            for fmt in CHECKED_FORMATS:
                files[f"{dataset}/{layout}{SUFFIXES[fmt]}"] = render(table, fmt)
    return Generated(files=files, skipped=skipped)


def check_tables(generated: Generated, output_dir: Path, unexpected: bool = True
                 ) -> list[str]:
    """Problems between generated tables and those in `output_dir`, one line per file;
    with `unexpected`, also table files that nothing generates any more."""
    problems = []
    for relative, text in sorted(generated.files.items()):
        path = output_dir / relative
        if not path.exists():
            problems.append(f"missing: {path}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"differs: {path}")
    if unexpected and output_dir.is_dir():
        for path in sorted(output_dir.glob("*/*")):
            relative = path.relative_to(output_dir).as_posix()
            if path.suffix in {SUFFIXES[f] for f in CHECKED_FORMATS} \
                    and relative not in generated.files:
                problems.append(f"unexpected (no layout produces it from these records): "
                                f"{path}")
    return problems
