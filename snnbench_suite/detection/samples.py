"""A detection split as a torch Dataset: images resized to the network input, targets as
one padded tensor, and what COCOeval needs to score predictions in original pixels.

A sample is `(image [C, H, W], targets [max_objects, 5])`, a target row being
(x1, y1, x2, y2, label) in input pixels, padding rows having label -1. A fixed-size
tensor, not a list of dicts: the shared training loop, the loaders and every conversion
method then handle detection batches exactly like classification batches (`for x, y in
loader`), with no collate function to thread through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from snnbench_suite.detection.annotations import CleanAnnotations

PAD_LABEL = -1


def pack_targets(boxes: torch.Tensor, labels: torch.Tensor, max_objects: int) -> torch.Tensor:
    """Boxes `[n, 4]` and labels `[n]` -> `[max_objects, 5]`, padded with label -1."""
    if boxes.shape[0] > max_objects:
        raise ValueError(f"{boxes.shape[0]} objects do not fit in {max_objects} target rows")
    packed = torch.zeros(max_objects, 5)
    packed[:, 4] = PAD_LABEL
    packed[: boxes.shape[0], :4] = boxes
    packed[: boxes.shape[0], 4] = labels.to(packed.dtype)
    return packed


def unpack_targets(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`[max_objects, 5]` -> (boxes `[n, 4]`, labels `[n]` long), padding removed."""
    keep = packed[:, 4] >= 0
    return packed[keep, :4], packed[keep, 4].long()


class DetectionSamples(Dataset):
    """Images of one split with their (non-crowd) boxes as padded targets.

    `read(index)` returns the image at the network's input size `[C, H, W]`; the boxes of
    the annotations are scaled from each image's own size to the input size. With
    `flip=True` (training) each sample is mirrored left-right with probability 0.5,
    drawn from torch's global generator (the runner seeds it per cell).
    """

    def __init__(self, annotations: CleanAnnotations, image_ids: Sequence[int],
                 read: Callable[[int], torch.Tensor], input_size: tuple[int, int],
                 *, flip: bool = False) -> None:
        self.annotations = annotations
        self.image_ids = [int(i) for i in image_ids]
        self.read = read
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.flip = flip
        images = {im.id: im for im in annotations.images}
        label_of = {cid: k for k, cid in enumerate(annotations.category_ids)}
        height, width = self.input_size
        self.scales: list[tuple[float, float]] = []  # input -> original pixels (x, y)
        self._targets: list[tuple[torch.Tensor, torch.Tensor]] = []
        for image_id in self.image_ids:
            image = images[image_id]
            sx, sy = image.width / width, image.height / height
            self.scales.append((sx, sy))
            kept = [b for b in annotations.boxes.get(image_id, []) if not b.iscrowd]
            boxes = torch.tensor([[b.bbox[0] / sx, b.bbox[1] / sy, (b.bbox[0] + b.bbox[2]) / sx,
                                   (b.bbox[1] + b.bbox[3]) / sy] for b in kept],
                                 dtype=torch.float32).reshape(-1, 4)
            labels = torch.tensor([label_of[b.category_id] for b in kept], dtype=torch.long)
            self._targets.append((boxes, labels))
        self.max_objects = max([1, *(len(b) for b, _ in self._targets)])

    @property
    def category_ids(self) -> list[int]:
        """COCO category id of each label (label k is category_ids[k])."""
        return self.annotations.category_ids

    @property
    def num_classes(self) -> int:
        return len(self.annotations.categories)

    def ground_truth(self) -> dict[str, Any]:
        """The COCO-format ground truth of this split, in original pixels."""
        return self.annotations.ground_truth(self.image_ids)

    def __len__(self) -> int:
        return len(self.image_ids)

    def targets(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes `[n, 4]` (input pixels) and labels `[n]` of sample `index`, unflipped."""
        return self._targets[index]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.read(index)
        if tuple(image.shape[-2:]) != self.input_size:
            raise ValueError(f"read({index}) gave an image of {tuple(image.shape)}; expected "
                             f"the input size {self.input_size}")
        boxes, labels = self._targets[index]
        if self.flip and bool(torch.rand(()) < 0.5):
            image = image.flip(-1)
            width = self.input_size[1]
            boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0],
                                 boxes[:, 3]], dim=1)
        return image, pack_targets(boxes, labels, self.max_objects)
