"""The FCOS training loss on the dense map (Tian et al., FCOS, ICCV 2019), one level.

Assignment: a grid location is a positive of a box when it lies inside the box and
within `center_radius` strides of its centre (centre sampling); a location claimed by
several boxes takes the smallest. A box no location claims (narrower than a stride, lying
between grid points) takes the location nearest its centre, so every object is learned.
Loss = sigmoid focal loss on the classes (all locations, divided by the positives)
+ GIoU loss on the decoded boxes of the positives (weighted by the centerness target)
+ binary cross-entropy on the centerness of the positives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

from snnbench_suite.detection.layout import FIRST_CLASS_CHANNEL, HeadLayout, decode_boxes, flat

CENTER_RADIUS = 1.5
FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0


def assign(layout: HeadLayout, targets: torch.Tensor, center_radius: float = CENTER_RADIUS
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded targets `[B, M, 5]` -> (positive `[B, L]` bool, boxes `[B, L, 4]`, labels
    `[B, L]` long) of the L grid locations; boxes and labels are only meaningful at
    positives."""
    centers = layout.centers(targets.device)  # [L, 2]
    boxes, labels = targets[..., :4], targets[..., 4].long()  # [B, M, 4], [B, M]
    valid = labels >= 0
    px, py = centers[:, 0].reshape(1, -1, 1), centers[:, 1].reshape(1, -1, 1)
    x1, y1, x2, y2 = (boxes[..., i].unsqueeze(1) for i in range(4))  # [B, 1, M]
    inside = (px > x1) & (px < x2) & (py > y1) & (py < y2)
    stride_y, stride_x = layout.stride
    near = (((px - (x1 + x2) / 2).abs() < center_radius * stride_x)
            & ((py - (y1 + y2) / 2).abs() < center_radius * stride_y))
    claimed = inside & near & valid.unsqueeze(1)  # [B, L, M]
    # Boxes no location claims: their nearest location.
    orphan = valid & ~claimed.any(1)  # [B, M]
    if orphan.any():
        distance = (px - (x1 + x2) / 2) ** 2 + (py - (y1 + y2) / 2) ** 2  # [B, L, M]
        nearest = distance.argmin(1)  # [B, M]
        forced = torch.zeros_like(claimed)
        forced.scatter_(1, nearest.unsqueeze(1), True)
        claimed = claimed | (forced & orphan.unsqueeze(1))
    area = ((x2 - x1) * (y2 - y1)).expand_as(claimed)
    area = torch.where(claimed, area, torch.full_like(area, float("inf")))
    smallest, index = area.min(-1)  # [B, L]
    positive = torch.isfinite(smallest)
    matched_boxes = boxes.gather(1, index.unsqueeze(-1).expand(-1, -1, 4))
    matched_labels = labels.gather(1, index)
    return positive, matched_boxes, matched_labels


def centerness_target(centers: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) of points `[L, 2]` in boxes
    `[L, 4]`; 0 where the point lies outside the box."""
    left, top = centers[:, 0] - boxes[:, 0], centers[:, 1] - boxes[:, 1]
    right, bottom = boxes[:, 2] - centers[:, 0], boxes[:, 3] - centers[:, 1]
    lr = torch.stack([left, right], -1).clamp(min=0)
    tb = torch.stack([top, bottom], -1).clamp(min=0)
    ratio = (lr.min(-1).values / lr.max(-1).values.clamp(min=1e-6)
             * tb.min(-1).values / tb.max(-1).values.clamp(min=1e-6))
    return ratio.sqrt()


def fcos_loss(output: torch.Tensor, targets: torch.Tensor, image_size: tuple[int, int]
              ) -> torch.Tensor:
    """The loss of a dense map `[B, 5 + K, h, w]` against padded targets `[B, M, 5]`."""
    num_classes = output.shape[1] - FIRST_CLASS_CHANNEL
    layout = HeadLayout.of(output, image_size, num_classes)
    sides, centerness, classes = flat(output.float())
    positive, boxes, labels = assign(layout, targets.float())
    num_positive = max(float(positive.sum()), 1.0)
    class_targets = torch.zeros_like(classes)
    class_targets[positive, labels[positive]] = 1.0
    class_loss = sigmoid_focal_loss(classes, class_targets, alpha=FOCAL_ALPHA,
                                    gamma=FOCAL_GAMMA, reduction="sum") / num_positive
    if not positive.any():
        return class_loss + 0.0 * (sides.sum() + centerness.sum())
    centers = layout.centers(output.device).expand(positive.shape[0], -1, -1)[positive]
    true_boxes = boxes[positive]
    weight = centerness_target(centers, true_boxes)
    predicted = decode_boxes(sides, layout)[positive]
    box_loss = ((generalized_box_iou_loss(predicted, true_boxes, reduction="none") * weight)
                .sum() / weight.sum().clamp(min=1e-6))
    centerness_loss = F.binary_cross_entropy_with_logits(
        centerness[positive], weight, reduction="sum") / num_positive
    return class_loss + box_loss + centerness_loss


def detection_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training loss for `snnbench_suite.train.train_model`: padded targets `y`."""
    return fcos_loss(model(x), y, (int(x.shape[-2]), int(x.shape[-1])))
