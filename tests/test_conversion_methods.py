"""`softreset`, `cqplus` and `qcfs` on small hand-made networks, their parameter checks
(exit 2 before anything runs) and one end-to-end cell each on digits."""

from __future__ import annotations

import csv
import functools
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from snnbench_methods import cqplus, qcfs, softreset
from snnbench_suite.cli import main
from snnbench_suite.errors import ConversionError
from snnbench_suite.snn import (
    QCFS,
    IFNeuron,
    ThresholdReLU,
    channel_sum,
    clamp_quantize,
    direct,
    prepare_conversion,
    recording_outputs,
)


class Net(nn.Module):
    def __init__(self, act: nn.Module | functools.partial, bn: bool = True,
                 pool: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4) if bn else nn.Identity()
        self.act1 = act()
        self.pool = pool if pool is not None else nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(4) if bn else nn.Identity()
        self.act2 = act()
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(self.act1(self.bn1(self.conv1(x))))
        z = self.act2(self.bn2(self.conv2(y)))
        return self.fc(torch.flatten(z, 1))


def make(act, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    net = Net(act, **kwargs)
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.rand(32, 1, 8, 8))
        for bn in (net.bn1, net.bn2):  # centre the activations inside [0, 1]
            if isinstance(bn, nn.BatchNorm2d):
                bn.weight.fill_(0.4)
                bn.bias.fill_(0.5)
    return net.eval()


def context(net: nn.Module, params: dict, steps: int | None) -> SimpleNamespace:
    data = TensorDataset(torch.rand(40, 1, 8, 8), torch.randint(0, 3, (40,)))

    def loader(split: str, batch_size: int = 20, shuffle: bool = False) -> DataLoader:
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle)

    def train(model: nn.Module, *, config, label: str = "") -> dict:
        return {"epochs": 0}

    return SimpleNamespace(T=steps, params=dict(params), ann=net, seed=0, loader=loader,
                           device=torch.device("cpu"), notes={}, train=train)


# --- softreset ------------------------------------------------------------------------


def test_softreset_spikes_at_the_output_with_max_thresholds_logits_included() -> None:
    net = make(functools.partial(ThresholdReLU, 1.0), bn=False)
    ctx = context(net, softreset.PARAMS, steps=8)
    snn = softreset.SOFTRESET.build(ctx)
    x = torch.rand(6, 1, 8, 8)
    out = snn(direct(x, 8))
    logit_threshold = ctx.notes["logit_threshold"]
    with torch.no_grad():
        assert logit_threshold == pytest.approx(
            float(torch.cat([net(b) for b, _ in ctx.loader("train_eval")]).max()), rel=1e-5)
    # Every output is a spike of amplitude V_th (or nothing).
    values = set(out.unique().tolist())
    assert len(values) == 2 and min(values) == 0.0
    assert max(values) == pytest.approx(logit_threshold, rel=1e-5)
    assert max(ctx.notes["thresholds"]) <= 1.0 + 1e-6  # the threshold ReLU clips at 1
    shifts = [m.input_shift.item() for m in snn.modules() if isinstance(m, IFNeuron)]
    thresholds = [m.threshold.item() for m in snn.modules() if isinstance(m, IFNeuron)]
    assert shifts == pytest.approx([v / 16 for v in thresholds])


def test_softreset_options_non_spiking_readout_and_anytime_shift() -> None:
    net = make(functools.partial(ThresholdReLU, 1.0), bn=False)
    ctx = context(net, {**softreset.PARAMS, "last_layer_spiking": False}, steps=8)
    snn = softreset.SOFTRESET.build(ctx)
    assert not isinstance(snn, softreset.SpikingClassifier)
    ctx = context(net, softreset.ANYTIME_PARAMS, steps=None)
    snn = softreset.SOFTRESET_ANYTIME.build(ctx)
    neurons = [m for m in snn.modules() if isinstance(m, IFNeuron)]
    assert len(neurons) == 3 and all(isinstance(n, softreset.WindowedShiftIF) for n in neurons)
    assert neurons[0].shift.item() == pytest.approx(neurons[0].threshold.item() / 64)
    assert neurons[0].shift_steps == 32 and neurons[0].input_shift.item() == 0.0
    assert softreset.recipe(softreset.PARAMS).batch_norm is False


