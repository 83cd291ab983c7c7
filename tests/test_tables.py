"""Tables from hand-written records: every expected cell is computed here by hand.

Layouts (leaderboard, comparison, calibration, ablation, curve, efficiency, records),
formats (markdown, LaTeX, CSV), reported numbers, determinism, `--all` / `--check`, and
the bad inputs (schema versions, failed cells, empty layouts, malformed references).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from table_records import record, write_records

from snnbench_suite.cli import main
from snnbench_suite.reference import ReferenceError, default_reference_dir, load_reference
from snnbench_suite.tables import build_table, render

REFERENCE = Path(__file__).resolve().parent.parent / "leaderboards" / "reference"


def cli(*args: str) -> int:
    return main(list(args))


def md_rows(text: str) -> list[list[str]]:
    """The cells of a markdown table (header first), without the separator line."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


def as_dicts(text: str) -> list[dict[str, str]]:
    header, *rows = md_rows(text)
    return [dict(zip(header, row, strict=True)) for row in rows]


def table(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli("table", *args) == 0, capsys.readouterr().err
    return capsys.readouterr().out


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return write_records(tmp_path / "results")


# --- layouts -------------------------------------------------------------------------


def test_leaderboard_mean_std_over_seeds_and_failures_as_text(results, capsys) -> None:
    rows = as_dicts(table(capsys, "--results", str(results), "--no-reference"))
    by_key = {(r["method"], r["architecture"]): r for r in rows}
    # naive / vgg11: 50, 52, 54 -> mean 52, sample std 2; 80, 82, 84 -> 82 ± 2.
    assert by_key["naive", "vgg11"]["T=1"] == "52.00 ± 2.00 (n=3)"
    assert by_key["naive", "vgg11"]["T=4"] == "82.00 ± 2.00 (n=3)"
    # resnet20: 40, 44 -> 42 ± 2.83 (sqrt(8)); the failed third seed is counted, not zero.
    assert by_key["naive", "resnet20"]["T=1"] == "42.00 ± 2.83 (n=2)"
    assert by_key["naive", "resnet20"]["not ok"] == "1 failed"
    assert by_key["calib", "vgg11"]["T=4"] == "90.00 (n=1)"
    assert [(r["method"], r["architecture"]) for r in rows] == sorted(by_key)
    assert [r["dataset"] for r in rows] == ["digits"] * 4


def test_a_row_with_only_failed_or_skipped_cells_says_so(tmp_path, capsys) -> None:
    folder = write_records(tmp_path / "r", [
        record("naive", "vgg11", 0, {1: 50.0, 4: 80.0}),
        record("sdt", "vgg11", 0, status="failed", error="out of memory"),
        record("sdt", "vgg11", 1, status="failed", error="out of memory"),
        record("tet", "vgg11", 0, status="skipped", error="tet does not take event data"),
    ])
    text = table(capsys, "--results", str(folder), "--no-reference")
    rows = {r["method"]: r for r in as_dicts(text)}
    assert rows["sdt"]["T=1"] == rows["sdt"]["T=4"] == "failed (n=2)"
    assert rows["sdt"]["not ok"] == "2 failed"
    assert rows["tet"]["T=4"] == "skipped: tet does not take event data"
    assert "failed: sdt-vgg11-digits-s0-" in text and "out of memory" in text


def test_comparison_shows_reported_rows_beside_reproduced(results, capsys) -> None:
    rows = as_dicts(table(capsys, "--results", str(results), "--layout", "comparison",
                          "--reference", str(REFERENCE)))
    ours = [r for r in rows if r["source"].startswith("reproduced")]
    theirs = [r for r in rows if r["source"].startswith("reported")]
    assert {(r["method"], r["T"], r["accuracy (%)"]) for r in ours if r["method"] == "calib"} \
        == {("calib", "1", "60.00 (n=1)"), ("calib", "4", "90.00 (n=1)")}
    assert all(r["type"] == "ANN2SNN" for r in ours)
    assert ours[0]["dataset"] == "digits"
    # digits has no published numbers, so the calib papers' own rows are shown.
    readme = [r for r in theirs if r["dataset"] == "cifar10" and r["T"] == "32"
              and r["architecture"] == "vgg16 (VGG16 (BN))"]
    assert [r["accuracy (%)"] for r in readme] == ["93.65 ± 0.25 (n=5)"]
    assert readme[0]["type"] == "ANN2SNN"
    assert "Li et al. 2021" in readme[0]["source"]
    assert {r["method"] for r in theirs} == {"calib"}  # naive has no published rows


def test_comparison_types_follow_the_method_family(tmp_path, capsys) -> None:
    folder = write_records(tmp_path / "r", [
        record("sdt", "vggsnn", 0, {10: 70.0}, dataset="cifar10_dvs"),
        record("laf_repact", "vggsnn", 0, {10: 75.0}, dataset="cifar10_dvs"),
    ])
    rows = as_dicts(table(capsys, "--results", str(folder), "--layout", "comparison",
                          "--reference", str(REFERENCE)))
    types = {(r["method"], r["source"].split(":")[0]): r["type"] for r in rows}
    assert types["sdt", "reproduced"] == "SNN training"
    assert types["laf_repact", "reproduced"] == "distillation"
    # On cifar10_dvs the published rows are those of that dataset only (TET and its sdt).
    assert types["tet", "reported"] == "SNN training"
    reported = [r for r in rows if r["source"].startswith("reported")]
    assert {(r["method"], r["accuracy (%)"]) for r in reported} == {
        ("tet", "83.17 ± 0.15"), ("sdt", "77.40")}


def calibration_records() -> list[dict]:
    return [
        record("calib.none", "vgg11", 0, {4: 30.0}), record("calib.none", "vgg11", 1, {4: 34.0}),
        record("calib.light", "vgg11", 0, {4: 80.0}),
        record("calib.light", "vgg11", 1, {4: 84.0}),
        record("calib", "vgg11", 0, {4: 88.0}), record("calib", "vgg11", 1, {4: 90.0}),
        record("calib", "resnet20", 0, {4: 70.0}),
    ]


def test_calibration_levels_side_by_side_with_the_paper(tmp_path, capsys) -> None:
    folder = write_records(tmp_path / "r", calibration_records())
    rows = as_dicts(table(capsys, "--results", str(folder), "--layout", "calibration",
                          "--reference", str(REFERENCE)))
    ours = {r["architecture"]: r for r in rows if r["source"] == "reproduced"}
    assert ours["vgg11"]["None"] == "32.00 ± 2.83 (n=2)"
    assert ours["vgg11"]["Light"] == "82.00 ± 2.83 (n=2)"
    assert ours["vgg11"]["Advanced"] == "89.00 ± 1.41 (n=2)"
    assert ours["resnet20"]["None"] == "—" and ours["resnet20"]["Advanced"] == "70.00 (n=1)"
    paper = [r for r in rows if r["source"].startswith("reported")
             and r["dataset"] == "cifar100" and r["architecture"] == "resnet20 (ResNet-20 (BN))"]
    assert [(r["None"], r["Light"], r["Advanced"], r["ANN"]) for r in paper] == [
        ("39.27 ± 2.85 (n=5)", "73.89 ± 0.15 (n=5)", "74.48 ± 0.16 (n=5)", "76.52")]
    latex = table(capsys, "--results", str(folder), "--layout", "calibration", "--format",
                  "latex", "--no-reference")
    # Best per row in bold: Advanced (89.00) beats Light (82.00) and None (32.00).
    assert r"\textbf{89.00 $\pm$ 1.41 (n=2)}" in latex
    assert r"\textbf{82.00" not in latex


def test_ablation_rows_and_missing_variants(tmp_path, capsys) -> None:
    folder = write_records(tmp_path / "r", [
        record("sdt", "resnet20", 0, {1: 60.0, 2: 65.0}),
        record("laf_repact.laf", "resnet20", 0, {1: 62.0, 2: 66.0}),
        record("laf_repact", "resnet20", 0, {1: 64.0, 2: 69.0}),
    ])
    rows = as_dicts(table(capsys, "--results", str(folder), "--layout", "ablation"))
    assert [(r["variant"], r["L_AF"], r["RepAct"], r["T=1"], r["T=2"]) for r in rows] == [
        ("baseline", "✗", "✗", "60.00 (n=1)", "65.00 (n=1)"),
        ("+L_AF", "✓", "✗", "62.00 (n=1)", "66.00 (n=1)"),
        ("+RepAct", "✗", "✓", "—", "—"),
        ("+L_AF +RepAct", "✓", "✓", "64.00 (n=1)", "69.00 (n=1)"),
    ]
    latex = table(capsys, "--results", str(folder), "--layout", "ablation", "--format",
                  "latex")
    assert r"\checkmark{}" in latex and r"$\times$" in latex
    assert r"\textbf{64.00 (n=1)}" in latex and r"\textbf{69.00 (n=1)}" in latex


def test_efficiency_costs_per_sample(results, capsys) -> None:
    rows = as_dicts(table(capsys, "--results", str(results), "--layout", "efficiency"))
    row = next(r for r in rows if r["method"] == "naive" and r["architecture"] == "vgg11"
               and r["T"] == "4")
    # Costs of table_records.record at T=4: firing rate 0.1*4/5 = 8%, SOPs 1000*4 = 4000,
    # energy 0.9*4000 + 4.6*500 = 5900 pJ; the ANN 46000 pJ -> ratio 0.128.
    assert row["firing rate (%)"] == "8.000"
    assert row["SOPs (M)"] == "0.004000"
    assert row["eff. MACs (M)"] == "0.000500"
    assert row["energy (µJ)"] == "0.005900"
    assert row["ANN energy (µJ)"] == "0.04600"
    assert row["energy / ANN"] == "0.128"
    assert row["accuracy (%)"] == "82.00 ± 2.00 (n=3)"
    failed = [r for r in rows if r["architecture"] == "resnet20" and r["T"] == "—"]
    assert failed == []  # resnet20 has ok seeds: its failure is not a cost row


def test_curve_and_records_layouts(results, capsys) -> None:
    rows = as_dicts(table(capsys, "--results", str(results), "--layout", "curve"))
    row = next(r for r in rows if r["method"] == "naive" and r["architecture"] == "resnet20"
               and r["T"] == "1")
    assert (row["score (%)"], row["std"], row["n"]) == ("42.00", "2.83", "2")
    text = table(capsys, "--results", str(results), "--layout", "records", "--format", "csv")
    records = list(csv.DictReader(io.StringIO(text)))
    assert len(records) == 3 * 2 + 2 * 2 + 1 + 2 + 2  # ok (cell, T) rows + 1 failed row
    failed = [r for r in records if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["top1"] == "" and failed[0]["T"] == ""
    assert "diverged" in failed[0]["error"]
    energy = {(r["method"], r["seed"], r["T"]): float(r["energy_pj"]) for r in records
              if r["status"] == "ok"}
    assert energy["naive", "0", "4"] == pytest.approx(5900.0)
    assert {r["metrics_version"] for r in records if r["status"] == "ok"} == {"1"}


def test_detection_datasets_show_map_in_percent(tmp_path, capsys) -> None:
    folder = write_records(tmp_path / "r", [
        record("naive", "det.vgg11", 0, {1: 12.5, 4: 35.0}, dataset="digits_det",
               ann=40.0, metric="map"),
        record("naive", "det.vgg11", 1, {1: 13.5, 4: 37.0}, dataset="digits_det",
               ann=42.0, metric="map"),
    ])
    text = table(capsys, "--results", str(folder), "--no-reference")
    [row] = as_dicts(text)
    # mAP is stored as a fraction (0.125 ...) and shown in percent.
    assert (row["ANN"], row["T=1"], row["T=4"]) == (
        "41.00 ± 1.41 (n=2)", "13.00 ± 0.71 (n=2)", "36.00 ± 1.41 (n=2)")
    assert "- score: COCO mAP@[.5:.95] (%)" in text
    both = write_records(tmp_path / "r", [record("naive", "vgg11", 0, {1: 50.0})])
    text = table(capsys, "--results", str(both), "--no-reference")
    assert "- score: top-1 accuracy (%) on digits; COCO mAP@[.5:.95] (%) on digits_det" \
        in text


def test_versions_and_variants_are_separate_rows(tmp_path, capsys) -> None:
    folder = write_records(tmp_path / "r", [
        record("naive", "vgg11", 0, {1: 50.0}),
        record("naive", "vgg11", 1, {1: 70.0}, version="2"),
        record("calib", "vgg11", 0, {1: 60.0}, method_params={"candidates": 95}),
        record("calib", "vgg11", 0, {1: 65.0}, method_params={"candidates": 10}),
    ])
    text = table(capsys, "--results", str(folder), "--no-reference")
    rows = {r["method"]: r["T=1"] for r in as_dicts(text)}
    assert rows == {"naive v1": "50.00 (n=1)", "naive v2": "70.00 (n=1)",
                    "calib [candidates=95]": "60.00 (n=1)",
                    "calib [candidates=10]": "65.00 (n=1)"}
    assert "methods: calib v1, naive v1, naive v2" in text


def test_dataset_parameters_of_other_datasets_are_not_variants(tmp_path, capsys) -> None:
    # One run over digits and dvs_digits: each dataset has its own parameters, which must
    # not make the digits rows look like a `--set` variant of each other.
    digits = record("sdt", "vgg11", 0, {1: 80.0})
    digits["cell"]["dataset_params"] = {"size": 8}
    events = record("sdt", "vgg11", 0, {1: 70.0}, dataset="dvs_digits")
    events["cell"]["dataset_params"] = {"frames": 8}
    folder = write_records(tmp_path / "r", [digits, events])
    text = table(capsys, "--results", str(folder), "--no-reference", "--dataset", "digits")
    assert [r["method"] for r in as_dicts(text)] == ["sdt"]


def test_footer_names_versions_and_environment(results, capsys) -> None:
    text = table(capsys, "--results", str(results), "--no-reference")
    assert "- methods: &lt;script&gt;alert(1)&lt;/script&gt; v1, calib v1, naive v1" in text
    assert "- metrics: v1; energy table 45nm v1 (4.6 pJ/MAC, 0.9 pJ/AC)" in text
    assert "- environment: cpu (x86_64), torch 2.4.0" in text
    assert "- snnbench: 0.1.0; git 0123456" in text


# --- formats -------------------------------------------------------------------------


def test_latex_is_booktabs_with_the_best_value_per_column_in_bold(results, capsys) -> None:
    latex = table(capsys, "--results", str(results), "--format", "latex", "--no-reference")
    lines = latex.splitlines()
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert lines.count(rule) == 1
    # Best at T=1 and T=4 on digits: calib (60, 90); nothing else in bold in those columns.
    assert r"\textbf{60.00 (n=1)}" in latex and r"\textbf{90.00 (n=1)}" in latex
    assert latex.count(r"\textbf{") == 2
    assert r"52.00 $\pm$ 2.00 (n=3)" in latex
    assert r"\textless{}script\textgreater{}alert(1)" in latex
    assert r"\caption{leaderboard (digits)" in latex and "x86\\_64" in latex


def test_csv_parses_back_to_the_same_cells(results, capsys) -> None:
    text = table(capsys, "--results", str(results), "--format", "csv", "--no-reference")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["method"] for r in rows] == ["<script>alert(1)</script>", "calib", "naive",
                                           "naive"]
    assert rows[2]["T=1"] == "42.00 ± 2.83 (n=2)"  # resnet20 sorts before vgg11


def test_tables_are_byte_deterministic(tmp_path, capsys) -> None:
    first = write_records(tmp_path / "a")
    # The same records written in the opposite order, under other file names.
    from table_records import standard_records

    second = tmp_path / "b"
    second.mkdir()
    for index, entry in enumerate(reversed(standard_records())):
        (second / f"{index:02d}.json").write_text(json.dumps(entry))
    for layout in ("leaderboard", "comparison", "curve", "efficiency", "records"):
        for fmt in ("md", "latex", "csv"):
            texts = [table(capsys, "--results", str(folder), "--layout", layout, "--format",
                           fmt, "--reference", str(REFERENCE)) for folder in (first, second)]
            assert texts[0] == texts[1], (layout, fmt)
    assert "\r" not in texts[0]


# --- --all and --check --------------------------------------------------------------


def test_all_writes_every_layout_and_check_finds_every_difference(results, tmp_path,
                                                                   capsys) -> None:
    out = tmp_path / "tables"
    assert cli("table", "--all", "--results", str(results), "--output-dir", str(out),
               "--reference", str(REFERENCE)) == 0
    err = capsys.readouterr().err
    assert "skipped digits/ablation" in err and "skipped digits/calibration" not in err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    for layout in ("leaderboard", "comparison", "calibration", "curve", "efficiency",
                   "records"):
        assert f"digits/{layout}.md" in written and f"digits/{layout}.csv" in written
    assert "digits/ablation.md" not in written
    assert {"digits/acc_vs_T_vgg11.png", "digits/acc_vs_T_vgg11.svg",
            "digits/acc_vs_energy.svg", "index.html"} <= set(written)

    check = ("table", "--check", "--results", str(results), "--output-dir", str(out),
             "--reference", str(REFERENCE))
    assert cli(*check) == 0
    capsys.readouterr()
    (out / "digits" / "curve.md").write_text("edited by hand\n")
    (out / "digits" / "records.csv").unlink()
    (out / "digits" / "stale.md").write_text("a layout that is gone\n")
    assert cli(*check) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"differs: {out}/digits/curve.md", f"missing: {out}/digits/records.csv",
                     "unexpected (no layout produces it from these records): "
                     f"{out}/digits/stale.md"]


