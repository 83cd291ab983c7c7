"""The runner at scale: matrix files, resume after SIGKILL, concurrent runs on one folder,
the ANN cache, determinism and `verify`, executors, worker deaths, record schemas.

Every run is tiny (vgg11 at width 0.125, one epoch, T = 1, 2 on the embedded digits), so
a cell takes about a second on one core.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from snnbench_suite.cells import Cell
from snnbench_suite.cli import main
from snnbench_suite.locking import FileLock, holder_info, read_holder
from snnbench_suite.runner import group_cells
from snnbench_suite.verify import metrics_of

TINY = ["--epochs", "1", "--set", "vgg11.width=0.125", "--T", "1,2"]


def folders(tmp: Path) -> list[str]:
    return ["--results", str(tmp / "results"), "--cache", str(tmp / "cache")]


def run_cli(*args: str) -> int:
    return main(list(args))


def records(tmp: Path) -> dict[str, dict]:
    """Every record file of the results folder, parsed (a corrupt one fails the test)."""
    return {p.name: json.loads(p.read_text()) for p in (tmp / "results").glob("*.json")}


def cli_process(tmp: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "snnbench_suite.cli", "run", *folders(tmp),
                             *TINY, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


# --- the matrix file ---------------------------------------------------------------------


@pytest.mark.parametrize("text,where,message", [
    ("methods: [naive]\nT: [1]\nmethod_params: {}\n", ":3: method_params",
     "unknown key. Did you mean 'methods'?"),
    ("methods:\n  - naive\n  - robust: {percentil: 99}\nT: [1, 2]\n",
     ":3: methods[1].robust.percentil", "'robust' has no parameter 'percentil'"),
    ("methods:\n  - robust:\n      percentile: high\nT: [1]\n",
     ":3: methods[0].robust.percentile", "expected a float like 99.9, got 'high'"),
    ("methods: [naive, naiv]\nT: [1]\n", ":1: methods[1]", "Unknown method 'naiv'"),
    ("methods: [naive]\nT: [1, 0]\n", ":2: T[1]", "expected an integer >= 1, got 0"),
    ("methods: [naive]\nT: [1\nseeds: [0]\n", ":3", "not valid YAML"),
    ("methods: [naive]\n", "", "key 'T' is missing"),
    ("methods: [naive]\nT: [1]\narchitectures: [{vgg11: {width: -1}}]\n",
     ":3: architectures[0].vgg11.width", "the width multiplier must be > 0"),
    ("methods: [naive]\nT: [1]\nexecutor: {name: local, threadz: 2}\n",
     ":3: executor.threadz", "'local' has no parameter 'threadz'"),
])
def test_a_bad_matrix_file_names_the_line_and_key(tmp_path, capsys, text, where,
                                                  message) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(text)
    assert run_cli("run", "--matrix", str(matrix), *folders(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"{matrix}{where}" in err and message in err, err
    assert not (tmp_path / "results").exists()  # validated before anything ran


def test_matrix_file_runs_entries_with_parameters_and_skips_incompatible_cells(
        tmp_path, install_plugin) -> None:
    install_plugin("events_only", """
        from snnbench_suite import MethodSpec, hookimpl

        @hookimpl
        def snnbench_register_methods(register):
            register(MethodSpec(name="events_only", family="direct_training", version="1",
                                t_mode="per_t", build=lambda ctx: None,
                                modalities=("events",)))
        """)
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text("methods:\n  - robust: {percentile: 99.0}\n  - robust: {percentile: 99.9}\n"
                      "  - events_only\narchitectures: [{vgg11: {width: 0.125}}]\n"
                      "seeds: [0]\nT: [1, 2]\nepochs: 1\nexecutor: {name: local, jobs: 1}\n")
    assert run_cli("run", "--matrix", str(matrix), *folders(tmp_path), "--quiet") == 0
    found = list(records(tmp_path).values())
    assert sorted(r["cell"]["method_params"].get("percentile", 0) for r in found) == [0, 99.0,
                                                                                      99.9]
    skipped = next(r for r in found if r["cell"]["method"] == "events_only")
    assert skipped["status"] == "skipped"
    assert "supports events data; dataset 'digits' is static" in skipped["error"]["message"]
    # The two robust cells share one ANN: trained once, then reused.
    sources = sorted(r["ann"]["source"].split()[0] for r in found if r["status"] == "ok")
    assert sources == ["reused", "trained,"]


def test_matrix_file_and_lists_are_exclusive(tmp_path, capsys) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text("methods: [naive]\nT: [1]\n")
    assert run_cli("run", "--matrix", str(matrix), "--methods", "naive") == 2
    assert "--methods cannot be combined with a matrix file" in capsys.readouterr().err
    assert run_cli("run", "--epochs", "1") == 2
    assert "needs --methods and --T (or --matrix FILE)" in capsys.readouterr().err


# --- grouping, executors ---------------------------------------------------------------


def test_cells_sharing_an_ann_form_one_unit_and_split_only_for_idle_workers(plugins) -> None:
    from snnbench_suite.matrix import Overrides, build_plan

    plan = build_plan(plugins, methods=["naive", "robust", "calib"],
                      architectures=["vgg11", "resnet20"], datasets=["digits"], seeds=[0, 1],
                      steps=[1], overrides=Overrides(), epochs=1)
    groups = group_cells(plugins, plan.cells, jobs=2)
    assert len(groups) == 4
    for group in groups:  # one (architecture, seed) per group, all three methods
        assert {(c.architecture, c.seed) for c in group} == {(group[0].architecture,
                                                              group[0].seed)}
        assert sorted(c.method for c in group) == ["calib", "naive", "robust"]
    one_ann = [c for c in plan.cells if c.architecture == "vgg11" and c.seed == 0]
    assert [len(g) for g in group_cells(plugins, one_ann, jobs=1)] == [3]
    assert sorted(len(g) for g in group_cells(plugins, one_ann, jobs=2)) == [1, 2]


def test_list_executors_shows_the_built_in_ones(capsys) -> None:
    assert run_cli("list", "executors") == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("local", "slurm", "ray", "snnbench_executors"))


def test_an_executor_that_is_not_installed_names_its_extra(tmp_path, capsys,
                                                           install_plugin) -> None:
    install_plugin("far_executor", """
        from snnbench_suite import ExecutorSpec, hookimpl

        def run(request):
            raise AssertionError("never called")

        @hookimpl
        def snnbench_register_executors(register):
            register(ExecutorSpec(name="far", run=run, extra="far",
                                  available=lambda: "it needs farlib; install the extra with "
                                  "`pip install 'snnbench-suite[far]'`"))
        """)
    assert run_cli("run", "--methods", "naive", *TINY, *folders(tmp_path),
                   "--executor", "far") == 2
    err = capsys.readouterr().err
    assert "executor 'far' cannot run here: it needs farlib" in err
    assert "pip install 'snnbench-suite[far]'" in err
    assert not (tmp_path / "results").exists()
    assert run_cli("run", "--methods", "naive", *TINY, *folders(tmp_path),
                   "--executor", "slurmm") == 2
    assert "Did you mean: slurm" in capsys.readouterr().err
    try:
        import ray  # noqa: F401
    except ImportError:
        assert run_cli("run", "--methods", "naive", *TINY, *folders(tmp_path),
                       "--executor", "ray") == 2
        assert "pip install 'snnbench-suite[ray]'" in capsys.readouterr().err


def test_a_worker_killed_by_the_os_is_recorded_with_its_signal(tmp_path, install_plugin,
                                                                capsys) -> None:
    install_plugin("suicidal_method", """
        import os, signal
        from snnbench_suite import MethodSpec, hookimpl

        def build(ctx):
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would

        @hookimpl
        def snnbench_register_methods(register):
            register(MethodSpec(name="oom_victim", family="direct_training", version="1",
                                t_mode="anytime", build=build))
        """)
    code = run_cli("run", "--methods", "oom_victim,naive", *TINY, *folders(tmp_path), "-j", "2")
    assert code == 1
    found = {r["cell"]["method"]: r for r in records(tmp_path).values()}
    assert found["oom_victim"]["status"] == "failed"
    assert "killed by signal SIGKILL (9)" in found["oom_victim"]["error"]["message"]
    assert found["naive"]["status"] == "ok"  # the run went on
    assert "1 cells ran, 0 already recorded, 1 failed" in capsys.readouterr().err


# --- resume, concurrency -----------------------------------------------------------------


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found |= {int(p) for p in text.split()}
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"


def test_a_run_killed_with_sigkill_resumes_with_every_cell_recorded_once(tmp_path) -> None:
    matrix = ["--methods", "naive,robust", "--seeds", "0,1"]
    first = cli_process(tmp_path, *matrix, "-j", "2")
    deadline = time.monotonic() + 120
    while not records(tmp_path) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    workers = _children(first.pid)
    first.send_signal(signal.SIGKILL)  # mid-run: a record is written, others are running
    first.wait()
    for pid in workers:  # the workers die with their coordinator: no orphans left computing
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"worker {pid} outlived its killed coordinator"
    before = records(tmp_path)
    assert 1 <= len(before) < 4

    second = cli_process(tmp_path, *matrix, "-j", "1")
    _, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    after = records(tmp_path)
    assert len(after) == 4  # every cell exactly once: one record file per cell id
    assert sorted(r["cell_id"] for r in after.values()) == sorted(
        p[: -len(".json")] for p in after)
    assert all(r["status"] == "ok" and [e["T"] for e in r["per_T"]] == [1, 2]
               for r in after.values())
    for name, record in before.items():  # recorded cells were not run again
        assert after[name] == record
    assert f"{len(before)} already recorded" in err
    assert not list((tmp_path / "results" / ".snnbench" / "locks").glob("*.lock"))


def test_two_runs_on_one_folder_at_once_lose_nothing(tmp_path) -> None:
    seeds = ["--methods", "naive,robust", "--seeds", "0,1"]
    a = cli_process(tmp_path, *seeds)  # T = 1, 2
    b = cli_process(tmp_path, *seeds, "--T", "2,4")  # the same cells, one more T
    outputs = [p.communicate(timeout=300) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outputs
    # Each (architecture, seed) ANN was trained once, by one of the two runs.
    log = outputs[0][1] + outputs[1][1]
    assert log.count("training ANN vgg11") == 2, log
    assert "training ANN vgg11 (relu_bn) on digits, seed 0" in log
    # Every cell was run by one run; the other found it recorded (or added its T).
    found = records(tmp_path)
    assert len(found) == 4
    for record in found.values():  # both runs' T are in every record
        assert record["status"] == "ok"
        assert [e["T"] for e in record["per_T"]] == [1, 2, 4]
    anns = list((tmp_path / "cache" / "anns").glob("*.safetensors"))
    assert len(anns) == 2


# --- cache, determinism, verify, status, schemas -------------------------------------


def test_a_corrupt_artifact_is_detected_listed_and_rebuilt(tmp_path, capsys) -> None:
    assert run_cli("run", "--methods", "naive", *TINY, *folders(tmp_path)) == 0
    first = next(iter(records(tmp_path).values()))
    weights = next((tmp_path / "cache" / "anns").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-10])  # truncated
    capsys.readouterr()
    assert run_cli("cache", "list", "--cache", str(tmp_path / "cache")) == 0
    assert "│ corrupt │" in capsys.readouterr().out
    (tmp_path / "results" / f"{first['cell_id']}.json").unlink()
    assert run_cli("run", "--methods", "naive", *TINY, *folders(tmp_path)) == 0
    rebuilt = next(iter(records(tmp_path).values()))
    assert rebuilt["ann"]["source"].startswith("trained")  # not trusted: trained again
    assert metrics_of(rebuilt) == metrics_of(first)
    capsys.readouterr()
    assert run_cli("cache", "list", "--cache", str(tmp_path / "cache")) == 0
    listing = capsys.readouterr().out
    assert "│ ok    │" in listing and "│ vgg11 " in listing and "1 trained ANNs" in listing
    assert run_cli("cache", "clear", "--cache", str(tmp_path / "cache")) == 0
    assert not list((tmp_path / "cache" / "anns").glob("*.safetensors"))


def test_a_warm_cache_gives_the_trained_snns_without_training_them_again(tmp_path) -> None:
    def run_into(name: str) -> dict:
        folder = tmp_path / name
        assert run_cli("run", "--methods", "tet", *TINY, "--results", str(folder / "results"),
                       "--cache", str(tmp_path / "cache")) == 0
        (record,) = records(folder).values()
        return record

    cold = run_into("cold")
    trained = sorted((tmp_path / "cache" / "trained").glob("*.safetensors"))
    assert len(trained) == 2  # tet is per T: one network for T = 1, one for T = 2
    warm = run_into("warm")
    for before, after in zip(cold["builds"], warm["builds"], strict=True):
        assert before["training"]["source"].startswith("trained, cached as ")
        assert after["training"]["source"] == "cache " + before["training"]["source"].split()[-1]
        assert after["training"]["final_loss"] == before["training"]["final_loss"]
    assert metrics_of(warm) == metrics_of(cold)
    # A damaged network is not trusted: that T trains again, to the same result.
    trained[0].write_bytes(trained[0].read_bytes()[:-10])
    repaired = run_into("repaired")
    sources = sorted(b["training"]["source"].split()[0] for b in repaired["builds"])
    assert sources == ["cache", "trained,"]
    assert metrics_of(repaired) == metrics_of(cold)
    # Another seed starts from other weights: nothing of the cache applies.
    assert run_cli("run", "--methods", "tet", *TINY, "--seeds", "1", "--results",
                   str(tmp_path / "seed1"), "--cache", str(tmp_path / "cache")) == 0
    assert len(list((tmp_path / "cache" / "trained").glob("*.safetensors"))) == 4


def test_verify_with_a_cache_still_trains_the_snns_again(tmp_path) -> None:
    # Replace the cached SNNs by other weights under the same keys (valid checksums): a
    # verify that loaded them would report differences; it trains them again instead.
    assert run_cli("run", "--methods", "tet", *TINY, *folders(tmp_path)) == 0
    trained = sorted((tmp_path / "cache" / "trained").glob("*.safetensors"))
    assert trained
    for weights in trained:
        zeroed = {name: torch.zeros_like(tensor) for name, tensor in load_file(weights).items()}
        save_file(zeroed, weights)
        meta_path = weights.with_suffix(".json")
        meta = json.loads(meta_path.read_text())
        meta["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
        meta_path.write_text(json.dumps(meta))
    assert run_cli("verify", "--results", str(tmp_path / "results"), "--sample", "1",
                   "--use-cache", str(tmp_path / "cache")) == 0


def test_the_same_cell_twice_gives_identical_metrics_and_verify_finds_tampering(
        tmp_path, capsys) -> None:
    assert run_cli("run", "--methods", "naive,robust", *TINY, *folders(tmp_path)) == 0
    twice = tmp_path / "again"
    assert run_cli("run", "--methods", "naive,robust", *TINY, *folders(twice)) == 0
    for name, record in records(tmp_path).items():
        assert metrics_of(record) == metrics_of(records(twice)[name])
        assert record["provenance"]["config_hash"] == records(twice)[name]["provenance"][
            "config_hash"]

    capsys.readouterr()
    results = str(tmp_path / "results")
    assert run_cli("verify", "--results", results, "--sample", "2") == 0
    assert "2 cells re-run: all" in capsys.readouterr().out

    path = next(p for p in (tmp_path / "results").glob("naive-*.json"))
    record = json.loads(path.read_text())
    record["per_T"][1]["top1"] += 1.5
    path.write_text(json.dumps(record))
    assert run_cli("verify", "--results", results, "--sample", "5") == 1
    out = capsys.readouterr().out
    assert "1 metrics differ" in out and "T=2.top1" in out and "naive" in out


def test_provenance_of_a_record(tmp_path) -> None:
    assert run_cli("run", "--methods", "naive", *TINY, *folders(tmp_path)) == 0
    provenance = next(iter(records(tmp_path).values()))["provenance"]
    assert provenance["dataset_fingerprint"]
    assert len(provenance["config_hash"]) == 64
    assert provenance["deterministic"]["torch_deterministic_algorithms"] is True
    assert provenance["threads"]["torch_threads"] == provenance["torch_threads"] >= 1
    assert provenance["plugin_versions"]["snnbench_methods"]["distribution"] == "snnbench-suite"
    assert set(provenance["git"]) == {"commit", "dirty"}
    assert provenance["seed"] == 0 and provenance["snnbench_version"]


def test_status_reads_a_folder_with_a_running_cell(tmp_path, capsys) -> None:
    assert run_cli("run", "--methods", "naive", *TINY, *folders(tmp_path)) == 0
    lock = FileLock(tmp_path / "results" / ".snnbench" / "locks" / "robust-x.lock",
                    holder_info(cell="robust / vgg11 / digits / seed 0"))
    assert lock.acquire(blocking=False)
    try:
        capsys.readouterr()
        assert run_cli("status", "--results", str(tmp_path / "results")) == 0
        out = capsys.readouterr().out
        assert "running  robust / vgg11 / digits / seed 0" in out and f"pid {os.getpid()}" in out
        assert "latest run" in out and "executor local -j 1" in out
    finally:
        lock.release()


def test_records_of_an_older_schema_are_read_and_others_refused(tmp_path, capsys) -> None:
    assert run_cli("run", "--methods", "naive,robust", *TINY, *folders(tmp_path)) == 0
    paths = sorted((tmp_path / "results").glob("*.json"))
    old = json.loads(paths[0].read_text())
    old["schema_version"] = 1
    for key in ("config_hash", "dataset_fingerprint", "deterministic", "threads",
                "plugin_versions"):
        old["provenance"].pop(key)
    paths[0].write_text(json.dumps(old))
    capsys.readouterr()
    assert run_cli("table", "--results", str(tmp_path / "results"), "--layout", "records",
                   "--format", "csv") == 0  # version 1 is read, its new fields empty
    assert run_cli("run", "--methods", "naive,robust", *TINY, *folders(tmp_path)) == 0
    assert "0 cells ran, 2 already recorded" in capsys.readouterr().err

    newer = json.loads(paths[1].read_text())
    newer["schema_version"] = 99
    paths[1].write_text(json.dumps(newer))
    assert run_cli("table", "--results", str(tmp_path / "results")) == 2
    err = capsys.readouterr().err
    assert "has schema version 99; this snnbench reads versions 1, 2" in err
    assert run_cli("run", "--methods", "naive,robust", *TINY, *folders(tmp_path)) == 2
    assert json.loads(paths[1].read_text())["schema_version"] == 99  # never overwritten
    assert "schema version 99" in capsys.readouterr().err


# --- locks -----------------------------------------------------------------------------


def test_a_lock_is_exclusive_across_processes_and_released_when_its_holder_dies(
        tmp_path) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from snnbench_suite.locking import FileLock, holder_info
from pathlib import Path
lock = FileLock(Path({str(path)!r}), holder_info(cell="c"))
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    mine = FileLock(path)
    assert not mine.acquire(blocking=False)
    assert read_holder(path) == {**read_holder(path), "pid": holder.pid, "cell": "c"}
    holder.kill()  # SIGKILL: the kernel drops the lock
    holder.wait()
    assert mine.acquire(timeout=10)
    mine.release()
    assert read_holder(path) is None and not path.exists()


def test_a_cell_id_is_stable() -> None:
    cell = Cell(method="naive", method_version="1", architecture="vgg11", width=0.125,
                dataset="digits", dataset_version="1", seed=0)
    assert cell.cell_id == Cell.from_dict(cell.to_dict()).cell_id
