"""Training augmentations the torchvision transforms lack, drawing from torch's global
generator (which the runner seeds per cell)."""

from __future__ import annotations

import torch


class Cutout:
    """Cutout (DeVries & Taylor, Improved Regularization of Convolutional Neural Networks
    with Cutout, arXiv:1708.04552, 2017): one square of side `length` centred on a random
    pixel, clipped at the border, set to `fill` per channel.

    The paper cuts the normalised image to 0, i.e. to the mean; here images stay in
    [0, 1] and the network normalises, so the hole is filled with the dataset mean."""

    def __init__(self, length: int, fill: tuple[float, ...]) -> None:
        if length < 1:
            raise ValueError(f"cutout length must be >= 1 pixel, got {length}")
        self.length = length
        self.fill = torch.tensor(fill, dtype=torch.float32).reshape(-1, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        cy = int(torch.randint(height, (1,)))
        cx = int(torch.randint(width, (1,)))
        top, bottom = max(cy - self.length // 2, 0), min(cy + self.length // 2, height)
        left, right = max(cx - self.length // 2, 0), min(cx + self.length // 2, width)
        out = image.clone()
        out[..., top:bottom, left:right] = self.fill.to(out.dtype)
        return out

    def __repr__(self) -> str:
        return f"Cutout(length={self.length})"


class FlipAndRoll:
    """TET's event-frame augmentation: a horizontal flip with probability 0.5, then a roll
    (circular shift) by a random integer in [-max_roll, max_roll] on each spatial axis,
    the same for every frame of the sample `[T, C, H, W]`."""

    def __init__(self, max_roll: int) -> None:
        if max_roll < 0:
            raise ValueError(f"max_roll must be >= 0, got {max_roll}")
        self.max_roll = max_roll

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if bool(torch.rand(()) < 0.5):
            frames = frames.flip(-1)
        dy, dx = (int(v) for v in torch.randint(-self.max_roll, self.max_roll + 1, (2,)))
        return torch.roll(frames, shifts=(dy, dx), dims=(-2, -1))
