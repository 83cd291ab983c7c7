"""Running one cell: load the data, get the ANN, build the SNN (once, or per T), evaluate.

A `CellRunner` lives for one run, so cells that share a dataset or an ANN (same
architecture, dataset, recipe, training and seed) load and train it once.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from snnbench_suite import distributed
from snnbench_suite.artifacts import (
    WeightCache,
    artifact_key,
    code_version,
    source_folder_version,
)
from snnbench_suite.cells import Cell, canonical_json
from snnbench_suite.detection.evaluate import evaluate_detector, simulate_detector
from snnbench_suite.detection.loss import detection_loss
from snnbench_suite.devices import device_info, with_batch_backoff
from snnbench_suite.errors import UsageError
from snnbench_suite.evaluation import SnnEvaluation, evaluate_ann, metrics_record, simulate
from snnbench_suite.loading import (
    LoaderOptions,
    LoaderSettings,
    evaluation_loader,
    resolve_loader_settings,
    training_loader,
)
from snnbench_suite.method_training import MethodTrainer
from snnbench_suite.plugins import Plugins
from snnbench_suite.precision import autocast, precision_record
from snnbench_suite.progress import Reporter
from snnbench_suite.provenance import package_version
from snnbench_suite.snn.encoding import FrameMean
from snnbench_suite.specs import (
    AnnRecipe,
    ArchitectureRequest,
    DatasetInfo,
    DatasetRequest,
    DatasetSplits,
    MethodContext,
    MethodSpec,
)
from snnbench_suite.train import train_model, with_epochs

EVAL_BATCH_SIZE = 256


def frame_mean_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of an ANN trained on event data, which it sees as the frames' mean
    (the same view distillation gives its teacher)."""
    return nn.functional.cross_entropy(model(FrameMean()(x)), y)
# Part of every ANN cache key: a new snnbench version retrains rather than trusting old ANNs.
SNNBENCH_VERSION = package_version("snnbench-suite") or "unknown"


@dataclass(frozen=True)
class RunSettings:
    """How cells run. `gpus_per_cell` > 1 runs each cell in that many torch.distributed
    processes (GPUs, or gloo processes on CPU); evaluation halves its batch after an
    out-of-memory error down to `eval_batch_floor`."""

    results_dir: Path
    cache_dir: Path
    data_root: Path | None
    device: torch.device
    precision: str = "fp32"
    loading: LoaderOptions = LoaderOptions()
    gpus_per_cell: int = 1
    eval_batch_size: int = EVAL_BATCH_SIZE
    eval_batch_floor: int = 1
    # Where networks that methods train are cached; None: `cache_dir`, beside the ANNs.
    trained_cache_dir: Path | None = None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resolve_recipe(method: MethodSpec, params: dict[str, Any]) -> AnnRecipe | None:
    recipe = method.ann_recipe
    if recipe is None or isinstance(recipe, AnnRecipe):
        return recipe
    return recipe(params)


def check_steps_fit(info: DatasetInfo, steps: Sequence[int]) -> None:
    """Event data gives one frame per step: refuse a T beyond the frames, before training."""
    if info.modality == "events" and info.num_frames is not None and max(steps) > info.num_frames:
        raise UsageError(
            f"T = {max(steps)} is larger than the {info.num_frames} frames dataset "
            f"{info.name!r} provides; ask for T <= {info.num_frames} or more frames"
        )


@dataclass
class CellSetup:
    """A cell ready for its method: data, loaders, the trained ANN and a context factory."""

    method: MethodSpec
    data: DatasetSplits
    loader: Callable[..., DataLoader]
    ann_info: dict[str, Any] | None
    timings: dict[str, float]
    context: Callable[[int | None], MethodContext]


