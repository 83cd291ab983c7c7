"""Tests of the example plugin, written with snnbench's helpers for plugin authors
(`snnbench_suite.testing`): each test builds its own plugin manager, and runs cells on the
toy dataset and architecture so the whole file takes seconds."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

example = pytest.importorskip(
    "snnbench_example_plugin",
    reason="the example plugin is not installed: pip install ./examples/snnbench-example-plugin",
)

from snnbench_suite import ArchitectureRequest, UsageError, snn, testing  # noqa: E402


@pytest.fixture
def plugins():
    """snnbench's built-in plugins, the toy dataset and architecture, and this plugin."""
    return testing.plugin_manager(example)


def test_registers_one_method_one_architecture_one_layout(plugins) -> None:
    status = plugins.status("snnbench_example_plugin")
    assert status.registered == {"methods": ["example_halfinit"],
                                 "architectures": ["example_lenet"],
                                 "tables": ["example_latency"]}
    assert plugins.methods.get("example_halfinit").version == "1"


def test_installed_through_the_entry_point_group() -> None:
    plugins = testing.plugin_manager(installed="all", toy=False)
    status = plugins.status("example_plugin")
    assert status is not None, "not installed: pip install ./examples/snnbench-example-plugin"
    assert (status.status, status.distribution) == ("loaded", "snnbench-example-plugin")
    assert status.version == example.__version__
    assert plugins.methods.origin("example_halfinit") == "example_plugin"


def test_a_cell_runs_and_its_record_describes_the_method(plugins, tmp_path) -> None:
    record = testing.run_one_cell(plugins, tmp_path, method="example_halfinit", T=(1, 4))
    assert record["status"] == "ok"
    assert [entry["T"] for entry in record["per_T"]] == [1, 4]
    assert record["method"]["version"] == "1"
    assert record["cell"]["method_params"] == {"percentile": 99.9, "v_init": 0.5}
    [built] = record["builds"]
    # toy_cnn has two activations, so two thresholds, all positive.
    assert len(built["thresholds"]) == 2 and min(built["thresholds"]) > 0
    assert built["v_init_fraction"] == 0.5


def test_membrane_starts_at_half_the_threshold(plugins, tmp_path) -> None:
    ctx = testing.method_context(plugins, tmp_path, method="example_halfinit",
                                 architecture=testing.TOY_ARCHITECTURE,
                                 dataset=testing.TOY_DATASET, T=None)
    network = example.method.build(ctx)
    neurons = [m for m in network.modules() if isinstance(m, snn.IFNeuron)]
    assert len(neurons) == 2
    for neuron, threshold in zip(neurons, ctx.notes["thresholds"], strict=True):
        assert float(neuron.threshold) == pytest.approx(threshold, rel=1e-5)
        assert float(neuron.v_init) == pytest.approx(threshold / 2, rel=1e-5)


def test_half_init_rounds_where_zero_init_floors() -> None:
    """Threshold 1, input 0.4 for 4 steps (accumulated 1.6): started at 0, v goes 0.4,
    0.8, 1.2 (spike, 0.2), 0.6: floor(1.6) = 1 spike; started at 0.5, v goes 0.9, 1.3
    (spike, 0.3), 0.7, 1.1 (spike): round(1.6) = 2 spikes."""
    x = torch.full((4, 1), 0.4)  # folded [T*B, features] with T = 4, B = 1
    zero = snn.IFNeuron(1.0, amplitude="threshold")(x, 4)
    half = snn.IFNeuron(1.0, amplitude="threshold", v_init=0.5)(x, 4)
    assert zero.flatten().tolist() == [0, 0, 1, 0]
    assert half.flatten().tolist() == [0, 1, 0, 1]


def test_with_v_init_zero_it_is_robust_conversion(plugins, tmp_path) -> None:
    """v_init = 0 leaves exactly snnbench's `robust` (99.9th percentile) conversion."""
    steps = 8
    ours = testing.method_context(plugins, tmp_path / "a", method="example_halfinit",
                                  architecture=testing.TOY_ARCHITECTURE,
                                  dataset=testing.TOY_DATASET, T=None,
                                  overrides=["example_halfinit.v_init=0"])
    theirs = testing.method_context(plugins, tmp_path / "b", method="robust",
                                    architecture=testing.TOY_ARCHITECTURE,
                                    dataset=testing.TOY_DATASET, T=None)
    x = torch.cat([images for images, _ in ours.loader("test")])[:32]
    with torch.no_grad():
        a = example.method.build(ours)(snn.direct(x, steps))
        b = plugins.methods.get("robust").build(theirs)(snn.direct(x, steps))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("setting", ["percentile=0", "percentile=101", "v_init=1",
                                     "v_init=-0.1"])