THIRD_PARTY_LAYOUT = """
import pandas as pd
from snnbench_suite import TableSpec, hookimpl

@hookimpl
def snnbench_register_tables(register):
    register(TableSpec(name="lab_table", build=lambda frame: pd.DataFrame({"n": [len(frame)]})))
"""


def test_all_covers_the_shipped_layouts_unless_named(results, tmp_path, install_plugin,
                                                     capsys) -> None:
    install_plugin("lab_tables", THIRD_PARTY_LAYOUT)
    out = tmp_path / "tables"
    base = ("table", "--no-plots", "--results", str(results), "--output-dir", str(out),
            "--no-reference")
    assert cli(*base, "--all") == 0
    assert not (out / "digits" / "lab_table.md").exists()
    assert cli(*base, "--check") == 0
    assert cli(*base, "--all", "--layout", "lab_table") == 0
    # 15 tidy rows: naive 3x2 + 2x2 (+1 failed), calib 2, the markup-named method 2.
    assert (out / "digits" / "lab_table.csv").read_text() == "n\n15\n"
    capsys.readouterr()


def test_check_fails_when_a_record_changes(results, tmp_path, capsys) -> None:
    out = tmp_path / "tables"
    assert cli("table", "--all", "--no-plots", "--results", str(results), "--output-dir",
               str(out), "--no-reference") == 0
    path = next(results.glob("calib-*.json"))
    data = json.loads(path.read_text())
    data["per_T"][1]["top1"] = 91.0
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert cli("table", "--check", "--results", str(results), "--output-dir", str(out),
               "--no-reference") == 1
    differs = capsys.readouterr().out
    assert f"differs: {out}/digits/leaderboard.md" in differs
    assert f"differs: {out}/digits/records.csv" in differs


