"""The conversion engine: tracing, BN folding, sites, errors, readout, observation hooks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnbench_suite.errors import ConversionError
from snnbench_suite.snn import (
    IFNeuron,
    anytime_readout,
    direct,
    observe_activations,
    prepare_conversion,
    readout_at,
)


class ResidualConcatNet(nn.Module):
    """Conv-BN-ReLU, a residual add, a concatenation, F.relu and module ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.branch = nn.Conv2d(4, 2, 1)
        self.fc = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        z = self.relu(self.bn2(self.conv2(y)) + y)
        w = torch.relu(self.branch(z))
        h = F.avg_pool2d(torch.cat([z, w], dim=1), 2)
        return self.fc(torch.flatten(h, 1))


def trained_bn_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = ResidualConcatNet()
    net.train()
    with torch.no_grad():
        for _ in range(5):  # give BN non-trivial running statistics
            net(torch.rand(32, 1, 8, 8) * 2)
    return net.eval()


def test_prepared_graph_computes_the_ann_with_bn_folded() -> None:
    net = trained_bn_net()
    graph = prepare_conversion(net)
    x = torch.rand(8, 1, 8, 8)
    assert torch.allclose(graph.module(x), net(x), atol=1e-5)
    kinds = {type(m).__name__ for m in graph.module.modules()}
    assert "BatchNorm2d" not in kinds
    assert len(graph.sites) == 3
    assert [s.is_last for s in graph.sites] == [False, False, True]


def test_the_original_model_is_left_unchanged() -> None:
    net = trained_bn_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    prepare_conversion(net)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def convert_with_max_thresholds(net: nn.Module) -> nn.Module:
    graph = prepare_conversion(net)
    batches = [torch.rand(64, 1, 8, 8) for _ in range(4)]
    stats = observe_activations(graph.module, graph.site_modules(), batches)
    return graph.to_spiking(
        lambda site: IFNeuron(stats[site.name].max, amplitude="threshold")
    )


def test_residual_and_concat_converge_to_the_ann_at_large_T() -> None:
    net = trained_bn_net()
    snn = convert_with_max_thresholds(net)
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        ann_out = net(x)
    errors = {}
    for steps in (8, 64, 512):
        with torch.no_grad():
            readout = anytime_readout(snn(direct(x, steps)))[-1]
        errors[steps] = float((readout - ann_out).abs().max())
    scale = float(ann_out.abs().max())
    assert errors[512] < 0.02 * scale
    assert errors[512] < errors[8]


def test_anytime_readout_at_t_equals_a_run_with_T_equal_t() -> None:
    snn = convert_with_max_thresholds(trained_bn_net())
    x = torch.rand(10, 1, 8, 8)
    with torch.no_grad():
        long_run = readout_at(snn(direct(x, 32)), [1, 3, 7, 32])
        for t, value in long_run.items():
            short = anytime_readout(snn(direct(x, t)))[-1]
            assert torch.allclose(value, short, atol=1e-5), t


def test_evaluation_slices_give_the_same_output_as_one_batch() -> None:
    snn = convert_with_max_thresholds(trained_bn_net()).eval()
    x = torch.rand(40, 1, 8, 8)
    with torch.no_grad():
        sliced = snn(direct(x, 16))  # 128 rows / 16 steps = slices of 8 samples
        snn.max_folded_rows = 10**9
        whole = snn(direct(x, 16))
    assert torch.allclose(sliced, whole, atol=1e-6)


def test_readout_rejects_steps_outside_the_window() -> None:
    with pytest.raises(ValueError, match="outside"):
        readout_at(torch.zeros(4, 2, 3), [5])


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow
            return torch.relu(self.fc(x))
        return self.fc(x)


def test_untraceable_model_is_a_clear_error() -> None:
    with pytest.raises(ConversionError, match="Untraceable cannot be traced"):
        prepare_conversion(Untraceable())


def test_model_without_activation_is_a_clear_error() -> None:
    with pytest.raises(ConversionError, match="no activation to replace.*Linear"):
        prepare_conversion(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)))


def test_unconvertible_activation_names_the_node() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 2))
    with pytest.raises(ConversionError, match=r"node '_1' \(1\) is a GELU"):
        prepare_conversion(model)


def test_observation_hooks_are_removed_even_after_an_error() -> None:
    graph = prepare_conversion(trained_bn_net())
    sites = graph.site_modules()
    observe_activations(graph.module, sites, [torch.rand(4, 1, 8, 8)])
    assert all(not m._forward_hooks for m in sites.values())
    with pytest.raises(RuntimeError):
        observe_activations(graph.module, sites, [torch.rand(4, 3, 8, 8)])  # wrong channels
    assert all(not m._forward_hooks for m in sites.values())


def test_observed_max_and_percentile_on_a_known_distribution() -> None:
    relu = nn.ReLU()
    model = nn.Sequential(relu)
    values = torch.arange(1, 1001, dtype=torch.float32)  # 1..1000
    stats = observe_activations(model, {"r": relu}, [values[:500], values[500:]],
                                percentiles=[50.0, 99.9])
    assert stats["r"].max == 1000.0
    assert stats["r"].percentiles[50.0] == pytest.approx(500.5)
    assert stats["r"].percentiles[99.9] == pytest.approx(999.001)
    assert stats["r"].count == 1000