def test_bad_parameters_are_refused_before_anything_runs(plugins, tmp_path, setting) -> None:
    with pytest.raises(UsageError, match=setting.split("=")[0]):
        testing.run_one_cell(plugins, tmp_path, method="example_halfinit",
                             overrides=[f"example_halfinit.{setting}"])
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (2, 48, 48)])
def test_lenet_builds_traces_and_converts(shape) -> None:
    model = example.architecture.build(ArchitectureRequest(num_classes=10, input_shape=shape))
    x = torch.rand(4, *shape)
    assert model(x).shape == (4, 10)
    model.eval()
    network = snn.prepare_conversion(model).to_spiking(lambda site: snn.IFNeuron(1.0))
    assert network(snn.direct(x, 3)).shape == (3, 4, 10)


def test_lenet_parameter_count_by_hand() -> None:
    # 1x32x32 input, width 1: padded 5x5 convolutions keep 32x32, so the first linear
    # layer reads 16 maps of 8x8 (not LeNet-5's 5x5); BN adds a scale and a shift per unit.
    model = example.architecture.build(ArchitectureRequest(num_classes=10,
                                                           input_shape=(1, 32, 32)))
    count = sum(p.numel() for p in model.parameters())
    conv = (1 * 25 + 1) * 6 + (6 * 25 + 1) * 16
    dense = (16 * 8 * 8 + 1) * 120 + (120 + 1) * 84 + (84 + 1) * 10
    assert count == conv + dense + 2 * (6 + 16 + 120 + 84)


@pytest.mark.parametrize(("request_kwargs", "message"), [
    ({"width": 0.0}, "width"), ({"num_classes": 1}, "2 classes"),
    ({"input_shape": (1, 3, 3)}, "too small"), ({"input_shape": (64,)}, r"\(C, H, W\)"),
])
def test_lenet_refuses_requests_it_cannot_take(request_kwargs, message) -> None:
    kwargs = {"num_classes": 10, "input_shape": (1, 8, 8), **request_kwargs}
    with pytest.raises(ValueError, match=message):
        example.architecture.build(ArchitectureRequest(**kwargs))


def _rows(*rows: tuple) -> pd.DataFrame:
    columns = ["dataset", "method", "architecture", "seed", "cell_id", "T", "top1",
               "ann_top1", "status"]
    return pd.DataFrame(rows, columns=columns)


def test_latency_table_by_hand() -> None:
    frame = _rows(
        # two seeds: ANN 90 and 92 (mean 91); mean SNN 50 at T=1, 89.5 at T=4, 90.5 at T=8
        ("digits", "m", "a", 0, "c0", 1, 48.0, 90.0, "ok"),
        ("digits", "m", "a", 0, "c0", 4, 89.0, 90.0, "ok"),
        ("digits", "m", "a", 0, "c0", 8, 90.0, 90.0, "ok"),
        ("digits", "m", "a", 1, "c1", 1, 52.0, 92.0, "ok"),
        ("digits", "m", "a", 1, "c1", 4, 90.0, 92.0, "ok"),
        ("digits", "m", "a", 1, "c1", 8, 91.0, 92.0, "ok"),
        # never within 1 point; a failed cell is ignored
        ("digits", "n", "a", 0, "c2", 4, 70.0, 95.0, "ok"),
        ("digits", "n", "a", 1, "c3", None, math.nan, math.nan, "failed"),
    )
    table = example.table.latency(frame)
    assert table.columns.tolist() == example.table.COLUMNS
    m, n = table.to_dict("records")
    assert (m["ANN"], m["best SNN"], m["best at T"], m["T within 1 of ANN"]) == (
        "91.00 ± 1.41 (n=2)", "90.50", 8, 8)
    assert (n["ANN"], n["best SNN"], n["T within 1 of ANN"]) == ("95.00 (n=1)", "70.00", "—")


def test_latency_table_from_real_records(plugins, tmp_path) -> None:
    record = testing.run_one_cell(plugins, tmp_path, method="example_halfinit", T=(1, 2))
    text = testing.render_table(plugins, tmp_path / "results", "example_latency", fmt="csv")
    header, row = text.strip().splitlines()
    assert header == ",".join(example.table.COLUMNS)
    best = max(entry["top1"] for entry in record["per_T"])
    assert row.startswith(f"toy_digits,example_halfinit,toy_cnn,{record['ann']['top1']:.2f}")
    assert f",{best:.2f}," in row
