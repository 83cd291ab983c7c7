"""Published numbers: one YAML file per paper in leaderboards/reference/.

Each file names its paper (key, short name, full citation) and lists `numbers`; every
number says which snnbench method, dataset and architecture it corresponds to, its T, the
accuracy, and `where` in the paper (or the authors' code) it was read. Tables show them as
*reported* rows beside the *reproduced* ones. A malformed entry is an error naming the
file, the key and the value, never a silently dropped or guessed number.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from snnbench_suite.errors import UsageError
from snnbench_suite.registry import NAME_PATTERN

FILE_KEYS = {"paper", "short", "citation", "code", "notes", "numbers"}
REQUIRED_FILE_KEYS = ("paper", "short", "citation", "numbers")
NUMBER_KEYS = {"method", "dataset", "architecture", "paper_architecture", "T", "top1", "std",
               "seeds", "ann_top1", "where", "note", "family"}
REQUIRED_NUMBER_KEYS = ("method", "dataset", "architecture", "T", "top1", "where")
FAMILIES = ("conversion", "direct_training", "distillation")
REFERENCE_ENV = "SNNBENCH_REFERENCE"


class ReferenceError(UsageError):
    """A reference file that cannot be read or holds a malformed entry."""


@dataclass(frozen=True)
class Paper:
    key: str
    short: str
    citation: str
    code: str
    notes: str
    path: str


@dataclass(frozen=True)
class ReportedNumber:
    """One published accuracy, in percent."""

    paper: str
    method: str
    dataset: str
    architecture: str
    T: int
    top1: float
    where: str
    std: float | None = None
    seeds: int | None = None
    ann_top1: float | None = None
    paper_architecture: str = ""
    note: str = ""
    family: str | None = None


@dataclass(frozen=True)
class Reference:
    papers: tuple[Paper, ...]
    numbers: tuple[ReportedNumber, ...]

    def paper(self, key: str) -> Paper:
        return next(p for p in self.papers if p.key == key)


EMPTY_REFERENCE = Reference(papers=(), numbers=())


def default_reference_dir() -> Path | None:
    """$SNNBENCH_REFERENCE, else ./leaderboards/reference, else the one in this source tree."""
    if os.environ.get(REFERENCE_ENV):
        return Path(os.environ[REFERENCE_ENV])
    for candidate in (Path("leaderboards/reference"),
                      Path(__file__).resolve().parent.parent / "leaderboards" / "reference"):
        if candidate.is_dir():
            return candidate
    return None


def _fail(path: Path, key: str, value: Any, why: str) -> ReferenceError:
    return ReferenceError(f"reference file {path}: {key}: {value!r} {why}. Fix the entry "
                          "(every number needs its source) or move the file away.")


def _text(path: Path, key: str, value: Any, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, key, value, "is not a non-empty text")
    return " ".join(value.split())


def _percent(path: Path, key: str, value: Any, *, low: float = 0.0) -> float:
    # bool is an int in Python; a YAML `yes` is never an accuracy.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, key, value, "is not a number (write percent as a plain number, "
                    "e.g. 93.30; put ± std in `std`)")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= 100.0:
        raise _fail(path, key, value, f"is outside [{low:g}, 100] (percent)")
    return number


def _positive_int(path: Path, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(path, key, value, "is not a positive whole number")
    return value


def _name(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise _fail(path, key, value, "is not an snnbench name (lowercase [a-z0-9_], e.g. "
                    "'calib.light', 'cifar10', 'resnet20')")
    return value


def _number(path: Path, paper: str, index: int, entry: Any) -> ReportedNumber:
    where = f"numbers[{index}]"
    if not isinstance(entry, Mapping):
        raise _fail(path, where, entry, "is not a mapping of method, dataset, ... keys")
    unknown = sorted(set(entry) - NUMBER_KEYS, key=str)
    if unknown:
        raise _fail(path, f"{where}.{unknown[0]}", entry[unknown[0]],
                    f"is not a known key (known: {', '.join(sorted(NUMBER_KEYS))})")
    for key in REQUIRED_NUMBER_KEYS:
        if key not in entry:
            raise _fail(path, f"{where}.{key}", None, "is missing")
    family = entry.get("family")
    if family is not None and family not in FAMILIES:
        raise _fail(path, f"{where}.family", family, f"is not one of {', '.join(FAMILIES)}")
    std = entry.get("std")
    seeds = entry.get("seeds")
    ann = entry.get("ann_top1")
    return ReportedNumber(
        paper=paper,
        method=_name(path, f"{where}.method", entry["method"]),
        dataset=_name(path, f"{where}.dataset", entry["dataset"]),
        architecture=_name(path, f"{where}.architecture", entry["architecture"]),
        T=_positive_int(path, f"{where}.T", entry["T"]),
        top1=_percent(path, f"{where}.top1", entry["top1"]),
        where=_text(path, f"{where}.where", entry["where"]),
        std=None if std is None else _percent(path, f"{where}.std", std),
        seeds=None if seeds is None else _positive_int(path, f"{where}.seeds", seeds),
        ann_top1=None if ann is None else _percent(path, f"{where}.ann_top1", ann),
        paper_architecture=_text(path, f"{where}.paper_architecture",
                                 entry.get("paper_architecture"), required=False),
        note=_text(path, f"{where}.note", entry.get("note"), required=False),
        family=family,
    )


def load_reference_file(path: Path) -> tuple[Paper, list[ReportedNumber]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ReferenceError(f"reference file {path} cannot be read: {exc}") from None
    if not isinstance(data, Mapping):
        raise ReferenceError(f"reference file {path} is not a mapping with keys "
                             f"{', '.join(REQUIRED_FILE_KEYS)}")
    for key in REQUIRED_FILE_KEYS:
        if key not in data:
            raise _fail(path, key, None, "is missing")
    unknown = sorted(set(data) - FILE_KEYS, key=str)
    if unknown:
        raise _fail(path, unknown[0], data[unknown[0]],
                    f"is not a known key (known: {', '.join(sorted(FILE_KEYS))})")
    key = _text(path, "paper", data["paper"])
    if key != path.stem:
        raise _fail(path, "paper", key, f"differs from the file name {path.stem!r}; the key "
                    "and the file name must agree so a paper has one file")
    paper = Paper(key=key, short=_text(path, "short", data["short"]),
                  citation=_text(path, "citation", data["citation"]),
                  code=_text(path, "code", data.get("code"), required=False),
                  notes=_text(path, "notes", data.get("notes"), required=False),
                  path=path.name)
    entries = data["numbers"]
    if not isinstance(entries, list):
        raise _fail(path, "numbers", entries, "is not a list (write `numbers: []` for none)")
    return paper, [_number(path, key, i, e) for i, e in enumerate(entries)]


def load_reference(folder: Path | None) -> Reference:
    """Every `*.yaml` in `folder`, sorted by file name; None gives no reported numbers."""
    if folder is None:
        return EMPTY_REFERENCE
    if not folder.is_dir():
        raise ReferenceError(f"reference folder {folder} does not exist; point --reference "
                             "at a folder of published-number YAML files")
    papers, numbers = [], []
    for path in sorted(folder.glob("*.yaml")):
        paper, entries = load_reference_file(path)
        papers.append(paper)
        numbers.extend(entries)
    return Reference(papers=tuple(papers), numbers=tuple(numbers))
