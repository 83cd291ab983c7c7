"""Recording what each neuron of a spiking network receives, neuron after neuron, in one
pass over the network in all.

Layer-by-layer calibration corrects neuron k and then needs the input of neuron k + 1,
which depends on the corrected neuron k. Running the network from its input for every
neuron costs the layers below each one: quadratic in depth, which dominates calibrating
deep networks (DenseNet-BC's 99 neuron layers, MobileNet V2's 35). Every node of the
traced graph that comes before neuron k in graph order is untouched by corrections to
neuron k or later ones, so its value can be kept: the recorder resumes each run at the
neuron it recorded last and stops at the next one, so each node runs about once.

It keeps the values that later nodes still need, for every sample of the batch. Above
`keep_bytes` it stops keeping them, and every later neuron's input is recorded by a run
from the network's input, chunk by chunk, as `RecordedInputs` does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn

from snnbench_suite.snn.calibration import (
    CALIBRATION_ROWS,
    KEPT_INPUT_BYTES,
    RecordedInputs,
)
from snnbench_suite.snn.convert import SpikingNetwork
from snnbench_suite.snn.encoding import direct
from snnbench_suite.snn.temporal import fold_time


class InOrderRecorder:
    """The inputs of a network's neurons, asked for in graph order. Between two requests
    only the neuron asked for last may change (its threshold, shift or initial potential):
    the recorder reuses everything computed before that neuron."""

    def __init__(self, network: SpikingNetwork, x: torch.Tensor, num_steps: int, *,
                 max_rows: int = CALIBRATION_ROWS, keep_bytes: int = KEPT_INPUT_BYTES) -> None:
        self.network = network
        self.x = x
        self.num_steps = num_steps
        self.max_rows = max_rows
        self.keep_bytes = keep_bytes
        graph_module = network.graph_module
        self._module = graph_module
        self._nodes = list(graph_module.graph.nodes)
        position = {node: i for i, node in enumerate(self._nodes)}
        # The last node that reads each node's value: after it has run, the value can go.
        self._last_use = {node: max((position[user] for user in node.users), default=i)
                          for i, node in enumerate(self._nodes)}
        self._node_of = {id(graph_module.get_submodule(str(node.target))): i
                         for i, node in enumerate(self._nodes) if node.op == "call_module"}
        chunk = max(1, max_rows // num_steps)
        self._chunks = [x[start:start + chunk] for start in range(0, x.shape[0], chunk)]
        self._envs: list[dict[fx.Node, Any]] | None = [{} for _ in self._chunks]
        self._next = 0  # the first node whose value is not known (or may be stale)

    @property
    def keeping(self) -> bool:
        """Whether the recorder still resumes runs (False once over `keep_bytes`)."""
        return self._envs is not None

    @torch.no_grad()
    def inputs(self, neuron: nn.Module) -> RecordedInputs:
        """What `neuron` receives, for simulating it alone (see `RecordedInputs`)."""
        index = self._node_of.get(id(neuron))
        if index is None:
            raise ValueError("the module is not called by the network's graph")
        if index < self._next:
            raise ValueError("neurons must be recorded in graph order: this one comes "
                             "before the neuron recorded last")
        if self._envs is None:
            return RecordedInputs(self.network, neuron, self.x, self.num_steps,
                                  max_rows=self.max_rows, keep_bytes=self.keep_bytes)
        was_training = self.network.training
        self.network.eval()
        try:
            chunks = [self._run_to(env, chunk, index)
                      for env, chunk in zip(self._envs, self._chunks, strict=True)]
        finally:
            self.network.train(was_training)
        self._next = index
        if self._kept_bytes() > self.keep_bytes:
            self._envs = None
        return RecordedInputs.of_chunks(chunks, self.num_steps)

    def _run_to(self, env: dict[fx.Node, Any], chunk: torch.Tensor, stop: int) -> torch.Tensor:
        """Runs the nodes from the first unknown one up to node `stop` (excluded) and
        returns the input of node `stop`."""
        interpreter = fx.Interpreter(self._module)
        interpreter.env = env
        for i in range(self._next, stop):
            node = self._nodes[i]
            if node.op == "placeholder":
                env[node] = self._placeholder(node, chunk)
            else:
                env[node] = interpreter.run_node(node)
        # Values whose readers have all run are not needed again; node `stop` reruns
        # next time, so what it reads stays.
        for node in [n for n in env if self._last_use[n] < stop]:
            del env[node]
        return env[self._nodes[stop].args[0]]

    def _placeholder(self, node: fx.Node, chunk: torch.Tensor) -> Any:
        placeholders = [n for n in self._nodes if n.op == "placeholder"]
        if node is placeholders[0]:
            x = fold_time(direct(chunk, self.num_steps))
            encoder = self.network.encoder
            return encoder(x, self.num_steps) if encoder is not None else x
        return self.num_steps  # the converted graph's second input

    def _kept_bytes(self) -> int:
        assert self._envs is not None
        return sum(value.numel() * value.element_size() for env in self._envs
                   for value in env.values() if isinstance(value, torch.Tensor))


__all__ = ["InOrderRecorder"]