# --- bad input --------------------------------------------------------------------


def test_records_of_another_schema_are_named_exit_2(results, capsys) -> None:
    bad = record("naive", "vgg11", 5, {1: 50.0})
    bad["schema_version"] = 99
    (results / "future.json").write_text(json.dumps(bad))
    (results / "broken.json").write_text("{not json")
    assert cli("table", "--results", str(results)) == 2
    err = capsys.readouterr().err
    assert "2 of 10 records" in err
    assert "future.json has schema version 99" in err and "broken.json" in err


def test_records_of_an_older_readable_schema_are_said_so(results, capsys) -> None:
    old = record("naive", "vgg11", 5, {1: 56.0, 4: 86.0})
    old["schema_version"] = 1
    (results / "old.json").write_text(json.dumps(old))
    text = table(capsys, "--results", str(results), "--no-reference")
    assert "| digits | naive | vgg11 | 97.50 ± 0.00 (n=4) | 53.00 ± 2.58 (n=4) |" in text
    assert "- schema: 1 of 9 records were written with an older schema (1)" in text


def test_a_dataset_without_records_is_exit_2(results, capsys) -> None:
    assert cli("table", "--results", str(results), "--dataset", "cifar10") == 2
    err = capsys.readouterr().err
    assert "no records for dataset 'cifar10'" in err and "datasets with records: digits" in err


