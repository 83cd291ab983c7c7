"""Recording what each neuron of a spiking network receives, neuron after neuron, in one
pass over the network in all.

Layer-by-layer calibration corrects neuron k and then needs the input of neuron k + 1,
which depends on the corrected neuron k. Running the network from its input for every
neuron costs the layers below each one: quadratic in depth, which dominates calibrating
deep networks (DenseNet-BC's 99 neuron layers, MobileNet V2's 35). Every node of the
traced graph that comes before neuron k in graph order is untouched by corrections to
neuron k or later ones, so its value can be kept: the recorder resumes each run at the
neuron it recorded last and stops at the next one, so each node runs once.

What later nodes still read is kept for every sample of the batch, up to `keep_bytes`.
A neuron whose run would keep more is recorded as `RecordedInputs` records it (a run
from the network's input, chunk by chunk, kept or recorded again on each pass), and the
next neuron starts a fresh run from the input, keeping again if it fits: memory stays
bounded, and large early layers cost no more than without the recorder.
"""

from __future__ import annotations

from collections.abc import Iterable
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


class _OverBudget(Exception):
    """The values to keep outgrew `keep_bytes` during a run."""


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
        self._nodes = list(graph_module.graph.nodes)
        position = {node: i for i, node in enumerate(self._nodes)}
        # The last node that reads each node's value: after it has run, the value can go.
        self._last_use = {node: max((position[user] for user in node.users), default=i)
                          for i, node in enumerate(self._nodes)}
        self._placeholders = [node for node in self._nodes if node.op == "placeholder"]
        self._node_of: dict[int, int | None] = {}
        for i, node in enumerate(self._nodes):
            if node.op == "call_module":
                key = id(graph_module.get_submodule(str(node.target)))
                # A module called at two places has no single input: None marks it.
                self._node_of[key] = None if key in self._node_of else i
        chunk = max(1, max_rows // num_steps)
        self._chunks = [x[start:start + chunk] for start in range(0, x.shape[0], chunk)]
        self._interpreters = [fx.Interpreter(graph_module) for _ in self._chunks]
        self._next = 0  # the first node whose value is not kept (or may be stale)
        self.resumed = 0  # neurons recorded by resuming, and by a run from the input
        self.rerun = 0

    @torch.no_grad()
    def inputs(self, neuron: nn.Module) -> RecordedInputs:
        """What `neuron` receives, for simulating it alone (see `RecordedInputs`). Valid
        until the next request, which may reuse its tensors."""
        if id(neuron) not in self._node_of:
            raise ValueError("the module is not called by the network's graph")
        index = self._node_of[id(neuron)]
        if index is None:
            raise ValueError("the module is called at more than one place in the graph, so "
                             "it has no single input to record; use RecordedInputs")
        if index < self._next:
            raise ValueError("neurons must be recorded in graph order: this one comes "
                             "before the neuron recorded last")
        was_training = self.network.training
        self.network.eval()
        try:
            chunks = self._run_all_to(index)
        except _OverBudget:
            self._forget()
            self.rerun += 1
            return RecordedInputs(self.network, neuron, self.x, self.num_steps,
                                  max_rows=self.max_rows, keep_bytes=self.keep_bytes)
        except BaseException:
            self._forget()  # half-run chunks: the next request starts from the input
            raise
        finally:
            self.network.train(was_training)
        self._next = index
        self.resumed += 1
        return RecordedInputs.of_chunks(chunks, self.num_steps)

    def changed(self, modules: Iterable[nn.Module]) -> None:
        """Say that `modules` (their weights) changed since the last request. Nodes from
        the neuron recorded last onwards run again anyway; if one of the modules is called
        before it, the values kept from it are stale, and the next request starts from the
        network's input."""
        changed = {id(module) for module in modules}
        graph_module = self.network.graph_module
        for node in self._nodes[:self._next]:
            if (node.op == "call_module"
                    and id(graph_module.get_submodule(str(node.target))) in changed):
                self._forget()
                return

    def _run_all_to(self, stop: int) -> list[torch.Tensor]:
        chunks = []
        for count, (interpreter, chunk) in enumerate(
                zip(self._interpreters, self._chunks, strict=True), start=1):
            chunks.append(self._run_to(interpreter, chunk, stop))
            # Stop as soon as the kept values, extrapolated to every chunk, would not fit:
            # at most one chunk's run is spent finding out.
            kept = sum(self._kept_bytes(i.env) for i in self._interpreters[:count])
            if kept * len(self._chunks) / count > self.keep_bytes:
                raise _OverBudget
        return chunks

    def _run_to(self, interpreter: fx.Interpreter, chunk: torch.Tensor,
                stop: int) -> torch.Tensor:
        """Runs the nodes from the first unknown one up to node `stop` (excluded) and
        returns the input of node `stop`."""
        env = interpreter.env
        for i in range(self._next, stop):
            node = self._nodes[i]
            env[node] = (self._placeholder(node, chunk) if node.op == "placeholder"
                         else interpreter.run_node(node))
            # A value whose last reader has run is not needed again (node `stop` runs
            # again next time, so what it reads stays).
            for done in [*node.all_input_nodes, node]:
                if self._last_use[done] == i:
                    env.pop(done, None)
        return env[self._nodes[stop].args[0]]

    def _placeholder(self, node: fx.Node, chunk: torch.Tensor) -> Any:
        if node is self._placeholders[0]:
            return self.network.graph_input(direct(chunk, self.num_steps))
        return self.num_steps  # the converted graph's second input

    def _forget(self) -> None:
        for interpreter in self._interpreters:
            interpreter.env.clear()
        self._next = 0

    def _kept_bytes(self, env: dict[fx.Node, Any]) -> int:
        """Bytes of the tensors kept in `env`, each storage once; parameters and buffers
        (get_attr nodes) are the network's, not the recorder's."""
        storages = {}
        for node, value in env.items():
            if isinstance(value, torch.Tensor) and node.op != "get_attr":
                storage = value.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
        return sum(storages.values())


__all__ = ["InOrderRecorder"]
