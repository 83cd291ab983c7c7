"""Efficiency metrics on tiny hand-made networks; every expected number is worked out by
hand in the comments. Conventions: counts are per sample, summed over the first T steps;
energy uses the 45 nm table (4.6 pJ per MAC, 0.9 pJ per AC)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from snnbench_suite.evaluation import simulate
from snnbench_suite.metrics import (
    CMOS_45NM,
    ENERGY_TABLES,
    METRICS_VERSION,
    Source,
    analyse,
    ann_dense_macs,
    classify_values,
    counting,
    synaptic_ops,
)
from snnbench_suite.metrics.counters import pooled_counts
from snnbench_suite.results import records_frame
from snnbench_suite.snn import IFNeuron, SpikingNetwork, prepare_conversion
from snnbench_suite.snn.encoding import IFEncoder
from snnbench_suite.testing import method_context, run_cell

CPU = torch.device("cpu")


def linear(weights: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(len(weights[0]), len(weights), bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weights))
    return layer


def two_layer_snn(scale: float = 1.0, amplitude: str = "one") -> SpikingNetwork:
    """fc1 (2 -> 3) -> IF neurons (V_th = scale, reset by subtraction) -> fc2 (3 -> 2).

    fc1's weights are multiplied by `scale` together with the threshold, so the
    membranes (in units of V_th) and hence the spike times do not depend on `scale`."""
    ann = nn.Sequential(
        linear([[scale, 0.0], [0.0, scale], [0.5 * scale, 0.5 * scale]]),
        nn.ReLU(),
        linear([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]),
    )
    graph = prepare_conversion(ann)
    return graph.to_spiking(lambda _site: IFNeuron(scale, reset="subtract",
                                                   amplitude=amplitude))  # type: ignore[arg-type]


def loader_of(x: torch.Tensor, labels: list[int]) -> DataLoader:
    return DataLoader(TensorDataset(x, torch.tensor(labels)), batch_size=len(labels))


# The input of the two-layer network, fed unchanged at every step (direct coding).
# fc1's currents per step (scale 1): [0.625, 0.25, 0.5*0.625 + 0.5*0.25 = 0.4375].
#   neuron 0: v = 0.625, 1.25 -> spike (v = 0.25), 0.875          spikes at step 2
#   neuron 1: v = 0.25, 0.5, 0.75                                  never spikes
#   neuron 2: v = 0.4375, 0.875, 1.3125 -> spike (v = 0.3125)     spike at step 3
# spikes per step: [0, 1, 1]
TWO_LAYER_INPUT = torch.tensor([[0.625, 0.25]])


def test_two_layer_network_counted_by_hand() -> None:
    result = simulate(two_layer_snn(), loader_of(TWO_LAYER_INPUT, [0]), [1, 2, 3],
                      modality="static", device=CPU)
    by_t = result.per_t
    # firing rate = spikes / (3 neurons x t steps): t=1: 0/3, t=2: 1/6, t=3: 2/9
    assert [by_t[t]["firing_rate"] for t in (1, 2, 3)] == pytest.approx([0.0, 1 / 6, 2 / 9])
    [layer] = by_t[3]["layer_firing_rates"]
    assert by_t[3]["layer_firing_rates"][layer] == pytest.approx(2 / 9)
    # fc1 reads the analog input: 2 non-zero inputs x 3 outputs = 6 MACs per step.
    assert [by_t[t]["effective_macs"] for t in (1, 2, 3)] == [6.0, 12.0, 18.0]
    # fc2 reads spikes: each spike reaches fc2's 2 outputs -> per step [0, 2, 2] ACs.
    assert [by_t[t]["effective_acs"] for t in (1, 2, 3)] == [0.0, 2.0, 4.0]
    assert [by_t[t]["sops"] for t in (1, 2, 3)] == [0.0, 2.0, 4.0]
    # dense: fc1 3x2 + fc2 2x3 = 12 MACs per step
    assert [by_t[t]["dense_macs"] for t in (1, 2, 3)] == [12, 24, 36]
    assert result.ann_macs == 12
    # energy at T=3: 18 x 4.6 + 4 x 0.9 = 82.8 + 3.6 = 86.4 pJ; T=1: 6 x 4.6 = 27.6 pJ
    assert by_t[3]["energy_pj"] == pytest.approx(86.4)
    assert by_t[2]["energy_pj"] == pytest.approx(12 * 4.6 + 2 * 0.9)
    assert by_t[1]["energy_pj"] == pytest.approx(27.6)
    assert result.params == 12  # 6 + 6 weights, no bias
    assert result.layers["graph_module.0"]["counted_as"] == "real"
    assert result.layers["graph_module.2"]["counted_as"] == "events"
    # fc2 = [[1, 0, 0], [0, 1, 1]]: step 2 gives [1, 0]; mean over 2 steps [0.5, 0] -> class 0
    assert by_t[2]["top1"] == 100.0 and "top5" not in by_t[2]


def test_spikes_of_amplitude_v_th_count_as_events_not_amplitudes() -> None:
    """The same network with V_th = 2 and spikes of amplitude 2: the same spike times
    (fc1 weights doubled), so the same 4 ACs at T=3 -- not 8, which amplitudes would give."""
    scaled = simulate(two_layer_snn(scale=2.0, amplitude="threshold"),
                      loader_of(TWO_LAYER_INPUT, [0]), [3], modality="static", device=CPU)
    assert scaled.per_t[3]["effective_acs"] == 4.0
    assert scaled.per_t[3]["firing_rate"] == pytest.approx(2 / 9)
    assert scaled.per_t[3]["energy_pj"] == pytest.approx(86.4)


class Handmade(nn.Module):
    """Not traced by fx: the layers' inputs are classified from their values."""

    def __init__(self) -> None:
        super().__init__()
        self.neuron = IFNeuron(2.0, amplitude="threshold")
        self.fc = linear([[1.0, 1.0, 1.0]])

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        steps = x_seq.shape[0]
        return self.fc(self.neuron(x_seq.flatten(0, 1), steps)).unflatten(0, (steps, -1))


