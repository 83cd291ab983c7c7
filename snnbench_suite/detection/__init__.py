"""Object detection in snnbench: the dense-map convention detectors follow, the FCOS loss,
decoding with NMS, COCOeval scoring, annotation checks and the detection Dataset.

- `layout`: a detector outputs one dense map `[B, 5 + K, h, w]` (box sides, centerness,
  class logits); a spiking detector's time-averaged map is read the same way.
- `samples`: `DetectionSamples`, images with padded targets `[max_objects, 5]`.
- `annotations`: COCO-format annotations checked with errors naming the annotation.
- `loss`: `detection_loss(model, x, y)` for the shared training loop.
- `postprocess`: dense map -> boxes, scores, labels (NMS) -> COCO result dicts.
- `cocoeval`: `CocoScorer`, pycocotools' mAP@[.5:.95] ("map") and mAP@.5 ("map50").
- `evaluate`: mAP of an ANN, and of an SNN at every T from one simulation.

A detection dataset's records hold "map" and "map50" where a classification dataset's
hold "top1": fractions in [0, 1], as COCOeval reports them (top1 is a percentage; tables
show both in percent); `DatasetInfo.metric` names the one tables show.
"""

from snnbench_suite.detection.annotations import CleanAnnotations, check_annotations
from snnbench_suite.detection.cocoeval import CocoScorer
from snnbench_suite.detection.layout import HeadLayout, decode_boxes
from snnbench_suite.detection.loss import detection_loss, fcos_loss
from snnbench_suite.detection.postprocess import Detections, Postprocess, coco_results, detect
from snnbench_suite.detection.samples import DetectionSamples, pack_targets, unpack_targets

TASK = "detection"


def is_detection(task: str) -> bool:
    return task == TASK


__all__ = [
    "TASK",
    "CleanAnnotations",
    "CocoScorer",
    "DetectionSamples",
    "Detections",
    "HeadLayout",
    "Postprocess",
    "check_annotations",
    "coco_results",
    "decode_boxes",
    "detect",
    "detection_loss",
    "fcos_loss",
    "is_detection",
    "pack_targets",
    "unpack_targets",
]
