"""Hand-written records shaped like the ones `snnbench run` writes, for the table, plot
and page tests (no training: every number here is chosen, so expected cells are known)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from snnbench_suite.results import SCHEMA_VERSION

FAMILIES = {"naive": "conversion", "calib": "conversion", "calib.none": "conversion",
            "calib.light": "conversion", "sdt": "direct_training", "tet": "direct_training",
            "laf_repact": "distillation", "laf_repact.laf": "distillation",
            "laf_repact.repact": "direct_training"}
ENERGY_TABLE = {"name": "45nm", "version": "1", "pj_per_mac": 4.6, "pj_per_ac": 0.9}


def record(method: str, arch: str, seed: int, per_t: dict[int, float] | None = None, *,
           dataset: str = "digits", status: str = "ok", error: str | None = None,
           ann: float = 97.5, sops: float | None = 1000.0, version: str = "1",
           method_params: dict[str, Any] | None = None, width: float = 0.25,
           metrics: bool = True, metric: str = "top1") -> dict[str, Any]:
    """One record; `per_t` maps T to top-1 (or, with metric="map", to mAP in percent,
    stored as a fraction as detection records do). Costs scale with T so they are easy
    to check: SOPs = sops * T, energy = 0.9 pJ per SOP + 4.6 pJ x 500 MACs (first layer)."""
    tag = zlib.crc32(json.dumps([method, version, method_params, width]).encode())
    cell_id = f"{method}-{arch}-{dataset}-s{seed}-{tag:08x}"
    entries = []
    for t, top1 in sorted((per_t or {}).items()):
        entry: dict[str, Any] = {"T": t, "firing_rate": 0.1 * t / (t + 1),
                                 "t_source": f"built and simulated at T = {t}"}
        if metric == "map":
            entry.update(map=top1 / 100, map50=min(1.0, top1 / 50))
        else:
            entry["top1"] = top1
        if metrics and sops is not None:
            entry.update(sops=sops * t, dense_macs=10_000.0, effective_macs=500.0,
                         effective_acs=sops * t, energy_pj=0.9 * sops * t + 4.6 * 500,
                         eval_seconds=0.01)
        entries.append(entry)
    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "cell_id": cell_id,
        "cell": {"method": method, "method_version": version,
                 "method_params": method_params or {}, "architecture": arch, "width": width,
                 "dataset": dataset, "dataset_version": "1", "dataset_params": {},
                 "seed": seed, "epochs": None},
        "status": status,
        "error": None if error is None else {"type": "RuntimeError", "message": error},
        "method": {"name": method, "family": FAMILIES.get(method, "conversion"),
                   "version": version, "t_mode": "per_t", "traits": {}},
        "ann": ({"map": ann / 100} if metric == "map" else {"top1": ann})
        if status == "ok" else None,
        "dataset": {"name": dataset, "metric": metric},
        "per_T": entries if status == "ok" else [],
        "provenance": {"device": "cpu", "device_name": "x86_64", "torch": "2.4.0",
                       "snnbench_version": "0.1.0",
                       "git": {"commit": "0123456789abcdef", "dirty": False}},
        "timings": {},
    }
    if metrics and status == "ok":
        result["metrics"] = {"version": "1", "energy_table": ENERGY_TABLE, "params": 1234,
                             "ann_macs": 10_000.0, "ann_energy_pj": 46_000.0}
    return result


def standard_records() -> list[dict[str, Any]]:
    """digits: naive on vgg11 (3 seeds) and resnet20 (2 seeds ok, seed 2 failed), calib on
    vgg11 (1 seed), and a method whose name is markup (the page must escape it)."""
    return [
        record("naive", "vgg11", 0, {1: 50.0, 4: 80.0}),
        record("naive", "vgg11", 1, {1: 52.0, 4: 82.0}),
        record("naive", "vgg11", 2, {1: 54.0, 4: 84.0}),
        record("naive", "resnet20", 0, {1: 40.0, 4: 70.0}, sops=2000.0),
        record("naive", "resnet20", 1, {1: 44.0, 4: 74.0}, sops=2000.0),
        record("naive", "resnet20", 2, status="failed", error="diverged: loss is nan"),
        record("calib", "vgg11", 0, {1: 60.0, 4: 90.0}),
        record("<script>alert(1)</script>", "vgg11", 0, {1: 10.0, 4: 20.0}),
    ]


def write_records(folder: Path, records: list[dict[str, Any]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for entry in standard_records() if records is None else records:
        name = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in entry["cell_id"])
        (folder / f"{name}.json").write_text(json.dumps(entry, indent=2, sort_keys=True))
    return folder
