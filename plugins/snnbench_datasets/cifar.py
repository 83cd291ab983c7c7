"""`cifar10`, `cifar100`: CIFAR read from the official python-version folders (on disk).

Krizhevsky, Learning Multiple Layers of Features from Tiny Images, tech. report, University
of Toronto (2009). 32x32 RGB images, 50,000 for training and 10,000 for test; 10 or 100
classes.

Data root layout (what the official archives unpack to, and the folder torchvision
uses, so an existing torchvision root works as the data root):

    DIR/cifar-10-batches-py/   data_batch_1 ... data_batch_5, test_batch, batches.meta
    DIR/cifar-100-python/      train, test, meta

Each file is a Python pickle of a dict: `data` (uint8, N x 3072, the red, green and blue
planes of each image in row-major order), `labels` (CIFAR-10) or `fine_labels`
(CIFAR-100), and, in the meta file, the class names (`label_names`, `fine_label_names`).
They are read by torchvision's CIFAR10 / CIFAR100 readers with download=False. Those
readers also compare each file's md5 with the official release's; snnbench checks that
the files exist, that every pickle reads and that its arrays have the documented shapes,
and fingerprints the file names and sizes instead, so a re-packed copy (or a test's
tiny one) reads too and any difference shows in the fingerprint.

Images are in [0, 1]; the training split's per-channel mean and std are published for
architectures that normalise. Training augmentation: random crop 32 with 4 pixels of
zero padding and a horizontal flip; options (the SNN calibration recipe, Li et al., ICML
2021): `autoaugment=true` adds AutoAugment's CIFAR-10 policy (Cubuk et al., CVPR 2019)
and `cutout=16` one 16-pixel Cutout hole. Evaluation: no augmentation. The calibration
subset: 1,024 training images, seeded. Training defaults (SGD, 0.1, cosine, weight decay
5e-4) are the suite's; `--epochs` shortens them.
"""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snnbench_datasets.files import (
    calibration_subset,
    dataset_folder,
    files_fingerprint,
    missing_data,
)
from snnbench_suite import (
    DataCorruptError,
    DatasetInfo,
    DatasetRequest,
    DatasetSpec,
    DatasetSplits,
    TrainConfig,
    UsageError,
)

VERSION = "1"
CALIBRATION_SIZE = 1024
IMAGE_VALUES = 32 * 32 * 3
PARAMS: dict[str, Any] = {"autoaugment": False, "cutout": 0}
SOURCE = ("download the python version from https://www.cs.toronto.edu/~kriz/cifar.html "
          "yourself and unpack it into DIR.")


@dataclass(frozen=True)
class CifarVariant:
    name: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, *self.test_files, self.meta_file)

    def layout(self) -> str:
        return f"    DIR/{self.folder}/  {', '.join(self.files)}  (official python version)"


CIFAR10_FILES = CifarVariant(
    name="cifar10", folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)), test_files=("test_batch",),
    meta_file="batches.meta", label_key="labels", names_key="label_names", num_classes=10,
)
CIFAR100_FILES = CifarVariant(
    name="cifar100", folder="cifar-100-python", train_files=("train",), test_files=("test",),
    meta_file="meta", label_key="fine_labels", names_key="fine_label_names", num_classes=100,
)


def _folder(variant: CifarVariant, request: DatasetRequest) -> Path:
    folder = dataset_folder(request, variant.folder)
    if folder is None:
        raise missing_data(variant.name, variant.folder, None, "", variant.layout(), SOURCE)
    absent = [name for name in variant.files if not (folder / name).is_file()]
    if absent:
        problem = ("the folder does not exist" if not folder.is_dir()
                   else f"missing {', '.join(absent)}")
        raise missing_data(variant.name, variant.folder, folder, problem, variant.layout(),
                           SOURCE)
    return folder


def check_params(name: str, params: dict[str, Any]) -> None:
    if not isinstance(params["autoaugment"], bool):
        raise UsageError(f"--set {name}.autoaugment: expected true or false, "
                         f"got {params['autoaugment']!r}")
    if int(params["cutout"]) < 0:
        raise UsageError(f"--set {name}.cutout={params['cutout']}: the hole size in pixels "
                         "must be >= 0 (0: no cutout; the calibration recipe uses 16)")


def _diagnose(variant: CifarVariant, folder: Path, names: tuple[str, ...]) -> None:
    """Find the file that made the reader fail and raise an error naming it."""
    for name in names:
        path = folder / name
        try:
            with open(path, "rb") as handle:
                entry = pickle.load(handle, encoding="latin1")
        except Exception as exc:  # any unpickling failure means the same: a bad file
            raise DataCorruptError(
                f"dataset {variant.name!r}: {path} is not a readable pickle "
                f"({type(exc).__name__}: {exc}); it is truncated or not the python version "
                f"of CIFAR. Replace it with the file from the official archive."
            ) from None
        _check_entry(variant, path, entry)


def _check_entry(variant: CifarVariant, path: Path, entry: Any) -> None:
    is_meta = path.name == variant.meta_file
    keys = (variant.names_key,) if is_meta else ("data", variant.label_key)
    if not isinstance(entry, dict) or any(key not in entry for key in keys):
        raise DataCorruptError(
            f"dataset {variant.name!r}: {path} does not hold the expected dict with keys "
            f"{', '.join(keys)}. Replace it with the file from the official archive."
        )
    if is_meta:
        return
    data = np.asarray(entry["data"])
    labels = entry[variant.label_key]
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_VALUES \
            or len(labels) != data.shape[0]:
        raise DataCorruptError(
            f"dataset {variant.name!r}: {path} holds data of shape {data.shape} ({data.dtype}) "
            f"and {len(labels)} labels; expected uint8 N x {IMAGE_VALUES} and N labels. "
            "Replace it with the file from the official archive."
        )