def test_anytime_shift_adds_half_a_threshold_in_all_whatever_the_horizon() -> None:
    # V = 1, a = 0.3 per step, shift 1/8 during 4 steps. Over 10 steps the neuron gets
    # 3.0 + 0.5 = 3.5: 3 spikes (a shift kept on would add 10/8: 4.25, 4 spikes).
    windowed = softreset.WindowedShiftIF(1.0, 1 / 8, 4)
    x = torch.full((10, 1), 0.3)
    assert windowed(x, 10).sum().item() == 3.0
    always = IFNeuron(1.0, reset="subtract", amplitude="threshold", input_shift=1 / 8)
    assert always(x, 10).sum().item() == 4.0
    # Within the window both are the authors' neuron, spike for spike.
    x = torch.rand(4, 5, 3)
    assert torch.equal(windowed(x.flatten(0, 1), 4), always(x.flatten(0, 1), 4))
    # At T = 256 the rate rounds: 0.3 * 256 + 0.5 = 77.3 -> 77 spikes.
    assert windowed(torch.full((256, 1), 0.3), 256).sum().item() == 77.0


# --- qcfs -----------------------------------------------------------------------------


def test_qcfs_snn_at_T_equal_L_matches_its_ann_on_the_first_layer_and_closely_after() -> None:
    net = make(functools.partial(QCFS, 4, 1.5))
    ctx = context(net, qcfs.PARAMS, steps=None)
    snn = qcfs.QCFS_METHOD.build(ctx)
    neuron = next(m for m in snn.modules() if isinstance(m, IFNeuron))
    assert neuron.v_init.item() == pytest.approx(neuron.threshold.item() / 2)
    x = torch.rand(64, 1, 8, 8)
    sites = {"ann": net.act1, "snn": neuron}
    with recording_outputs({"ann": sites["ann"]}) as ann_out, torch.no_grad():
        logits = net(x)
    with recording_outputs({"snn": sites["snn"]}) as snn_out, torch.no_grad():
        out = snn(direct(x, 4)).mean(0)
    rate = snn_out["snn"][0].unflatten(0, (4, 64)).mean(0)
    assert torch.allclose(rate, ann_out["ann"][0], atol=1e-5)  # exact for a constant input
    assert (out.argmax(1) == logits.argmax(1)).float().mean() >= 0.9


def test_qcfs_threshold_is_kept_positive_and_converts() -> None:
    # A clipped input pushes lam down by 1 per element: SGD at lr 1 drives the raw
    # parameter through zero; the layer keeps computing with lam = min_threshold.
    act = QCFS(4, threshold=0.5, min_threshold=0.01)
    opt = torch.optim.SGD(act.parameters(), lr=1.0)
    for _ in range(3):
        opt.zero_grad()
        act(torch.full((4,), 10.0)).sum().backward()
        opt.step()
    assert act.threshold.item() < 0
    assert act.effective_threshold().item() == pytest.approx(0.01)
    # Steps of lam / L = 0.0025, rounded: 0.001 -> 0, 0.004 -> 2 steps, 5.0 -> clipped.
    assert act(torch.tensor([-1.0, 0.001, 0.004, 5.0])).tolist() == pytest.approx(
        [0.0, 0.0, 0.005, 0.01])
    # The gradient still reaches the raw parameter, so lam can grow back.
    act.threshold.grad = None
    act(torch.tensor([0.004])).sum().backward()
    assert act.threshold.grad is not None and act.threshold.grad.item() != 0.0
    net = make(functools.partial(QCFS, 4, 1.5))
    with torch.no_grad():
        net.act2.threshold.fill_(-0.7)
    ctx = context(net, qcfs.PARAMS, steps=None)
    qcfs.QCFS_METHOD.build(ctx)
    assert ctx.notes["thresholds"][1] == pytest.approx(0.01)


def test_qcfs_refuses_an_ann_without_qcfs_activations() -> None:
    with pytest.raises(ConversionError, match="qcfs: activation 'act1' is a ReLU"):
        qcfs.QCFS_METHOD.build(context(make(nn.ReLU), qcfs.PARAMS, None))
    recipe = qcfs.recipe({**qcfs.PARAMS, "L": 8})
    assert recipe.name == "qcfs_l8_lam3" and isinstance(recipe.activation(), QCFS)


