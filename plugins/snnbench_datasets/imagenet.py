"""`imagenet`: ILSVRC-2012 classification in the ImageFolder layout (on disk).

Russakovsky et al., ImageNet Large Scale Visual Recognition Challenge, IJCV 115 (2015).
1,000 classes, about 1.28 M training and 50,000 validation images (the validation set is
the test split, as everywhere in the literature).

Data root layout:

    DIR/imagenet/train/<wnid>/*.JPEG
    DIR/imagenet/val/<wnid>/*.JPEG

one folder per class (WordNet id, e.g. n01440764) in both, with the same class folders;
labels are the sorted folder names' indices (torchvision's ImageFolder). The official
validation archive unpacks into one flat folder; that layout is refused with instructions,
because reading it as classes silently gives chance accuracy in other tools. Images are
decoded by PIL when a batch is drawn; one that does not decode fails with an error naming
the file (never a silent skip that would change the dataset).

Transforms (the standard ones): training, a random-resized crop to `size` (224) and a
horizontal flip; evaluation, a resize of the short side to size * 256 / 224 and a centre
crop to `size`. Images are in [0, 1]; the usual ImageNet channel mean and std are
published for architectures that normalise (computing them would mean decoding 1.28 M
images). The fingerprint hashes every file's path and size, the labels and the
calibration subset (1,024 training images, seeded).
"""

from __future__ import annotations

import copy
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
    DataMissingError,
    DatasetInfo,
    DatasetRequest,
    DatasetSpec,
    DatasetSplits,
    TrainConfig,
    UsageError,
)

NAME = "imagenet"
SUBFOLDER = "imagenet"
VERSION = "1"
CALIBRATION_SIZE = 1024
PARAMS: dict[str, Any] = {"size": 224}
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
LAYOUT = ("    DIR/imagenet/train/<wnid>/*.JPEG   (one folder per class)\n"
          "    DIR/imagenet/val/<wnid>/*.JPEG     (the same class folders)")
SOURCE = ("get ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from https://image-net.org "
          "yourself, unpack them and sort the validation images into class folders.")
FLAT_VAL_HELP = (
    "Sort the validation images into one folder per class first: the devkit's "
    "ILSVRC2012_validation_ground_truth.txt gives each image's class (or use the widely "
    "shared valprep.sh script that moves them), so that val/ holds the same <wnid> folders "
    "as train/."
)


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def check_layout(request: DatasetRequest) -> Path:
    """The dataset folder, after checking the layout without listing every image."""
    folder = dataset_folder(request, SUBFOLDER)
    if folder is None:
        raise missing_data(NAME, SUBFOLDER, None, "", LAYOUT, SOURCE)
    absent = [part for part in ("train", "val") if not (folder / part).is_dir()]
    if absent:
        problem = ("the folder does not exist" if not folder.is_dir()
                   else f"no {' or '.join(p + '/' for p in absent)} folder in it")
        raise missing_data(NAME, SUBFOLDER, folder, problem, LAYOUT, SOURCE)
    train_classes = sorted(p.name for p in (folder / "train").iterdir() if p.is_dir())
    val_entries = list((folder / "val").iterdir())
    val_classes = sorted(p.name for p in val_entries if p.is_dir())
    loose = [p for p in val_entries if p.is_file() and _is_image(p)]
    if loose:
        raise DataMissingError(
            f"dataset {NAME!r}: {folder / 'val'} holds {len(loose)} images directly "
            f"(e.g. {loose[0].name}) instead of one folder per class: a flat validation "
            f"folder, which cannot be labelled. {FLAT_VAL_HELP}"
        )
    if not train_classes:
        raise missing_data(NAME, SUBFOLDER, folder, "train/ has no class folders", LAYOUT,
                           SOURCE)
    if val_classes != train_classes:
        only_train = sorted(set(train_classes) - set(val_classes))
        only_val = sorted(set(val_classes) - set(train_classes))
        raise DataMissingError(
            f"dataset {NAME!r}: train/ and val/ in {folder} hold different class folders "
            f"(only in train/: {only_train[:5] or 'none'}, only in val/: "
            f"{only_val[:5] or 'none'}); labels would not match. Give both the same <wnid> "
            f"folders. {FLAT_VAL_HELP}"
        )
    return folder


def check_params(params: dict[str, Any]) -> None:
    if int(params["size"]) < 8:
        raise UsageError(f"--set {NAME}.size={params['size']}: the crop size must be >= 8")


def check(request: DatasetRequest) -> None:
    check_params({**PARAMS, **dict(request.params)})
    check_layout(request)


def read_image(path: str) -> Any:
    """PIL's RGB image of `path`; an error naming the file when it does not decode."""
    from PIL import Image

    try:
        with open(path, "rb") as handle:
            image = Image.open(handle)
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:  # PIL reports bad data as these
        raise DataCorruptError(
            f"dataset {NAME!r}: the image {path} does not decode ({type(exc).__name__}: "
            f"{exc}). Replace or remove it (removing changes the dataset's fingerprint)."
        ) from None


def _image_folder(root: Path) -> Any:
    from torchvision.datasets import ImageFolder

    try:
        return ImageFolder(str(root), loader=read_image)
    except FileNotFoundError as exc:
        raise missing_data(NAME, SUBFOLDER, root, str(exc), LAYOUT, SOURCE) from None


def load(request: DatasetRequest) -> DatasetSplits:
    from torchvision import transforms

    params = {**PARAMS, **dict(request.params)}
    check_params(params)
    size = int(params["size"])
    folder = check_layout(request)
    train = _image_folder(folder / "train")
    test = _image_folder(folder / "val")
    train_eval = copy.copy(train)
    train.transform = transforms.Compose([
        transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
    ])
    eval_tf = transforms.Compose([
        transforms.Resize(round(size * 256 / 224)), transforms.CenterCrop(size),
        transforms.ToTensor(),
    ])
    train_eval.transform = test.transform = eval_tf
    calibration = calibration_subset(len(train), CALIBRATION_SIZE)
    paths = [Path(p) for p, _ in train.samples] + [Path(p) for p, _ in test.samples]
    info = DatasetInfo(
        name=NAME, version=VERSION, task="classification", modality="static",
        num_classes=len(train.classes), input_shape=(3, size, size),
        fingerprint=files_fingerprint(
            folder, paths, np.asarray(train.targets), np.asarray(test.targets),
            np.asarray(calibration), extra=(NAME, VERSION, train.classes)),
        mean=MEAN, std=STD,
        split_sizes={"train": len(train), "test": len(test), "calibration": len(calibration)},
    )
    return DatasetSplits(info=info, train=train, train_eval=train_eval, test=test,
                         calibration_indices=calibration)


IMAGENET = DatasetSpec(
    name=NAME, version=VERSION, task="classification", modality="static",
    load=load, check=check, params=PARAMS,
    ann_training=TrainConfig(epochs=90, batch_size=256, optimizer="sgd", lr=0.1,
                             weight_decay=1e-4),
    snn_training=TrainConfig(epochs=90, batch_size=64, optimizer="sgd", lr=0.1,
                             weight_decay=1e-4),
    description="ImageNet (ILSVRC-2012) from DATA_ROOT/imagenet/{train,val}/<wnid>/ "
    "(ImageFolder layout, on disk)",
    citation="Russakovsky et al., ImageNet Large Scale Visual Recognition Challenge, "
    "IJCV 115 (2015)",
)
