"""The frozen dataclasses plugins register, and the context a method is built in.

These are the public contract: a method, architecture, dataset or table layout is a spec
handed to the `register` callback of its registration hook. Nothing here imports a plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from snnbench_suite.cells import Cell
    from snnbench_suite.execute import RunSettings
    from snnbench_suite.train import EpochReport

Modality = Literal["static", "events"]
Task = Literal["classification", "detection"]
MethodFamily = Literal["conversion", "direct_training", "distillation"]
TMode = Literal["anytime", "per_t"]

MODALITIES: tuple[str, ...] = ("static", "events")
TASKS: tuple[str, ...] = ("classification", "detection")
# The per-T metric keys a dataset may name as its `metric`, by task.
TASK_METRICS: dict[str, tuple[str, ...]] = {"classification": ("top1", "top5"),
                                            "detection": ("map", "map50")}
METHOD_FAMILIES: tuple[str, ...] = ("conversion", "direct_training", "distillation")
T_MODES: tuple[str, ...] = ("anytime", "per_t")


@dataclass(frozen=True)
class TrainConfig:
    """How a network is trained. `--epochs` replaces `epochs` for every training step."""

    epochs: int
    batch_size: int = 64
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4


# --- datasets -------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """What a loaded dataset is; stored in every record."""

    name: str
    version: str
    task: Task
    modality: Modality
    num_classes: int
    input_shape: tuple[int, ...]
    fingerprint: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    num_frames: int | None = None
    split_sizes: Mapping[str, int] = field(default_factory=dict)
    # The per-T key tables show for this dataset: "top1" (classification) or "map" /
    # "map50" (detection: COCO mAP@[.5:.95] / mAP@.5, fractions in [0, 1]).
    metric: str = "top1"
    # Annotations a documented filter dropped, by reason (e.g. zero-area boxes).
    filtered: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetRequest:
    """What the runner asks a dataset plugin for."""

    params: Mapping[str, Any]
    data_root: Path | None
    cache_dir: Path
    seed: int = 0


@dataclass(frozen=True)
class DatasetSplits:
    """A loaded dataset. `train_eval` holds the training samples without augmentation
    (used to observe activations and to calibrate); `calibration_indices` is a fixed,
    seeded subset of it, recorded in every record."""

    info: DatasetInfo
    train: Dataset
    train_eval: Dataset
    test: Dataset
    calibration_indices: tuple[int, ...]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset. `check(request)`, when given, is a cheap pre-flight test run before any
    cell: it raises DataMissingError when files are absent (or UsageError for a bad
    parameter), reads no samples and writes nothing."""

    name: str
    version: str
    task: Task
    modality: Modality
    load: Callable[[DatasetRequest], DatasetSplits]
    ann_training: TrainConfig
    snn_training: TrainConfig
    description: str = ""
    citation: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    embedded: bool = False
    check: Callable[[DatasetRequest], None] | None = None
    # DataLoader workers per training process when --workers is not given; None: 0 for
    # embedded (in-memory) data, up to 8 for on-disk data (see snnbench_suite.loading).
    loader_workers: int | None = None
    metric: str = "top1"  # the per-T key tables show (see DatasetInfo.metric)


# --- architectures --------------------------------------------------------------------


def _relu() -> nn.Module:
    from torch import nn

    return nn.ReLU()


@dataclass(frozen=True)
class ArchitectureRequest:
    """Everything an architecture builder needs. `activation` is a factory so a method can
    ask for the activation it trains with (ReLU, clipped, quantized, ...)."""

    num_classes: int
    input_shape: tuple[int, ...]
    width: float = 1.0
    batch_norm: bool = True
    activation: Callable[[], nn.Module] = _relu
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None


@dataclass(frozen=True)
class ArchitectureSpec:
    """An architecture. `build(request)` raises ValueError for a request it cannot take
    (width <= 0, too few classes, an input too small), before any training.

    A *family* spec serves many names: with `variants`, the registry resolves
    `<name>.<variant>` (e.g. `timm.resnet18`) to `variants(variant)`, which returns that
    member's spec or raises ValueError (naming close matches). `examples` are variants
    the tests build, so registering a family enrols it in the tests.
    """

    name: str
    family: str
    build: Callable[[ArchitectureRequest], nn.Module]
    default_width: float = 1.0
    description: str = ""
    citation: str = ""
    deviations: str = ""
    variants: Callable[[str], ArchitectureSpec] | None = None
    examples: tuple[str, ...] = ()
    # What its output is for: a classifier's logits, or a detector's dense map
    # (snnbench_suite.detection). A cell pairing it with a dataset of another task is
    # skipped with that reason.
    tasks: tuple[str, ...] = ("classification",)


