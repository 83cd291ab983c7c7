"""Every registered architecture: builds for the shapes the suite uses, trains a step,
traces, and converts. A newly registered architecture is enrolled automatically."""

from __future__ import annotations

import pytest
import torch

from snnbench_suite import ArchitectureRequest
from snnbench_suite.plugins import load_plugins
from snnbench_suite.snn import IFNeuron, direct, prepare_conversion

ARCHITECTURES = load_plugins(strict=True).architectures.names()
SHAPES = [(1, 8, 8), (3, 32, 32), (2, 48, 48), (3, 224, 224)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_builds_trains_traces_and_converts(plugins, name: str, shape: tuple[int, ...]) -> None:
    spec = plugins.architectures.get(name)
    width = spec.default_width if shape[-1] < 224 else min(spec.default_width, 0.25)
    model = spec.build(ArchitectureRequest(num_classes=10, input_shape=shape, width=width,
                                           normalization=((0.5,) * shape[0], (0.25,) * shape[0])))
    x = torch.rand(2, *shape)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    snn = prepare_conversion(model).to_spiking(lambda site: IFNeuron(1.0))
    with torch.no_grad():
        assert snn(direct(x, 2)).shape == (2, 2, 10)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_bad_requests_are_clear_errors(plugins, name: str) -> None:
    spec = plugins.architectures.get(name)
    with pytest.raises(ValueError, match="width"):
        spec.build(ArchitectureRequest(num_classes=10, input_shape=(1, 8, 8), width=0))
    with pytest.raises(ValueError, match="2 classes"):
        spec.build(ArchitectureRequest(num_classes=1, input_shape=(1, 8, 8)))