# --- cqplus ---------------------------------------------------------------------------


def test_cq_network_quantizes_activations_pools_and_input() -> None:
    net = make(nn.ReLU)
    cq = cqplus.cq_network(net, 4, "cqplus").eval()
    x = torch.rand(8, 1, 8, 8)
    with torch.no_grad():
        h = clamp_quantize(net.bn1(net.conv1(clamp_quantize(x, 4))), 4)
        h = clamp_quantize(net.pool(h), 4)
        h = clamp_quantize(net.bn2(net.conv2(h)), 4)
        assert torch.allclose(cq(x), net.fc(torch.flatten(h, 1)), atol=1e-5)
    with pytest.raises(ConversionError, match="max pooling"):
        cqplus.cq_network(make(nn.ReLU, pool=nn.MaxPool2d(2)), 4, "cqplus")


def mismatch(ann, network, pairs, x, steps: int) -> float:
    """Mean |sum(T q) - sum(spikes)| per channel, over layers, relative to the counts."""
    total, gap = 0.0, 0.0
    with recording_outputs({str(i): a for i, (a, _) in enumerate(pairs)}) as q, \
            recording_outputs({str(i): n for i, (_, n) in enumerate(pairs)}) as s, \
            torch.no_grad():
        ann(clamp_quantize(x, steps))
        network(direct(x, steps))
        for i in range(len(pairs)):
            expected = channel_sum(q[str(i)][0]) * steps
            spikes = sum(channel_sum(out.ne(0).float()) for out in s[str(i)])
            gap += float((expected - spikes).abs().sum())
            total += float(expected.sum())
    return gap / total


def test_threshold_training_moves_spike_counts_toward_the_quantized_activations() -> None:
    steps = 4
    torch.manual_seed(3)
    cq = cqplus.cq_network(make(nn.ReLU, seed=3), steps, "cqplus").eval()
    graph = prepare_conversion(cq.body)
    channels = {"activation_sites.site_0": 4, "activation_sites.site_1": 4,
                "activation_sites.site_2": 4}
    neurons = {s.name: IFNeuron(torch.full((channels[s.name],), 0.999)) for s in graph.sites}
    network = graph.to_spiking(lambda s: neurons[s.name])
    pairs = [(graph.site_modules()[s.name], neurons[s.name]) for s in graph.sites]
    batches = [torch.rand(32, 1, 8, 8) for _ in range(12)]
    held_out = torch.rand(64, 1, 8, 8)
    before = mismatch(graph.module, network, pairs, held_out, steps)
    cqplus.train_thresholds(graph.module, network, pairs, batches, steps, steps, lr=0.1)
    after = mismatch(graph.module, network, pairs, held_out, steps)
    assert before > 0.02
    assert after < 0.8 * before
    moved = torch.cat([n.threshold for n in neurons.values()])
    assert not torch.allclose(moved, torch.full_like(moved, 0.999))


def test_cqplus_build_records_the_quantized_ann_and_threshold_training(monkeypatch) -> None:
    monkeypatch.setattr(cqplus, "evaluate_ann", lambda *a, **k: {"top1": 50.0})
    for steps, trained in ((4, True), (128, False)):
        ctx = context(make(nn.ReLU), cqplus.PARAMS, steps)
        network = cqplus.CQPLUS.build(ctx)
        assert ctx.notes["Q"] == steps and ctx.notes["converted_ann_top1"] == 50.0
        assert ctx.notes["threshold_training"] is trained
        assert network.encoder is not None and network.encoder.levels == steps
        neurons = [m for m in network.modules() if isinstance(m, IFNeuron)]
        assert len(neurons) == 3 and all(n.amplitude == "one" for n in neurons)


