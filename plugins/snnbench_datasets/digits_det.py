"""`digits_det`: embedded object detection on canvases of scikit-learn's digits.

Each grayscale canvas (`size` x `size`, default 32) holds 1 to 4 digits (uniformly many)
drawn at random positions and scales (a side of size * 5/16 to size / 2 pixels, i.e.
10-16 on 32x32), resized bilinearly from the 8x8 scans. Digits never overlap: their
squares are kept at least one pixel apart (a digit that finds no free place after
`PLACEMENT_TRIES` draws is left out, so a few canvases hold fewer digits than drawn).
A digit's box is the tight box of its ink (the non-zero pixels of its 8x8 scan, scaled),
its category its digit (COCO category ids 1-10 for digits 0-9).

The split is fixed and seeded: training canvases use only the digits of the `digits`
training split, test canvases only those of its test split (so no scan is in both), with
generator seed 0 for the layout. The annotations are a COCO-format dict
(`coco_annotations`) and are scored with pycocotools' COCOeval, as COCO itself is.
The fingerprint hashes the canvases, boxes, labels and the calibration subset.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from snnbench_datasets.digits import TEST_SIZE, fingerprint, stratified_split
from snnbench_datasets.files import calibration_subset
from snnbench_suite import (
    DatasetInfo,
    DatasetRequest,
    DatasetSpec,
    DatasetSplits,
    TrainConfig,
    UsageError,
)
from snnbench_suite.detection import DetectionSamples, check_annotations

NAME = "digits_det"
VERSION = "1"
SPLIT_SEED = 0
CALIBRATION_SIZE = 256
PLACEMENT_TRIES = 50
MAX_DIGITS = 4
PARAMS: dict[str, Any] = {"size": 32, "train_images": 2000, "test_images": 500}


def check_params(params: dict[str, Any]) -> None:
    size = params["size"]
    if not isinstance(size, int) or size < 16:
        raise UsageError(f"--set {NAME}.size={size}: the canvas side must be an integer "
                         ">= 16 (digits are drawn at 5/16 to 1/2 of it)")
    for key in ("train_images", "test_images"):
        if not isinstance(params[key], int) or params[key] < 1:
            raise UsageError(f"--set {NAME}.{key}={params[key]}: must be a positive integer")


def _ink_box(scan: np.ndarray) -> tuple[int, int, int, int]:
    """(col0, row0, col1, row1), inclusive, of the non-zero pixels of an 8x8 scan."""
    rows, cols = np.nonzero(scan.max(1))[0], np.nonzero(scan.max(0))[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def compose(scans: np.ndarray, labels: np.ndarray, count: int, size: int, seed: int
            ) -> tuple[np.ndarray, list[list[tuple[float, float, float, float, int]]]]:
    """`count` canvases `[count, size, size]` in [0, 1] and per canvas its objects
    (x1, y1, x2, y2, digit), from scans `[N, 8, 8]` (0..16) with their labels."""
    rng = np.random.default_rng(seed)
    canvases = np.zeros((count, size, size), dtype=np.float32)
    objects: list[list[tuple[float, float, float, float, int]]] = []
    low, high = round(size * 5 / 16), size // 2
    for index in range(count):
        placed: list[tuple[int, int, int]] = []  # x, y, side of each digit's square
        found = []
        for _ in range(int(rng.integers(1, MAX_DIGITS + 1))):
            pick = int(rng.integers(len(scans)))
            for _ in range(PLACEMENT_TRIES):
                side = int(rng.integers(low, high + 1))
                x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
                if all(x + side + 1 <= px or px + ps + 1 <= x or y + side + 1 <= py
                       or py + ps + 1 <= y for px, py, ps in placed):
                    break
            else:
                continue
            placed.append((x, y, side))
            scan = torch.as_tensor(scans[pick], dtype=torch.float32)[None, None] / 16.0
            patch = F.interpolate(scan, size=(side, side), mode="bilinear",
                                  align_corners=False)[0, 0].clamp(0, 1).numpy()
            canvases[index, y:y + side, x:x + side] = patch
            c0, r0, c1, r1 = _ink_box(scans[pick])
            scale = side / 8
            found.append((x + c0 * scale, y + r0 * scale, x + (c1 + 1) * scale,
                          y + (r1 + 1) * scale, int(labels[pick])))
        objects.append(found)
    return canvases, objects


def coco_dict(objects: list[list[tuple[float, float, float, float, int]]], size: int,
              first_image_id: int) -> dict[str, Any]:
    """The COCO-format annotations of composed canvases (category id = digit + 1)."""
    images: list[dict[str, Any]] = []
    boxes: list[dict[str, Any]] = []
    for offset, found in enumerate(objects):
        image_id = first_image_id + offset
        images.append({"id": image_id, "width": size, "height": size,
                       "file_name": f"{NAME}_{image_id:06d}.png"})
        for x1, y1, x2, y2, digit in found:
            boxes.append({"id": len(boxes) + 1,
                                "image_id": image_id, "category_id": digit + 1,
                                "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    categories = [{"id": d + 1, "name": str(d), "supercategory": "digit"} for d in range(10)]
    return {"images": images, "annotations": boxes, "categories": categories}


def _samples(canvases: np.ndarray, annotations: dict[str, Any], size: int, split: str
             ) -> DetectionSamples:
    clean = check_annotations(annotations, f"{NAME} ({split} annotations)")
    images = torch.from_numpy(canvases).unsqueeze(1)
    ids = [im["id"] for im in annotations["images"]]
    return DetectionSamples(clean, ids, lambda index: images[index], (size, size))


def load(request: DatasetRequest) -> DatasetSplits:
    from sklearn.datasets import load_digits

    params = {**PARAMS, **dict(request.params)}
    check_params(params)
    size = int(params["size"])
    bunch = load_digits()
    train_idx, test_idx = stratified_split(bunch.target, TEST_SIZE, SPLIT_SEED)
    train_x, train_objects = compose(bunch.images[train_idx], bunch.target[train_idx],
                                     int(params["train_images"]), size, SPLIT_SEED)
    test_x, test_objects = compose(bunch.images[test_idx], bunch.target[test_idx],
                                   int(params["test_images"]), size, SPLIT_SEED + 1)
    train_coco = coco_dict(train_objects, size, first_image_id=1)
    test_coco = coco_dict(test_objects, size, first_image_id=1 + len(train_objects))
    train = _samples(train_x, train_coco, size, "train")
    test = _samples(test_x, test_coco, size, "test")
    calibration = calibration_subset(len(train), CALIBRATION_SIZE, SPLIT_SEED)
    boxes = np.asarray([o[:4] for found in train_objects + test_objects for o in found],
                       dtype=np.float64)
    digits = np.asarray([o[4] for found in train_objects + test_objects for o in found])
    info = DatasetInfo(
        name=NAME, version=VERSION, task="detection", modality="static", num_classes=10,
        input_shape=(1, size, size),
        fingerprint=fingerprint(train_x, test_x, boxes, digits, np.asarray(calibration),
                                extra=(VERSION, params)),
        mean=(float(train_x.mean()),), std=(float(train_x.std()),),
        split_sizes={"train": len(train), "test": len(test), "calibration": len(calibration),
                     "train_objects": len(train_coco["annotations"]),
                     "test_objects": len(test_coco["annotations"])},
        metric="map50",
        filtered={"zero_area_boxes": train.annotations.dropped_zero_area
                  + test.annotations.dropped_zero_area},
    )
    splits = DatasetSplits(info=info, train=train, train_eval=train, test=test,
                           calibration_indices=calibration)
    return splits


def coco_annotations(params: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The COCO-format annotation dicts {"train": ..., "test": ...} of digits_det."""
    from pathlib import Path

    splits = load(DatasetRequest(params=params or {}, data_root=None, cache_dir=Path(".")))
    return {"train": splits.train.ground_truth(),  # type: ignore[attr-defined]
            "test": splits.test.ground_truth()}  # type: ignore[attr-defined]


DIGITS_DET = DatasetSpec(
    name=NAME, version=VERSION, task="detection", modality="static", load=load,
    embedded=True, params=PARAMS, metric="map50",
    check=lambda request: check_params({**PARAMS, **dict(request.params)}),
    ann_training=TrainConfig(epochs=12, batch_size=32, optimizer="adam", lr=2e-3,
                             weight_decay=1e-4),
    snn_training=TrainConfig(epochs=12, batch_size=32, optimizer="adam", lr=1e-3,
                             weight_decay=1e-4),
    description="embedded detection: 1-4 scikit-learn digits per 32x32 canvas, COCO boxes "
    "(no download)",
    citation="Alpaydin & Kaynak, Optical Recognition of Handwritten Digits, UCI ML "
    "Repository (1998); canvases composed by snnbench",
)
