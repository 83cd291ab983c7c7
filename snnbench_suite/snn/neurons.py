"""IF and LIF neurons on `[T, B, ...]` sequences, pure per call.

A forward call simulates the whole window from the initial state and returns the output
of every step; no membrane survives between calls, so there is no reset to forget.

One step, for input current x(t):
    charge: v <- decay * v + x(t) + input_shift
    fire:   s = H(v - V_th)            (surrogate gradient in training)
    reset:  v <- v - s * V_th          ("subtract", soft reset)
            v <- v * (1 - s)           ("zero", hard reset)
    output: s * amplitude              (amplitude 1, or V_th for conversion methods)
IF is decay = 1; LIF is decay < 1 (TET's tau = 0.5 is this factor).
"""

from __future__ import annotations

from typing import Literal

import torch

from snnbench_suite.snn.surrogate import Surrogate, Triangle
from snnbench_suite.snn.temporal import TemporalModule, fold_time, unfold_time

Reset = Literal["subtract", "zero"]
Amplitude = Literal["one", "threshold"]
TensorLike = float | torch.Tensor


def _as_tensor(value: TensorLike) -> torch.Tensor:
    return torch.as_tensor(value, dtype=torch.float32).detach().clone()


def broadcast_channels(value: torch.Tensor, step_shape: torch.Size) -> torch.Tensor:
    """Shape a scalar or per-channel value `[C]` to broadcast over one step `[B, C, ...]`."""
    if value.dim() == 0 or value.numel() == 1:
        return value.reshape(())
    if value.dim() == 1:
        if len(step_shape) < 2 or step_shape[1] != value.numel():
            raise ValueError(
                f"per-channel value of {value.numel()} channels does not fit a step of "
                f"shape {tuple(step_shape)} (channels are dim 1)"
            )
        return value.reshape(value.numel(), *([1] * (len(step_shape) - 2)))
    return value  # per element, shaped like one sample


class SpikingNeuron(TemporalModule):
    """Integrate-and-fire neuron with every option the methods need.

    threshold: scalar or per-channel `[C]`; learnable when `learnable_threshold`.
    v_init: initial membrane, scalar or per element (shaped like one sample, e.g. [C,H,W]).
    input_shift: constant current added every step (e.g. V_th / (2T)).
    """

    threshold: torch.Tensor
    v_init: torch.Tensor
    input_shift: torch.Tensor

    def __init__(
        self,
        threshold: TensorLike = 1.0,
        *,
        decay: float = 1.0,
        reset: Reset = "subtract",
        amplitude: Amplitude = "one",
        v_init: TensorLike = 0.0,
        input_shift: TensorLike = 0.0,
        surrogate: Surrogate | None = None,
        learnable_threshold: bool = False,
    ) -> None:
        super().__init__()
        if reset not in ("subtract", "zero"):
            raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
        if amplitude not in ("one", "threshold"):
            raise ValueError(f"amplitude must be 'one' or 'threshold', got {amplitude!r}")
        if not 0 < decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        threshold_tensor = _as_tensor(threshold)
        if bool((threshold_tensor <= 0).any()):
            raise ValueError("thresholds must be positive")
        if learnable_threshold:
            self.threshold = torch.nn.Parameter(threshold_tensor)
        else:
            self.register_buffer("threshold", threshold_tensor)
        self.register_buffer("v_init", _as_tensor(v_init))
        self.register_buffer("input_shift", _as_tensor(input_shift))
        self.decay = decay
        self.reset = reset
        self.amplitude = amplitude
        self.surrogate = surrogate if surrogate is not None else Triangle(1.0)

    def extra_repr(self) -> str:
        th = self.threshold
        th_desc = f"{th.item():.4g}" if th.numel() == 1 else f"per-channel[{th.numel()}]"
        return (
            f"threshold={th_desc}, decay={self.decay}, reset={self.reset}, "
            f"amplitude={self.amplitude}"
        )

    def forward(self, x: torch.Tensor, num_steps: int) -> torch.Tensor:
        steps = unfold_time(x, num_steps)
        step_shape = steps.shape[1:]
        threshold = broadcast_channels(self.threshold, step_shape).to(steps.dtype)
        shift = broadcast_channels(self.input_shift, step_shape).to(steps.dtype)
        v_init = broadcast_channels(self.v_init, step_shape).to(steps.dtype)
        if torch.is_grad_enabled() and (steps.requires_grad or threshold.requires_grad):
            out = self._simulate_differentiable(steps, threshold, shift, v_init)
        else:
            out = self._simulate_inference(steps, threshold, shift, v_init)
        return fold_time(out)

    def _simulate_differentiable(
        self,
        steps: torch.Tensor,
        threshold: torch.Tensor,
        shift: torch.Tensor,
        v_init: torch.Tensor,
    ) -> torch.Tensor:
        v = torch.zeros_like(steps[0]) + v_init
        outputs = []
        for current in steps:
            v = v * self.decay + current + shift if self.decay != 1.0 else v + current + shift
            spike = self.surrogate.spike(v - threshold)
            if self.reset == "subtract":
                v = v - spike * threshold
            else:
                v = v * (1 - spike)
            outputs.append(spike * threshold if self.amplitude == "threshold" else spike)
        return torch.stack(outputs)

    @torch.no_grad()
    def _simulate_inference(
        self,
        steps: torch.Tensor,
        threshold: torch.Tensor,
        shift: torch.Tensor,
        v_init: torch.Tensor,
    ) -> torch.Tensor:
        # In-place arithmetic: evaluation at large T must cost little more than the
        # stateless layers (see benchmarks/).
        v = torch.zeros_like(steps[0]).add_(v_init)
        out = torch.empty_like(steps)
        has_shift = bool(shift.ne(0).any())
        scaled = self.amplitude == "threshold"
        for t in range(steps.shape[0]):
            if self.decay != 1.0:
                v.mul_(self.decay)
            v.add_(steps[t])
            if has_shift:
                v.add_(shift)
            fired = v >= threshold
            spike = out[t]
            spike.copy_(fired)
            if scaled:
                spike.mul_(threshold)
            if self.reset == "subtract":
                v.sub_(spike if scaled else spike * threshold)
            else:
                v.masked_fill_(fired, 0.0)
        return out


class IFNeuron(SpikingNeuron):
    """Integrate-and-fire (no leak). Conversion methods use it with reset by subtraction."""

    def __init__(self, threshold: TensorLike = 1.0, **kwargs: object) -> None:
        super().__init__(threshold, decay=1.0, **kwargs)  # type: ignore[arg-type]


class LIFNeuron(SpikingNeuron):
    """Leaky integrate-and-fire: v <- decay * v + x. TET: decay 0.5, V_th 1, hard reset."""

    def __init__(
        self,
        threshold: TensorLike = 1.0,
        *,
        decay: float = 0.5,
        reset: Reset = "zero",
        **kwargs: object,
    ) -> None:
        super().__init__(threshold, decay=decay, reset=reset, **kwargs)  # type: ignore[arg-type]
