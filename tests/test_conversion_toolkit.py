"""Toolkit pieces the conversion methods share: clip-floor and the input shift, the MMSE
threshold search, CQ and QCFS activations, the IF encoder, and graph checks and edits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnbench_suite.errors import ConversionError
from snnbench_suite.snn import (
    QCFS,
    ClampQuantize,
    IFEncoder,
    IFNeuron,
    ThresholdReLU,
    average_pool_nodes,
    clamp_quantize,
    clip_floor,
    direct,
    ema,
    fold_time,
    insert_after,
    mmse_channel_thresholds,
    mmse_threshold,
    module_outputs,
    pre_activation_subgraph,
    prepare_conversion,
    require_average_pooling,
    spiking_rates,
    trace,
    unfold_time,
)


def if_rate(a: torch.Tensor, threshold: float, steps: int, shift: float) -> torch.Tensor:
    """Time-averaged output of an IF neuron (soft reset, amplitude V) on constant input a."""
    neuron = IFNeuron(threshold, reset="subtract", amplitude="threshold", input_shift=shift)
    out = neuron(fold_time(direct(a, steps)), steps)
    return unfold_time(out, steps).mean(0)


def test_if_neuron_computes_clip_floor_and_the_shift_turns_floor_into_round() -> None:
    v_th, steps = 2.0, 8
    # Constant inputs between -1 and 3 that avoid exact rounding ties.
    a = torch.linspace(-1.0, 3.0, 401) + 0.001
    plain = if_rate(a, v_th, steps, 0.0)
    shifted = if_rate(a, v_th, steps, v_th / (2 * steps))
    levels = a * steps / v_th
    assert torch.allclose(plain, clip_floor(a, v_th, steps), atol=1e-5)
    assert torch.allclose(plain, levels.floor().clamp(0, steps) * v_th / steps, atol=1e-5)
    assert torch.allclose(shifted, levels.round().clamp(0, steps) * v_th / steps, atol=1e-5)
    assert torch.allclose(shifted, clip_floor(a, v_th, steps, offset=0.5), atol=1e-5)
    # The shift halves the worst error inside the range.
    inside = (a > 0) & (a < v_th)
    assert float((plain - a)[inside].abs().max()) > 0.24
    assert float((shifted - a)[inside].abs().max()) <= v_th / (2 * steps) + 1e-4


def test_mmse_search_returns_the_known_minimiser_of_a_uniform_distribution() -> None:
    # For a ~ U[0, 1] the clip-floor error is V^3/(3T^2) + (1-V)^3/3, minimal at V = T/(T+1).
    a = torch.linspace(0.0, 1.0, 200_001)
    assert mmse_threshold(a, 4) == pytest.approx(0.8, abs=1e-9)  # candidate i = 20
    assert mmse_threshold(a, 1) == pytest.approx(0.5, abs=1e-9)  # candidate i = 50


def test_channel_wise_mmse_search_returns_each_channels_known_minimiser() -> None:
    # Channel c holds U[0, c + 1]: its minimiser scales with it, 0.8 (c + 1) at T = 4; a
    # channel that never fires keeps threshold 0.
    base = torch.linspace(0.0, 1.0, 20_001)
    a = torch.stack([base, 2 * base, 3 * base, -base], dim=1).reshape(-1, 4, 1, 1)
    thresholds = mmse_channel_thresholds(a, 4)
    assert thresholds.shape == (4,)
    assert thresholds.tolist() == pytest.approx([0.8, 1.6, 2.4, 0.0], abs=1e-6)
    assert float(thresholds[0]) == pytest.approx(mmse_threshold(base, 4), abs=1e-6)


def test_mmse_search_ignores_an_outlier_and_handles_silent_layers() -> None:
    a = torch.cat([torch.ones(1000), torch.tensor([10.0])])  # T = 1: V = 1 keeps every 1.0
    assert mmse_threshold(a, 1) == pytest.approx(1.0, abs=1e-9)
    assert mmse_threshold(torch.zeros(10) - 1, 4) == 0.0
    with pytest.raises(ValueError, match="candidates"):
        mmse_threshold(a, 4, candidates=0)


def test_ema_over_batches() -> None:
    assert ema([1.0, 2.0, 3.0], 0.9) == pytest.approx(0.9 * (0.9 * 1 + 0.1 * 2) + 0.1 * 3)
    with pytest.raises(ValueError, match="no batch"):
        ema([], 0.9)


def test_clamp_quantize_values_and_gradient() -> None:
    x = torch.tensor([-0.5, 0.0, 0.24, 0.25, 0.7, 1.0, 1.5], requires_grad=True)
    y = clamp_quantize(x, 4)
    assert y.tolist() == [0.0, 0.0, 0.0, 0.25, 0.5, 1.0, 1.0]
    upstream = torch.tensor([3.0, -0.5, 2.0, -3.0, 0.5, 1.0, 2.0])
    y.backward(upstream)
    # Clipped to [-1, 1], and zero where the input was outside [0, 1].
    assert x.grad is not None
    assert x.grad.tolist() == [0.0, -0.5, 1.0, -1.0, 0.5, 1.0, 0.0]
    assert ClampQuantize(4)(torch.tensor([0.99])).item() == 0.75
    with pytest.raises(ValueError, match="positive integer"):
        ClampQuantize(0)


def test_qcfs_activation_levels_and_threshold_gradient() -> None:
    act = QCFS(4, threshold=2.0)
    x = torch.tensor([-1.0, 0.2, 0.3, 1.0, 1.9, 5.0])
    # lam / L = 0.5: round-half-up of x / 0.5, clipped to [0, 4] levels.
    assert act(x).tolist() == [0.0, 0.0, 0.5, 1.0, 2.0, 2.0]
    act(torch.tensor([5.0])).sum().backward()
    assert act.threshold.grad is not None and act.threshold.grad.item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="L"):
        QCFS(0)


def test_qcfs_if_neuron_at_T_equal_L_matches_the_activation_exactly() -> None:
    lam, levels = 1.5, 4
    x = torch.linspace(-1, 3, 301) + 0.0007
    neuron = IFNeuron(lam, reset="subtract", amplitude="threshold", v_init=lam / 2)
    rate = unfold_time(neuron(fold_time(direct(x, levels)), levels), levels).mean(0)
    assert torch.allclose(rate, QCFS(levels, lam)(x).detach(), atol=1e-6)


def test_if_encoder_quantizes_pixels_to_T_levels() -> None:
    pixels = torch.arange(17, dtype=torch.float32) / 16  # digits' 16 grey levels
    for steps in (4, 16, 32):
        spikes = unfold_time(IFEncoder(0.999, levels=steps)(
            fold_time(direct(pixels, steps)), steps), steps)
        assert set(spikes.unique().tolist()) <= {0.0, 1.0}
        expected = torch.floor(pixels * steps)
        assert torch.equal(spikes.sum(0), expected)


class ClippedNet(nn.Module):
    def __init__(self, pool: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.act = ThresholdReLU(1.5)
        self.pool = pool
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(self.act(self.conv(x)))
        z = F.relu(self.conv2(y) + y)
        return self.fc(torch.flatten(z, 1))


def test_registered_activations_stay_whole_as_conversion_sites() -> None:
    net = ClippedNet(nn.AvgPool2d(2))
    graph = prepare_conversion(net)
    assert [type(s.activation) for s in graph.sites] == [ThresholdReLU, nn.ReLU]
    assert graph.sites[0].activation.threshold == 1.5
    x = torch.randn(4, 1, 8, 8)
    assert torch.allclose(graph.module(x), net(x), atol=1e-6)


def test_max_pooling_is_refused_by_node_name() -> None:
    graph = prepare_conversion(ClippedNet(nn.MaxPool2d(2)))
    with pytest.raises(ConversionError, match=r"calib: node 'pool'.*MaxPool2d.*average"):
        require_average_pooling(graph.module, "calib")
    require_average_pooling(prepare_conversion(ClippedNet(nn.AvgPool2d(2))).module, "calib")


def test_insert_after_pools_changes_the_computation_there_only() -> None:
    net = ClippedNet(nn.AvgPool2d(2))
    module = trace(net)
    names = insert_after(module, average_pool_nodes(module), lambda _n: ClampQuantize(2), "q")
    assert names == ["q_0"]
    x = torch.randn(4, 1, 8, 8)
    y = F.avg_pool2d(net.act(net.conv(x)), 2)
    expected = net.fc(torch.flatten(F.relu(net.conv2(clamp_quantize(y, 2)) +
                                           clamp_quantize(y, 2)), 1))
    assert torch.allclose(module(x), expected, atol=1e-6)


def test_pre_activation_subgraph_computes_a_site_input_from_its_sources() -> None:
    net = ClippedNet(nn.AvgPool2d(2))
    graph = prepare_conversion(net)
    names = [s.name for s in graph.sites]
    sub, sources = pre_activation_subgraph(graph.module, names[1], names)
    assert sources == [names[0]]  # both branches of the residual sum start at site 0
    x = torch.randn(4, 1, 8, 8)
    first, second = graph.site_modules()[names[0]], graph.site_modules()[names[1]]
    site0_out = module_outputs(graph.module, [first], x)[0]
    with torch.no_grad():
        pre = sub(site0_out)
    assert torch.allclose(second(pre), module_outputs(graph.module, [second], x)[0], atol=1e-6)
    # The subgraph shares the network's weights.
    assert any(p is net_p for p in sub.parameters() for net_p in graph.module.parameters())


def test_spiking_rates_read_one_layer_for_any_batch_size() -> None:
    net = ClippedNet(nn.AvgPool2d(2))
    graph = prepare_conversion(net)
    neurons = {s.name: IFNeuron(1.0, amplitude="threshold") for s in graph.sites}
    snn = graph.to_spiking(lambda s: neurons[s.name])
    x = torch.rand(10, 1, 8, 8)
    whole = spiking_rates(snn, [neurons[graph.sites[0].name]], x, 6)[0]
    sliced = spiking_rates(snn, [neurons[graph.sites[0].name]], x, 6, max_rows=12)[0]
    assert whole.shape == (10, 3, 8, 8)
    assert torch.equal(whole, sliced)
    assert snn.max_folded_rows == 128  # restored
