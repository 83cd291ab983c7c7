"""`snnbench plot`: what each figure draws (checked by hand), repeatable files, errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from table_records import record, write_records

from snnbench_suite.cli import main
from snnbench_suite.plots import accuracy_series, draw, energy_series
from snnbench_suite.table_data import load_table_records, tidy_frame


def frame_of(folder: Path):  # type: ignore[no-untyped-def]
    return tidy_frame(load_table_records(folder))


def test_accuracy_series_is_the_mean_and_std_over_seeds(tmp_path) -> None:
    series = accuracy_series(frame_of(write_records(tmp_path / "r")))
    naive = series[(series["method_label"] == "naive") & (series["arch_label"] == "vgg11")]
    assert list(naive["T"]) == [1, 4]
    assert list(naive["mean"]) == [52.0, 82.0]
    assert list(naive["std"]) == [2.0, 2.0]
    assert list(naive["n"]) == [3, 3]
    calib = series[series["method_label"] == "calib"]
    assert list(calib["n"]) == [1, 1] and all(math.isnan(v) for v in calib["std"])
    # The failed resnet20 seed adds no point: two seeds, 40/44 -> 42 ± sqrt(8).
    resnet = series[series["arch_label"] == "resnet20"]
    assert list(resnet["n"]) == [2, 2]
    assert resnet["std"].iloc[0] == pytest.approx(math.sqrt(8))


def test_energy_series_in_microjoules(tmp_path) -> None:
    series = energy_series(frame_of(write_records(tmp_path / "r")))
    row = series[(series["method_label"] == "naive") & (series["arch_label"] == "resnet20")
                 & (series["T"] == 4)].iloc[0]
    # sops 2000 per step: 0.9 * 8000 + 4.6 * 500 = 9500 pJ = 0.0095 µJ; top-1 (70+74)/2.
    assert row["energy_uj"] == pytest.approx(0.0095)
    assert row["score"] == pytest.approx(72.0)


def test_figures_per_dataset_and_architecture_are_repeatable(tmp_path) -> None:
    frame = frame_of(write_records(tmp_path / "r"))
    figures, notes = draw(frame)
    assert notes == []
    assert [f.stem for f in figures] == ["digits/acc_vs_T_resnet20", "digits/acc_vs_T_vgg11",
                                         "digits/acc_vs_energy"]
    again, _ = draw(frame)
    for first, second in zip(figures, again, strict=True):
        assert first.data["svg"] == second.data["svg"]
        assert first.data["png"] == second.data["png"]
        assert first.data["png"][:8] == b"\x89PNG\r\n\x1a\n"
        svg = first.data["svg"].decode()
        assert "<dc:date>" not in svg and svg.lstrip().startswith("<?xml")
    assert figures[0].dataset == "digits" and figures[0].architecture == "resnet20"
    assert figures[2].architecture is None


def test_plot_command_writes_png_and_svg_next_to_each_other(tmp_path, capsys) -> None:
    folder = write_records(tmp_path / "r")
    out = tmp_path / "plots"
    assert main(["plot", "--results", str(folder), "--output-dir", str(out),
                 "--kind", "acc-vs-T", "--format", "svg"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["digits/acc_vs_T_resnet20.svg", "digits/acc_vs_T_vgg11.svg"]
    assert capsys.readouterr().out.split() == [str(out / w) for w in written]


def test_plot_without_energy_or_with_bad_arguments_is_exit_2(tmp_path, capsys) -> None:
    folder = write_records(tmp_path / "r", [record("naive", "vgg11", 0, {1: 50.0},
                                                   metrics=False)])
    args = ["plot", "--results", str(folder), "--output-dir", str(tmp_path / "p")]
    assert main([*args, "--kind", "acc-vs-energy"]) == 2
    assert "no record has an energy" in capsys.readouterr().err
    assert main([*args, "--kind", "histogram"]) == 2
    assert "unknown plot kind 'histogram'" in capsys.readouterr().err
    assert main([*args, "--format", "gif"]) == 2
    assert "unknown plot format 'gif'" in capsys.readouterr().err
    assert main([*args, "--dataset", "cifar10"]) == 2
    assert "no records for dataset 'cifar10'" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
