"""Neurons: hand-computed spike trains for every option, and the rate identity."""

from __future__ import annotations

import math

import pytest
import torch

from snnbench_suite.snn import IFNeuron, LIFNeuron, SpikingNeuron, Triangle


def run(neuron: SpikingNeuron, currents: list[float] | torch.Tensor) -> torch.Tensor:
    """Feed a per-step current sequence (one sample, one neuron) and return the outputs."""
    x = torch.as_tensor(currents, dtype=torch.float32).reshape(-1, 1, 1)
    return neuron(x.flatten(0, 1), x.shape[0]).reshape(-1)


def spikes(values: torch.Tensor) -> list[float]:
    return [round(float(v), 6) for v in values.detach()]


def test_if_reset_by_subtraction_keeps_the_remainder() -> None:
    # v: 0.7 | 1.4 -> fire, 0.4 | 1.1 -> fire, 0.1 | 0.8
    assert spikes(run(IFNeuron(1.0, reset="subtract"), [0.7] * 4)) == [0, 1, 1, 0]


def test_if_reset_to_zero_drops_the_remainder() -> None:
    # v: 0.7 | 1.4 -> fire, 0 | 0.7 | 1.4 -> fire
    assert spikes(run(IFNeuron(1.0, reset="zero"), [0.7] * 4)) == [0, 1, 0, 1]


def test_lif_hard_reset_matches_hand_computed_train() -> None:
    # TET's LIF: u = 0.5 u + I, fire at 1, reset to 0.
    # u: 0.6 | 0.3 + 0.8 = 1.1 fire -> 0 | 0.9 | 0.45 + 0.2 = 0.65 | 0.325 + 0.7 = 1.025 fire
    neuron = LIFNeuron(1.0, decay=0.5, reset="zero")
    assert spikes(run(neuron, [0.6, 0.8, 0.9, 0.2, 0.7])) == [0, 1, 0, 0, 1]


def test_spike_amplitude_can_be_the_threshold() -> None:
    out = run(IFNeuron(0.5, amplitude="threshold"), [0.3, 0.3, 0.3])
    # v: 0.3 | 0.6 fire (0.5) -> 0.1 | 0.4
    assert spikes(out) == [0, 0.5, 0]


def test_per_channel_threshold() -> None:
    neuron = IFNeuron(torch.tensor([1.0, 0.5]))
    x = torch.full((4, 1, 2), 0.5)  # [T, B, C]
    out = neuron(x.flatten(0, 1), 4).reshape(4, 2)
    assert spikes(out[:, 0]) == [0, 1, 0, 1]
    assert spikes(out[:, 1]) == [1, 1, 1, 1]


def test_per_element_initial_membrane() -> None:
    neuron = IFNeuron(1.0, v_init=torch.tensor([0.5, 0.0]))
    x = torch.full((2, 1, 2), 0.6)  # [T, B, features]; v_init is per element
    out = neuron(x.flatten(0, 1), 2).reshape(2, 2)
    assert spikes(out[:, 0]) == [1, 0]  # 1.1 fire -> 0.1 | 0.7
    assert spikes(out[:, 1]) == [0, 1]  # 0.6 | 1.2 fire


def test_input_shift_turns_floor_into_round() -> None:
    T, threshold, a = 4, 1.0, 0.4  # a*T = 1.6: floor gives 1 spike, round gives 2
    plain = run(IFNeuron(threshold), [a] * T).sum()
    shifted = run(IFNeuron(threshold, input_shift=threshold / (2 * T)), [a] * T).sum()
    assert float(plain) == math.floor(a * T / threshold) == 1
    assert float(shifted) == round(a * T / threshold) == 2


def clipfloor(a: torch.Tensor, threshold: float, steps: int) -> torch.Tensor:
    return torch.floor(torch.clamp(a * steps / threshold, 0, steps)) * threshold / steps


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 16, 64])
@pytest.mark.parametrize("threshold", [1.0, 0.37])
def test_if_rate_equals_clipfloor_for_constant_input(steps: int, threshold: float) -> None:
    a = torch.rand(2000, generator=torch.Generator().manual_seed(steps)) * 1.6 - 0.3
    neuron = IFNeuron(threshold, reset="subtract", amplitude="threshold")
    x = a.expand(steps, -1)
    rate = neuron(x.flatten(0, 1), steps).reshape(steps, -1).mean(0)
    expected = clipfloor(a, threshold, steps)
    # float accumulation may flip a value sitting exactly on a level boundary; allow none
    # here since the values are random, and compare with a tolerance for rounding.
    assert torch.allclose(rate, expected, atol=1e-5)


def test_training_and_inference_paths_agree() -> None:
    x = torch.randn(6 * 3, 4) * 0.8 + 0.4
    for neuron in (IFNeuron(0.7, amplitude="threshold", input_shift=0.05, v_init=0.2),
                   LIFNeuron(1.0), IFNeuron(torch.tensor([0.5, 1, 1.5, 2]), reset="zero")):
        with torch.no_grad():
            fast = neuron(x, 6)
        slow = neuron(x.clone().requires_grad_(True), 6)
        assert torch.equal(fast, slow.detach())


def test_no_state_survives_between_calls() -> None:
    neuron = LIFNeuron(1.0)
    x = torch.rand(5 * 2, 3) * 2
    assert torch.equal(neuron(x, 5), neuron(x, 5))


def test_triangle_surrogate_gradient_equals_formula() -> None:
    gamma = 1.0
    v = torch.tensor([-1.5, -0.5, 0.0, 0.25, 0.9, 1.0, 1.2, 3.0], requires_grad=True)
    neuron = SpikingNeuron(1.0, surrogate=Triangle(gamma))
    out = neuron(v, 1)  # one step: spike = H(v - 1)
    out.sum().backward()
    expected = torch.clamp(gamma - (v.detach() - 1.0).abs(), min=0) / gamma**2
    assert torch.allclose(v.grad, expected)
    assert spikes(out) == [0, 0, 0, 0, 0, 1, 1, 1]


def test_bad_neuron_options_are_refused() -> None:
    with pytest.raises(ValueError, match="reset"):
        SpikingNeuron(1.0, reset="soft")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        IFNeuron(0.0)
    with pytest.raises(ValueError, match="decay"):
        LIFNeuron(1.0, decay=1.5)
