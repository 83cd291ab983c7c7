"""The classifier of a traced network and the feature it reads.

Distillation methods need the "output feature" (the input of the final linear layer) and
the classifier itself; both are found on the fx graph, so any architecture whose forward
ends in a linear layer works, and one that does not gets an error naming what is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from snnbench_suite.errors import ConversionError


def classifier_name(module: fx.GraphModule) -> str:
    """The submodule path of the linear layer whose output is the network's output."""
    output = next(n for n in module.graph.nodes if n.op == "output")
    producer = output.args[0]
    if isinstance(producer, fx.Node) and producer.op == "call_module":
        if isinstance(module.get_submodule(str(producer.target)), nn.Linear):
            return str(producer.target)
    description = producer.format_node() if isinstance(producer, fx.Node) else repr(producer)
    raise ConversionError(
        "the network's output is not produced by a linear classifier (its last node is "
        f"{description}); feature distillation needs a final nn.Linear layer reading the "
        "output feature"
    )


@contextmanager
def capturing_input(layer: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record the input of every call of `layer` (with its graph, for losses); the hook
    is removed when the context exits."""
    captured: list[torch.Tensor] = []

    def hook(_m: nn.Module, args: tuple[Any, ...]) -> None:
        captured.append(args[0])

    handle = layer.register_forward_pre_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()