# --- methods --------------------------------------------------------------------------


@dataclass(frozen=True)
class AnnRecipe:
    """The ANN a method starts from: its activation and whether it has BN. The runner
    trains it (and, later, caches it) so methods that share a recipe share the ANN."""

    name: str
    version: str
    activation: Callable[[], nn.Module] = _relu
    batch_norm: bool = True
    training: TrainConfig | None = None  # None: the dataset's ann_training


@dataclass
class MethodContext:
    """What a method's `build` receives for one cell (and, for per-T methods, one T)."""

    T: int | None
    params: Mapping[str, Any]
    data: DatasetSplits
    ann: nn.Module | None
    seed: int
    device: torch.device
    epochs_override: int | None
    build_architecture: Callable[..., nn.Module]
    loader: Callable[..., DataLoader]
    # train(model, loss_fn=None, config=None, label="SNN"): trains in place, or loads the
    # weights the cache holds for the same cell, T, label, configuration and initial weights
    train: Callable[..., dict[str, Any]]
    snn_training: TrainConfig  # the dataset's SNN training configuration, --epochs applied
    log: Callable[[str], None] = print
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodSpec:
    """A method: how to get from a (trained ANN and) dataset to a spiking network.

    `build(ctx)` returns a module mapping a `[T, B, ...]` input sequence to per-step
    outputs `[T, B, classes]`. For `anytime` methods ctx.T is None and the runner reads
    every T from one simulation at max(T); for `per_t` methods build is called per T.
    `check_params` raises ValueError for a bad parameter value, before anything runs.
    `traits` are the facts that make comparisons fair (readout, reset, spike amplitude,
    BN, input coding); they are copied into every record.
    """

    name: str
    family: MethodFamily
    version: str
    t_mode: TMode
    build: Callable[[MethodContext], nn.Module]
    # A recipe, or a function of the resolved parameters returning one (e.g. QCFS's
    # number of levels L changes the ANN), or None for methods that train from scratch.
    ann_recipe: AnnRecipe | Callable[[Mapping[str, Any]], AnnRecipe] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    check_params: Callable[[Mapping[str, Any]], None] | None = None
    modalities: tuple[str, ...] = ("static",)
    tasks: tuple[str, ...] = ("classification",)
    description: str = ""
    citation: str = ""
    traits: Mapping[str, str] = field(default_factory=dict)


