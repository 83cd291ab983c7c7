"""Direct training and distillation: losses by hand, RepAct on the graph, frozen teacher,
determinism, divergence and event-frame checks."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from snnbench_methods.direct import build_sdt, tet_loss, trainable_snn
from snnbench_methods.distill import build_distilled, kd_divergence, laf_loss
from snnbench_suite.cli import main
from snnbench_suite.errors import TrainingDivergedError
from snnbench_suite.snn import LIFNeuron
from snnbench_suite.testing import method_context


def test_tet_loss_equals_hand_computed_value() -> None:
    # T = 2, one sample, two classes, label 0.
    per_step = torch.tensor([[[0.0, 0.0]], [[math.log(3.0), 0.0]]])
    labels = torch.tensor([0])
    ce = (math.log(2.0) + math.log(4.0 / 3.0)) / 2  # -log(1/2), -log(3/4)
    mse = (1.0 + ((math.log(3.0) - 1) ** 2 + 1.0) / 2) / 2  # mean over t of mean (O - 1)^2
    expected = 0.95 * ce + 0.05 * mse
    assert float(tet_loss(per_step, labels, lam=0.05)) == pytest.approx(expected, rel=1e-6)


def test_laf_loss_equals_hand_computed_value() -> None:
    classifier = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        classifier.weight.copy_(torch.eye(2))
    teacher_feature = torch.tensor([[math.log(3.0), 0.0]])  # p_A = (3/4, 1/4)
    student_feature = torch.tensor([[0.0, 0.0]])  # p_S = (1/2, 1/2)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    classifier.requires_grad_(False)
    assert float(laf_loss(student_feature, teacher_feature, classifier, tau=1.0)) == \
        pytest.approx(expected, rel=1e-6)
    # tau = 2: logits halved, divergence scaled by tau^2
    p = [math.sqrt(3) / (math.sqrt(3) + 1), 1 / (math.sqrt(3) + 1)]
    expected_tau2 = 4 * (p[0] * math.log(p[0] / 0.5) + p[1] * math.log(p[1] / 0.5))
    assert float(kd_divergence(teacher_feature, student_feature, tau=2.0)) == \
        pytest.approx(expected_tau2, rel=1e-6)


def test_laf_gradient_reaches_the_student_feature_not_the_teacher_classifier() -> None:
    classifier = nn.Linear(3, 2)
    classifier.requires_grad_(False)
    student = torch.randn(4, 3, requires_grad=True)
    laf_loss(student, torch.randn(4, 3), classifier, tau=1.0).backward()
    assert student.grad is not None and float(student.grad.abs().sum()) > 0
    assert classifier.weight.grad is None


def test_repact_replaces_exactly_the_last_spiking_layer(plugins, tmp_path) -> None:
    ctx = method_context(plugins, tmp_path, method="sdt", T=2)
    plain = trainable_snn(ctx)
    repact = trainable_snn(ctx, relu_last=True)
    sites = lambda net: [m for n, m in net.graph_module.named_modules()  # noqa: E731
                         if n.startswith("activation_sites.")]
    plain_sites, repact_sites = sites(plain), sites(repact)
    assert len(plain_sites) == len(repact_sites) == 19  # resnet20: stem + 2 per block
    assert all(isinstance(m, LIFNeuron) for m in plain_sites)
    assert all(isinstance(m, LIFNeuron) for m in repact_sites[:-1])
    assert type(repact_sites[-1]) is nn.ReLU
    # the ReLU is what the classifier reads: the last site feeds the pooling, then fc
    code = repact.graph_module.code
    last = code.index("activation_sites.site_18")
    assert code.index("self.pool", last) < code.index("self.fc", last)


def test_teacher_parameters_are_unchanged_by_distillation(plugins, tmp_path) -> None:
    ctx = method_context(plugins, tmp_path, method="laf_repact", T=1, epochs=1,
                         architecture="vgg11")
    before = {k: v.clone() for k, v in ctx.ann.state_dict().items()}
    build_distilled(ctx, label="laf_repact", use_laf=True, use_kd=True, relu_last=True)
    after = ctx.ann.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_training_is_deterministic_on_cpu(plugins, tmp_path) -> None:
    weights = []
    for run in range(2):
        ctx = method_context(plugins, tmp_path / str(run), method="sdt", T=2, epochs=1,
                             architecture="vgg11")
        network = build_sdt(ctx)
        weights.append({k: v.clone() for k, v in network.state_dict().items()})
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    trained = [k for k in weights[0] if k.endswith("weight")]
    untrained = trainable_snn(method_context(plugins, tmp_path / "x", method="sdt", T=2,
                                             epochs=0, architecture="vgg11")).state_dict()
    assert any(not torch.equal(weights[0][k], untrained[k]) for k in trained)


def test_divergence_is_reported_with_epoch_and_loss(plugins, tmp_path) -> None:
    ctx = method_context(plugins, tmp_path, method="sdt", T=1, epochs=1,
                         architecture="vgg11")
    network = trainable_snn(ctx)
    with pytest.raises(TrainingDivergedError, match=r"epoch 1/1.*loss = nan"):
        ctx.train(network, loss_fn=lambda net, x, y: net(x.unsqueeze(0)).sum() * math.nan)


EVENTS_DATASET = """
import torch
from torch.utils.data import TensorDataset
from snnbench_suite import (DatasetInfo, DatasetSpec, DatasetSplits, TrainConfig, hookimpl)

