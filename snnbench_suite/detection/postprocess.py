"""Dense map -> detections: score, keep the best candidates, decode, clip, NMS.

The score of class k at a location is sqrt(sigmoid(class logit) * sigmoid(centerness)),
as in FCOS. For a spiking detector this runs on the time-averaged map at each T, so the
same decoding reads the ANN and every T of the SNN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchvision.ops import batched_nms, clip_boxes_to_image

from snnbench_suite.detection.layout import HeadLayout, decode_boxes, flat


@dataclass(frozen=True)
class Postprocess:
    """Decoding settings: FCOS's test-time defaults."""

    score_threshold: float = 0.05
    candidates: int = 1000  # best-scoring (location, class) pairs kept before NMS
    nms_iou: float = 0.6
    max_detections: int = 100  # per image, as COCOeval counts


DEFAULTS = Postprocess()


@dataclass(frozen=True)
class Detections:
    """One image's detections in input pixels."""

    boxes: torch.Tensor  # [n, 4] x1, y1, x2, y2
    scores: torch.Tensor  # [n]
    labels: torch.Tensor  # [n] long, 0..K-1

    def to_cpu(self) -> Detections:
        return Detections(self.boxes.cpu(), self.scores.cpu(), self.labels.cpu())


def detect(output: torch.Tensor, image_size: tuple[int, int], num_classes: int,
           settings: Postprocess = DEFAULTS) -> list[Detections]:
    """Detections of each image of a dense map `[B, 5 + K, h, w]`."""
    layout = HeadLayout.of(output, image_size, num_classes)
    sides, centerness, classes = flat(output.float())
    scores = (classes.sigmoid() * centerness.sigmoid().unsqueeze(-1)).sqrt()
    boxes = decode_boxes(sides, layout)
    found = []
    for image_scores, image_boxes in zip(scores, boxes, strict=True):
        flat_scores = image_scores.flatten()
        keep = torch.nonzero(flat_scores > settings.score_threshold).squeeze(1)
        if keep.numel() > settings.candidates:
            keep = keep[flat_scores[keep].topk(settings.candidates).indices]
        locations, labels = keep // num_classes, keep % num_classes
        chosen = clip_boxes_to_image(image_boxes[locations], layout.image_size)
        chosen_scores = flat_scores[keep]
        kept = batched_nms(chosen, chosen_scores, labels, settings.nms_iou)
        kept = kept[: settings.max_detections]  # batched_nms sorts by decreasing score
        found.append(Detections(chosen[kept], chosen_scores[kept], labels[kept]))
    return found


def coco_results(found: Sequence[Detections], image_ids: Sequence[int],
                 scales: Sequence[tuple[float, float]], category_ids: Sequence[int]
                 ) -> list[dict[str, Any]]:
    """COCO result dicts, boxes mapped back to each image's original pixels."""
    results = []
    for detections, image_id, (sx, sy) in zip(found, image_ids, scales, strict=True):
        for box, score, label in zip(detections.boxes.tolist(), detections.scores.tolist(),
                                     detections.labels.tolist(), strict=True):
            x1, y1, x2, y2 = box
            results.append({
                "image_id": int(image_id), "category_id": int(category_ids[label]),
                "bbox": [x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy],
                "score": float(score),
            })
    return results