@pytest.mark.parametrize("spec,params,key", [
    (cqplus.CQPLUS, {"Q": "2.5"}, "Q"), (cqplus.CQPLUS, {"Q": "-1"}, "Q"),
    (cqplus.CQPLUS, {"Q": "0"}, "Q"), (cqplus.CQPLUS, {"threshold_training": "yes"},
                                        "threshold_training"),
    (cqplus.CQPLUS, {"dropout": 1.0}, "dropout"), (cqplus.CQPLUS, {"threshold": 0.0},
                                                   "threshold"),
    (qcfs.QCFS_METHOD, {"L": 0}, "L"), (qcfs.QCFS_METHOD, {"threshold_init": -1.0},
                                        "threshold_init"),
    (softreset.SOFTRESET, {"relu_threshold": 0.0}, "relu_threshold"),
    (softreset.SOFTRESET_ANYTIME, {"shift_T": 0}, "shift_T"),
])
def test_parameter_checks(spec, params: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        spec.check_params({**spec.params, **params})
    spec.check_params(dict(spec.params))
    cqplus.check_params({**cqplus.PARAMS, "Q": "64"})


@pytest.mark.parametrize("setting", ["qcfs.L=0", "cqplus.Q=2.5", "cqplus.Q=-3",
                                     "calib.candidates=0", "softreset.last_layer_spiking=maybe"])
def test_bad_parameters_exit_2_before_any_training(tmp_path: Path, capsys, setting: str) -> None:
    method = setting.split(".")[0]
    code = main(["run", "--methods", method, "--T", "4", "--set", setting, "--epochs", "1",
                 "--results", str(tmp_path / "r"), "--cache", str(tmp_path / "c"), "--quiet"])
    assert code == 2
    assert setting.split("=")[0].split(".")[1] in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_each_method_runs_a_digits_cell(tmp_path: Path, capsys) -> None:
    code = main(["run", "--methods", "calib,softreset,cqplus,qcfs", "--archs", "vgg11",
                 "--T", "2", "--epochs", "1", "--results", str(tmp_path / "r"),
                 "--cache", str(tmp_path / "c"), "--quiet",
                 "--set", "vgg11.width=0.125", "--set", "cqplus.threshold_epochs=1"])
    assert code == 0
    records = {r["cell"]["method"]: r for r in
               (json.loads(p.read_text()) for p in (tmp_path / "r").glob("*.json"))}
    assert set(records) == {"calib", "softreset", "cqplus", "qcfs"}
    assert all(r["status"] == "ok" for r in records.values())
    assert records["calib"]["builds"][0]["calibration_samples"] == 256
    assert records["cqplus"]["builds"][0]["threshold_training"] is True
    assert records["qcfs"]["method"]["ann_recipe"].startswith("qcfs_l4_lam3")
    assert records["softreset"]["method"]["t_mode"] == "per_t"
    # The records table shows the CQ network next to the ReLU ANN, for cqplus only.
    capsys.readouterr()
    assert main(["table", "--layout", "records", "--format", "csv",
                 "--results", str(tmp_path / "r")]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    by_method = {row["method"]: row for row in rows}
    quantized = records["cqplus"]["builds"][0]["converted_ann_top1"]
    assert float(by_method["cqplus"]["converted_ann_top1"]) == pytest.approx(quantized)
    assert by_method["qcfs"]["converted_ann_top1"] == ""


UNCONVERTIBLE = [
    (softreset.SOFTRESET, functools.partial(ThresholdReLU, 1.0), False, 4),
    (softreset.SOFTRESET_ANYTIME, functools.partial(ThresholdReLU, 1.0), False, None),
    (cqplus.CQPLUS, nn.ReLU, True, 4),
    (qcfs.QCFS_METHOD, functools.partial(QCFS, 4, 1.5), True, None),
]


@pytest.mark.parametrize("spec,act,bn,steps", UNCONVERTIBLE, ids=lambda v: getattr(v, "name", ""))
def test_unconvertible_models_fail_naming_the_layer_and_what_is_supported(
        spec, act, bn: bool, steps: int | None) -> None:
    params = dict(spec.params)
    net = make(act, bn=bn, pool=nn.MaxPool2d(2))
    with pytest.raises(ConversionError,
                       match=rf"{spec.name}: node 'pool'.*max pooling.*Use average pooling"):
        spec.build(context(net, params, steps))
    net = make(act, bn=bn)
    net.act2 = nn.GELU()
    with pytest.raises(ConversionError, match=r"'act2'.*GELU.*(converts|Convertible)"):
        spec.build(context(net, params, steps))
