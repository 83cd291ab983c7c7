"""`InOrderRecorder`: each neuron's input, recorded by resuming where the previous neuron's
stopped, is exactly what a run of the whole network from its input gives, even when every
neuron is changed after its input was recorded (as layer-by-layer calibration does); each
node runs once; memory stays within its bound."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnbench_methods import calib, calib_weights
from snnbench_suite.snn import (
    IFEncoder,
    IFNeuron,
    InOrderRecorder,
    RecordedInputs,
    SpikingNetwork,
    module_input_chunks,
    module_outputs,
    pre_activation_subgraph,
    prepare_conversion,
    spiking_rates,
)

STEPS = 4
SAMPLES = 10
ROWS = 4 * STEPS  # chunks of 4, 4 and 2 samples
# One neuron input of all the samples: [T * 10, 4, 6, 6] float32.
MAP_BYTES = STEPS * SAMPLES * 4 * 6 * 6 * 4


class SkipNet(nn.Module):
    """Three ReLUs; the first one's output is read again after the second (a skip), so
    the recorder must keep a value across neurons. The BN after the sum cannot be folded
    and, like the dropout, acts differently in training."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.act2 = nn.ReLU()
        self.conv3 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.act3 = nn.ReLU()
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.act1(self.conv1(x))
        second = self.act2(self.conv2(first))
        third = self.act3(self.drop(self.bn3(self.conv3(second) + first)))
        return self.head(third.mean(dim=(2, 3)))


def spiking_skip_net(encoder: nn.Module | None = None,
                     shared: IFNeuron | None = None) -> tuple[SpikingNetwork, list[IFNeuron]]:
    torch.manual_seed(0)
    model = SkipNet().eval()
    network = prepare_conversion(model).to_spiking(
        lambda site: shared if shared is not None else IFNeuron(0.5), encoder=encoder)
    neurons = [module for _, module in network.neurons() if module is not network.encoder]
    return network, neurons  # type: ignore[return-value]


def record_and_compare(network: SpikingNetwork, neurons: list[IFNeuron], x: torch.Tensor,
                       recorder: InOrderRecorder) -> list[bool]:
    """Records every neuron in order, compares with a full run, then changes the neuron
    as calibration would. Returns, per neuron, whether its input was kept in memory."""
    kept = []
    for neuron in neurons:
        recorded = recorder.inputs(neuron)
        kept.append(recorded.kept)
        full_run = list(module_input_chunks(network, neuron, x, STEPS, max_rows=ROWS))
        assert [len(chunk) for chunk in recorded] == [4 * STEPS, 4 * STEPS, 2 * STEPS]
        for ours, reference in zip(recorded, full_run, strict=True):
            torch.testing.assert_close(ours, reference, rtol=0, atol=0)
        # What calibration does next: change this neuron, which every later input sees.
        neuron.v_init = neuron.v_init + 0.2
        neuron.input_shift = neuron.input_shift + 0.05
    return kept


@pytest.mark.parametrize(("keep_bytes", "resumed"), [(1 << 30, 3), (0, 0)])
def test_recorded_inputs_equal_a_full_run_while_the_neurons_change(keep_bytes: int,
                                                                   resumed: int) -> None:
    network, neurons = spiking_skip_net()
    x = torch.rand(SAMPLES, 1, 6, 6)
    recorder = InOrderRecorder(network, x, STEPS, max_rows=ROWS, keep_bytes=keep_bytes)
    record_and_compare(network, neurons, x, recorder)
    assert (recorder.resumed, recorder.rerun) == (resumed, 3 - resumed)


