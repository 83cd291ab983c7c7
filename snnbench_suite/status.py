"""`snnbench status`: what a results folder holds, read while a run (or a cluster job
array) may still be writing it.

Records give done / failed / skipped; held cell locks give the cells running now, with
their host and process; the newest run manifest gives the cells of that run that have
no record yet (pending). Reading takes no lock a run waits on.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snnbench_suite.errors import UsageError
from snnbench_suite.results import RECORD_SUFFIX, read_record
from snnbench_suite.work import cell_holder, state_dir


@dataclass
class FolderStatus:
    counts: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (label, error)
    unreadable: list[str] = field(default_factory=list)
    running: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    run: dict[str, Any] | None = None


def _label(record: dict[str, Any]) -> str:
    cell = record.get("cell") or {}
    return (f"{cell.get('method')} / {cell.get('architecture')} / {cell.get('dataset')} / "
            f"seed {cell.get('seed')}")


def latest_run(results_dir: Path) -> dict[str, Any] | None:
    runs = sorted((state_dir(results_dir) / "runs").glob("*.json"),
                  key=lambda p: p.stat().st_mtime)
    for path in reversed(runs):
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    return None


def folder_status(results_dir: Path) -> FolderStatus:
    if not results_dir.is_dir():
        raise UsageError(f"results folder {results_dir} does not exist; point --results at "
                         "the folder a run writes")
    status = FolderStatus()
    recorded: dict[str, str] = {}
    for path in sorted(results_dir.glob(f"*{RECORD_SUFFIX}")):
        try:
            record = read_record(path)
        except UsageError as exc:
            status.unreadable.append(str(exc))
            continue
        state = str(record.get("status"))
        recorded[str(record.get("cell_id"))] = state
        status.counts[state] += 1
        if state == "failed":
            message = str((record.get("error") or {}).get("message", "")).splitlines()
            status.failed.append((_label(record), message[0] if message else ""))
    locks = state_dir(results_dir) / "locks"
    labels: dict[str, str] = {}
    status.run = latest_run(results_dir)
    for cell in (status.run or {}).get("cells") or []:
        labels[cell["cell_id"]] = cell["label"]
    for lock in sorted(locks.glob("*.lock")) if locks.is_dir() else []:
        cell_id = lock.name[: -len(".lock")]
        holder = cell_holder(results_dir, cell_id)
        if holder is not None:
            status.running.append((labels.get(cell_id, holder.get("cell", cell_id)), holder))
    running_ids = {lock_id for lock_id in labels if cell_holder(results_dir, lock_id)}
    for cell_id, label in labels.items():
        if cell_id not in recorded and cell_id not in running_ids:
            status.pending.append(label)
    return status


def describe_holder(holder: dict[str, Any]) -> str:
    since = holder.get("since")
    age = f", for {int(time.time() - float(since))} s" if since else ""
    return f"{holder.get('host', '?')} pid {holder.get('pid', '?')}{age}"