# --- tables ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    """A table layout: a pure function from the tidy records frame to a display frame.

    With `reference=True` the frame also holds the published numbers of
    leaderboards/reference as rows with `source == "reported"` (others have
    "reproduced"); `frame.attrs["datasets"]` names the datasets asked for. The display
    frame may carry hidden columns (names starting with "_": `_kind` reproduced/reported,
    `_dataset`, `_architecture`) and attrs `best` ({column: "max" | "min"}, bold in LaTeX),
    `best_by` (columns grouping rows for `best`), `best_rowwise` (columns compared within
    a row), `notes` (lines under the table), `papers` (reference keys cited) and
    `empty_reason` (said when the layout has no rows for the records).
    """

    name: str
    build: Callable[[pd.DataFrame], pd.DataFrame]
    description: str = ""
    reference: bool = False


# --- executors ------------------------------------------------------------------------

# What a worker reports about each cell of a unit (WorkUnit.cells): "ok", "failed",
# "skipped", or "complete" when an earlier run had already recorded it.
UnitOutcome = Mapping[str, str]


@dataclass(frozen=True)
class WorkUnit:
    """Cells one worker runs in order: those sharing a trained ANN (same architecture,
    dataset, recipe, training and seed), so the ANN is trained once, by one worker.

    Picklable: it travels to process-pool workers, Slurm jobs and Ray tasks.
    """

    index: int
    cells: tuple[Cell, ...]
    steps: tuple[int, ...]
    settings: RunSettings
    label: str
    strict_plugins: bool = False
    disabled_plugins: tuple[str, ...] = ()

    @property
    def cell_ids(self) -> tuple[str, ...]:
        return tuple(cell.cell_id for cell in self.cells)


@dataclass(frozen=True)
class CellEvent:
    """Live progress from a worker: kind is "cell_started", "cell_finished" (with
    `status`), "epoch" (with `epoch`) or "message" (with `text`). Picklable."""

    kind: str
    cell_id: str | None = None
    label: str = ""
    status: str | None = None
    epoch: EpochReport | None = None
    text: str = ""
    worker: str = ""


@dataclass(frozen=True)
class ExecutorRequest:
    """What an executor is handed: the units of a run and how to report back.

    - `work(unit, events=None, threads=None, slot=None)` is a picklable, module-level
      function: called in any process (a pool worker, a Slurm job, a Ray task) it loads
      the plugins, pins torch to `threads` threads, runs the unit's cells, writes each
      cell's record into the shared results folder itself, and returns the UnitOutcome.
      `events`, when given, is a callable receiving CellEvents for a live display (e.g. a
      pipe's send). `slot=(i, n)` says it is worker i of n on one machine: on GPUs it
      takes its own GPU(s) (`worker_env(i, n)`) before touching CUDA.
    - `worker_env(i, n)`: the environment worker i of n must run with (its
      CUDA_VISIBLE_DEVICES on GPUs, nothing on CPU); raises UsageError when n workers
      need more GPUs than are visible. Call it for every slot before starting workers to
      refuse an impossible -j at once.
    - `work_here(unit)` does the same in the calling process, reusing this run's plugins and
      feeding the progress display directly (what `-j 1` uses).
    - `unit_done(unit, outcome)`: hand back what `work` returned.
    - `unit_lost(unit, reason, cell_ids)`: the unit's worker died or vanished; the runner
      records `cell_ids` (None: every cell of the unit) that have no complete record as
      failed with `reason` (e.g. "killed by signal SIGKILL").
    - `report(event)`: forward a worker's CellEvent to the display (this process only).
    - `refresh()`: update the display from the results folder (for executors without
      live events; cheap, call it every few seconds while waiting).
    """

    units: tuple[WorkUnit, ...]
    work: Callable[..., UnitOutcome]
    work_here: Callable[[WorkUnit], UnitOutcome]
    jobs: int
    params: Mapping[str, Any]
    results_dir: Path
    scratch_dir: Path
    unit_done: Callable[[WorkUnit, UnitOutcome], None]
    unit_lost: Callable[[WorkUnit, str, Sequence[str] | None], None]
    report: Callable[[CellEvent], None]
    refresh: Callable[[], None]
    worker_env: Callable[[int, int], Mapping[str, str]]


@dataclass(frozen=True)
class ExecutorSpec:
    """An executor: where the cells of a run execute (`snnbench run --executor NAME -j N`).

    `run(request)` hands every unit of `request.units` to `request.work` exactly once and
    returns when each unit is done (`request.unit_done`) or lost (`request.unit_lost`);
    it must never wait forever on a worker that died. The workers write the records, so
    any executor fills the same results folder.
    `params` are its options with their defaults (resources: CPUs, GPUs, memory, time),
    set with `--set NAME.PARAM=VALUE` or the matrix file's `executor:` section, checked
    by `check_params` (ValueError) before anything runs.
    `available()` returns None when the executor can run here, or a message saying what
    is missing and how to install it (`extra` names the optional dependency set, e.g.
    `pip install 'snnbench-suite[slurm]'`). It must be cheap: `snnbench list executors`
    calls it. `preflight(params)`, when given, runs once before anything of the run
    starts and raises UsageError when the executor cannot run now (e.g. its cluster's
    controller does not answer); it must return within seconds, never hang.
    """

    name: str
    run: Callable[[ExecutorRequest], None]
    description: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    check_params: Callable[[Mapping[str, Any]], None] | None = None
    available: Callable[[], str | None] | None = None
    extra: str | None = None
    preflight: Callable[[Mapping[str, Any]], None] | None = None
