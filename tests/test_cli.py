"""The CLI: exit codes, messages, nothing written on bad input, resume, failure isolation."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from snnbench_suite.cli import main

FAILING_METHOD = """
from snnbench_suite import MethodSpec, hookimpl

def build(ctx):
    raise RuntimeError("this method fails on purpose")

@hookimpl
def snnbench_register_methods(register):
    register(MethodSpec(name="always_fails", family="conversion", version="1",
                        t_mode="anytime", build=build))
"""

EVENTS = []
RECORDING_PLUGIN = """
from snnbench_suite import hookimpl
import tests_event_log

@hookimpl
def snnbench_cell_started(cell):
    tests_event_log.EVENTS.append(("started", cell.method))

@hookimpl
def snnbench_cell_finished(cell, record):
    tests_event_log.EVENTS.append(("finished", cell.method, record["status"]))

@hookimpl
def snnbench_environment_info():
    return {"lab": "test-bench"}
"""


def run_cli(*args: str) -> int:
    return main(list(args))


def quick(tmp_path: Path, *args: str) -> list[str]:
    return ["run", "--results", str(tmp_path / "results"), "--cache", str(tmp_path / "cache"),
            "--epochs", "1", "--quiet", *args]


@pytest.mark.parametrize("steps", ["0", "-1", "1.5", "abc", "", "1,,2", "2,0"])
def test_bad_T_is_exit_2_with_nothing_written(tmp_path, capsys, steps) -> None:
    code = run_cli(*quick(tmp_path, "--methods", "naive", "--T", steps))
    assert code == 2
    err = capsys.readouterr().err
    assert "--T" in err and "error" in err
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


def test_unknown_method_suggests_and_lists(tmp_path, capsys) -> None:
    assert run_cli(*quick(tmp_path, "--methods", "naiv", "--T", "4")) == 2
    err = capsys.readouterr().err
    assert "Unknown method 'naiv'. Did you mean: naive?" in err
    assert "Available:" in err and "robust" in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("flag,value,kind", [("--archs", "resnet2", "architecture"),
                                             ("--datasets", "digit", "dataset")])
def test_unknown_architecture_or_dataset(tmp_path, capsys, flag, value, kind) -> None:
    assert run_cli(*quick(tmp_path, "--methods", "naive", "--T", "4", flag, value)) == 2
    assert f"Unknown {kind} '{value}'. Did you mean" in capsys.readouterr().err


def test_unknown_set_key_names_the_parameters(tmp_path, capsys) -> None:
    assert run_cli(*quick(tmp_path, "--methods", "robust", "--T", "4",
                          "--set", "robust.percentil=99")) == 2
    err = capsys.readouterr().err
    assert "'robust' has no parameter 'percentil'" in err and "Did you mean: percentile" in err


def test_set_value_out_of_range_is_refused(tmp_path, capsys) -> None:
    assert run_cli(*quick(tmp_path, "--methods", "robust", "--T", "4",
                          "--set", "robust.percentile=-5")) == 2
    assert "percentile must be in (0, 100]" in capsys.readouterr().err


def test_set_for_a_name_not_in_the_run(tmp_path, capsys) -> None:
    assert run_cli(*quick(tmp_path, "--methods", "naive", "--T", "4",
                          "--set", "robust.percentile=99")) == 2
    assert "'robust' is not a method, architecture or dataset of this run" in \
        capsys.readouterr().err


@pytest.mark.parametrize("where", ["file", "proc"])
def test_unwritable_results_folder(tmp_path, capsys, where) -> None:
    if where == "file":
        (tmp_path / "a_file").write_text("x")
        results = tmp_path / "a_file" / "results"
    else:
        results = Path("/proc/snnbench-results")
    code = run_cli("run", "--methods", "naive", "--T", "4", "--results", str(results),
                   "--cache", str(tmp_path / "cache"), "--quiet")
    assert code == 2
    err = capsys.readouterr().err
    assert "results folder" in err and str(results) in err
    assert not (tmp_path / "cache").exists()


def test_duplicate_T_is_run_once_with_a_note(tmp_path, capsys) -> None:
    code = run_cli(*quick(tmp_path, "--methods", "naive", "--T", "4,1,4", "--archs", "vgg11"))
    assert code == 0
    captured = capsys.readouterr()
    assert "duplicate values [4]" in captured.err
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")]
    assert [e["T"] for e in record["per_T"]] == [1, 4]


def test_run_resume_and_records_table(tmp_path, capsys) -> None:
    args = quick(tmp_path, "--methods", "naive,robust", "--T", "1,8", "--archs", "vgg11")
    assert run_cli(*args) == 0
    out = capsys.readouterr()
    assert "| digits | naive | vgg11 |" in out.out and "2 cells ran" in out.err
    paths = sorted((tmp_path / "results").glob("*.json"))
    assert len(paths) == 2
    stamps = [p.stat().st_mtime_ns for p in paths]

    assert run_cli(*args) == 0  # resume: nothing to do
    assert "0 cells ran, 2 already recorded" in capsys.readouterr().err
    assert [p.stat().st_mtime_ns for p in paths] == stamps

    # more T later: only the missing T runs, the earlier entries are kept, each (and the
    # build that made them) stamped with the run that computed them
    naive_path = next(p for p in paths if "naive" in p.name)
    first = json.loads(naive_path.read_text())
    assert run_cli(*quick(tmp_path, "--methods", "naive", "--T", "1,8,16", "--archs", "vgg11")) == 0
    capsys.readouterr()
    record = json.loads(naive_path.read_text())
    assert [e["T"] for e in record["per_T"]] == [1, 8, 16]
    stamp = {"finished_at": first["finished_at"], "git": first["provenance"]["git"],
             "snnbench_version": first["provenance"]["snnbench_version"]}
    assert [e.get("computed_in") for e in record["per_T"]] == [stamp, stamp, None]
    assert [b.get("computed_in") for b in record["builds"]] == [stamp, None]
    assert record["per_T"][0]["top1"] == first["per_T"][0]["top1"]

    assert run_cli("table", "--results", str(tmp_path / "results"),
                   "--layout", "records", "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {"method", "architecture", "dataset", "seed", "T", "top1", "status"} <= set(rows[0])
    assert sorted((r["method"], r["T"]) for r in rows) == [
        ("naive", "1"), ("naive", "16"), ("naive", "8"), ("robust", "1"), ("robust", "8")]
    assert all(r["status"] == "ok" and 0 <= float(r["top1"]) <= 100 for r in rows)


def test_failing_cell_is_recorded_and_the_run_goes_on(tmp_path, capsys, install_plugin,
                                                      monkeypatch) -> None:
    install_plugin("failing_plugin", FAILING_METHOD)
    code = run_cli(*quick(tmp_path, "--methods", "always_fails,naive", "--T", "2",
                          "--archs", "vgg11"))
    assert code == 1
    records = {json.loads(p.read_text())["cell"]["method"]: json.loads(p.read_text())
               for p in (tmp_path / "results").glob("*.json")}
    assert records["always_fails"]["status"] == "failed"
    assert "fails on purpose" in records["always_fails"]["error"]["message"]
    assert records["naive"]["status"] == "ok"
    out = capsys.readouterr().out
    assert "1 failed" in out  # the leaderboard shows the failure, not a zero


def test_run_events_are_called_in_order_and_provenance_is_merged(
        tmp_path, capsys, install_plugin) -> None:
    site = install_plugin("recording_plugin", RECORDING_PLUGIN)
    (site / "tests_event_log.py").write_text("EVENTS = []\n")
    import importlib

    log = importlib.import_module("tests_event_log")
    assert run_cli(*quick(tmp_path, "--methods", "naive,robust", "--T", "2",
                          "--archs", "vgg11")) == 0
    assert log.EVENTS == [("started", "naive"), ("finished", "naive", "ok"),
                          ("started", "robust"), ("finished", "robust", "ok")]
    record = json.loads(next((tmp_path / "results").glob("*naive*.json")).read_text())
    assert record["provenance"]["lab"] == "test-bench"
    assert record["provenance"]["torch"]
    assert record["dataset"]["fingerprint"]
    sys.modules.pop("tests_event_log", None)


def test_plugin_failing_on_import_is_a_warning_not_an_exit(capsys, install_plugin) -> None:
    install_plugin("broken_plugin", "raise ImportError('missing dependency xyz')\n")
    assert run_cli("list", "methods") == 0
    captured = capsys.readouterr()
    assert "broken_plugin" in captured.err and "missing dependency xyz" in captured.err
    assert "naive" in captured.out
    assert run_cli("--strict-plugins", "list") == 2


def test_list_and_plugins_show_origins(capsys, monkeypatch) -> None:
    assert run_cli("list", "methods") == 0
    out = capsys.readouterr().out
    assert "naive" in out and "conversion" in out and "snnbench_methods" in out
    # Redirected output is not cropped to 80 columns: every description is there whole
    # (unless the user set COLUMNS, which is then obeyed).
    monkeypatch.delenv("COLUMNS", raising=False)
    assert run_cli("list", "architectures") == 0
    out = capsys.readouterr().out
    assert "MobileNet V2: inverted residuals with linear bottlenecks, 1280-channel" in out
    assert run_cli("plugins", "--all") == 0
    out = capsys.readouterr().out
    assert "snnbench_datasets" in out and "loaded" in out


def test_table_without_records_is_exit_2(tmp_path, capsys) -> None:
    assert run_cli("table", "--results", str(tmp_path / "missing")) == 2
    assert "does not exist" in capsys.readouterr().err


def test_console_script_exit_code() -> None:
    result = subprocess.run([sys.executable, "-m", "snnbench_suite.cli", "run", "--methods",
                             "naive", "--T", "0"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--T: 0 is not a positive integer" in result.stderr


def test_an_architecture_that_cannot_take_the_input_stops_the_run_before_any_cell(
        tmp_path, capsys) -> None:
    # timm's test ViT cuts 16x16 patches: the 8x8 digits are too small for it. The run stops
    # at planning with exit 2, before vgg11 (listed first, and fine) trains anything.
    code = run_cli(*quick(tmp_path, "--methods", "naive", "--archs", "vgg11,timm.test_vit",
                          "--T", "4"))
    assert code == 2
    err = capsys.readouterr().err
    assert "'timm.test_vit'" in err and "digits's 1x8x8 input" in err
    assert not list((tmp_path / "results").glob("*.json"))
    assert not (tmp_path / "cache" / "anns").exists() or not any(
        (tmp_path / "cache" / "anns").glob("*.safetensors"))