def test_value_check_counts_amplitude_v_th_spikes_as_events() -> None:
    network = Handmade()
    assert analyse(network).synaptic["fc"].source is Source.UNKNOWN
    # currents [2, 1, 0] every step, V_th = 2: neuron 0 spikes (value 2) at steps 1, 2;
    # neuron 1: v = 1, 2 -> spike at step 2; neuron 2 never. Spikes per step [1, 2].
    x = torch.tensor([[[2.0, 1.0, 0.0]], [[2.0, 1.0, 0.0]]])  # [T=2, B=1, 3]
    with counting(network, 2) as tally:
        network(x)
    counts = tally.per_sample(2, 1)
    # fc has 1 output: 1 + 2 = 3 events -> 3 ACs (not 6 = the sum of amplitudes)
    assert counts["effective_acs"] == 3.0 and counts["effective_macs"] == 0.0
    assert counts["firing_rate"] == pytest.approx(3 / 6)


@pytest.mark.parametrize("pools", [
    [nn.AvgPool2d(2)], [nn.AdaptiveAvgPool2d(1)], [nn.AvgPool2d(1), nn.AdaptiveAvgPool2d(1)],
], ids=["avg", "adaptive", "chained"])
def test_average_pooled_spikes_count_every_spike_and_relu_features_count_macs(pools) -> None:
    """neuron -> average pooling of the 2x2 map into one element -> flatten -> linear
    (1 -> 3), and RepAct's variant with a ReLU in place of the neuron."""
    ann = nn.Sequential(nn.ReLU(), *pools, nn.Flatten(), linear([[1.0]] * 3))
    graph = prepare_conversion(ann)
    spiking = graph.to_spiking(lambda _site: IFNeuron(1.0))
    # input (one channel, 2x2): [[1, 0.5], [0.25, 0]] every step, V_th = 1
    #   (0,0): v = 1 -> spike, 1 -> spike          2 spikes (steps 1, 2)
    #   (0,1): v = 0.5, 1 -> spike                 1 spike  (step 2)
    #   (1,0): v = 0.25, 0.5; (1,1): 0             none
    # the pooled element carries 1 event at step 1 and 2 at step 2; each reaches 3 weights
    x = torch.tensor([[[[1.0, 0.5], [0.25, 0.0]]]])
    result = simulate(spiking, loader_of(x, [0]), [1, 2], modality="static", device=CPU)
    assert [result.per_t[t]["effective_acs"] for t in (1, 2)] == [3.0, 9.0]  # 3 spikes x 3
    assert result.per_t[2]["effective_macs"] == 0.0
    assert result.per_t[2]["dense_macs"] == 6  # 3 outputs x 1 input x 2 steps
    assert result.per_t[2]["firing_rate"] == pytest.approx(3 / 8)  # 4 neurons x 2 steps
    assert result.per_t[2]["energy_pj"] == pytest.approx(9 * 0.9)

    # RepAct: the ReLU keeps real values; the pooled feature 0.4375 is one non-zero input
    # -> 3 MACs per step, 6 at T=2, no ACs, no neurons.
    repact = graph.to_spiking(lambda _site: nn.ReLU())
    result = simulate(repact, loader_of(x, [0]), [2], modality="static", device=CPU)
    assert result.per_t[2]["effective_macs"] == 6.0 and result.per_t[2]["effective_acs"] == 0.0
    assert result.per_t[2]["energy_pj"] == pytest.approx(6 * 4.6)
    assert result.per_t[2]["firing_rate"] == 0.0 and result.per_t[2]["layer_firing_rates"] == {}
    [classifier] = result.layers.values()
    assert classifier == {"type": "Linear", "input": "real", "counted_as": "real",
                          "fan_in": 1}


