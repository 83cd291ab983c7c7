"""The committed leaderboards: every table under leaderboards/tables is what the code makes
of the committed records (the check CI runs), and the records are a full run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snnbench_suite.cli import main

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "leaderboards" / "records"
TABLES = ROOT / "leaderboards" / "tables"


def test_committed_tables_match_the_committed_records(capsys) -> None:
    code = main(["table", "--check", "--results", str(RECORDS), "--output-dir", str(TABLES)])
    assert code == 0, capsys.readouterr().out + capsys.readouterr().err


def test_the_records_cover_three_families_and_three_seeds() -> None:
    records = [json.loads(p.read_text()) for p in sorted(RECORDS.glob("*.json"))]
    assert records, f"no records in {RECORDS}"
    cells = {(r["cell"]["method"], r["cell"]["architecture"], r["cell"]["dataset"])
             for r in records}
    seeds = {r["cell"]["seed"] for r in records}
    architectures = {arch for _, arch, _ in cells}
    assert seeds >= {0, 1, 2}
    assert len(architectures) >= 3
    assert {"digits", "dvs_digits"} <= {dataset for _, _, dataset in cells}


@pytest.mark.parametrize("layout", ["comparison", "calibration"])
def test_paper_tables_show_reported_beside_reproduced_rows(layout: str) -> None:
    text = (TABLES / "digits" / f"{layout}.md").read_text()
    assert "reported" in text and "reproduced" in text
