"""The dense output every snnbench detector produces, and the geometry to read it.

A detector maps images `[B, C, H, W]` to one dense map `[B, 5 + K, h, w]` (K classes):
channels 0-3 are the box sides (left, top, right, bottom) of the location's box as
`log(distance / stride)`, channel 4 the centerness logit, channels 5.. the class logits.
Grid cell (i, j) is the image point ((j + 0.5) * stride_x, (i + 0.5) * stride_y).

One tensor, not a dict: the conversion engine keeps the graph output non-spiking and
averages it over time, so a spiking detector's time-averaged map is read exactly like the
ANN's map (an FCOS-style single-level head, Tian et al., ICCV 2019).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BOX_CHANNELS = slice(0, 4)
CENTERNESS_CHANNEL = 4
FIRST_CLASS_CHANNEL = 5
# exp() of a raw side above this would overflow in half precision and means a box
# thousands of strides wide: clamp before decoding.
MAX_LOG_SIDE = 8.0


@dataclass(frozen=True)
class HeadLayout:
    """Where the grid cells of a dense map lie on the input image."""

    num_classes: int
    image_size: tuple[int, int]  # H, W of the network input
    grid: tuple[int, int]  # h, w of the dense map

    @property
    def stride(self) -> tuple[float, float]:
        """(stride_y, stride_x) in input pixels."""
        return self.image_size[0] / self.grid[0], self.image_size[1] / self.grid[1]

    @classmethod
    def of(cls, output: torch.Tensor, image_size: tuple[int, int], num_classes: int
           ) -> HeadLayout:
        """The layout of a dense map `[..., 5 + K, h, w]`; a clear error when the map does
        not have the channels a K-class detector produces."""
        if output.dim() < 3 or output.shape[-3] != FIRST_CLASS_CHANNEL + num_classes:
            raise ValueError(
                f"a detector for {num_classes} classes must output [B, "
                f"{FIRST_CLASS_CHANNEL + num_classes}, h, w] (4 box sides, centerness, one "
                f"logit per class); got shape {tuple(output.shape)}"
            )
        return cls(num_classes, (int(image_size[0]), int(image_size[1])),
                   (int(output.shape[-2]), int(output.shape[-1])))

    def centers(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """`[h * w, 2]` (x, y) image points of the grid cells, row-major."""
        stride_y, stride_x = self.stride
        ys = (torch.arange(self.grid[0], device=device, dtype=torch.float32) + 0.5) * stride_y
        xs = (torch.arange(self.grid[1], device=device, dtype=torch.float32) + 0.5) * stride_x
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1)

    def side_scale(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """`[4]` the stride of each side (x for left/right, y for top/bottom)."""
        stride_y, stride_x = self.stride
        return torch.tensor([stride_x, stride_y, stride_x, stride_y], device=device)


def flat(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`[B, 5 + K, h, w]` -> (sides `[B, hw, 4]`, centerness `[B, hw]`, classes `[B, hw, K]`),
    raw values, locations row-major as in `HeadLayout.centers`."""
    rows = output.flatten(2).transpose(1, 2)
    return rows[..., BOX_CHANNELS], rows[..., CENTERNESS_CHANNEL], rows[..., FIRST_CLASS_CHANNEL:]


def decode_boxes(raw_sides: torch.Tensor, layout: HeadLayout) -> torch.Tensor:
    """Raw sides `[..., hw, 4]` -> boxes (x1, y1, x2, y2) `[..., hw, 4]` in input pixels."""
    device = raw_sides.device
    sides = raw_sides.clamp(max=MAX_LOG_SIDE).exp() * layout.side_scale(device)
    centers = layout.centers(device)
    return torch.cat([centers - sides[..., :2], centers + sides[..., 2:]], dim=-1)


def encode_sides(centers: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Distances (left, top, right, bottom) from points `[L, 2]` to boxes `[..., L, 4]`."""
    return torch.cat([centers - boxes[..., :2], boxes[..., 2:] - centers], dim=-1)