def test_a_layout_with_nothing_to_show_is_exit_2(results, capsys) -> None:
    assert cli("table", "--results", str(results), "--layout", "ablation") == 2
    assert "needs records of sdt" in capsys.readouterr().err
    assert cli("table", "--results", str(results), "--layout", "leaderbord") == 2
    assert "did you mean" in capsys.readouterr().err.lower()


REFERENCE_TEMPLATE = """\
paper: {stem}
short: Someone 2020
citation: Someone. A paper. 2020.
numbers:
  - {{method: calib, dataset: cifar10, architecture: vgg16, T: 32, top1: {top1},
     where: Table 1}}
"""


@pytest.mark.parametrize(("top1", "message"), [
    ("'93.3x'", "numbers[0].top1: '93.3x' is not a number"),
    ("120", "numbers[0].top1: 120 is outside [0, 100]"),
    (".nan", "numbers[0].top1: nan is outside [0, 100]"),
    ("yes", "numbers[0].top1: True is not a number"),
])
def test_malformed_reference_numbers_name_file_key_and_value(tmp_path, capsys, results,
                                                            top1, message) -> None:
    folder = tmp_path / "reference"
    folder.mkdir()
    path = folder / "someone2020.yaml"
    path.write_text(REFERENCE_TEMPLATE.format(stem="someone2020", top1=top1))
    with pytest.raises(ReferenceError) as caught:
        load_reference(folder)
    assert str(path) in str(caught.value) and message in str(caught.value)
    assert cli("table", "--results", str(results), "--reference", str(folder)) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("where: Table 1", "note: x"), "numbers[0].where: None is missing"),
    (lambda t: t.replace("T: 32", "T: 0"), "numbers[0].T: 0 is not a positive whole number"),
    (lambda t: t.replace("T: 32", "T: 32, seeds: 2.5"), "numbers[0].seeds: 2.5 is not a"),
    (lambda t: t.replace("method: calib", "method: Calib"), "numbers[0].method: 'Calib'"),
    (lambda t: t.replace("T: 32", "T: 32, acc: 3"), "numbers[0].acc: 3 is not a known key"),
    (lambda t: t.replace("paper: x2020", "paper: y2020"), "paper: 'y2020' differs from"),
    (lambda t: t.replace("short: Someone 2020\n", ""), "short: None is missing"),
    (lambda t: "- just a list\n", "is not a mapping"),
])
def test_malformed_reference_entries(tmp_path, edit, message) -> None:
    folder = tmp_path / "reference"
    folder.mkdir()
    (folder / "x2020.yaml").write_text(edit(REFERENCE_TEMPLATE.format(stem="x2020",
                                                                      top1="93.3")))
    with pytest.raises(ReferenceError, match="x2020.yaml") as caught:
        load_reference(folder)
    assert message in str(caught.value)


