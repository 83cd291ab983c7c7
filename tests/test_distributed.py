"""Multi-process training of one cell, for real, on CPU with the gloo backend.

Two ranks train a cell (an ANN, then a LIF network through the shared loop) and must end
with the weights one process gets on the same global batches: DistributedDataParallel
averages the two half-batch gradients, which is the full-batch gradient up to
floating-point summation order, so the weights agree to within 1e-5 (max abs diff; the
measured difference is 3e-8 for the ANN and 1.5e-8 for the LIF network). The activation
maxima observed on two halves of the data must equal the single-process ones exactly. A
rank that dies or hangs gives a clear error within a deadline, and nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from snnbench_suite.execute import CellRunner, RunSettings
from snnbench_suite.launch import RankFailedError, check_batches_split, free_port
from snnbench_suite.loading import LoaderSettings, training_loader
from snnbench_suite.matrix import Overrides, build_plan
from snnbench_suite.plugins import Plugins, load_plugins
from snnbench_suite.progress import Reporter
from snnbench_suite.train import EpochReport

WEIGHT_TOLERANCE = 1e-5
PLUGIN_SOURCE = (Path(__file__).parent / "rank_plugin.py").read_text()


@pytest.fixture
def rank_plugins(install_plugin: Callable[[str, str], Path],
                 monkeypatch: pytest.MonkeyPatch) -> Plugins:
    """The test plugin installed where this process and the rank processes find it."""
    site = install_plugin("rank_plugin", PLUGIN_SOURCE)
    monkeypatch.setenv("PYTHONPATH", f"{site}:{Path(__file__).parent.parent}")
    monkeypatch.setenv("SNNBENCH_COLLECTIVE_TIMEOUT", "20")
    # Not strict: these tests are about ranks, and the rank processes load leniently too.
    return load_plugins(strict=False, warn=lambda _message: None)


class Recorder(Reporter):
    def __init__(self) -> None:
        self.epochs: list[EpochReport] = []
        self.messages: list[str] = []

    def epoch(self, report: EpochReport) -> None:
        self.epochs.append(report)

    def message(self, text: str) -> None:
        self.messages.append(text)


def run_cell(plugins: Plugins, workdir: Path, *, ranks: int, fault: str = "none",
             reporter: Reporter | None = None, device: str = "cpu") -> dict[str, Any]:
    plan = build_plan(plugins, methods=["rank_probe"], architectures=["tiny_mlp"],
                      datasets=["blobs"], seeds=[0], steps=[2],
                      overrides=Overrides.parse([f"rank_probe.fault={fault}"]), epochs=None)
    settings = RunSettings(results_dir=workdir / "results", cache_dir=workdir / "cache",
                           data_root=None, device=torch.device(device), gpus_per_cell=ranks)
    return CellRunner(plugins, settings, reporter or Reporter()).run(plan.cells[0], [2])


def cached_ann(cache: Path) -> dict[str, torch.Tensor]:
    files = sorted((cache / "anns").glob("*.safetensors"))
    assert len(files) == 1, files
    return load_file(str(files[0]))


def max_abs_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    assert a.keys() == b.keys()
    return max(float((torch.as_tensor(a[k]) - torch.as_tensor(b[k])).abs().max()) for k in a)


def test_two_gloo_ranks_train_the_weights_of_one_process(rank_plugins, tmp_path) -> None:
    single = run_cell(rank_plugins, tmp_path / "one", ranks=1)
    recorder = Recorder()
    double = run_cell(rank_plugins, tmp_path / "two", ranks=2, reporter=recorder)

    # The ANN artifact (written by rank 0) and the trained LIF network.
    assert max_abs_diff(cached_ann(tmp_path / "one" / "cache"),
                        cached_ann(tmp_path / "two" / "cache")) < WEIGHT_TOLERANCE
    one_build, two_build = single["builds"][0], double["builds"][0]
    assert max_abs_diff(one_build["weights"], two_build["weights"]) < WEIGHT_TOLERANCE
    # Loss reported = mean over ranks = the single-process loss of the global batch.
    assert two_build["training"]["final_loss"] == pytest.approx(
        one_build["training"]["final_loss"], abs=1e-5)
    assert single["ann"]["training"]["final_loss"] == pytest.approx(
        double["ann"]["training"]["final_loss"], abs=1e-5)
    # Observation: each rank saw half of the 8 batches; the maxima and counts combined.
    assert two_build["hidden_max"] == one_build["hidden_max"]
    assert two_build["hidden_count"] == one_build["hidden_count"] == 128 * 24
    assert double["per_T"][0]["top1"] == single["per_T"][0]["top1"]
    # What the record says about the two runs.
    assert single["execution"]["distributed"] == {"world_size": 1}
    assert double["execution"]["distributed"]["world_size"] == 2
    assert double["execution"]["distributed"]["backend"] == "gloo"
    assert two_build["training"]["world_size"] == 2
    assert two_build["training"]["global_batch"] == one_build["training"]["global_batch"] == 32
    # Rank 0's epochs reached this process's display (ANN: 2 epochs, then the LIF net: 2).
    assert [(r.label.split()[0], r.epoch) for r in recorder.epochs] == [
        ("ANN", 1), ("ANN", 2), ("probe", 1), ("probe", 2)]


@pytest.mark.skipif(torch.cuda.device_count() < 2,
                    reason="needs two CUDA devices for two NCCL ranks")
def test_two_nccl_ranks_train_the_weights_of_one_gpu(rank_plugins, tmp_path) -> None:
    single = run_cell(rank_plugins, tmp_path / "one", ranks=1, device="cuda:0")
    double = run_cell(rank_plugins, tmp_path / "two", ranks=2, device="cuda:0")
    assert max_abs_diff(single["builds"][0]["weights"],
                        double["builds"][0]["weights"]) < WEIGHT_TOLERANCE
    assert double["execution"]["distributed"]["backend"] == "nccl"


@pytest.mark.parametrize("fault, culprit", [("exit", "rank 1 of 2 exited with code 3"),
                                            ("hang", "rank 0 of 2 raised")])
def test_a_dead_or_stuck_rank_fails_the_cell_fast_and_writes_nothing(
        rank_plugins, tmp_path, monkeypatch, fault, culprit) -> None:
    monkeypatch.setenv("SNNBENCH_COLLECTIVE_TIMEOUT", "6")
    start = time.monotonic()
    with pytest.raises(RankFailedError, match=culprit):
        run_cell(rank_plugins, tmp_path, ranks=2, fault=fault)
    # "exit": the launcher ends rank 0 at once; "hang": rank 0's collective gives up at
    # the 6 s deadline (SNNBENCH_COLLECTIVE_TIMEOUT), then the launcher ends rank 1.
    assert time.monotonic() - start < 60
    # The ANN was trained and cached before the fault; no record or SNN result exists.
    assert not (tmp_path / "results").exists()


def test_a_global_batch_that_does_not_split_is_refused_before_running(rank_plugins) -> None:
    plan = build_plan(rank_plugins, methods=["rank_probe"], architectures=["tiny_mlp"],
                      datasets=["blobs"], seeds=[0], steps=[2], overrides=Overrides.parse([]),
                      epochs=None)
    check_batches_split(rank_plugins, plan.cells, 2)
    with pytest.raises(Exception, match="batches of 32, which do not split over 3"):
        check_batches_split(rank_plugins, plan.cells, 3)


def test_rank_shards_of_a_step_are_the_single_process_batch() -> None:
    """DistributedSampler semantics: rank r takes every 2nd index of the same permutation,
    so the two half-batches of step k are the single-process batch k."""
    data = torch.utils.data.TensorDataset(torch.arange(24).float(), torch.arange(24))
    settings = LoaderSettings(workers=0, pin_memory=False, source="test")
    single = training_loader(data, batch_size=8, seed=3, settings=settings)
    halves = [training_loader(data, batch_size=8, seed=3, settings=settings, rank=r,
                              world_size=2) for r in (0, 1)]
    for epoch in (0, 1):
        for loader in (single, *halves):
            loader.sampler.set_epoch(epoch)
        whole = [set(y.tolist()) for _, y in single]
        split = [set(a.tolist()) | set(b.tolist())
                 for (_, a), (_, b) in zip(*halves, strict=True)]
        assert whole == split and len(whole) == 3
    assert [y.tolist() for _, y in single] != sorted(y.tolist() for _, y in single)


def test_free_port_is_on_the_loopback_and_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_only_per_rank_batch_norm_changes_the_ann_cache_key(monkeypatch) -> None:
    from snnbench_suite import distributed

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert distributed.training_variant(True, cpu) == []  # one process
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    assert distributed.training_variant(True, cpu) == ["per-rank batch norm over 2 ranks"]
    assert distributed.training_variant(False, cpu) == []
    assert distributed.training_variant(True, cuda) == []  # SyncBatchNorm
