"""Graph checks and edits on traced (torch.fx) networks that conversion methods share.

- `require_average_pooling`: a method whose neurons pass rates through pooling refuses
  max pooling by node name (the maximum of spike trains is not the maximum of rates).
- `average_pool_nodes` and `insert_after`: put a module after chosen nodes (CQ+ re-spikes
  the output of every average pooling).
- `pre_activation_subgraph`: the linear part of the network between the activation sites
  feeding one site and that site's input, as its own module (weight calibration).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from snnbench_suite.errors import ConversionError

_MAX_POOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)
_MAX_POOL_FUNCTIONS: tuple[object, ...] = (
    F.max_pool1d, F.max_pool2d, F.max_pool3d,
    F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d,
    torch.max_pool1d, torch.max_pool2d, torch.max_pool3d,
)
_AVG_POOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
)
_AVG_POOL_FUNCTIONS: tuple[object, ...] = (
    F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
)


def _describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"{node.name!r} ({node.target}, {type(modules[str(node.target)]).__name__})"
    return f"{node.name!r} ({getattr(node.target, '__name__', node.target)})"


def require_average_pooling(module: fx.GraphModule, method: str) -> None:
    """Raise ConversionError naming the first max-pooling node of `module`."""
    modules = dict(module.named_modules())
    for node in module.graph.nodes:
        is_max = (
            (node.op == "call_module" and isinstance(modules[str(node.target)], _MAX_POOL_MODULES))
            or (node.op == "call_function" and node.target in _MAX_POOL_FUNCTIONS)
        )
        if is_max:
            raise ConversionError(
                f"{method}: node {_describe(node, modules)} is max pooling, which {method} "
                "cannot convert: the maximum of spike trains is not the maximum of their "
                "rates. Use average pooling (AvgPool2d, AdaptiveAvgPool2d) and retrain the ANN."
            )


def average_pool_nodes(module: fx.GraphModule) -> list[fx.Node]:
    """The average-pooling nodes (modules or functional calls), in graph order."""
    modules = dict(module.named_modules())
    return [
        node for node in module.graph.nodes
        if (node.op == "call_module" and isinstance(modules[str(node.target)], _AVG_POOL_MODULES))
        or (node.op == "call_function" and node.target in _AVG_POOL_FUNCTIONS)
    ]


def _other_than(kept: fx.Node) -> Callable[[fx.Node], bool]:
    def check(user: fx.Node) -> bool:
        return user is not kept

    return check


def insert_after(
    module: fx.GraphModule,
    nodes: Iterable[fx.Node],
    factory: Callable[[fx.Node], nn.Module],
    prefix: str,
) -> list[str]:
    """Insert `factory(node)` after each node; every user of the node then reads the new
    module's output. Returns the new submodules' names (`prefix_0`, `prefix_1`, ...)."""
    names = []
    for index, node in enumerate(list(nodes)):
        name = f"{prefix}_{index}"
        if hasattr(module, name):
            raise ValueError(f"the module already has an attribute {name!r}")
        module.add_module(name, factory(node))
        with module.graph.inserting_after(node):
            inserted = module.graph.call_module(name, args=(node,))
        node.replace_all_uses_with(inserted, delete_user_cb=_other_than(inserted))
        names.append(name)
    module.graph.lint()
    module.recompile()
    return names


def pre_activation_subgraph(
    module: fx.GraphModule, target: str, boundaries: Iterable[str]
) -> tuple[fx.GraphModule, list[str]]:
    """The computation from the nearest boundary modules (or graph inputs) up to the input
    of the module called `target`, as a module taking those sources in the returned order.

    Sources are named by their module path, or by the placeholder's name for a graph input.
    The returned module shares its submodules (and so its weights) with `module`.
    """
    stops = set(boundaries)
    calls = [n for n in module.graph.nodes if n.op == "call_module" and n.target == target]
    if len(calls) != 1:
        raise ValueError(f"{target!r} is called {len(calls)} times in the graph; expected once")
    start = calls[0].args[0]
    if not isinstance(start, fx.Node):
        raise ValueError(f"the input of {target!r} is not a graph value")
    sources: list[fx.Node] = []
    order: list[fx.Node] = []
    seen: set[fx.Node] = set()

    def visit(node: fx.Node) -> None:  # post-order, so `order` is topological
        if node in seen:
            return
        seen.add(node)
        if node.op == "placeholder" or (node.op == "call_module" and node.target in stops):
            sources.append(node)
            return
        for parent in node.all_input_nodes:
            visit(parent)
        order.append(node)

    visit(start)
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for source in sources:
        env[source] = graph.placeholder(f"source_{len(env)}")
    for node in order:
        env[node] = graph.node_copy(node, lambda n: env[n])
    graph.output(env[start])
    names = [str(s.target) if s.op == "call_module" else s.name for s in sources]
    return fx.GraphModule(module, graph), names


__all__ = [
    "average_pool_nodes",
    "insert_after",
    "pre_activation_subgraph",
    "require_average_pooling",
]
