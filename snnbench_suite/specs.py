"""The frozen dataclasses plugins register, and the context a method is built in.

These are the public contract: a method, architecture, dataset or table layout is a spec
handed to the `register` callback of its registration hook. Nothing here imports a plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

Modality = Literal["static", "events"]
Task = Literal["classification", "detection"]
MethodFamily = Literal["conversion", "direct_training", "distillation"]
TMode = Literal["anytime", "per_t"]

MODALITIES: tuple[str, ...] = ("static", "events")
TASKS: tuple[str, ...] = ("classification", "detection")
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
    """A table layout: a pure function from the tidy records frame to a display frame."""

    name: str
    build: Callable[[pd.DataFrame], pd.DataFrame]
    description: str = ""
