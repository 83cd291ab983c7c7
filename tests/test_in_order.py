"""`InOrderRecorder`: each neuron's input, recorded by resuming where the previous neuron's
stopped, is exactly what a run of the whole network from its input gives, even when every
neuron is changed after its input was recorded (as layer-by-layer calibration does)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnbench_suite.snn import (
    IFNeuron,
    InOrderRecorder,
    module_input_chunks,
    prepare_conversion,
)

STEPS = 4


class SkipNet(nn.Module):
    """Three ReLUs; the first one's output is read again after the second (a skip), so
    the recorder must keep a value across neurons."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.act2 = nn.ReLU()
        self.conv3 = nn.Conv2d(4, 4, 3, padding=1)
        self.act3 = nn.ReLU()
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.act1(self.conv1(x))
        second = self.act2(self.conv2(first))
        third = self.act3(self.conv3(second) + first)
        return self.head(third.mean(dim=(2, 3)))


def spiking_skip_net() -> tuple[nn.Module, list[IFNeuron]]:
    torch.manual_seed(0)
    model = SkipNet().eval()
    network = prepare_conversion(model).to_spiking(lambda site: IFNeuron(0.5))
    neurons = [module for _, module in network.neurons()]
    assert len(neurons) == 3
    return network, neurons  # type: ignore[return-value]


@pytest.mark.parametrize("keep_bytes", [1 << 30, 0])  # resumes throughout, or gives up
def test_recorded_inputs_equal_a_full_run_while_the_neurons_change(keep_bytes: int) -> None:
    network, neurons = spiking_skip_net()
    x = torch.rand(10, 1, 6, 6)
    rows = 4 * STEPS  # chunks of 4, 4 and 2 samples
    recorder = InOrderRecorder(network, x, STEPS, max_rows=rows, keep_bytes=keep_bytes)
    for neuron in neurons:
        recorded = list(recorder.inputs(neuron))
        full_run = list(module_input_chunks(network, neuron, x, STEPS, max_rows=rows))
        assert [len(chunk) for chunk in recorded] == [4 * STEPS, 4 * STEPS, 2 * STEPS]
        for ours, reference in zip(recorded, full_run, strict=True):
            torch.testing.assert_close(ours, reference, rtol=0, atol=0)
        # What calibration does next: change this neuron, which every later input sees.
        neuron.v_init = neuron.v_init + 0.2
        neuron.input_shift = neuron.input_shift + 0.05
    assert recorder.keeping == (keep_bytes > 0)


def test_the_recorder_keeps_only_what_later_nodes_read() -> None:
    network, neurons = spiking_skip_net()
    recorder = InOrderRecorder(network, torch.rand(4, 1, 6, 6), STEPS)
    recorder.inputs(neurons[0])
    recorder.inputs(neurons[1])
    # Before the second neuron: its input, and the first neuron's output (the skip).
    kept = recorder._envs[0]  # type: ignore[index]
    modules = [network.graph_module.get_submodule(str(node.target))
               for node in kept if node.op != "placeholder"]
    assert sorted(map(id, modules)) == sorted(
        map(id, [neurons[0], network.graph_module.get_submodule("conv2")]))


def test_neurons_out_of_order_or_not_in_the_network_are_refused() -> None:
    network, neurons = spiking_skip_net()
    recorder = InOrderRecorder(network, torch.rand(2, 1, 6, 6), STEPS)
    recorder.inputs(neurons[1])
    with pytest.raises(ValueError, match="graph order"):
        recorder.inputs(neurons[0])
    with pytest.raises(ValueError, match="not called by the network"):
        recorder.inputs(IFNeuron(1.0))
