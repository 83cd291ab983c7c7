"""Helpers for testing plugins: a fresh plugin manager with your plugin registered, a toy
dataset and architecture small enough for a unit test, and a one-cell run that returns
the record `snnbench run` would write.

    from snnbench_suite import testing
    import my_package.plugin

    def test_my_method_runs(tmp_path):
        plugins = testing.plugin_manager(my_package.plugin)
        record = testing.run_one_cell(plugins, tmp_path, method="my_method", T=(1, 4))
        assert record["status"] == "ok"
        assert record["method"]["origin"] == "my_package.plugin"

Every call builds a new plugin manager, so a plugin registered for one test is gone in
the next. The toy dataset (`toy_digits`: a few hundred of scikit-learn's bundled 8x8
digits) and architecture (`toy_cnn`: two convolutions and a linear classifier) are
registered only in managers built here, never in `snnbench` itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import TensorDataset

from snnbench_suite.errors import UsageError
from snnbench_suite.execute import CellRunner, RunSettings, seed_everything
from snnbench_suite.hookspecs import hookimpl
from snnbench_suite.matrix import Overrides, build_plan, check_datasets
from snnbench_suite.plugins import BUILTIN_DISTRIBUTION, Plugins, load_plugins
from snnbench_suite.progress import Reporter
from snnbench_suite.results import existing_record
from snnbench_suite.runner import run_plan
from snnbench_suite.specs import (
    ArchitectureRequest,
    ArchitectureSpec,
    DatasetInfo,
    DatasetRequest,
    DatasetSpec,
    DatasetSplits,
    MethodContext,
    TrainConfig,
)

__all__ = [
    "TOY_ARCHITECTURE",
    "TOY_DATASET",
    "TOY_PLUGIN_NAME",
    "CellFailed",
    "ToyPlugin",
    "method_context",
    "plugin_manager",
    "render_table",
    "run_cell",
    "run_one_cell",
    "toy_architecture",
    "toy_dataset",
]

TOY_DATASET = "toy_digits"
TOY_ARCHITECTURE = "toy_cnn"
TOY_PLUGIN_NAME = "snnbench_testing_toy"
TOY_TRAIN, TOY_TEST, TOY_CALIBRATION = 240, 120, 64


# --- the toy dataset -------------------------------------------------------------------


def _load_toy_digits(request: DatasetRequest) -> DatasetSplits:
    """The first `train` digits for training and the next `test` for testing, in the
    bundled order (which cycles through the classes, so every class is present)."""
    from sklearn.datasets import load_digits

    train, test = int(request.params["train"]), int(request.params["test"])
    size = int(request.params["size"])
    if train < 10 or test < 10 or train + test > 1797:
        raise UsageError(f"{TOY_DATASET}: need 10 <= train, 10 <= test and train + test "
                         f"<= 1797, got train={train}, test={test}")
    if size < 8:
        raise UsageError(f"{TOY_DATASET}: size must be >= 8 (the native 8x8), got {size}")
    bunch = load_digits()
    images = torch.as_tensor(bunch.images[: train + test], dtype=torch.float32) / 16.0
    labels = torch.as_tensor(bunch.target[: train + test], dtype=torch.long)
    x, y = images.unsqueeze(1), labels
    if size != 8:  # for architectures that refuse small inputs
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                            align_corners=False)
    calibration = tuple(range(min(TOY_CALIBRATION, train)))
    info = DatasetInfo(
        name=TOY_DATASET, version="1", task="classification", modality="static",
        num_classes=10, input_shape=(1, size, size),
        fingerprint=f"toy-{train}-{test}-{size}",
        mean=(float(x[:train].mean()),), std=(float(x[:train].std()),),
        split_sizes={"train": train, "test": test, "calibration": len(calibration)},
    )
    train_set = TensorDataset(x[:train], y[:train])
    return DatasetSplits(info=info, train=train_set, train_eval=train_set,
                         test=TensorDataset(x[train:], y[train:]),
                         calibration_indices=calibration)


def toy_dataset(train: int = TOY_TRAIN, test: int = TOY_TEST) -> DatasetSpec:
    """`toy_digits`: 8x8 digits, 10 classes, `train` + `test` samples; parameters, so
    `overrides=["toy_digits.train=32"]` shrinks it further and `toy_digits.size=32`
    upsamples it. Its ANN training (10 epochs, about a second on one core) takes toy_cnn
    to about 80% top-1 on the 120 test digits."""
    return DatasetSpec(
        name=TOY_DATASET, version="1", task="classification", modality="static",
        load=_load_toy_digits, embedded=True,
        params={"train": train, "test": test, "size": 8},
        ann_training=TrainConfig(epochs=10, batch_size=16, lr=0.05),
        snn_training=TrainConfig(epochs=2, batch_size=16, lr=0.05),
        description="a few hundred 8x8 digits, for plugin tests (snnbench_suite.testing)",
        citation="scikit-learn's bundled copy of the UCI optical digits",
    )


# --- the toy architecture --------------------------------------------------------------


class _Normalize(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).reshape(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std).reshape(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _build_toy_cnn(request: ArchitectureRequest) -> nn.Module:
    """conv-BN-act, 2x2 average pool, conv-BN-act, global average pool, linear: any
    (C, H, W) input of at least 2x2; 8 * width channels in the first convolution."""
    if not request.width > 0:
        raise ValueError(f"{TOY_ARCHITECTURE}: the width multiplier must be > 0")
    if len(request.input_shape) != 3 or min(request.input_shape[1:]) < 2:
        raise ValueError(f"{TOY_ARCHITECTURE}: needs a (C, H, W) input of at least 2x2, "
                         f"got {request.input_shape}")
    channels = max(2, round(8 * request.width))

    def norm(n: int) -> nn.Module:
        return nn.BatchNorm2d(n) if request.batch_norm else nn.Identity()

    layers: list[nn.Module] = []
    if request.normalization is not None:
        layers.append(_Normalize(*request.normalization))
    layers += [
        nn.Conv2d(request.input_shape[0], channels, 3, padding=1), norm(channels),
        request.activation(), nn.AvgPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), norm(2 * channels),
        request.activation(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(2 * channels, request.num_classes),
    ]
    return nn.Sequential(*layers)


def toy_architecture() -> ArchitectureSpec:
    """`toy_cnn`: about 1,500 parameters at width 1 on the toy digits."""
    return ArchitectureSpec(name=TOY_ARCHITECTURE, family="toy", build=_build_toy_cnn,
                            description="two convolutions and a classifier, for plugin tests")


class ToyPlugin:
    """Registers the toy dataset and architecture (what `plugin_manager(toy=True)` adds)."""

    @hookimpl
    def snnbench_register_datasets(self, register: Any) -> None:
        register(toy_dataset())

    @hookimpl
    def snnbench_register_architectures(self, register: Any) -> None:
        register(toy_architecture())


# --- plugin managers -------------------------------------------------------------------


def _named(plugin: object) -> tuple[str, object]:
    if isinstance(plugin, tuple) and len(plugin) == 2 and isinstance(plugin[0], str):
        return plugin[0], plugin[1]
    name = getattr(plugin, "__name__", None) or type(plugin).__name__.lower()
    return str(name), plugin


def plugin_manager(
    *plugins: object,
    installed: Literal["builtin", "all", "none"] = "builtin",
    toy: bool = True,
) -> Plugins:
    """A new plugin manager with `plugins` registered (modules or objects with hookimpls,
    or (name, plugin) pairs; a module is named by its import name).

    `installed` chooses the entry-point plugins loaded with them: "builtin" (snnbench's
    own methods, architectures, datasets and tables; the default, so a test does not
    depend on what else is installed), "all", or "none". A plugin given here that is
    also installed is registered once, through its entry point. `toy` adds the toy
    dataset and architecture. Loading is strict: a plugin that fails raises PluginError.
    """
    extra = [_named(p) for p in plugins]
    if toy:
        extra.insert(0, (TOY_PLUGIN_NAME, ToyPlugin()))
    selected = {"builtin": {BUILTIN_DISTRIBUTION}, "all": None, "none": set()}
    if installed not in selected:
        raise ValueError(f"installed must be 'builtin', 'all' or 'none', got {installed!r}")
    return load_plugins(strict=True, disabled=(), extra=extra,
                        use_entry_points=installed != "none",
                        distributions=selected[installed])


# --- running cells ---------------------------------------------------------------------


class CellFailed(AssertionError):
    """The cell of `run_one_cell` failed; the message holds its error and traceback."""


def _settings(workdir: Path, device: str, data_root: Path | None) -> RunSettings:
    return RunSettings(results_dir=workdir / "results", cache_dir=workdir / "cache",
                       data_root=data_root, device=torch.device(device))


def _overrides(overrides: Sequence[str] | Mapping[str, object]) -> Overrides:
    items = ([f"{key}={value}" for key, value in overrides.items()]
             if isinstance(overrides, Mapping) else list(overrides))
    return Overrides.parse(items)


def run_one_cell(
    plugins: Plugins,
    workdir: Path,
    *,
    method: str,
    T: Sequence[int] = (1,),
    architecture: str = TOY_ARCHITECTURE,
    dataset: str = TOY_DATASET,
    seed: int = 0,
    epochs: int | None = None,
    overrides: Sequence[str] | Mapping[str, object] = (),
    data_root: Path | None = None,
    device: str = "cpu",
    check: bool = True,
) -> dict[str, Any]:
    """Run the one-cell matrix (method x architecture x dataset x seed) as `snnbench run`
    does (validation, hooks, provenance, the record written under `workdir/results`)
    and return the record read back from disk.

    `epochs` replaces the epochs of every training step (`--epochs`); None keeps the
    dataset's own (about a second on the toy dataset; give 1 on real datasets).
    `overrides` are `--set` values: ["my_method.scale=0.5"] or {"my_method.scale": 0.5}.
    With `check` (the default), a failed cell raises CellFailed with its traceback. The
    cell runs in this process (so plugins registered only here take part).
    """
    plan = build_plan(plugins, methods=[method], architectures=[architecture],
                      datasets=[dataset], seeds=[seed], steps=sorted(set(T)),
                      overrides=_overrides(overrides), epochs=epochs)
    settings = _settings(Path(workdir), device, data_root)
    check_datasets(plugins, plan, data_root=data_root, cache_dir=settings.cache_dir)
    run_plan(plan, plugins, settings, Reporter())
    record = existing_record(settings.results_dir, plan.cells[0].cell_id)
    if record is None:
        raise CellFailed(f"no record was written for {plan.cells[0].label}")
    if check and record.get("status") != "ok":
        error = record.get("error") or {}
        raise CellFailed(
            f"{plan.cells[0].label} is {record.get('status')}: {error.get('type')}: "
            f"{error.get('message')}\n{error.get('traceback', '')}"
        )
    return json.loads(json.dumps(record))  # a plain copy, as a reader of the file gets


def render_table(plugins: Plugins, results_dir: Path, layout: str, fmt: str = "md") -> str:
    """The table `snnbench table --layout LAYOUT --format FMT` prints for `results_dir`."""
    from snnbench_suite.tables import build_table, render

    return render(build_table(plugins, Path(results_dir), layout), fmt)


def method_context(
    plugins: Plugins,
    workdir: Path,
    *,
    method: str,
    architecture: str = "resnet20",
    dataset: str = "digits",
    T: int | None = 2,
    seed: int = 0,
    epochs: int | None = 1,
    overrides: Sequence[str] = (),
) -> MethodContext:
    """The context the runner hands `method` for one cell (its ANN trained if needed), to
    call the method's `build` (or parts of it) directly."""
    plan = build_plan(plugins, methods=[method], architectures=[architecture],
                      datasets=[dataset], seeds=[seed], steps=[T or 1],
                      overrides=Overrides.parse(overrides), epochs=epochs)
    setup = CellRunner(plugins, _settings(workdir, "cpu", None), Reporter()).prepare(
        plan.cells[0])
    seed_everything(seed)
    return setup.context(T)


def run_cell(plugins: Plugins, workdir: Path, *, method: str, steps: Sequence[int],
             **cell: Any) -> dict[str, Any]:
    """Run one cell in-process without the runner (no record, no hooks) and return what
    the record's body would hold (dataset, ann, per_T, builds, timings)."""
    plan = build_plan(plugins, methods=[method],
                      architectures=[cell.get("architecture", "resnet20")],
                      datasets=[cell.get("dataset", "digits")], seeds=[cell.get("seed", 0)],
                      steps=list(steps), overrides=Overrides.parse(cell.get("overrides", ())),
                      epochs=cell.get("epochs", 1))
    runner = CellRunner(plugins, _settings(workdir, "cpu", None), Reporter())
    return runner.run(plan.cells[0], list(steps))
