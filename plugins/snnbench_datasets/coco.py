"""`coco`: COCO 2017 object detection from disk (train2017 for training, val2017 as test).

Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014. 80 categories (ids
1-90 with gaps; label k is the k-th category by id), about 118 k training and 5 k
validation images.

Data root layout (the official archives unpacked under one folder):

    DIR/coco/train2017/*.jpg
    DIR/coco/val2017/*.jpg
    DIR/coco/annotations/instances_train2017.json
    DIR/coco/annotations/instances_val2017.json

Images are read through torchvision's CocoDetection (PIL); one that does not decode is an
error naming the file. The annotation files are checked before use
(snnbench_suite.detection.annotations): an unknown category id, a box outside its image
(by more than a pixel), a malformed entry or an image listed but absent on disk is an
error naming the annotation or file; zero-area boxes are dropped and counted in the
record (`dataset.filtered.zero_area_boxes`); crowd boxes are scored as COCOeval does and
not trained on. Images are resized to `size` x `size` (default 320; boxes scaled per
axis) and scaled to [0, 1]; training mirrors them left-right with probability 0.5.
Detections are mapped back to original pixels and scored by pycocotools' COCOeval
(mAP@[.5:.95], the table metric, and mAP@.5). The fingerprint hashes every file's path
and size, the calibration subset (1,024 training images, seeded) and the parameters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

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
from snnbench_suite.detection import CleanAnnotations, DetectionSamples, check_annotations

NAME = "coco"
SUBFOLDER = "coco"
VERSION = "1"
CALIBRATION_SIZE = 1024
PARAMS: dict[str, Any] = {"size": 320}
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SPLITS = {"train": "train2017", "test": "val2017"}
LAYOUT = ("    DIR/coco/train2017/*.jpg\n"
          "    DIR/coco/val2017/*.jpg\n"
          "    DIR/coco/annotations/instances_train2017.json\n"
          "    DIR/coco/annotations/instances_val2017.json")
SOURCE = ("get train2017.zip, val2017.zip and annotations_trainval2017.zip from "
          "https://cocodataset.org yourself and unpack them into DIR/coco/.")


def annotation_file(folder: Path, images: str) -> Path:
    return folder / "annotations" / f"instances_{images}.json"


def check_params(params: dict[str, Any]) -> None:
    size = params["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise UsageError(f"--set {NAME}.size={size}: the input side must be an integer >= 16")


def check_layout(request: DatasetRequest) -> Path:
    """The dataset folder, after checking that its folders and annotation files exist."""
    folder = dataset_folder(request, SUBFOLDER)
    if folder is None:
        raise missing_data(NAME, SUBFOLDER, None, "", LAYOUT, SOURCE)
    if not folder.is_dir():
        raise missing_data(NAME, SUBFOLDER, folder, "the folder does not exist", LAYOUT, SOURCE)
    absent = [f"{images}/" for images in SPLITS.values() if not (folder / images).is_dir()]
    absent += [str(annotation_file(folder, images).relative_to(folder))
               for images in SPLITS.values() if not annotation_file(folder, images).is_file()]
    if absent:
        raise missing_data(NAME, SUBFOLDER, folder, f"missing {', '.join(absent)}", LAYOUT,
                           SOURCE)
    return folder


def check(request: DatasetRequest) -> None:
    check_params({**PARAMS, **dict(request.params)})
    check_layout(request)


def read_annotations(path: Path) -> CleanAnnotations:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataCorruptError(f"dataset {NAME!r}: the annotation file {path} cannot be read "
                               f"as JSON ({type(exc).__name__}: {exc}).") from None
    return check_annotations(data, str(path))


def image_paths(clean: CleanAnnotations, images: Path) -> list[Path]:
    """Every listed image's path; an error naming the missing ones."""
    paths = [images / im.file_name for im in clean.images]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(p.name for p in missing[:5])
        raise DataMissingError(
            f"dataset {NAME!r}: {len(missing)} image(s) listed in {clean.source} are not in "
            f"{images} (e.g. {shown}). Unpack the whole image archive, or use the "
            "annotation file that belongs to these images.")
    return paths