def test_committed_reference_files_hold_the_checked_numbers() -> None:
    assert default_reference_dir() is not None
    reference = load_reference(REFERENCE)
    assert {p.key for p in reference.papers} == {
        "calib_li2021", "softreset_deng2021", "cqplus_yan2023", "qcfs_bu2022",
        "tet_deng2022", "enof_guo2024"}
    assert all(p.citation and p.short for p in reference.papers)
    numbers = {(n.method, n.dataset, n.architecture, n.T, n.where.split(",")[0]):
               (n.top1, n.std) for n in reference.numbers}
    # Spot checks against the table of published numbers in the methods spec.
    assert numbers["calib.none", "cifar10", "vgg16", 32, "authors' README"] == (64.52, 4.12)
    assert numbers["calib", "cifar100", "resnet20", 32, "authors' README"] == (74.48, 0.16)
    assert numbers["softreset", "cifar100", "vgg16", 64,
                   "as quoted (RTS"] == (21.84, None)
    assert numbers["cqplus", "cifar10", "vgg_star", 600, "abstract"] == (95.06, None)
    assert numbers["tet", "cifar10_dvs", "vggsnn", 10, "paper text (DVS-CIFAR10)"] == (
        83.17, 0.15)
    assert len(reference.numbers) == 25
    assert all(n.where for n in reference.numbers)


def test_build_table_api_renders_every_format(results) -> None:
    from snnbench_suite.plugins import load_plugins

    result = build_table(load_plugins(strict=True), results, "curve", ["digits"])
    assert result.datasets == ("digits",)
    for fmt in ("md", "latex", "csv"):
        assert "naive" in render(result, fmt)


def test_list_tables_names_every_layout(capsys) -> None:
    assert cli("list", "tables") == 0
    out = capsys.readouterr().out
    for name in ("leaderboard", "comparison", "calibration", "ablation", "curve",
                 "efficiency", "records"):
        assert name in out
