"""Surrogate gradients: each backward equals its documented formula."""

from __future__ import annotations

import math

import pytest
import torch

from snnbench_suite.snn import ATan, Rectangle, Sigmoid, Triangle


def grad_of(surrogate, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    out = surrogate.spike(x)
    assert torch.equal(out, (x >= 0).float())
    out.sum().backward()
    return x.grad


X = torch.linspace(-2, 2, 41)


def test_triangle() -> None:
    g = grad_of(Triangle(0.5), X)
    assert torch.allclose(g, torch.clamp(0.5 - X.abs(), min=0) / 0.25)


def test_sigmoid() -> None:
    alpha = 4.0 / 2.0
    s = torch.sigmoid(alpha * X)
    assert torch.allclose(grad_of(Sigmoid(2.0), X), alpha * s * (1 - s))


def test_atan() -> None:
    alpha = 2.0
    expected = (alpha / 2) / (1 + (math.pi / 2 * alpha * X) ** 2)
    assert torch.allclose(grad_of(ATan(1.0), X), expected)


def test_rectangle() -> None:
    assert torch.allclose(grad_of(Rectangle(1.0), X), (X.abs() < 0.5).float())


def test_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="width"):
        Triangle(0.0)
