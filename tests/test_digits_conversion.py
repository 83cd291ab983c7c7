"""End to end on the embedded digits: a BN-trained network converted at large T matches its
ANN; naive conversion at small T does not (the effect the papers study)."""

from __future__ import annotations

from pathlib import Path

import torch

from snnbench_suite.execute import CellRunner, RunSettings
from snnbench_suite.matrix import Overrides, build_plan
from snnbench_suite.progress import Reporter


def test_converted_bn_network_at_T512_is_within_one_point_of_its_ann(plugins, tmp_path: Path):
    plan = build_plan(plugins, methods=["naive"], architectures=["vgg11"], datasets=["digits"],
                      seeds=[0], steps=[4, 512], overrides=Overrides(), epochs=None)
    settings = RunSettings(results_dir=tmp_path / "r", cache_dir=tmp_path / "c",
                           data_root=None, device=torch.device("cpu"))
    result = CellRunner(plugins, settings, Reporter()).run(plan.cells[0], [4, 512])
    ann = result["ann"]["top1"]
    by_t = {e["T"]: e for e in result["per_T"]}
    assert ann > 95.0
    # One point is 3.6 of the 360 test samples: the few samples whose ANN logits are
    # nearly tied may flip at finite T (measured: 2 samples, 0.56 points, seed 0).
    assert abs(by_t[512]["top1"] - ann) <= 1.0
    assert by_t[4]["top1"] < ann - 20  # naive conversion is poor at small T
    assert 0 < by_t[512]["firing_rate"] < 1
    assert "one simulation with T = 512" in by_t[4]["t_source"]


def test_calibration_at_small_T_beats_naive_and_the_papers_shift(plugins, tmp_path: Path):
    """calib and calib.light at T = 4 on one BN-trained vgg11 (one ANN, shared through the
    cache): close to the ANN, far above naive, and above calib with the paper's per-step
    shift and floor search (measured, seed 0: ANN 98.89, calib 97.78, calib.light 97.22,
    the paper's form 88.06, naive 9.72). The bound on the gap to the ANN leaves room for
    a few test digits (one is 0.28 points) to flip with the thread count."""
    settings = RunSettings(results_dir=tmp_path / "r", cache_dir=tmp_path / "c",
                           data_root=None, device=torch.device("cpu"))
    runner = CellRunner(plugins, settings, Reporter())

    def top1_at_4(method: str, overrides: list[str]) -> tuple[float, float]:
        plan = build_plan(plugins, methods=[method], architectures=["vgg11"],
                          datasets=["digits"], seeds=[0], steps=[4],
                          overrides=Overrides.parse(overrides), epochs=None)
        result = runner.run(plan.cells[0], [4])
        return result["per_T"][0]["top1"], result["ann"]["top1"]

    calib, ann = top1_at_4("calib", [])
    light, _ = top1_at_4("calib.light", [])
    paper, _ = top1_at_4("calib", ["calib.shift_as=input_current", "calib.search_offset=0",
                                   "calib.channel_wise=false", "calib.bias_first=false",
                                   "calib.potential_step_search=false"])
    naive, _ = top1_at_4("naive", [])
    assert ann > 95.0
    assert ann - min(calib, light) <= 3.0
    assert min(calib, light) > naive + 30
    assert min(calib, light) > paper + 5