def test_over_its_bound_it_records_from_the_input_and_then_resumes_again() -> None:
    # Kept between neurons: one map, then two (the skip and the second neuron's input),
    # then one. A bound of one and a half maps turns only the second into a full run.
    network, neurons = spiking_skip_net()
    x = torch.rand(SAMPLES, 1, 6, 6)
    recorder = InOrderRecorder(network, x, STEPS, max_rows=ROWS, keep_bytes=MAP_BYTES * 3 // 2)
    record_and_compare(network, neurons, x, recorder)
    assert (recorder.resumed, recorder.rerun) == (2, 1)


def test_each_node_runs_once_per_chunk() -> None:
    network, neurons = spiking_skip_net()
    calls = {name: 0 for name in ("conv1", "conv2", "conv3", "head")}
    for name in calls:
        network.graph_module.get_submodule(name).register_forward_hook(
            lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    recorder = InOrderRecorder(network, torch.rand(SAMPLES, 1, 6, 6), STEPS, max_rows=ROWS)
    for neuron in neurons:
        recorder.inputs(neuron)
    assert calls == {"conv1": 3, "conv2": 3, "conv3": 3, "head": 0}


def test_it_runs_in_evaluation_and_leaves_the_mode_as_it_was() -> None:
    network, neurons = spiking_skip_net()
    network.train()  # the BN's batch statistics and the dropout would change the inputs
    x = torch.rand(SAMPLES, 1, 6, 6)
    record_and_compare(network, neurons, x, InOrderRecorder(network, x, STEPS, max_rows=ROWS))
    assert network.training


def test_an_encoded_input_is_recorded_through_the_encoder() -> None:
    network, neurons = spiking_skip_net(encoder=IFEncoder())
    x = torch.rand(SAMPLES, 1, 6, 6)
    record_and_compare(network, neurons, x, InOrderRecorder(network, x, STEPS, max_rows=ROWS))


def test_after_a_failed_run_the_next_request_starts_from_the_input() -> None:
    network, neurons = spiking_skip_net()
    x = torch.rand(SAMPLES, 1, 6, 6)
    recorder = InOrderRecorder(network, x, STEPS, max_rows=ROWS)
    recorder.inputs(neurons[0])
    original = neurons[0].forward
    calls = []

    def fails_on_the_second_chunk(*args: object) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 2:  # the first chunk has run and dropped what it no longer needs
            raise RuntimeError("out of memory")
        return original(*args)

    neurons[0].forward = fails_on_the_second_chunk  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="out of memory"):
        recorder.inputs(neurons[1])  # the first neuron runs on the way, and fails
    neurons[0].forward = original  # type: ignore[method-assign]
    for ours, reference in zip(recorder.inputs(neurons[1]), module_input_chunks(
            network, neurons[1], x, STEPS, max_rows=ROWS), strict=True):
        torch.testing.assert_close(ours, reference, rtol=0, atol=0)


def test_neurons_out_of_order_shared_or_not_in_the_network_are_refused() -> None:
    network, neurons = spiking_skip_net()
    recorder = InOrderRecorder(network, torch.rand(2, 1, 6, 6), STEPS)
    recorder.inputs(neurons[1])
    with pytest.raises(ValueError, match="graph order"):
        recorder.inputs(neurons[0])
    with pytest.raises(ValueError, match="not called by the network"):
        recorder.inputs(IFNeuron(1.0))
    shared = IFNeuron(0.5)
    network, _ = spiking_skip_net(shared=shared)
    with pytest.raises(ValueError, match="more than one place"):
        InOrderRecorder(network, torch.rand(2, 1, 6, 6), STEPS).inputs(shared)


def third_input_after_a_change(changed: str, tell: bool) -> tuple[bool, int]:
    """Records the first two neurons of the skip net, scales the weights of `changed`,
    tells the recorder (or not), then records the third neuron. Returns whether that
    equals a full run, and how often the recorder ran conv1."""
    network, neurons = spiking_skip_net()
    x = torch.rand(SAMPLES, 1, 6, 6)
    calls = []
    network.graph_module.get_submodule("conv1").register_forward_hook(
        lambda *_: calls.append(1))
    recorder = InOrderRecorder(network, x, STEPS, max_rows=ROWS)
    recorder.inputs(neurons[0])
    recorder.inputs(neurons[1])
    module = network.graph_module.get_submodule(changed)
    with torch.no_grad():
        module.weight.mul_(1.5)
    if tell:
        recorder.changed([module])
    ours = list(recorder.inputs(neurons[2]))
    calls_by_recorder = len(calls)
    reference = module_input_chunks(network, neurons[2], x, STEPS, max_rows=ROWS)
    return all(torch.equal(a, b) for a, b in zip(ours, reference, strict=True)), calls_by_recorder


@pytest.mark.parametrize(("changed", "tell", "expected"), [
    # conv1 comes before the second neuron and its output is kept for the skip: untold,
    # the recorder uses stale values; told, it runs again from the input, chunk by chunk.
    ("conv1", False, (False, 3)),
    ("conv1", True, (True, 6)),
    # conv3 comes after the second neuron, where the recorder resumes anyway.
    ("conv3", True, (True, 3)),
])
def test_a_changed_weight_is_run_again_from_where_it_is_needed(changed, tell, expected) -> None:
    assert third_input_after_a_change(changed, tell) == expected


class FullRuns:
    """Each neuron recorded by a run from the network's input, as before the recorder."""

    def __init__(self, network: SpikingNetwork, x: torch.Tensor, num_steps: int) -> None:
        self.network, self.x, self.num_steps = network, x, num_steps

    def inputs(self, neuron: nn.Module) -> RecordedInputs:
        return RecordedInputs(self.network, neuron, self.x, self.num_steps)

    def changed(self, modules: object) -> None:
        """Nothing is kept, so nothing goes stale."""


def converted_with_pairs(
    net: type[nn.Module],
) -> tuple[nn.Module, SpikingNetwork, list[tuple[nn.Module, IFNeuron]], list[str]]:
    """The net (seed 0) converted with IF neurons: the ANN, the SNN, (ANN activation, SNN
    neuron) per layer, and the sites' names."""
    torch.manual_seed(0)
    ann = net().eval()
    prepared = prepare_conversion(ann)
    network = prepared.to_spiking(lambda site: IFNeuron(0.5))
    neurons = [module for _, module in network.neurons() if isinstance(module, IFNeuron)]
    activations = [ann.get_submodule(name) for name in ("act1", "act2", "act3")]
    pairs = list(zip(activations, neurons, strict=True))
    return ann, network, pairs, [site.name for site in prepared.sites]


@pytest.mark.parametrize("mode", ["light", "advanced"])
def test_calibration_is_the_same_as_with_a_full_run_per_neuron(monkeypatch, mode) -> None:
    x = torch.rand(SAMPLES, 1, 6, 6)
    corrections = []
    for recorder in (InOrderRecorder, FullRuns):
        monkeypatch.setattr(calib, "InOrderRecorder", recorder)
        ann, network, pairs, _ = converted_with_pairs(SkipNet)
        errors = calib.calibrate_layers(ann, network, pairs, x, STEPS, mode, bias_first=True,
                                        step_search=True)
        corrections.append((errors, [(n.v_init.clone(), n.input_shift.clone())
                                     for _, n in pairs]))
    (errors, ours), (reference_errors, reference) = corrections
    assert errors == reference_errors
    for (v_init, shift), (v_reference, shift_reference) in zip(ours, reference, strict=True):
        torch.testing.assert_close(v_init, v_reference, rtol=0, atol=0)
        torch.testing.assert_close(shift, shift_reference, rtol=0, atol=0)


class StreamNet(nn.Module):
    """A residual stream without neurons on it (as in MobileNet V2 or DenseNet): the
    second and third neurons' layers both contain conv0 and conv2, which lie upstream of
    the first neuron, so calibrating the second changes what the first one fires."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv3 = nn.Conv2d(4, 4, 3, padding=1)
        self.act2 = nn.ReLU()
        self.conv5 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv4 = nn.Conv2d(4, 4, 3, padding=1)
        self.act3 = nn.ReLU()
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stream = self.conv0(x)
        stream = stream + self.conv2(self.act1(self.conv1(stream)))
        second = self.act2(self.conv3(stream))
        third = self.act3(self.conv4(stream + self.conv5(second)))
        return self.head(third.mean(dim=(2, 3)))


def weight_calibration_from_the_input(
    ann: nn.Module, network: SpikingNetwork, pairs: list[tuple[nn.Module, IFNeuron]],
    names: list[str], x: torch.Tensor, num_steps: int, **fit: object,
) -> list[tuple[float, float]]:
    """Weight calibration that records every layer's source rates by a run of the whole
    network from its input: the reference the recorded version must equal."""
    neuron_by_name = dict(zip(names, [n for _, n in pairs], strict=True))
    generator = torch.Generator().manual_seed(0)
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    losses = []
    for (activation, neuron), name in zip(pairs, names, strict=True):
        subgraph, sources = pre_activation_subgraph(network.graph_module, name, names)
        weights = [m.weight for m in subgraph.modules() if isinstance(m, nn.Conv2d)]
        neurons = [neuron_by_name[s] for s in sources if s in neuron_by_name]
        rates = iter(spiking_rates(network, neurons, x, num_steps))
        inputs = [next(rates) if s in neuron_by_name else x for s in sources]
        (target,) = module_outputs(ann, [activation], x)
        losses.append(calib_weights.fit_layer_weights(
            subgraph, weights, inputs, target, neuron, num_steps, generator=generator,
            **fit))  # type: ignore[arg-type]
    return losses


@pytest.mark.parametrize("net", [SkipNet, StreamNet])
def test_weight_calibration_equals_recording_every_layer_from_the_input(net) -> None:
    x = torch.rand(SAMPLES, 1, 6, 6)
    results = []
    recorded = calib_weights.calibrate_weights
    for calibrate in (recorded, weight_calibration_from_the_input):
        ann, network, pairs, names = converted_with_pairs(net)
        fit = {"iterations": 20, "lr": 1e-2, "batch_size": 4}
        losses = calibrate(ann, network, pairs, names, x, STEPS,
                           **fit, **({"seed": 0} if calibrate is recorded else {}))
        results.append((losses, [p.detach().clone() for p in network.parameters()]))
    (losses, weights), (reference_losses, reference_weights) = results
    assert losses == reference_losses
    assert losses[2][1] != losses[2][0]  # the third layer, fed spikes, did train
    for ours, reference in zip(weights, reference_weights, strict=True):
        torch.testing.assert_close(ours, reference, rtol=0, atol=0)
