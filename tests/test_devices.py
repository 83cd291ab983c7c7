"""Devices, mixed precision, data loading and memory: every code path on CPU; the CUDA
paths where a GPU exists (skipped with the reason otherwise)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import rank_plugin
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from snnbench_suite import MethodSpec, hookimpl
from snnbench_suite.cli import main
from snnbench_suite.devices import (
    assign_worker_device,
    check_gpus_per_cell,
    gpus_per_worker,
    resolve_device,
    with_batch_backoff,
)
from snnbench_suite.errors import UsageError
from snnbench_suite.execute import CellRunner, RunSettings
from snnbench_suite.loading import (
    LoaderOptions,
    LoaderSettings,
    resolve_loader_settings,
    training_loader,
)
from snnbench_suite.matrix import Overrides, build_plan
from snnbench_suite.plugins import Plugins, load_plugins
from snnbench_suite.precision import autocast, precision_record
from snnbench_suite.progress import Reporter
from snnbench_suite.snn import IFNeuron, prepare_conversion
from snnbench_suite.specs import TrainConfig
from snnbench_suite.train import EpochReport, train_model

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device; this machine has none")
needs_no_cuda = pytest.mark.skipif(CUDA, reason="checks the error on a machine without CUDA")
CPU = torch.device("cpu")


# --- device selection -----------------------------------------------------------------


def test_cpu_and_auto_without_cuda(monkeypatch) -> None:
    monkeypatch.setattr("snnbench_suite.devices.cuda_count", lambda: 0)
    assert resolve_device("cpu") == CPU
    assert resolve_device(" AUTO ") == CPU


def test_auto_and_indices_with_two_gpus(monkeypatch) -> None:
    monkeypatch.setattr("snnbench_suite.devices.cuda_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(UsageError, match=r"has 2 CUDA device\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("text", ["tpu", "cuda:x", "cuda:-1", "gpu"])
def test_unknown_devices_are_refused(text) -> None:
    with pytest.raises(UsageError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device(text)


def test_cuda_without_cuda_names_what_to_do(monkeypatch) -> None:
    monkeypatch.setattr("snnbench_suite.devices.cuda_count", lambda: 0)
    with pytest.raises(UsageError, match="no CUDA device.*use --device cpu"):
        resolve_device("cuda:0")


def _run_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "--methods", "naive", "--T", "2", "--epochs", "1", "--quiet",
            "--results", str(tmp_path / "results"), "--cache", str(tmp_path / "cache"), *extra]


@needs_no_cuda
def test_cli_device_cuda_without_cuda_is_exit_2_and_writes_nothing(tmp_path, capsys) -> None:
    assert main(_run_args(tmp_path, "--device", "cuda")) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("extra, message", [
    (("--gpus-per-cell", "100000"), "core"),
    (("--gpus-per-cell", "0"), "must be >= 1"),
    (("--device", "tpu"), "use auto, cpu, cuda or cuda:N"),
    (("--precision", "fp8"), "invalid choice"),
    (("--workers", "-1"), "--workers must be >= 0"),
    (("--eval-batch", "4", "--eval-batch-floor", "8"), "must be >= --eval-batch-floor"),
])
def test_cli_refuses_bad_hardware_settings_before_running(tmp_path, capsys, extra,
                                                          message) -> None:
    assert main(_run_args(tmp_path, "--device", "cpu", *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_gpus_per_cell_larger_than_the_visible_gpus(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    check_gpus_per_cell(2, torch.device("cuda", 0))
    with pytest.raises(UsageError, match="has 2 visible GPU"):
        check_gpus_per_cell(4, torch.device("cuda", 0))
    with pytest.raises(UsageError, match="needs GPUs 1 to 2; GPUs 0 to 1 are visible"):
        check_gpus_per_cell(2, torch.device("cuda", 1))


# --- one GPU per worker ---------------------------------------------------------------


def test_each_worker_gets_its_own_gpus(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    cuda = torch.device("cuda")
    assert [assign_worker_device(i, 4, cuda).env for i in range(4)] == [
        {"CUDA_VISIBLE_DEVICES": g} for g in "4567"]
    pair = assign_worker_device(1, 2, cuda, gpus_per_cell=2)
    assert pair.env == {"CUDA_VISIBLE_DEVICES": "6,7"} and pair.device == "cuda:0"
    assert assign_worker_device(0, 1, torch.device("cuda", 2)).gpus == ("6",)
    with pytest.raises(UsageError, match="need 6 GPUs; 4 are visible"):
        assign_worker_device(0, 3, cuda, gpus_per_cell=2)
    assert gpus_per_worker(cuda, 2) == 2 and gpus_per_worker(CPU, 2) == 0


def test_cpu_workers_get_no_gpu_environment() -> None:
    assert assign_worker_device(3, 4, CPU).env == {}
    assert assign_worker_device(3, 4, CPU).device == "cpu"
    with pytest.raises(ValueError, match="outside"):
        assign_worker_device(4, 4, CPU)


# --- memory ---------------------------------------------------------------------------


def _oom_above(limit: int, calls: list[int]) -> Any:
    def run(batch: int) -> str:
        calls.append(batch)
        if batch > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory (test, batch {batch})")
        return f"ran at {batch}"
    return run


def test_backoff_halves_until_the_batch_fits() -> None:
    calls: list[int] = []
    retries: list[tuple[int, int]] = []
    result, used = with_batch_backoff(_oom_above(40, calls), 256, floor=1, device=CPU,
                                      on_retry=lambda old, new: retries.append((old, new)))
    assert (result, used) == ("ran at 32", 32)
    assert calls == [256, 128, 64, 32]
    assert retries == [(256, 128), (128, 64), (64, 32)]


def test_backoff_gives_up_at_the_floor_and_says_what_it_tried() -> None:
    calls: list[int] = []
    with pytest.raises(torch.OutOfMemoryError, match="tried 256, 128, 100; floor 100"):
        with_batch_backoff(_oom_above(40, calls), 256, floor=100, device=CPU)
    assert calls == [256, 128, 100]


def test_backoff_does_not_swallow_other_errors() -> None:
    def broken(batch: int) -> None:
        raise ValueError("not memory")
    with pytest.raises(ValueError, match="not memory"):
        with_batch_backoff(broken, 256, floor=1, device=CPU)


class OomProbe:
    """A method whose network runs out of memory on evaluation batches above 32."""

    @hookimpl
    def snnbench_register_methods(self, register: Any) -> None:
        register(MethodSpec(name="oom_probe", family="conversion", version="1",
                            t_mode="anytime", build=self.build,
                            description="raises torch's out-of-memory error above 32"))

    @staticmethod
    def build(ctx: Any) -> nn.Module:
        network = prepare_conversion(ctx.build_architecture(batch_norm=False)).to_spiking(
            lambda site: IFNeuron(1.0))

        def refuse_large(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            if args[0].shape[1] > 32:  # [T, B, ...]
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

        network.register_forward_pre_hook(refuse_large)
        return network


def _plugins(*extra: tuple[str, object]) -> Plugins:
    return load_plugins(strict=False, warn=lambda _m: None,
                        extra=[("rank_plugin", rank_plugin), *extra])


class Messages(Reporter):
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.epochs: list[EpochReport] = []

    def message(self, text: str) -> None:
        self.lines.append(text)

    def epoch(self, report: EpochReport) -> None:
        self.epochs.append(report)


def _run(plugins: Plugins, workdir: Path, method: str, reporter: Reporter | None = None,
         **settings: Any) -> dict[str, Any]:
    plan = build_plan(plugins, methods=[method], architectures=["tiny_mlp"],
                      datasets=["blobs"], seeds=[0], steps=[2], overrides=Overrides.parse([]),
                      epochs=1)
    run_settings = RunSettings(results_dir=workdir / "results", cache_dir=workdir / "cache",
                               data_root=None, device=CPU, **settings)
    return CellRunner(plugins, run_settings, reporter or Reporter()).run(plan.cells[0], [2])


def test_out_of_memory_in_evaluation_halves_the_batch_and_records_it(tmp_path) -> None:
    messages = Messages()
    result = _run(_plugins(("oom_probe", OomProbe())), tmp_path, "oom_probe", messages)
    # 64 test samples: 256 and 128 and 64 hold them in one batch of 64 (> 32): refused.
    assert result["execution"]["eval_batch_size"] == {"requested": 256, "used": 32,
                                                      "floor": 1}
    assert 0.0 <= result["per_T"][0]["top1"] <= 100.0
    assert [m for m in messages.lines if "out of memory" in m] == [
        "out of memory at evaluation batch 256; retrying with 128",
        "out of memory at evaluation batch 128; retrying with 64",
        "out of memory at evaluation batch 64; retrying with 32"]


def test_out_of_memory_at_the_floor_fails_the_cell(tmp_path) -> None:
    with pytest.raises(torch.OutOfMemoryError, match="tried 256, 128, 64; floor 64"):
        _run(_plugins(("oom_probe", OomProbe())), tmp_path, "oom_probe", eval_batch_floor=64)


# --- mixed precision ------------------------------------------------------------------


def test_bf16_training_on_cpu_runs_under_autocast_and_keeps_fp32_weights() -> None:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 8), torch.arange(64) % 3)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    seen: list[torch.dtype] = []

    def loss_fn(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = net(x)
        seen.append(logits.dtype)
        return nn.functional.cross_entropy(logits, y)

    loader = training_loader(data, batch_size=16, seed=0,
                             settings=LoaderSettings(0, False, "test"))
    summary = train_model(model, loader, TrainConfig(epochs=2, batch_size=16), loss_fn=loss_fn,
                          precision="bf16")
    assert seen == [torch.bfloat16] * 8  # 2 epochs x 4 batches, all under autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert summary.as_dict()["precision"] == "bf16"
    assert torch.isfinite(torch.tensor(summary.final_loss))


def test_autocast_is_off_for_fp32() -> None:
    with autocast(CPU, "fp32"):
        assert nn.Linear(2, 2)(torch.ones(1, 2)).dtype == torch.float32
    with autocast(CPU, "bf16"):
        assert nn.Linear(2, 2)(torch.ones(1, 2)).dtype == torch.bfloat16


def test_a_bf16_cell_records_which_parts_ran_in_bf16(tmp_path) -> None:
    result = _run(_plugins(), tmp_path, "rank_probe", precision="bf16")
    assert result["execution"]["precision"] == precision_record("bf16")
    assert result["execution"]["precision"]["evaluation"] == "bf16"
    assert result["execution"]["precision"]["calibration"] == "fp32"
    assert result["ann"]["training"]["precision"] == "bf16"
    assert result["builds"][0]["training"]["precision"] == "bf16"
    assert result["execution"]["device"] == "cpu" and result["execution"]["device_name"]


# --- data loading ---------------------------------------------------------------------


class Noisy(Dataset):
    """Sample i plus a random 'augmentation' drawn from torch's global generator."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.rand(1) + 10 * i, torch.tensor(i)


