"""The ANN cache: reused across runs, corrupt or truncated artifacts detected and rebuilt."""

from __future__ import annotations

import torch
from torch import nn

from snnbench_suite.artifacts import WeightCache, artifact_key
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