def test_convolution_fan_out_with_padding_stride_and_groups() -> None:
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    events = torch.zeros(1, 1, 3, 3)
    events[0, 0, 0, 0] = events[0, 0, 1, 1] = 1
    # corner (0,0) is inside the 3x3 window of 4 output positions, the centre of all 9;
    # 2 output channels: (4 + 9) x 2 = 26 synapses
    assert synaptic_ops(conv, events).tolist() == [26.0]
    strided = nn.Conv2d(1, 2, 3, stride=2, padding=1, bias=False)
    # outputs centred on (0,0), (0,2), (2,0), (2,2): the corner is in 1 window, the
    # centre in all 4: (1 + 4) x 2 = 10
    assert synaptic_ops(strided, events).tolist() == [10.0]
    grouped = nn.Conv2d(2, 4, 1, groups=2, bias=False)
    two_channels = torch.zeros(1, 2, 1, 1)
    two_channels[0, 0] = 1
    # an event in channel 0 reaches only its group's 2 output channels
    assert synaptic_ops(grouped, two_channels).tolist() == [2.0]
    # all-non-zero analog 3x3 input through the padded conv: positions see 9 (centre),
    # 6 (4 edges) or 4 (4 corners) in-image taps: (9 + 24 + 16) x 2 channels = 98 MACs,
    # while dense counts every tap: 9 positions x 9 taps x 2 = 162
    image = torch.rand(1, 1, 3, 3) + 0.1
    assert synaptic_ops(conv, image.ne(0)).tolist() == [98.0]
    assert ann_dense_macs(conv, image) == 162


def silent_conv_network() -> nn.Sequential:
    """conv (1 -> 2, 3x3, padding 1, weights 0) -> ReLU -> flatten -> linear (18 -> 2).

    With zero weights the neurons never fire, so only the first layer does any work;
    operations are counted per synapse whatever the weight's value."""
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    nn.init.zeros_(conv.weight)
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(18, 2))


# a 3x3 image, all pixels 0.5 except a 0.25 corner
IMAGE = torch.full((1, 1, 3, 3), 0.5)
IMAGE[0, 0, 0, 0] = 0.25


def test_first_layer_reading_the_image_counts_macs() -> None:
    graph = prepare_conversion(silent_conv_network())
    direct = graph.to_spiking(lambda _site: IFNeuron(1.0))
    assert analyse(direct).synaptic["graph_module.0"].source is Source.INPUT
    result = simulate(direct, loader_of(IMAGE, [0]), [1, 2], modality="static", device=CPU)
    # every pixel non-zero: 98 MACs per step (see the convolution test), 196 at T=2
    assert [result.per_t[t]["effective_macs"] for t in (1, 2)] == [98.0, 196.0]
    assert result.per_t[2]["effective_acs"] == 0.0
    # dense per step: conv 162 + linear 2 x 18 = 36 -> 198; T=2: 396
    assert result.ann_macs == 198 and result.per_t[2]["dense_macs"] == 396
    assert result.layers["graph_module.0"]["counted_as"] == "real"


def test_a_constant_analog_image_is_still_real() -> None:
    """One value everywhere would pass a value check for spikes; the image is analog."""
    graph = prepare_conversion(silent_conv_network())
    direct = graph.to_spiking(lambda _site: IFNeuron(1.0))
    flat = torch.full((1, 1, 3, 3), 0.5)
    result = simulate(direct, loader_of(flat, [0]), [1], modality="static", device=CPU)
    assert result.per_t[1]["effective_macs"] == 98.0 and result.per_t[1]["effective_acs"] == 0