class CellRunner:
    def __init__(self, plugins: Plugins, settings: RunSettings, reporter: Reporter) -> None:
        self.plugins = plugins
        self.settings = settings
        self.reporter = reporter
        self._datasets: dict[str, DatasetSplits] = {}
        self._anns: dict[str, tuple[dict[str, torch.Tensor], dict[str, Any]]] = {}
        self.ann_cache = WeightCache(settings.cache_dir, "anns")
        self.trained_cache = WeightCache(settings.trained_cache_dir or settings.cache_dir,
                                         "trained")
        self._eval_batches: list[int] = []  # evaluation batches that worked, this cell

    # --- data ---------------------------------------------------------------------

    def dataset(self, cell: Cell) -> DatasetSplits:
        key = canonical_json([cell.dataset, cell.dataset_version, cell.dataset_params])
        if key not in self._datasets:
            spec = self.plugins.datasets.get(cell.dataset)
            self._datasets[key] = spec.load(DatasetRequest(
                params=cell.dataset_params,
                data_root=self.settings.data_root,
                cache_dir=self.settings.cache_dir / "datasets",
            ))
        return self._datasets[key]

    def loader_settings(self, cell: Cell) -> LoaderSettings:
        spec = self.plugins.datasets.get(cell.dataset)
        return resolve_loader_settings(
            self.settings.loading, embedded=spec.embedded,
            declared=spec.loader_workers, device=self.settings.device,
            processes=distributed.world_size())

    def loader_factory(self, data: DatasetSplits, seed: int,
                       settings: LoaderSettings | None = None) -> Callable[..., DataLoader]:
        """`loader(split, batch_size, shuffle)`. The shuffled (training) loader of a rank
        holds its share of each global batch of `batch_size` (see `loading`)."""
        options = settings or LoaderSettings(workers=0, pin_memory=False, source="default")
        splits: dict[str, Dataset] = {
            "train": data.train,
            "train_eval": data.train_eval,
            "test": data.test,
            "calibration": Subset(data.train_eval, list(data.calibration_indices)),
        }

        def loader(
            split: str, batch_size: int = EVAL_BATCH_SIZE, shuffle: bool = False
        ) -> DataLoader:
            if split not in splits:
                raise ValueError(f"unknown split {split!r}; use one of {', '.join(splits)}")
            if shuffle:
                return training_loader(splits[split], batch_size=batch_size, seed=seed,
                                       settings=options, rank=distributed.rank(),
                                       world_size=distributed.world_size())
            return evaluation_loader(splits[split], batch_size=batch_size, settings=options)

        return loader

    # --- architectures and the ANN ---------------------------------------------------

    def architecture_builder(self, cell: Cell, data: DatasetSplits) -> Callable[..., nn.Module]:
        spec = self.plugins.architectures.get(cell.architecture)
        info = data.info
        normalization = (info.mean, info.std) if info.mean and info.std else None

        def build(**overrides: Any) -> nn.Module:
            request = ArchitectureRequest(
                num_classes=info.num_classes,
                input_shape=tuple(info.input_shape),
                width=cell.width,
                normalization=normalization,
            )
            return spec.build(replace(request, **overrides))

        return build

    def ann(self, cell: Cell, recipe: AnnRecipe, data: DatasetSplits,
            build: Callable[..., nn.Module], loader: Callable[..., DataLoader]
            ) -> tuple[nn.Module, dict[str, Any]]:
        """The trained ANN of this cell's recipe, trained once per run and key."""
        dataset_spec = self.plugins.datasets.get(cell.dataset)
        config = with_epochs(recipe.training or dataset_spec.ann_training, cell.epochs)
        arch_spec = self.plugins.architectures.get(cell.architecture)
        key = artifact_key([cell.architecture, cell.width, cell.dataset, data.info.fingerprint,
                            recipe.name, recipe.version, recipe.batch_norm, config,
                            cell.seed, SNNBENCH_VERSION, code_version(arch_spec.build),
                            # The builder's helpers (e.g. a shared initialisation) live
                            # beside it: an edit to any of them retrains.
                            source_folder_version(arch_spec.build)]
                           # fp32 keeps the keys ANNs were cached under before --precision
                           + ([self.settings.precision] if self.settings.precision != "fp32"
                              else [])
                           + distributed.training_variant(recipe.batch_norm,
                                                          self.settings.device))
        seed_everything(cell.seed)  # the initial weights must not depend on earlier cells
        model = build(activation=recipe.activation, batch_norm=recipe.batch_norm)
        if key in self._anns:
            state, info = self._anns[key]
            model.load_state_dict(state)
            return model.eval(), {**info, "source": "reused in this run"}
        # Held while training, so concurrent workers and runs train each ANN once. The
        # ranks of one cell follow rank 0: it holds the lock and says whether to load.
        with distributed.main_holds(self.ann_cache.lock(key)):
            if distributed.is_main():
                cached = self.ann_cache.load(key, model)
                distributed.from_main(cached is not None)
            else:
                cached = self.ann_cache.load(key, model) if distributed.from_main(None) else None
            if cached is not None:
                self._anns[key] = (copy.deepcopy(model.state_dict()), cached)
                return model.eval(), {**cached, "source": f"cache {key}"}
            self.reporter.message(f"training ANN {cell.architecture} ({recipe.name}) on "
                                  f"{cell.dataset}, seed {cell.seed}: cache key {key}")
            detecting = data.info.task == "detection"
            events = data.info.modality == "events"
            summary = train_model(
                model, loader("train", batch_size=config.batch_size, shuffle=True), config,
                device=self.settings.device, label=f"ANN {cell.architecture} ({recipe.name})",
                on_epoch=self.reporter.epoch, precision=self.settings.precision,
                **({"loss_fn": detection_loss} if detecting else {}),
                **({"loss_fn": frame_mean_loss} if events else {}),
            )
            score_ann = evaluate_detector if detecting else evaluate_ann
            scored = nn.Sequential(FrameMean(), model) if events else model
            metrics, used = self._with_backoff(
                lambda batch: score_ann(scored, loader("test", batch_size=batch),
                                        self.settings.device))
            metrics = {**metrics, "eval_batch_size": used}
            info = {"recipe": recipe.name, "recipe_version": recipe.version,
                    "training": {**summary.as_dict(), "config": config.__dict__}, **metrics}
            self._anns[key] = (copy.deepcopy(model.state_dict()), info)
            if distributed.is_main():  # one writer per artifact
                self.ann_cache.store(key, model, info, about={
                    "architecture": cell.architecture, "width": cell.width,
                    "dataset": cell.dataset, "seed": cell.seed, "recipe": recipe.name})
        return model.eval(), {**info, "source": f"trained, cached as {key}"}

    def forget_anns(self) -> None:
        """Drop the ANNs held in memory (the disk cache keeps them)."""
        self._anns.clear()

    # --- the cell -------------------------------------------------------------------

    def prepare(self, cell: Cell) -> CellSetup:
        """Load the data and get the ANN of `cell`; `setup.context(T)` then gives a method
        what it needs. Used by `run` and by `snnbench_suite.testing`."""
        method: MethodSpec = self.plugins.methods.get(cell.method)
        data = self.dataset(cell)
        build = self.architecture_builder(cell, data)
        loader = self.loader_factory(data, cell.seed, self.loader_settings(cell))
        timings: dict[str, float] = {}
        ann_model, ann_info = None, None
        recipe = resolve_recipe(method, cell.method_params)
        if recipe is not None:
            start = time.perf_counter()
            ann_model, ann_info = self.ann(cell, recipe, data, build, loader)
            timings["ann_s"] = time.perf_counter() - start
        dataset_spec = self.plugins.datasets.get(cell.dataset)
        snn_config = with_epochs(dataset_spec.snn_training, cell.epochs)

        trainer = MethodTrainer(
            cache=self.trained_cache, cell=cell, data=data, method=method,
            architecture_build=self.plugins.architectures.get(cell.architecture).build,
            loader=loader, default_config=snn_config, ann=ann_model,
            device=self.settings.device, precision=self.settings.precision,
            version=SNNBENCH_VERSION, on_epoch=self.reporter.epoch)

        def context(num_steps: int | None) -> MethodContext:
            return MethodContext(
                T=num_steps, params=dict(cell.method_params), data=data,
                ann=copy.deepcopy(ann_model) if ann_model is not None else None,
                seed=cell.seed, device=self.settings.device, epochs_override=cell.epochs,
                build_architecture=build, loader=loader, train=trainer.for_steps(num_steps),
                snn_training=snn_config, log=self.reporter.message,
            )

        return CellSetup(method=method, data=data, loader=loader, ann_info=ann_info,
                         timings=timings, context=context)

    def run(self, cell: Cell, steps: Sequence[int]) -> dict[str, Any]:
        check_steps_fit(self.dataset(cell).info, steps)
        if self.settings.gpus_per_cell > 1 and not distributed.is_active():
            from snnbench_suite.launch import run_cell_in_processes

            return run_cell_in_processes(cell, steps, self.settings, self.reporter,
                                         world_size=self.settings.gpus_per_cell)
        self._eval_batches = []
        setup = self.prepare(cell)
        method, data, loader, timings = setup.method, setup.data, setup.loader, setup.timings
        context = setup.context
        ann_info = setup.ann_info
        per_t: dict[int, dict[str, Any]] = {}
        builds: list[dict[str, Any]] = []
        evaluations: list[SnnEvaluation] = []
        evaluate = self._evaluator(data, loader)
        if method.t_mode == "anytime":
            horizon = max(steps)
            seed_everything(cell.seed)
            ctx = context(None)
            start = time.perf_counter()
            network = method.build(ctx)
            build_s = time.perf_counter() - start
            builds.append({"T": None, "seconds": build_s, **ctx.notes})
            start = time.perf_counter()
            evaluations.append(evaluate(network, steps))
            timings["eval_s"] = time.perf_counter() - start
            # One build and one simulation serve every T: each entry carries their times.
            for t, entry in evaluations[-1].per_t.items():
                per_t[t] = {**entry, "build_seconds": build_s, "eval_seconds": timings["eval_s"],
                            "t_source": f"anytime readout at step {t} of one "
                            f"simulation with T = {horizon}"}
        else:
            timings["eval_s"] = 0.0
            for t in steps:
                seed_everything(cell.seed)
                ctx = context(t)
                start = time.perf_counter()
                network = method.build(ctx)
                build_s = time.perf_counter() - start
                builds.append({"T": t, "seconds": build_s, **ctx.notes})
                start = time.perf_counter()
                evaluations.append(evaluate(network, [t]))
                eval_s = time.perf_counter() - start
                timings["eval_s"] += eval_s
                per_t[t] = {**evaluations[-1].per_t[t], "build_seconds": build_s,
                            "eval_seconds": eval_s, "t_source": f"built and simulated at T = {t}"}
        timings["build_s"] = sum(b["seconds"] for b in builds)
        return {
            "dataset": {**data.info.__dict__, "split_sizes": dict(data.info.split_sizes),
                        "calibration_indices_count": len(data.calibration_indices)},
            "ann": ann_info,
            "per_T": [{"T": t, **per_t[t]} for t in sorted(per_t)],
            "builds": builds,
            "timings": timings,
            "execution": self.execution_info(cell),
            "metrics": metrics_record(evaluations),
        }

    def execution_info(self, cell: Cell) -> dict[str, Any]:
        """Where and how the cell ran: device, precision per part, processes, loaders and
        the evaluation batch finally used (after any out-of-memory halving)."""
        return {
            **device_info(self.settings.device),
            "precision": precision_record(self.settings.precision),
            "distributed": distributed.describe(self.settings.device),
            "data_loading": self.loader_settings(cell).as_dict(),
            "eval_batch_size": {"requested": self.settings.eval_batch_size,
                                "used": min(self._eval_batches, default=None),
                                "floor": self.settings.eval_batch_floor},
        }

    def _with_backoff(self, evaluate: Callable[[int], Any]) -> tuple[Any, int]:
        """`evaluate(batch_size)` under the evaluation precision, halving the batch after
        an out-of-memory error down to the floor; remembers the batch that worked."""
        def attempt(batch: int) -> Any:
            with autocast(self.settings.device, self.settings.precision):
                return evaluate(batch)

        def retry(old: int, new: int) -> None:
            self.reporter.message(f"out of memory at evaluation batch {old}; retrying "
                                  f"with {new}")

        result, used = with_batch_backoff(
            attempt, self.settings.eval_batch_size, floor=self.settings.eval_batch_floor,
            device=self.settings.device, on_retry=retry)
        self._eval_batches.append(used)
        return result, used

    def _evaluator(self, data: DatasetSplits, loader: Callable[..., DataLoader]
                   ) -> Callable[[nn.Module, Sequence[int]], SnnEvaluation]:
        # Detection scores the time-averaged dense map by COCO mAP (snnbench_suite.detection).
        run = simulate_detector if data.info.task == "detection" else simulate

        def evaluate(network: nn.Module, steps: Sequence[int]) -> SnnEvaluation:
            evaluation, _ = self._with_backoff(lambda batch: run(
                network, loader("test", batch_size=batch), steps,
                modality=data.info.modality, device=self.settings.device))
            return evaluation
        return evaluate