def load(request):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(40, 3, 2, 8, 8, generator=g) > 0.7).float()  # 3 frames
    y = torch.arange(40) % 2
    data = TensorDataset(x, y)
    info = DatasetInfo(name="tiny_events", version="1", task="classification",
                       modality="events", num_classes=2, input_shape=(2, 8, 8),
                       fingerprint="tiny", num_frames=3)
    return DatasetSplits(info=info, train=data, train_eval=data, test=data,
                         calibration_indices=tuple(range(8)))

@hookimpl
def snnbench_register_datasets(register):
    register(DatasetSpec(name="tiny_events", version="1", task="classification",
                         modality="events", load=load,
                         ann_training=TrainConfig(epochs=1), snn_training=TrainConfig(epochs=1)))
"""


def test_event_data_is_fed_one_frame_per_step_and_T_is_checked(tmp_path, capsys,
                                                               install_plugin) -> None:
    install_plugin("tiny_events_plugin", EVENTS_DATASET)
    code = main(["run", "--methods", "sdt,naive", "--datasets", "tiny_events", "--T", "2,5",
                 "--archs", "vgg11", "--results", str(tmp_path / "r"),
                 "--cache", str(tmp_path / "c"), "--quiet"])
    assert code == 1
    records = {json.loads(p.read_text())["cell"]["method"]: json.loads(p.read_text())
               for p in (tmp_path / "r").glob("*.json")}
    assert records["naive"]["status"] == "skipped"  # conversion methods declare static only
    assert "supports static data" in records["naive"]["error"]["message"]
    sdt = records["sdt"]
    assert sdt["status"] == "failed"
    assert "T = 5 is larger than the 3 frames" in sdt["error"]["message"]
    assert sdt["per_T"] == [] and "builds" not in sdt  # refused before any training


def test_an_ann_on_event_data_learns_from_the_mean_of_the_frames() -> None:
    # Two frames of one sample, [B=1, T=2, C=1, H=1, W=2]: their mean is [[2, 3]].
    from snnbench_suite.execute import frame_mean_loss
    from snnbench_suite.snn.encoding import FrameMean

    frames = torch.tensor([[[[[1.0, 2.0]]], [[[3.0, 4.0]]]]])
    assert torch.equal(FrameMean()(frames), torch.tensor([[[[2.0, 3.0]]]]))
    ann = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        ann[1].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    # logits (2, 3) for label 1: -log softmax = log(1 + e^-1)
    loss = frame_mean_loss(ann, frames, torch.tensor([1]))
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