def test_if_encoded_input_makes_the_first_layer_count_events() -> None:
    graph = prepare_conversion(silent_conv_network())
    encoded = graph.to_spiking(lambda _site: IFNeuron(1.0), encoder=IFEncoder(0.999))
    assert analyse(encoded).synaptic["graph_module.0"].source is Source.EVENTS
    # encoder threshold 0.999: a 0.5 pixel reaches v = 1.0 at step 2 and fires once; the
    # 0.25 corner never fires. Step 1: no event. Step 2: the 8 pixels other than the
    # corner, which reach 49 - 4 = 45 output positions x 2 channels = 90 ACs.
    result = simulate(encoded, loader_of(IMAGE, [0]), [1, 2], modality="static", device=CPU)
    assert [result.per_t[t]["effective_acs"] for t in (1, 2)] == [0.0, 90.0]
    assert result.per_t[2]["effective_macs"] == 0.0
    assert result.layers["graph_module.0"]["counted_as"] == "events"
    # the encoder is the input, not a layer: no firing rate of its own
    assert list(result.per_t[2]["layer_firing_rates"]) == ["graph_module.activation_sites.site_0"]


def event_network() -> nn.Sequential:
    first = linear([[0.0] * 4, [0.0] * 4])  # zero weights: the neurons stay silent
    return nn.Sequential(first, nn.ReLU(), linear([[1.0, 1.0]]))


@pytest.mark.parametrize("frame,ops,kind", [
    ([0.0, 1.0, 1.0, 0.0], 4.0, "events"),  # binary frame: 2 events x 2 outputs
    ([0.0, 2.0, 1.0, 0.0], 6.0, "events"),  # event counts: 3 events x 2 outputs
    ([0.0, 0.5, 1.0, 0.0], 4.0, "real"),  # neither: 2 non-zero inputs x 2 = 4 MACs
])
def test_event_frames_binary_counts_or_real(frame, ops, kind) -> None:
    network = prepare_conversion(event_network()).to_spiking(lambda _site: IFNeuron(1.0))
    x = torch.tensor([[frame]])  # [B=1, frames=1, 4]
    result = simulate(network, loader_of(x, [0]), [1], modality="events", device=CPU)
    entry = result.per_t[1]
    counted = entry["effective_acs"] if kind == "events" else entry["effective_macs"]
    assert counted == ops
    assert entry["effective_acs"] + entry["effective_macs"] == ops
    assert result.layers["graph_module.0"]["counted_as"] == kind


def test_classify_values() -> None:
    spikes = torch.tensor([0.0, 0.7, 0.7, 0.0])
    assert classify_values(spikes, event_counts=False)[1]
    assert classify_values(torch.zeros(3), event_counts=False)[1]
    assert not classify_values(torch.tensor([0.0, 1.0, 2.0]), event_counts=False)[1]
    counts, is_events = classify_values(torch.tensor([0.0, 1.0, 2.0]), event_counts=True)
    assert is_events and counts.tolist() == [0.0, 1.0, 2.0]
    assert not classify_values(torch.tensor([0.0, -1.0, 2.0]), event_counts=True)[1]


def test_pooled_event_counts() -> None:
    events = torch.ones(1, 1, 3, 3)
    # adaptive pooling 3 -> 2 uses windows [0, 2) and [1, 3) on each axis: 2 x 2 = 4 each
    assert pooled_counts(nn.AdaptiveAvgPool2d(2), events).flatten().tolist() == [4.0] * 4
    # global pooling: all 9 events in one element
    assert pooled_counts(nn.AdaptiveAvgPool2d(1), events).flatten().tolist() == [9.0]
    # 2x2 pool with padding 1 on 3x3: windows hold 1, 2 / 2, 4 pixels of the image
    padded = pooled_counts(nn.AvgPool2d(2, padding=1), events).flatten().tolist()
    assert padded == [1.0, 2.0, 2.0, 4.0]


def hooks_of(network: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in network.modules())


def test_hooks_are_removed_after_evaluation_and_when_it_raises() -> None:
    network = two_layer_snn()
    simulate(network, loader_of(TWO_LAYER_INPUT, [0]), [2], modality="static", device=CPU)
    assert hooks_of(network) == 0

    with pytest.raises(RuntimeError, match="on purpose"):
        with counting(network, 2):
            assert hooks_of(network) == 3  # the neurons, fc1 and fc2
            raise RuntimeError("on purpose")
    assert hooks_of(network) == 0

    wrong = [(torch.zeros(1, 5), torch.zeros(1, dtype=torch.long))]  # 5 inputs, fc1 takes 2
    with pytest.raises(RuntimeError):
        simulate(network, wrong, [2], modality="static", device=CPU)  # type: ignore[arg-type]
    assert hooks_of(network) == 0


