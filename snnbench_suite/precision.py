"""Mixed precision: which parts of a cell run under autocast, and which stay in fp32.

`--precision bf16|fp16` turns on torch.autocast in exactly two places:
- the shared training loop (`train.train_model`): the forward pass and the loss; weights,
  gradients and optimiser state stay fp32 (autocast keeps the master weights), and fp16
  adds a gradient scaler so small gradients do not flush to zero;
- evaluation (`execute.CellRunner`): the ANN's test pass and the SNN simulation. Under
  autocast convolutions and linear layers run in the low precision and the neurons' state
  follows the dtype of their input current; the readout is accumulated in fp32.

Everything else runs in fp32 because nothing else is inside autocast: BN folding and
graph conversion, activation observation (maxima, percentiles), threshold searches (MMSE,
in fp64), calibration (bias, potential and weight calibration) and the quantised-ANN
fine-tuning of a method happen in `method.build` outside the loop, except where a
method trains through `ctx.train` (that training follows `--precision`). `full_precision`
is the context a method can use to force fp32 inside a trained region.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

import torch

from snnbench_suite.errors import UsageError

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# What the record says about a cell's numerics, by part.
FP32_PARTS = ("conversion", "observation", "threshold_search", "calibration")


def parse_precision(text: str) -> Precision:
    choice = text.strip().lower()
    if choice not in PRECISIONS:
        raise UsageError(f"--precision {text!r}: use one of {', '.join(PRECISIONS)}")
    return choice  # type: ignore[return-value]


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run (bf16 on a pre-Ampere GPU)."""
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UsageError(f"--precision bf16: {torch.cuda.get_device_name(device)} does not "
                         "support bfloat16; use --precision fp16 or fp32")


@contextlib.contextmanager
def autocast(device: torch.device | str, precision: str) -> Iterator[None]:
    """torch.autocast for bf16 / fp16 on the device's type; nothing for fp32."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=DTYPES[precision]):
        yield


def full_precision(device: torch.device | str) -> torch.autocast:
    """Switch autocast off (for numerics that must stay fp32 inside a trained region)."""
    return torch.autocast(torch.device(device).type, enabled=False)


def grad_scaler(device: torch.device | str, precision: str) -> torch.amp.GradScaler:
    """A gradient scaler, enabled for fp16 only (bf16 has fp32's exponent range)."""
    return torch.amp.GradScaler(torch.device(device).type, enabled=precision == "fp16")


def precision_record(precision: str) -> dict[str, Any]:
    """Which part of a cell ran in which precision; stored in the record."""
    return {
        "requested": precision,
        "ann_training": precision,
        "snn_training": precision,
        "evaluation": precision,
        "weights_and_optimizer": "fp32",
        **dict.fromkeys(FP32_PARTS, "fp32"),
    }
