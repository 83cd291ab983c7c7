"""Pieces that calibrating conversion methods share: the clip-floor MMSE threshold search,
an EMA over batches, and reading one layer's output from an ANN or a spiking network.

Both readers stop the forward pass once the layer has produced its output, so calibrating
layer l costs the layers up to l, not the whole network.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from snnbench_suite.snn.activations import clip_floor
from snnbench_suite.snn.convert import SpikingNetwork
from snnbench_suite.snn.encoding import direct
from snnbench_suite.snn.temporal import unfold_time

# Rows of the folded [T*B, ...] batch one calibration simulation may hold. Large enough
# that the per-step Python loop of the neurons is amortised over many samples.
CALIBRATION_ROWS = 8192
# A neuron's recorded input is kept in memory up to this size, and recorded again on each
# pass beyond it.
KEPT_INPUT_BYTES = 1 << 30


def _check_candidates(candidates: int, step: float) -> None:
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    if candidates > 1 and not (step > 0 and step * (candidates - 1) < 1):
        raise ValueError(
            f"step * (candidates - 1) must lie in (0, 1) so every candidate is positive; "
            f"got step={step}, candidates={candidates}"
        )


def mmse_threshold(
    activations: torch.Tensor,
    num_steps: int,
    *,
    candidates: int = 95,
    step: float = 0.01,
    offset: float = 0.0,
) -> float:
    """The threshold V among `max * (1 - step * i)`, i < candidates, that minimises
    `mean((a - clip_floor(a; V, T))^2)`. Returns 0.0 when no activation is positive."""
    _check_candidates(candidates, step)
    values = activations.detach().flatten().double()
    top = float(values.max())
    if top <= 0:
        return 0.0
    best, best_error = top, float("inf")
    for i in range(candidates):
        candidate = top * (1.0 - step * i)
        error = float((values - clip_floor(values, candidate, num_steps, offset)).pow(2).mean())
        if error < best_error:
            best, best_error = candidate, error
    return best


def mmse_channel_thresholds(
    activations: torch.Tensor,
    num_steps: int,
    *,
    candidates: int = 95,
    step: float = 0.01,
    offset: float = 0.0,
) -> torch.Tensor:
    """`mmse_threshold` for every channel (dim 1) of `[B, C, ...]` activations on its own:
    candidates `max_c * (1 - step * i)`; a channel never positive gets 0. Returns `[C]`."""
    if activations.dim() < 2:
        raise ValueError(f"per-channel thresholds need [B, C, ...] activations, got shape "
                         f"{tuple(activations.shape)}")
    _check_candidates(candidates, step)
    channels = activations.shape[1]
    values = activations.detach().transpose(0, 1).reshape(channels, -1).double()
    top = values.max(dim=1).values.clamp_min(0.0)
    best = top.clone()
    best_error = torch.full_like(top, float("inf"))
    live = top > 0
    for i in range(candidates):
        candidate = top * (1.0 - step * i)
        safe = torch.where(live, candidate, torch.ones_like(candidate)).unsqueeze(1)
        error = (values - clip_floor(values, safe, num_steps, offset)).pow(2).mean(dim=1)
        better = live & (error < best_error)
        best = torch.where(better, candidate, best)
        best_error = torch.where(better, error, best_error)
    return best.float()


def ema(values: Iterable[Any], momentum: float = 0.9) -> Any:
    """Exponential moving average: the first value, then m * running + (1 - m) * value.
    Works for floats and for tensors (per-channel values) alike."""
    running: Any = None
    for value in values:
        running = value if running is None else momentum * running + (1 - momentum) * value
    if running is None:
        raise ValueError("ema of no values: the calibration loader yielded no batch")
    return running


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the wanted outputs exist."""


def _hook_until(modules: Sequence[nn.Module], store: list[list[torch.Tensor]]
                ) -> list[torch.utils.hooks.RemovableHandle]:
    remaining = set(range(len(modules)))
    handles = []
    for index, module in enumerate(modules):
        def hook(_m: nn.Module, _inp: Any, out: torch.Tensor, _i: int = index) -> None:
            store[_i].append(out.detach())
            remaining.discard(_i)
            if not remaining:
                raise _Stop

        handles.append(module.register_forward_hook(hook))
    return handles


@torch.no_grad()
def module_outputs(
    model: nn.Module, modules: Sequence[nn.Module], x: torch.Tensor
) -> list[torch.Tensor]:
    """The outputs of `modules` (each called once) when `model` runs on `x`."""
    store: list[list[torch.Tensor]] = [[] for _ in modules]
    was_training = model.training
    model.eval()
    handles = _hook_until(modules, store)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    missing = [i for i, out in enumerate(store) if not out]
    if missing:
        raise ValueError(f"modules {missing} were not called by the model's forward pass")
    return [out[0] for out in store]


