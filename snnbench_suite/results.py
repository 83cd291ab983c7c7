"""Records: one JSON file per cell, written atomically, read back into a tidy DataFrame.

A record is written to a temporary file in the same folder, flushed and fsynced, then
renamed over the final name, so a reader (or a crash) never sees half a record.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from snnbench_suite.errors import UsageError

# Version 2 added provenance fields (config hash, dataset fingerprint, deterministic flags,
# thread counts, plugin versions by entry point). Version 1 records are read by filling
# those fields with None; any other version is refused, never guessed at.
SCHEMA_VERSION = 2
RECORD_SUFFIX = ".json"

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"


def record_path(results_dir: Path, cell_id: str) -> Path:
    return results_dir / f"{cell_id}{RECORD_SUFFIX}"


def check_writable_folder(folder: Path, what: str = "results folder") -> None:
    """Fail early, creating nothing, if `folder` cannot be created or written."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UsageError(
            f"{what} {folder} cannot be used: {existing} exists and is not a folder. "
            "Choose another path."
        )
    try:
        # A real write test: os.access is not reliable for root or on odd filesystems.
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise UsageError(
            f"{what} {folder} is not writable ({exc.strerror or exc}). "
            "Choose a folder you can write to."
        ) from None


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a record")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default, allow_nan=True)
    write_text_atomic(path, text + "\n")


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide records from a group
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_record(results_dir: Path, record: dict[str, Any]) -> Path:
    path = record_path(results_dir, record["cell_id"])
    write_json_atomic(path, record)
    return path


class RecordSchemaError(UsageError):
    """A record written with a schema this snnbench cannot read (older or newer)."""


V2_PROVENANCE_FIELDS = ("config_hash", "dataset_fingerprint", "deterministic", "threads",
                        "plugin_versions")


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 lacks only provenance fields; they become None, so nothing is invented."""
    provenance = dict(data.get("provenance") or {})
    for key in V2_PROVENANCE_FIELDS:
        provenance.setdefault(key, None)
    return {**data, "provenance": provenance, "schema_version": SCHEMA_VERSION,
            "upgraded_from_schema": 1}


_UPGRADES = {1: _upgrade_v1}


def read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"record {path} cannot be read: {exc}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version == SCHEMA_VERSION:
        return data
    if isinstance(version, int) and not isinstance(version, bool) and version in _UPGRADES:
        return _UPGRADES[version](data)
    raise RecordSchemaError(
        f"record {path} has schema version {version!r}; this snnbench reads versions "
        f"{', '.join(map(str, sorted([*_UPGRADES, SCHEMA_VERSION])))}. Move it out of the "
        "results folder (or re-run its cell into another folder), or read it with the "
        "snnbench version that wrote it."
    )


def load_records(results_dir: Path) -> list[dict[str, Any]]:
    if not results_dir.is_dir():
        raise UsageError(
            f"results folder {results_dir} does not exist; run `snnbench run` first or "
            "point --results at a folder of records"
        )
    return [read_record(p) for p in sorted(results_dir.glob(f"*{RECORD_SUFFIX}"))]


def existing_record(results_dir: Path, cell_id: str) -> dict[str, Any] | None:
    """The stored record of a cell, or None when absent or unreadable JSON (then it
    re-runs). A record of a schema this snnbench cannot read raises RecordSchemaError:
    overwriting it could destroy a newer snnbench's result."""
    path = record_path(results_dir, cell_id)
    if not path.exists():
        return None
    try:
        return read_record(path)
    except RecordSchemaError:
        raise
    except UsageError:
        return None


def completed_steps(record: dict[str, Any] | None) -> set[int]:
    if not record or record.get("status") != STATUS_OK:
        return set()
    return {int(entry["T"]) for entry in record.get("per_T", [])}