def _read(variant: CifarVariant, folder: Path, train: bool) -> Any:
    from torchvision.datasets import CIFAR10, CIFAR100

    base = CIFAR10 if variant.name == "cifar10" else CIFAR100

    class PresentCifar(base):  # type: ignore[valid-type,misc]
        # md5 None: torchvision then checks presence only (see the module docstring).
        train_list = [[name, None] for name, _ in base.train_list]
        test_list = [[name, None] for name, _ in base.test_list]
        meta = {**base.meta, "md5": None}

    try:
        return PresentCifar(str(folder.parent), train=train, download=False)
    except Exception:
        _diagnose(variant, folder, variant.files)
        raise


def _mean_std(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 HWC images in [0, 1], in chunks (no float copy
    of the whole training set)."""
    total = np.zeros(3)
    squares = np.zeros(3)
    for start in range(0, len(images), 4096):
        chunk = images[start:start + 4096].reshape(-1, 3).astype(np.float64) / 255.0
        total += chunk.sum(0)
        squares += (chunk * chunk).sum(0)
    count = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _transforms(params: dict[str, Any], mean: tuple[float, ...]) -> tuple[Any, Any]:
    from torchvision import transforms

    from snnbench_datasets.augment import Cutout

    train: list[Any] = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
    if params["autoaugment"]:
        train.append(transforms.AutoAugment(transforms.AutoAugmentPolicy.CIFAR10))
    train.append(transforms.ToTensor())
    if int(params["cutout"]) > 0:
        train.append(Cutout(int(params["cutout"]), fill=mean))
    return transforms.Compose(train), transforms.ToTensor()


def make_load(variant: CifarVariant) -> Any:
    def load(request: DatasetRequest) -> DatasetSplits:
        params = {**PARAMS, **dict(request.params)}
        check_params(variant.name, params)
        folder = _folder(variant, request)
        train = _read(variant, folder, train=True)
        test = _read(variant, folder, train=False)
        for split, name in ((train, variant.train_files), (test, variant.test_files)):
            labels = np.asarray(split.targets)
            if labels.size and (labels.min() < 0 or labels.max() >= variant.num_classes):
                raise DataCorruptError(
                    f"dataset {variant.name!r}: {', '.join(name)} in {folder} hold labels "
                    f"outside 0..{variant.num_classes - 1}. Replace them with the official "
                    "files.")
        if len(train) == 0 or len(test) == 0:
            raise DataCorruptError(f"dataset {variant.name!r}: {folder} holds no images")
        mean, std = _mean_std(train.data)
        train_tf, eval_tf = _transforms(params, mean)
        train_eval = copy.copy(train)
        train.transform, train_eval.transform, test.transform = train_tf, eval_tf, eval_tf
        calibration = calibration_subset(len(train), CALIBRATION_SIZE)
        info = DatasetInfo(
            name=variant.name, version=VERSION, task="classification", modality="static",
            num_classes=variant.num_classes, input_shape=(3, 32, 32),
            fingerprint=files_fingerprint(
                folder.parent, [folder / name for name in variant.files],
                np.asarray(train.targets), np.asarray(test.targets), np.asarray(calibration),
                extra=(variant.name, VERSION)),
            mean=mean, std=std,
            split_sizes={"train": len(train), "test": len(test),
                         "calibration": len(calibration)},
        )
        return DatasetSplits(info=info, train=train, train_eval=train_eval, test=test,
                             calibration_indices=calibration)

    return load


def make_check(variant: CifarVariant) -> Any:
    def check(request: DatasetRequest) -> None:
        check_params(variant.name, {**PARAMS, **dict(request.params)})
        _folder(variant, request)

    return check


ANN_TRAINING = TrainConfig(epochs=200, batch_size=128, optimizer="sgd", lr=0.1,
                           weight_decay=5e-4)
SNN_TRAINING = TrainConfig(epochs=200, batch_size=64, optimizer="sgd", lr=0.1,
                           weight_decay=5e-4)
CITATION = ("Krizhevsky, Learning Multiple Layers of Features from Tiny Images, "
            "University of Toronto (2009)")

CIFAR10 = DatasetSpec(
    name="cifar10", version=VERSION, task="classification", modality="static",
    load=make_load(CIFAR10_FILES), check=make_check(CIFAR10_FILES), params=PARAMS,
    ann_training=ANN_TRAINING, snn_training=SNN_TRAINING,
    description="CIFAR-10 from DATA_ROOT/cifar-10-batches-py (official python version, "
    "on disk)",
    citation=CITATION,
)
CIFAR100 = DatasetSpec(
    name="cifar100", version=VERSION, task="classification", modality="static",
    load=make_load(CIFAR100_FILES), check=make_check(CIFAR100_FILES), params=PARAMS,
    ann_training=ANN_TRAINING, snn_training=SNN_TRAINING,
    description="CIFAR-100 from DATA_ROOT/cifar-100-python (official python version, "
    "on disk)",
    citation=CITATION,
)
