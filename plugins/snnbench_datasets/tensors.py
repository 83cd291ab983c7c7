"""In-memory tensor datasets with an optional per-sample training transform."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import Dataset


class TensorImages(Dataset):
    """Images `[N, C, H, W]` and labels `[N]` held in memory."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if images.shape[0] != labels.shape[0]:
            raise ValueError("images and labels differ in length")
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


def random_shift(max_shift: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Shift an image by up to `max_shift` pixels on each axis, filling with zeros.

    Draws from torch's global generator, which the runner seeds per cell."""

    def shift(image: torch.Tensor) -> torch.Tensor:
        dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,)))
        out = torch.zeros_like(image)
        h, w = image.shape[-2:]
        out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            image[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        return out

    return shift