def test_energy_table_is_versioned_data() -> None:
    assert ENERGY_TABLES["45nm"] is CMOS_45NM
    assert CMOS_45NM.as_record() == {"name": "45nm", "version": "1", "pj_per_mac": 4.6,
                                     "pj_per_ac": 0.9}
    # 1000 MACs and 1000 ACs: 4600 + 900 = 5500 pJ
    assert CMOS_45NM.energy_pj(1000, 1000) == pytest.approx(5500.0)
    with pytest.raises(ValueError):
        CMOS_45NM.energy_pj(-1, 0)


def test_one_cell_run_records_every_metric(tmp_path: Path, plugins) -> None:
    """naive (anytime: one simulation at T=4 read at 1 and 4) and calib (one build and
    simulation per T) on vgg11 and the digits."""
    bodies = {method: run_cell(plugins, tmp_path, method=method, steps=[1, 4],
                               architecture="vgg11")
              for method in ("naive", "calib")}
    for body in bodies.values():
        metrics = body["metrics"]
        assert metrics["version"] == METRICS_VERSION
        assert metrics["energy_table"] == CMOS_45NM.as_record()
        assert metrics["ann_energy_pj"] == pytest.approx(metrics["ann_macs"] * 4.6)
        assert metrics["params"] > 0 and metrics["uncounted_layers"] == []
        # vgg11: the first conv reads the (normalised) image; the 7 other convolutions and
        # the classifier are fed by spikes, directly or through average pooling
        kinds = [layer["counted_as"] for layer in metrics["layers"].values()]
        assert len(kinds) == 9 and kinds.count("real") == 1 and kinds.count("events") == 8
        for entry in body["per_T"]:
            t = entry["T"]
            assert entry["dense_macs"] == t * metrics["ann_macs"]  # T passes of the ANN
            assert entry["sops"] == entry["effective_acs"] >= 0
            assert 0 < entry["effective_macs"] < entry["dense_macs"] / t
            assert entry["energy_pj"] == pytest.approx(
                entry["effective_macs"] * 4.6 + entry["effective_acs"] * 0.9)
            assert 0 <= entry["firing_rate"] < 1 and len(entry["layer_firing_rates"]) == 8
            if t == 4:  # within 4 steps the spikes reach the classifier
                assert entry["effective_acs"] > 0 and entry["firing_rate"] > 0
            assert entry["eval_seconds"] > 0 and entry["build_seconds"] > 0
            assert "top5" not in entry  # 10 classes
    naive = bodies["naive"]["per_T"]
    assert naive[0]["eval_seconds"] == naive[1]["eval_seconds"]  # one shared simulation
    # the same SNN read at T=1 and T=4: the first layer's MACs scale with T exactly
    assert naive[1]["effective_macs"] == pytest.approx(4 * naive[0]["effective_macs"])
    calib = bodies["calib"]["per_T"]
    assert calib[0]["eval_seconds"] != calib[1]["eval_seconds"]  # a simulation per T

    records = [{"cell_id": method, "status": "ok", "method": {"family": "conversion"},
                "cell": {"method": method, "method_version": "1", "architecture": "vgg11",
                         "width": 1.0, "dataset": "digits", "seed": 0}, **body}
               for method, body in bodies.items()]
    frame = records_frame(records)
    for column in ("sops", "dense_macs", "effective_macs", "effective_acs", "energy_pj",
                   "eval_seconds", "build_seconds", "params", "ann_macs", "ann_energy_pj"):
        assert frame[column].notna().all(), column
    assert set(frame["energy_table"]) == {"45nm v1"}
    assert set(frame["metrics_version"]) == {METRICS_VERSION}


def test_ann_macs_equal_the_ann_forward_pass(tmp_path: Path, plugins) -> None:
    """The SNN's dense MACs per step are one forward pass of the ANN it came from."""
    ctx = method_context(plugins, tmp_path, method="naive", architecture="vgg11", T=None)
    network = plugins.methods.get("naive").build(ctx)
    x, y = next(iter(ctx.loader("test", batch_size=8)))
    result = simulate(network, [(x, y)], [2], modality="static",  # type: ignore[arg-type]
                      device=CPU)
    assert ctx.ann is not None
    assert result.ann_macs == ann_dense_macs(ctx.ann, x)
    assert result.per_t[2]["dense_macs"] == 2 * result.ann_macs
    assert not math.isnan(result.per_t[2]["energy_pj"])