def _coco_reader(images: Path, clean: CleanAnnotations) -> Any:
    """torchvision's CocoDetection on the checked annotations (not re-read from disk),
    decoding with an error that names the file."""
    from pycocotools.coco import COCO
    from torchvision.datasets import CocoDetection, VisionDataset

    class CheckedCocoDetection(CocoDetection):
        def __init__(self) -> None:
            VisionDataset.__init__(self, str(images))
            self.coco = COCO()
            self.coco.dataset = clean.ground_truth()
            self.coco.createIndex()
            self.ids = [im.id for im in clean.images]

        def _load_image(self, id: int) -> Any:  # noqa: A002 (torchvision's name)
            from PIL import Image

            path = Path(self.root) / self.coco.loadImgs(id)[0]["file_name"]
            try:
                with open(path, "rb") as handle:
                    return Image.open(handle).convert("RGB")
            except (OSError, SyntaxError, ValueError) as exc:  # PIL's bad-data errors
                raise DataCorruptError(
                    f"dataset {NAME!r}: the image {path} does not decode "
                    f"({type(exc).__name__}: {exc}). Replace it, or remove it and its "
                    "annotations (that changes the dataset's fingerprint).") from None

    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        return CheckedCocoDetection()


class ResizedImages:
    """Image `index` of a CocoDetection, resized to `size` x `size`, in [0, 1]."""

    def __init__(self, coco: Any, size: int) -> None:
        self.coco = coco
        self.size = size

    def __call__(self, index: int) -> torch.Tensor:
        from torchvision.transforms.functional import pil_to_tensor

        image, _ = self.coco[index]
        image = image.resize((self.size, self.size), resample=2)  # PIL's BILINEAR
        return pil_to_tensor(image).float().div_(255.0)


def load(request: DatasetRequest) -> DatasetSplits:
    params = {**PARAMS, **dict(request.params)}
    check_params(params)
    size = int(params["size"])
    folder = check_layout(request)
    clean = {split: read_annotations(annotation_file(folder, images))
             for split, images in SPLITS.items()}
    if clean["train"].category_ids != clean["test"].category_ids:
        raise DataCorruptError(
            f"dataset {NAME!r}: {clean['train'].source} and {clean['test'].source} declare "
            "different categories; labels would not match. Use the two files of one release.")
    paths = [path for split, images in SPLITS.items()
             for path in image_paths(clean[split], folder / images)]
    readers = {split: ResizedImages(_coco_reader(folder / images, clean[split]), size)
               for split, images in SPLITS.items()}

    def samples(split: str, flip: bool) -> DetectionSamples:
        ids = [im.id for im in clean[split].images]
        return DetectionSamples(clean[split], ids, readers[split], (size, size), flip=flip)

    train, train_eval, test = samples("train", True), samples("train", False), samples(
        "test", False)
    calibration = calibration_subset(len(train), CALIBRATION_SIZE)
    json_files = [annotation_file(folder, images) for images in SPLITS.values()]
    info = DatasetInfo(
        name=NAME, version=VERSION, task="detection", modality="static",
        num_classes=train.num_classes, input_shape=(3, size, size),
        fingerprint=files_fingerprint(folder, [*json_files, *paths], np.asarray(calibration),
                                      extra=(NAME, VERSION, size)),
        mean=MEAN, std=STD,
        split_sizes={"train": len(train), "test": len(test), "calibration": len(calibration)},
        metric="map",
        filtered={"zero_area_boxes": sum(c.dropped_zero_area for c in clean.values())},
    )
    return DatasetSplits(info=info, train=train, train_eval=train_eval, test=test,
                         calibration_indices=calibration)


COCO = DatasetSpec(
    name=NAME, version=VERSION, task="detection", modality="static", load=load, check=check,
    params=PARAMS, metric="map",
    # FCOS's 1x schedule is 12 epochs of SGD at 0.01 (batch 16).
    ann_training=TrainConfig(epochs=12, batch_size=16, optimizer="sgd", lr=0.01,
                             weight_decay=1e-4),
    snn_training=TrainConfig(epochs=12, batch_size=16, optimizer="sgd", lr=0.01,
                             weight_decay=1e-4),
    description="COCO 2017 detection from DATA_ROOT/coco/ (train2017, val2017, "
    "annotations; on disk)",
    citation="Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014",
)
