"""Rendering a built table to markdown, LaTeX (booktabs) and CSV, byte for byte the same
every time: rows come sorted from the layout, numbers are formatted by the layout (or
here, with a fixed rule), and nothing depends on the clock or the machine."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

LEADING_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)(?![\d.])")


@dataclass(frozen=True)
class TableResult:
    """A layout's display frame with what every format shows around it."""

    layout: str
    description: str
    datasets: tuple[str, ...]
    frame: pd.DataFrame  # visible columns, then hidden ones (names starting with "_")
    best: frozenset[tuple[int, str]]  # (row position, column) cells holding a best value
    notes: tuple[str, ...]  # footer lines: layout notes, failures, citations, provenance

    @property
    def columns(self) -> list[str]:
        return [c for c in self.frame.columns if not str(c).startswith("_")]

    @property
    def title(self) -> str:
        return f"{self.layout} ({', '.join(self.datasets)})" if self.datasets else self.layout

    def hidden(self, column: str) -> list[Any]:
        if column not in self.frame.columns:
            return [None] * len(self.frame)
        return list(self.frame[column])

    def rows(self) -> Iterable[list[Any]]:
        for values in self.frame[self.columns].itertuples(index=False):
            yield list(values)


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def text_of(value: Any) -> str:
    """A cell as text; missing is empty (only the tidy records layout has missing cells,
    next to a status column that says why)."""
    if is_missing(value):
        return ""
    if isinstance(value, float):
        return format(value, ".6g")
    return str(value)


def leading_number(value: Any) -> float | None:
    """The number a cell starts with ('97.50 ± 0.42 (n=3)' -> 97.5); None for text."""
    if is_missing(value) or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = LEADING_NUMBER.match(str(value))
    return float(match.group(1)) if match else None


def best_cells(frame: pd.DataFrame) -> frozenset[tuple[int, str]]:
    """Cells holding the best value of their column within their group (attrs best /
    best_by) or of their row (attrs best_rowwise); only where two or more numbers compete."""
    marked: set[tuple[int, str]] = set()
    best: dict[str, str] = dict(frame.attrs.get("best") or {})
    group_by = [c for c in frame.attrs.get("best_by") or [] if c in frame.columns]
    positions = list(range(len(frame)))
    groups: dict[tuple[Any, ...], list[int]] = {}
    for pos in positions:
        key = tuple(text_of(frame.iloc[pos][c]) for c in group_by)
        groups.setdefault(key, []).append(pos)
    for column, direction in sorted(best.items()):
        if column not in frame.columns:
            continue
        for members in groups.values():
            numbers = [(p, leading_number(frame.iloc[p][column])) for p in members]
            scored = [(p, n) for p, n in numbers if n is not None]
            if len(scored) < 2:
                continue
            target = (max if direction == "max" else min)(n for _, n in scored)
            marked.update((p, column) for p, n in scored if n == target)
    rowwise = [c for c in frame.attrs.get("best_rowwise") or [] if c in frame.columns]
    for pos in positions:
        in_row = [(str(c), leading_number(frame.iloc[pos][c])) for c in rowwise]
        row_scores = [(c, n) for c, n in in_row if n is not None]
        if len(row_scores) >= 2:
            best_in_row = max(n for _, n in row_scores)
            marked.update((pos, c) for c, n in row_scores if n == best_in_row)
    return frozenset(marked)


# --- markdown --------------------------------------------------------------------------


def _md(value: Any) -> str:
    text = text_of(value).replace("\\", "\\\\").replace("|", "\\|")
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def to_markdown(table: TableResult) -> str:
    lines = [f"**{_md(table.title)}**: {_md(table.description)}", ""]
    lines.append("| " + " | ".join(_md(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.rows():
        lines.append("| " + " | ".join(_md(v) for v in row) + " |")
    if table.notes:
        lines.append("")
        lines.extend(f"- {_md(note)}" for note in table.notes)
    return "\n".join(lines) + "\n"


# --- LaTeX (booktabs) -----------------------------------------------------------------

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$",
                  "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}
_LATEX_SYMBOLS = {"±": r"$\pm$", "✓": r"\checkmark{}", "✗": r"$\times$", "—": "---",
                  "µ": r"$\mu$", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    for symbol, command in _LATEX_SYMBOLS.items():
        out = out.replace(symbol, command)
    return " ".join(out.split())


def _alignment(table: TableResult) -> str:
    spec = []
    for column in table.columns:
        values = [v for v in table.frame[column] if not is_missing(v)]
        numeric = bool(values) and all(leading_number(v) is not None for v in values)
        spec.append("r" if numeric else "l")
    return "".join(spec)


def to_latex(table: TableResult) -> str:
    label = re.sub(r"[^a-z0-9]+", "-", f"snnbench {table.title}".lower()).strip("-")
    lines = [
        "% generated by `snnbench table` from stored records; needs \\usepackage{booktabs}"
        " (and amssymb for \\checkmark)",
        r"\begin{table}[htbp]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}: {latex_escape(table.description)}}}",
        rf"\label{{tab:{label}}}",
        rf"\begin{{tabular}}{{{_alignment(table)}}}",
        r"\toprule",
        " & ".join(latex_escape(str(c)) for c in table.columns) + r" \\",
        r"\midrule",
    ]
    for pos, row in enumerate(table.rows()):
        cells = []
        for column, value in zip(table.columns, row, strict=True):
            cell = latex_escape(text_of(value))
            cells.append(rf"\textbf{{{cell}}}" if (pos, column) in table.best else cell)
        lines.append(" & ".join(cells) + r" \\")
    lines.extend([r"\bottomrule", r"\end{tabular}"])
    if table.notes:
        notes = r" \\ ".join(latex_escape(n) for n in table.notes)
        lines.append(rf"\par\smallskip{{\footnotesize {notes}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# --- CSV ---------------------------------------------------------------------------


def to_csv(table: TableResult) -> str:
    """The visible columns only; numbers at full precision (CSV is for further analysis).
    The provenance lives in the records layout's columns, not in comment lines a CSV
    reader would take for rows."""
    buffer = io.StringIO()
    table.frame[table.columns].to_csv(buffer, index=False, na_rep="", lineterminator="\n")
    return buffer.getvalue()
