"""Mean average precision by pycocotools' COCOeval, exactly as COCO itself is scored.

`CocoScorer(ground_truth)` builds the ground-truth index once; `score(detections)` then
returns {"map": AP@[.5:.95], "map50": AP@.5} for a list of COCO result dicts
({"image_id", "category_id", "bbox": [x, y, w, h], "score"}). Both are fractions in
[0, 1], as COCOeval reports them (area "all", at most 100 detections per image), and
records hold them so (tables show them in percent).

Detections are checked before pycocotools sees them (known image and category, finite
box of non-negative size, finite score), so a bad prediction is an error naming it, not
an assertion deep inside pycocotools. No detection at all scores 0.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _quietly(function: Any, *args: Any) -> Any:
    """pycocotools prints progress on stdout; a run's output must stay the table."""
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


class CocoScorer:
    """COCOeval on one fixed ground truth (a COCO-format dict), for many prediction sets."""

    def __init__(self, ground_truth: Mapping[str, Any]) -> None:
        from pycocotools.coco import COCO

        annotations = ground_truth.get("annotations", [])
        if not any(not a.get("iscrowd", 0) for a in annotations):
            raise ValueError("the ground truth holds no (non-crowd) box: there is nothing to "
                             "score detections against")
        self.coco = COCO()
        self.coco.dataset = {key: list(value) for key, value in ground_truth.items()
                             if isinstance(value, list)}
        _quietly(self.coco.createIndex)
        self.image_ids = sorted(self.coco.getImgIds())
        self._known_images = set(self.image_ids)
        self._known_categories = set(self.coco.getCatIds())

    def check(self, detections: Sequence[Mapping[str, Any]]) -> None:
        for index, det in enumerate(detections):
            bbox = det.get("bbox")
            problem = None
            if det.get("image_id") not in self._known_images:
                problem = f"image_id {det.get('image_id')!r} is not in the ground truth"
            elif det.get("category_id") not in self._known_categories:
                problem = f"category_id {det.get('category_id')!r} is not in the ground truth"
            elif (not isinstance(bbox, Sequence) or len(bbox) != 4
                  or not all(math.isfinite(float(v)) for v in bbox)
                  or float(bbox[2]) < 0 or float(bbox[3]) < 0):
                problem = f"bbox {bbox!r} is not [x, y, w, h] with finite w, h >= 0"
            elif not math.isfinite(float(det.get("score", math.nan))):
                problem = f"score {det.get('score')!r} is not a finite number"
            if problem is not None:
                raise ValueError(f"detection {index}: {problem}")

    def score(self, detections: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        from pycocotools.cocoeval import COCOeval

        self.check(detections)
        if not detections:
            return {"map": 0.0, "map50": 0.0}
        results = [{"image_id": int(d["image_id"]), "category_id": int(d["category_id"]),
                    "bbox": [float(v) for v in d["bbox"]], "score": float(d["score"])}
                   for d in detections]
        predicted = _quietly(self.coco.loadRes, results)
        evaluator = COCOeval(self.coco, predicted, "bbox")
        evaluator.params.imgIds = self.image_ids
        _quietly(evaluator.evaluate)
        _quietly(evaluator.accumulate)
        _quietly(evaluator.summarize)
        stats = np.asarray(evaluator.stats, dtype=float)
        # COCOeval reports -1 where no category has ground truth; never the case here.
        return {"map": max(float(stats[0]), 0.0), "map50": max(float(stats[1]), 0.0)}