@torch.no_grad()
def spiking_rates(
    network: SpikingNetwork,
    modules: Sequence[nn.Module],
    x: torch.Tensor,
    num_steps: int,
    *,
    max_rows: int = CALIBRATION_ROWS,
) -> list[torch.Tensor]:
    """The time-averaged outputs `[B, ...]` of `modules` (neurons, or any module inside
    `network`) when `network` sees the static batch `x` for `num_steps` steps."""
    chunk = max(1, max_rows // num_steps)
    saved_rows = network.max_folded_rows
    was_training = network.training
    network.eval()
    # The network slices large batches itself; a stop after the first slice would lose the
    # others, so let one call hold a whole chunk.
    network.max_folded_rows = chunk * num_steps
    parts: list[list[torch.Tensor]] = [[] for _ in modules]
    try:
        for start in range(0, x.shape[0], chunk):
            store: list[list[torch.Tensor]] = [[] for _ in modules]
            handles = _hook_until(modules, store)
            try:
                network(direct(x[start:start + chunk], num_steps))
            except _Stop:
                pass
            finally:
                for handle in handles:
                    handle.remove()
            for index, out in enumerate(store):
                if not out:
                    raise ValueError(f"module {index} was not called by the network")
                parts[index].append(unfold_time(out[0], num_steps).mean(0))
    finally:
        network.max_folded_rows = saved_rows
        network.train(was_training)
    return [torch.cat(chunks) for chunks in parts]


@torch.no_grad()
def module_input_chunks(
    network: SpikingNetwork,
    module: nn.Module,
    x: torch.Tensor,
    num_steps: int,
    *,
    max_rows: int = CALIBRATION_ROWS,
) -> Iterator[torch.Tensor]:
    """What `module` (a neuron inside `network`) receives over `num_steps` steps when
    `network` sees the static batch `x`: one folded `[T*b, ...]` tensor per chunk of b
    samples, at most `max_rows` rows each, one run of the layers below per chunk."""
    chunk = max(1, max_rows // num_steps)
    saved_rows = network.max_folded_rows
    was_training = network.training
    network.eval()
    network.max_folded_rows = chunk * num_steps
    store: list[torch.Tensor] = []

    def hook(_m: nn.Module, args: tuple[Any, ...]) -> None:
        store.append(args[0].detach())
        raise _Stop

    try:
        for start in range(0, x.shape[0], chunk):
            handle = module.register_forward_pre_hook(hook)
            try:
                network(direct(x[start:start + chunk], num_steps))
            except _Stop:
                pass
            finally:
                handle.remove()
            if not store:
                raise ValueError("the module was not called by the network")
            yield store.pop()
    finally:
        network.max_folded_rows = saved_rows
        network.train(was_training)


class RecordedInputs:
    """The input one neuron receives, for simulating it alone under several settings
    (calibration tries corrections on a neuron whose input they do not change). Kept in
    memory when it takes at most `keep_bytes`; larger ones (long T, large maps) are
    recorded again, chunk by chunk, on every pass, so memory stays bounded by `max_rows`."""

    def __init__(self, network: SpikingNetwork, module: nn.Module, x: torch.Tensor,
                 num_steps: int, *, max_rows: int = CALIBRATION_ROWS,
                 keep_bytes: int = KEPT_INPUT_BYTES) -> None:
        self.num_steps = num_steps
        self._record = lambda: module_input_chunks(network, module, x, num_steps,
                                                   max_rows=max_rows)
        kept: list[torch.Tensor] | None = []
        size = 0
        for chunk in self._record():
            size += chunk.numel() * chunk.element_size()
            if size > keep_bytes:
                kept = None
                break
            kept.append(chunk)  # type: ignore[union-attr]
        self._kept = kept

    @classmethod
    def of_chunks(cls, chunks: list[torch.Tensor], num_steps: int) -> RecordedInputs:
        """An input recorded elsewhere (`InOrderRecorder`), kept as given."""
        inputs = cls.__new__(cls)
        inputs.num_steps = num_steps
        inputs._kept = list(chunks)
        inputs._record = lambda: iter(inputs._kept or [])
        return inputs

    @property
    def kept(self) -> bool:
        return self._kept is not None

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self._kept) if self._kept is not None else self._record()

    @torch.no_grad()
    def rates(self, neuron: nn.Module) -> torch.Tensor:
        """`neuron`'s time-averaged output `[B, ...]` on this input, simulated alone."""
        return torch.cat([unfold_time(neuron(chunk, self.num_steps), self.num_steps).mean(0)
                          for chunk in self])


def channel_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the channels (dim 1): `[B, C, ...]` -> `[C]`."""
    dims = [d for d in range(x.dim()) if d != 1]
    return x.mean(dim=dims)


def channel_max(x: torch.Tensor) -> torch.Tensor:
    """Maximum over every dimension but the channels (dim 1): `[B, C, ...]` -> `[C]`."""
    return x.detach().transpose(0, 1).reshape(x.shape[1], -1).max(dim=1).values


def channel_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over every dimension but the channels (dim 1): `[B, C, ...]` -> `[C]`."""
    dims = [d for d in range(x.dim()) if d != 1]
    return x.sum(dim=dims)


__all__ = [
    "CALIBRATION_ROWS",
    "channel_max",
    "channel_mean",
    "channel_sum",
    "ema",
    "mmse_channel_thresholds",
    "mmse_threshold",
    "RecordedInputs",
    "module_input_chunks",
    "module_outputs",
    "spiking_rates",
]
