"""SNN Calibration: `calib` (advanced), `calib.light` and `calib.none`.

Li, Deng, Dong, Gong, Gu. A Free Lunch From ANN: Towards Efficient, Accurate Spiking Neural
Networks Calibration. ICML 2021; extended with BN networks as "Converting Artificial Neural
Networks to Spiking Neural Networks via Parameter Calibration", arXiv 2205.10121.

Pipeline (per T, since thresholds and corrections depend on T):
1. BN is folded into the preceding conv/linear; every ReLU becomes an IF neuron with reset
   by subtraction, spike amplitude V_th and half a level (V_th / 2) of extra charge, so
   its rate rounds instead of flooring. The classifier does not spike; its output is
   accumulated over T.
2. Thresholds from the ANN's activations on the calibration batches, averaged over batches
   with an EMA (momentum 0.9): the maximum (`calib.none`) or the MMSE search over
   `max * (1 - 0.01 i)`, i = 0..94, minimising `mean((a - clipfloor(a; V, T))^2)`.
3. Layer by layer, in order, each layer seeing the already-calibrated earlier ones, on one
   calibration batch:
   - `calib.light`, bias calibration: b <- b - (mu_snn - mu_ann), means per channel over
     batch and space, mu_snn of the time-averaged SNN output;
   - `calib` (advanced), potential calibration: v(0) += T * (E_batch[a_ann] - E_batch[rate]),
     element-wise (here after the layer's bias calibration, and with the step chosen per
     element, see the deviations); preceded by weight calibration when
     `weight_calibration` is on (by
     default only for datasets with more than 100 classes, as the authors' code runs it
     only on ImageNet): per layer, Adam on the layer's weights only (lr 1e-5, 5000
     iterations, batch 32, cosine to 0) minimising mean((clipfloor_STE(W x_bar + b) -
     a_ann)^2), x_bar the SNN's time-averaged input.
   `calib.none` stops after step 2 (max thresholds with the shift, no calibration).

Deviations from the paper and the authors' code (each a parameter; the paper's choice is
one `--set` away):
- `shift_as = initial_potential` (paper: `input_current`). The half level of charge starts
  in v(0) = V_th / 2 instead of arriving as V_th / (2T) every step. A constant input gives
  the same spike count either way, but neurons fire their first spike earlier, so a deep
  network loses less to the time each layer waits for the one below.
- `search_offset = 0.5` (paper: 0). The MMSE search models the rounding that the half
  level gives; the paper searches with a floor and then adds the shift, so its thresholds
  fit a quantizer the network does not use.
- `channel_wise = true` (paper: one threshold per layer; the authors' code has the option,
  off in their scripts). The search and the EMA run per channel; dead channels keep the
  smallest threshold.
- `bias_first = true` and `potential_step_search = true` (paper: both false; `calib`
  only). Each layer gets bias calibration and then potential calibration, and each
  element takes, among `POTENTIAL_STEP_SCALES` times the paper's step (1 and 0 included),
  the one with the least squared error to the ANN on the calibration batch. The paper's
  step zeroes the element's mean error only if the rate moves in proportion to v(0). At
  small T it does not: an element whose input hardly varies across samples sits between
  two levels, and the whole step moves it to the other level, from an error of 0.2 V_th
  to one of 0.3 V_th, say.
- What these four choices are worth, measured on digits (seeds 0-2, the default
  100-epoch ANNs: vgg11 99.72, resnet20 99.54): mean test top-1 at T = 2 / T = 4, with
  one choice at a time set back to the paper's:
    these defaults            vgg11 97.69 / 99.54   resnet20 96.02 / 98.61
    shift_as=input_current          91.76 / 98.43            88.06 / 95.65
    search_offset=0                 96.02 / 99.26            93.06 / 97.87
    channel_wise=false              95.46 / 98.61            94.63 / 98.15
    the paper's PC (both false)     97.31 / 99.44            94.81 / 98.89
    all of the paper's choices      84.54 / 97.69            78.80 / 91.48
    (calib.light                    97.59 / 99.54            94.07 / 98.43)
- Calibration data is the dataset's fixed, seeded calibration subset of the (unaugmented)
  training split, not augmented training batches; its size is recorded. The threshold EMA
  runs over all of it in batches of `batch_size` (the authors: 7 batches of 128).
- The bias correction is applied as a per-channel constant input to the neuron, which is
  the same as changing the bias, but also works where a neuron sums several layers
  (residual additions).
- Weight calibration trains every conv/linear weight between the previous neurons and the
  calibrated one (both convolutions of a residual sum), and models the neuron's half
  level in its clip-floor (the authors' loss leaves the shift out). With fewer than
  `wc_samples` calibration samples it uses those there are.
- The authors' scripts simulate 32 steps whatever `--T` says; here T is the cell's T.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from snnbench_methods.calib_weights import calibrate_weights
from snnbench_methods.conversion import (
    BATCH_NORM_ANN_TRAITS,
    MIN_THRESHOLD,
    batches_of,
    require_activations,
)
from snnbench_methods.recipes import RELU_BN
from snnbench_suite import MethodContext, MethodSpec
from snnbench_suite.snn import (
    IFNeuron,
    InOrderRecorder,
    RecordedInputs,
    SpikingNetwork,
    ThresholdReLU,
    broadcast_channels,
    channel_max,
    channel_mean,
    ema,
    mmse_channel_thresholds,
    mmse_threshold,
    module_outputs,
    prepare_conversion,
    recording_outputs,
    require_average_pooling,
)

# Each variant's version changes only when its own results do: calib's went to 3 with its
# potential-calibration deviations, calib.light and calib.none are unchanged since 2.
VERSIONS = {"advanced": "3", "light": "2", "none": "2"}
SWITCH_VALUES = ("auto", "on", "off")
SHIFT_FORMS = ("initial_potential", "input_current")
# Above this many classes, weight calibration is on by default (ImageNet in the paper).
WC_AUTO_CLASSES = 100

PARAMS: dict[str, Any] = {
    "batch_size": 128,  # calibration batch: thresholds' EMA batches, BC/PC's one batch
    "momentum": 0.9,  # EMA of the per-batch thresholds
    "candidates": 95,  # MMSE search: max * (1 - 0.01 i), i < candidates
    "search_offset": 0.5,  # 0.5: the rounding the half-level shift gives; 0: the paper
    "shift_as": "initial_potential",  # or "input_current", the paper's V_th / (2T) per step
    "channel_wise": True,  # one threshold per channel (the paper: per layer)
    "weight_calibration": "auto",  # auto: on when the dataset has > 100 classes
    "wc_samples": 1024,
    "wc_iterations": 5000,
    "wc_lr": 1e-5,
    "wc_batch_size": 32,
}

# Only `calib` (advanced) has these: potential calibration's two deviations.
ADVANCED_PARAMS: dict[str, Any] = {
    "bias_first": True,  # bias calibration before each layer's PC (the paper: false)
    "potential_step_search": True,  # per-element PC step by least squares (the paper: false)
}

TRAITS = {
    **BATCH_NORM_ANN_TRAITS,
    "readout": "non-spiking classifier, output accumulated over T",
    "input_shift": "V_th / (2T) every step",
}


# --- thresholds ---------------------------------------------------------------------


Threshold = float | torch.Tensor  # per layer, or per channel `[C]`


@torch.no_grad()
def layer_thresholds(
    ann: nn.Module, sites: Mapping[str, nn.Module], batches: list[torch.Tensor],
    num_steps: int, *, search: bool, momentum: float, candidates: int, offset: float = 0.0,
    channel_wise: bool = False,
) -> dict[str, Threshold]:
    """Per site: the EMA over batches of the maximum or of the MMSE threshold, one per
    layer or (`channel_wise`) one per channel."""
    per_batch: dict[str, list[Threshold]] = {name: [] for name in sites}
    ann.eval()
    with recording_outputs(sites) as recorded:
        for x in batches:
            ann(x)
            for name, outputs in recorded.items():
                values = torch.cat(outputs)
                outputs.clear()
                per_batch[name].append(_batch_threshold(
                    values, num_steps, search=search, candidates=candidates, offset=offset,
                    channel_wise=channel_wise))
    return {name: ema(values, momentum) for name, values in per_batch.items()}


def _batch_threshold(values: torch.Tensor, num_steps: int, *, search: bool, candidates: int,
                     offset: float, channel_wise: bool) -> Threshold:
    if channel_wise:
        if search:
            return mmse_channel_thresholds(values, num_steps, candidates=candidates,
                                           offset=offset)
        return channel_max(values)
    if search:
        return mmse_threshold(values, num_steps, candidates=candidates, offset=offset)
    return float(values.max())


def half_level_neuron(threshold: Threshold, num_steps: int, shift_as: str) -> IFNeuron:
    """The IF neuron of a calibrated layer: reset by subtraction, amplitude V_th, and half
    a level of extra charge, V_th / 2 over the window, so its rate rounds instead of
    flooring. `initial_potential` puts it in v(0); `input_current` adds V_th / (2T) every
    step, as the paper does. Both give the same count for a constant input; the first
    makes neurons fire a step earlier, which a deep network at small T needs."""
    v_th = torch.as_tensor(threshold, dtype=torch.float32).clamp_min(MIN_THRESHOLD)
    if shift_as == "initial_potential":
        return IFNeuron(v_th, reset="subtract", amplitude="threshold", v_init=v_th / 2)
    return IFNeuron(v_th, reset="subtract", amplitude="threshold",
                    input_shift=v_th / (2 * num_steps))


# --- bias and potential calibration ---------------------------------------------------


# Multiples of potential calibration's step tried per element by the step search; the
# paper's full step comes first so that it wins ties, then no step at all.
POTENTIAL_STEP_SCALES = (1.0, 0.0, 0.5, 0.75, 1.25, 0.25, 1.5)


@torch.no_grad()
def calibrate_layers(
    ann: nn.Module, network: SpikingNetwork, pairs: list[tuple[nn.Module, IFNeuron]],
    x: torch.Tensor, num_steps: int, mode: str, *, bias_first: bool = False,
    step_search: bool = False,
) -> list[float]:
    """Bias ('light') or potential ('advanced') calibration, layer by layer in order.

    `pairs` holds (ANN activation module, SNN neuron) per layer. For 'advanced',
    `bias_first` applies bias calibration to a layer before its potential calibration, and
    `step_search` gives each element the multiple of the potential step (among
    `POTENTIAL_STEP_SCALES`) with the least squared error to the ANN on `x`, instead of the
    whole step. Returns, per layer, the mean absolute error the correction targets,
    measured before correcting that layer.
    """
    if mode not in ("light", "advanced"):
        raise ValueError(f"unknown calibration mode {mode!r}; use 'light' or 'advanced'")
    ann_outputs = module_outputs(ann, [a for a, _ in pairs], x)
    errors = []
    # Each neuron's input is recorded once, resuming where the previous neuron's stopped;
    # what a neuron receives does not depend on its own corrections, so it is simulated
    # alone for each of them.
    recorder = InOrderRecorder(network, x, num_steps)
    for (_, neuron), target in zip(pairs, ann_outputs, strict=True):
        inputs = recorder.inputs(neuron)
        rate = inputs.rates(neuron)
        if mode == "light":
            gap = channel_mean(rate) - channel_mean(target)
            errors.append(float(gap.abs().mean()))
            neuron.input_shift = neuron.input_shift - gap
            continue
        errors.append(float((target.mean(0) - rate.mean(0)).abs().mean()))
        if bias_first:
            neuron.input_shift = neuron.input_shift - (channel_mean(rate) - channel_mean(target))
            rate = inputs.rates(neuron)
        # v_init may be per channel `[C]`: shape it like one sample before adding.
        start = broadcast_channels(neuron.v_init, rate.shape)
        step = num_steps * (target.mean(0) - rate.mean(0))
        if step_search:
            step = _least_squares_scale(neuron, inputs, target, start, step) * step
        neuron.v_init = start + step
    return errors


def _least_squares_scale(
    neuron: IFNeuron, inputs: RecordedInputs, target: torch.Tensor, start: torch.Tensor,
    step: torch.Tensor,
) -> torch.Tensor:
    """Per element, the scale s in `POTENTIAL_STEP_SCALES` for which v(0) = start + s * step
    gives the least mean squared error to `target` over the batch."""
    best_error: torch.Tensor | None = None
    best_scale = torch.zeros_like(step)
    for scale in POTENTIAL_STEP_SCALES:
        neuron.v_init = start + scale * step
        error = (inputs.rates(neuron) - target).pow(2).mean(0)
        if best_error is None:
            best_error, best_scale = error, torch.full_like(step, scale)
            continue
        better = error < best_error
        best_error = torch.where(better, error, best_error)
        best_scale = torch.where(better, torch.full_like(step, scale), best_scale)
    neuron.v_init = start
    return best_scale


# --- the method -----------------------------------------------------------------------


def _wc_enabled(params: Mapping[str, Any], num_classes: int) -> bool:
    choice = str(params["weight_calibration"])
    return choice == "on" or (choice == "auto" and num_classes > WC_AUTO_CLASSES)


def _build(ctx: MethodContext, mode: str, name: str) -> nn.Module:
    if ctx.ann is None or ctx.T is None:
        raise ValueError(f"{name} needs a trained ANN and a T (it is a per-T method)")
    num_steps, params = ctx.T, ctx.params
    start = time.perf_counter()
    graph = prepare_conversion(ctx.ann)
    require_average_pooling(graph.module, name)
    require_activations(graph, (nn.ReLU, nn.ReLU6, ThresholdReLU), name)
    ann = graph.module.to(ctx.device).eval()
    batches = batches_of(ctx.loader("calibration", batch_size=int(params["batch_size"])),
                         ctx.device)
    site_modules = graph.site_modules()
    thresholds = layer_thresholds(
        ann, site_modules, batches, num_steps, search=mode != "none",
        momentum=float(params["momentum"]), candidates=int(params["candidates"]),
        offset=float(params["search_offset"]), channel_wise=bool(params["channel_wise"]))
    neurons = {}
    for site in graph.sites:
        neurons[site.name] = half_level_neuron(thresholds[site.name], num_steps,
                                               str(params["shift_as"]))
    network = graph.to_spiking(lambda site: neurons[site.name]).to(ctx.device)
    ctx.notes.update(
        calibration=mode, calibration_samples=sum(len(b) for b in batches),
        threshold_rule="max (EMA over batches)" if mode == "none" else "MMSE (EMA over batches)",
        thresholds=[_summary(thresholds[s.name]) for s in graph.sites],
        threshold_s=round(time.perf_counter() - start, 3),
    )
    pairs = [(site_modules[s.name], neurons[s.name]) for s in graph.sites]
    calibrate_start = time.perf_counter()
    if mode == "advanced" and _wc_enabled(params, ctx.data.info.num_classes):
        samples = torch.cat(batches)[: int(params["wc_samples"])]
        ctx.notes["wc_samples"] = len(samples)
        ctx.notes["wc_loss_first_last"] = calibrate_weights(
            ann, network, pairs, [s.name for s in graph.sites], samples, num_steps,
            iterations=int(params["wc_iterations"]), lr=float(params["wc_lr"]),
            batch_size=int(params["wc_batch_size"]), seed=ctx.seed)
    ctx.notes["weight_calibration"] = "wc_samples" in ctx.notes
    if mode != "none":
        errors = calibrate_layers(
            ann, network, pairs, batches[0], num_steps, mode,
            bias_first=bool(params.get("bias_first", False)),
            step_search=bool(params.get("potential_step_search", False)))
        ctx.notes["calibration_batch"] = len(batches[0])
        ctx.notes["pre_calibration_error"] = [round(e, 6) for e in errors]
    ctx.notes["calibration_s"] = round(time.perf_counter() - calibrate_start, 3)
    return network


def _summary(threshold: Threshold) -> float:
    """A layer's threshold for the record: the value, or the channels' mean."""
    return round(float(torch.as_tensor(threshold).float().mean()), 6)


def check_params(params: Mapping[str, Any]) -> None:
    positive_ints = ("batch_size", "candidates", "wc_samples", "wc_iterations", "wc_batch_size")
    for key in positive_ints:
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    if not params["candidates"] <= 100:
        raise ValueError(
            f"candidates must be at most 100 (candidate i is max * (1 - 0.01 i), which must "
            f"stay positive), got {params['candidates']}")
    if not 0 <= float(params["search_offset"]) < 1:
        raise ValueError(f"search_offset must be in [0, 1), got {params['search_offset']}")
    if not 0 <= float(params["momentum"]) < 1:
        raise ValueError(f"momentum must be in [0, 1), got {params['momentum']}")
    if not float(params["wc_lr"]) > 0 or math.isnan(float(params["wc_lr"])):
        raise ValueError(f"wc_lr must be > 0, got {params['wc_lr']}")
    if params["shift_as"] not in SHIFT_FORMS:
        raise ValueError(f"shift_as must be one of {', '.join(SHIFT_FORMS)}, "
                         f"got {params['shift_as']!r}")
    for key in ("channel_wise", *ADVANCED_PARAMS):
        if key in params and not isinstance(params[key], bool):
            raise ValueError(f"{key} must be true or false, got {params[key]!r}")
    if params["weight_calibration"] not in SWITCH_VALUES:
        raise ValueError(f"weight_calibration must be one of {', '.join(SWITCH_VALUES)}, "
                         f"got {params['weight_calibration']!r}")


def _spec(name: str, mode: str, description: str) -> MethodSpec:
    build: Callable[[MethodContext], nn.Module] = lambda ctx: _build(ctx, mode, name)  # noqa: E731
    return MethodSpec(
        name=name, family="conversion", version=VERSIONS[mode], t_mode="per_t", build=build,
        ann_recipe=RELU_BN, params={**PARAMS, **(ADVANCED_PARAMS if mode == "advanced" else {})},
        check_params=check_params,
        traits={**TRAITS, "calibration": mode}, description=description,
        # Calibration matches activations layer by layer, whatever the output is: the
        # detection paper's extension converts detectors the same way.
        tasks=("classification", "detection"),
        citation="Li, Deng, Dong, Gong, Gu. A Free Lunch From ANN: Towards Efficient, "
        "Accurate Spiking Neural Networks Calibration. ICML 2021 (arXiv 2106.06984; "
        "extended: arXiv 2205.10121)",
    )


CALIB = _spec("calib", "advanced",
              "SNN Calibration, advanced: MMSE thresholds, potential (+ weight) calibration")
CALIB_LIGHT = _spec("calib.light", "light",
                    "SNN Calibration, light: MMSE thresholds and bias calibration")
CALIB_NONE = _spec("calib.none", "none",
                   "SNN Calibration without calibration: max thresholds with the V_th/(2T) shift")
