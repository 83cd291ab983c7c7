"""Surrogate gradients for the spike non-linearity.

The forward pass is the Heaviside step H(x) of `x = v - V_th`; the backward pass uses the
derivative of a smooth stand-in. Each surrogate is a small frozen dataclass holding its
width, so no mutable surrogate object is shared between neurons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch


class _SpikeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None


@dataclass(frozen=True)
class Surrogate:
    """Base: `spike(x)` is H(x) forward and `derivative(x)` backward."""

    width: float = 1.0

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise ValueError(f"{type(self).__name__}: width must be > 0, got {self.width}")

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # each subclass defines its own derivative

    def spike(self, x: torch.Tensor) -> torch.Tensor:
        return _SpikeFunction.apply(x, self)


@dataclass(frozen=True)
class Triangle(Surrogate):
    """dH/dx ~ max(0, gamma - |x|) / gamma^2 (TET's surrogate; gamma = width)."""

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        gamma = self.width
        return (gamma - x.abs()).clamp(min=0) / (gamma * gamma)


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """dH/dx ~ a * sig(a x) * (1 - sig(a x)), a = 4 / width (so the peak area is 1)."""

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        alpha = 4.0 / self.width
        sig = torch.sigmoid(alpha * x)
        return alpha * sig * (1 - sig)


@dataclass(frozen=True)
class ATan(Surrogate):
    """dH/dx ~ (a/2) / (1 + (pi/2 * a * x)^2), a = 2 / width (SpikingJelly's ATan)."""

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        alpha = 2.0 / self.width
        return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)


@dataclass(frozen=True)
class Rectangle(Surrogate):
    """dH/dx ~ 1/width inside |x| < width/2, else 0."""

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() < self.width / 2).to(x.dtype) / self.width


SURROGATES: dict[str, type[Surrogate]] = {
    "triangle": Triangle,
    "sigmoid": Sigmoid,
    "atan": ATan,
    "rectangle": Rectangle,
}
