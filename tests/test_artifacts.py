"""The ANN cache: reused across runs, corrupt or truncated artifacts detected and rebuilt."""

from __future__ import annotations

import importlib
import textwrap

import torch
from torch import nn

from snnbench_suite.artifacts import WeightCache, _file_digest, artifact_key
from snnbench_suite.plugins import load_plugins
from snnbench_suite.testing import run_cell


def small_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))


def test_store_and_load_round_trip(tmp_path) -> None:
    cache = WeightCache(tmp_path)
    source = small_model(0)
    cache.store("k", source, {"top1": 97.5})
    target = small_model(1)
    assert cache.load("k", target) == {"top1": 97.5}
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(),
                                                 target.state_dict().values(), strict=True))


def test_truncated_or_corrupt_or_incomplete_artifacts_are_not_trusted(tmp_path) -> None:
    cache = WeightCache(tmp_path)
    cache.store("k", small_model(0), {"top1": 1.0})
    weights = tmp_path / "anns" / "k.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # truncated
    assert cache.load("k", small_model(1)) is None
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # one flipped byte
    assert cache.load("k", small_model(1)) is None
    weights.write_bytes(data)
    (tmp_path / "anns" / "k.json").unlink()  # crashed before the metadata was written
    assert cache.load("k", small_model(1)) is None


def test_keys_depend_on_every_part() -> None:
    assert artifact_key(["vgg11", 0.25, 0]) != artifact_key(["vgg11", 0.25, 1])
    assert artifact_key(["vgg11", 0.25, 0]) == artifact_key(["vgg11", 0.25, 0])


def test_a_second_run_loads_the_ann_and_a_corrupt_one_is_retrained(plugins, tmp_path) -> None:
    first = run_cell(plugins, tmp_path, method="naive", steps=[2], architecture="vgg11")
    assert first["ann"]["source"].startswith("trained")
    second = run_cell(plugins, tmp_path, method="robust", steps=[2], architecture="vgg11")
    assert second["ann"]["source"].startswith("cache")
    assert second["ann"]["top1"] == first["ann"]["top1"]
    for artifact in (tmp_path / "cache" / "anns").glob("*.safetensors"):
        artifact.write_bytes(artifact.read_bytes()[:100])
    third = run_cell(plugins, tmp_path, method="naive", steps=[2], architecture="vgg11")
    assert third["ann"]["source"].startswith("trained")
    assert third["ann"]["top1"] == first["ann"]["top1"]  # deterministic retraining


BUILDER = """
from torch import nn

from snnbench_suite import ArchitectureSpec, hookimpl
from edited_arch.helpers import HIDDEN


def build(request):
    channels, height, width = request.input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, HIDDEN),
                         request.activation(), nn.Linear(HIDDEN, request.num_classes))


@hookimpl
def snnbench_register_architectures(register):
    register(ArchitectureSpec(name="edited_mlp", family="mlp", build=build,
                              description="an MLP whose width lives in a helper module"))
"""


def test_an_edit_to_a_helper_beside_the_builder_retrains_the_ann(tmp_path, monkeypatch) -> None:
    # The builder's own module is unchanged; only a module it imports from its package
    # is edited (as the built-in architectures share common.py).
    package = tmp_path / "edited_arch"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("HIDDEN = 16\n")
    (package / "builder.py").write_text(textwrap.dedent(BUILDER))
    monkeypatch.syspath_prepend(str(tmp_path))
    builder = importlib.import_module("edited_arch.builder")
    plugins = load_plugins(strict=False, warn=lambda _m: None, extra=[("edited_arch", builder)])

    def ann_source() -> str:
        cell = run_cell(plugins, tmp_path, method="naive", steps=[2], architecture="edited_mlp")
        return str(cell["ann"]["source"])

    assert ann_source().startswith("trained")
    assert ann_source().startswith("cache")
    (package / "helpers.py").write_text("HIDDEN = 16  # edited\n")
    _file_digest.cache_clear()  # sources are read once per process; a new run reads them
    assert ann_source().startswith("trained")