def _batches(workers: int) -> list[torch.Tensor]:
    loader = training_loader(Noisy(), batch_size=4, seed=5,
                             settings=LoaderSettings(workers, False, "test"))
    out = []
    for epoch in (0, 1):
        loader.sampler.set_epoch(epoch)
        out += [x for x, _ in loader]
    return out


def test_augmentation_does_not_depend_on_loader_workers() -> None:
    alone, pooled = _batches(0), _batches(2)
    assert all(torch.equal(a, b) for a, b in zip(alone, pooled, strict=True))
    # ...and it is random: the two epochs draw differently for the same sample.
    first = {int(x // 10): float(x % 10) for x in torch.cat(alone[:3]).flatten()}
    second = {int(x // 10): float(x % 10) for x in torch.cat(alone[3:]).flatten()}
    assert first.keys() == second.keys() == set(range(12)) and first != second


def test_loader_defaults_per_dataset_and_device() -> None:
    cuda = torch.device("cuda")
    embedded = resolve_loader_settings(LoaderOptions(), embedded=True, declared=None,
                                       device=CPU)
    assert (embedded.workers, embedded.pin_memory) == (0, False)
    on_disk = resolve_loader_settings(LoaderOptions(), embedded=False, declared=None,
                                      device=cuda)
    assert 1 <= on_disk.workers <= 8 and on_disk.pin_memory
    chosen = resolve_loader_settings(LoaderOptions(workers=3, pin_memory=False),
                                     embedded=True, declared=None, device=cuda)
    assert chosen.as_dict() == {"workers": 3, "pin_memory": False, "source": "--workers"}
    declared = resolve_loader_settings(LoaderOptions(), embedded=False, declared=2, device=CPU)
    assert (declared.workers, declared.source) == (2, "dataset default")


class Slow(Dataset):
    def __len__(self) -> int:
        return 32

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        time.sleep(0.02)
        return torch.zeros(4), torch.tensor(i % 2)


def test_a_slow_loader_shows_as_data_time() -> None:
    loader = training_loader(Slow(), batch_size=8, seed=0,
                             settings=LoaderSettings(0, False, "test"))
    reports: list[EpochReport] = []
    summary = train_model(nn.Linear(4, 2), loader, TrainConfig(epochs=2, batch_size=8),
                          on_epoch=reports.append).as_dict()
    # 32 samples x 20 ms of loading per epoch against a 4 -> 2 linear layer's compute
    # (a few ms; a loaded CI machine can stretch it tenfold, hence the margin of 2).
    assert summary["data_s"] >= 2 * 32 * 0.02 * 0.9
    assert summary["data_s"] > 2 * summary["compute_s"]
    assert [e["epoch"] for e in summary["per_epoch"]] == [1, 2]
    assert sum(e["data_s"] for e in summary["per_epoch"]) == pytest.approx(
        summary["data_s"], abs=0.01)
    assert "data" in reports[0].summary() and "compute" in reports[0].summary()
    assert reports[0].data_seconds > reports[0].compute_seconds


# --- CUDA -----------------------------------------------------------------------------


@needs_cuda
def test_cuda_device_is_named_and_trains_with_pinned_bf16_batches() -> None:
    device = resolve_device("cuda")
    assert device == torch.device("cuda", 0)
    from snnbench_suite.devices import device_info

    assert device_info(device)["device_name"] == torch.cuda.get_device_name(0)
    settings = resolve_loader_settings(LoaderOptions(), embedded=True, declared=None,
                                       device=device)
    assert settings.pin_memory
    data = TensorDataset(torch.randn(64, 8), torch.arange(64) % 3)
    loader = training_loader(data, batch_size=16, seed=0, settings=settings)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    summary = train_model(model, loader, TrainConfig(epochs=1, batch_size=16), device=device,
                          precision="bf16")
    assert next(model.parameters()).device.type == "cuda"
    assert summary.device == "cuda:0" and summary.precision == "bf16"


@needs_cuda
def test_a_cell_runs_on_the_gpu(tmp_path) -> None:
    plan = build_plan(_plugins(), methods=["rank_probe"], architectures=["tiny_mlp"],
                      datasets=["blobs"], seeds=[0], steps=[2], overrides=Overrides.parse([]),
                      epochs=1)
    settings = RunSettings(results_dir=tmp_path / "r", cache_dir=tmp_path / "c",
                           data_root=None, device=torch.device("cuda", 0), precision="fp16")
    result = CellRunner(_plugins(), settings, Reporter()).run(plan.cells[0], [2])
    assert result["execution"]["device"] == "cuda:0"
    assert result["execution"]["data_loading"]["pin_memory"] is True
    assert result["builds"][0]["training"]["device"] == "cuda:0"