def _finite(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


# Efficiency metrics (snnbench_suite.metrics): per T, and per cell from record["metrics"];
# NaN where a record has none (failed or skipped cells, records written before them).
PER_T_METRICS = ["sops", "dense_macs", "effective_macs", "effective_acs", "energy_pj",
                 "build_seconds", "eval_seconds"]
CELL_METRICS = ["params", "ann_macs", "ann_energy_pj"]
# Detection datasets are scored by COCO mAP@[.5:.95] ("map") and mAP@.5 ("map50"), fractions
# in [0, 1], where classification has "top1"; the column `metric` names the key a
# dataset's tables show (DatasetInfo.metric; "top1" in records written before it existed,
# empty where the record holds no dataset, e.g. a skipped cell).
DETECTION_METRICS = ["map", "map50"]

TIDY_COLUMNS = [
    "cell_id", "method", "method_version", "family", "architecture", "width", "dataset",
    "seed", "T", "top1", "top5", "ann_top1", "converted_ann_top1", *DETECTION_METRICS,
    "ann_map", "ann_map50", "metric", "firing_rate", *PER_T_METRICS, *CELL_METRICS,
    "metrics_version", "energy_table", "t_source", "status", "error",
]


def _metrics_columns(record: dict[str, Any]) -> dict[str, Any]:
    metrics = record.get("metrics") or {}
    table = metrics.get("energy_table") or {}
    return {
        **{key: _finite(metrics.get(key)) for key in CELL_METRICS},
        "metrics_version": metrics.get("version"),
        "energy_table": f"{table['name']} v{table['version']}" if table else None,
    }


def _converted_ann_top1(record: dict[str, Any], steps: int) -> float:
    """The accuracy of the network the SNN at `steps` was converted from, where the method
    derives one per T from the cell's ANN and notes it in its build (`converted_ann_top1`;
    cqplus's clamp-quantized CNN, for instance); NaN otherwise."""
    for build in record.get("builds") or []:
        if build.get("T") in (steps, None) and "converted_ann_top1" in build:
            return _finite(build["converted_ann_top1"])
    return math.nan


def records_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per (cell, T); a failed or skipped cell gives one row with T empty."""
    rows = []
    for record in records:
        cell = record["cell"]
        base = {
            "cell_id": record["cell_id"],
            "method": cell["method"],
            "method_version": cell["method_version"],
            "family": record.get("method", {}).get("family"),
            "architecture": cell["architecture"],
            "width": cell["width"],
            "dataset": cell["dataset"],
            "seed": cell["seed"],
            "ann_top1": _finite((record.get("ann") or {}).get("top1")),
            "ann_map": _finite((record.get("ann") or {}).get("map")),
            "ann_map50": _finite((record.get("ann") or {}).get("map50")),
            "metric": (record["dataset"].get("metric", "top1")
                       if isinstance(record.get("dataset"), dict) else None),
            "status": record["status"],
            "error": (record.get("error") or {}).get("message"),
            **_metrics_columns(record),
        }
        entries = record.get("per_T") or []
        if record["status"] != STATUS_OK or not entries:
            rows.append({**base, "T": None, "top1": math.nan, "top5": math.nan,
                         "converted_ann_top1": math.nan, "firing_rate": math.nan,
                         **dict.fromkeys(PER_T_METRICS, math.nan),
                         **dict.fromkeys(DETECTION_METRICS, math.nan),
                         "t_source": None})
            continue
        for entry in entries:
            rows.append({
                **base,
                "T": int(entry["T"]),
                "top1": _finite(entry.get("top1")),
                "top5": _finite(entry.get("top5")),
                "converted_ann_top1": _converted_ann_top1(record, int(entry["T"])),
                "firing_rate": _finite(entry.get("firing_rate")),
                **{key: _finite(entry.get(key)) for key in PER_T_METRICS},
                **{key: _finite(entry.get(key)) for key in DETECTION_METRICS},
                "t_source": entry.get("t_source"),
            })
    frame = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    frame["T"] = frame["T"].astype("Int64")
    return frame.sort_values(["dataset", "method", "architecture", "seed", "T"],
                             na_position="first", kind="stable").reset_index(drop=True)
