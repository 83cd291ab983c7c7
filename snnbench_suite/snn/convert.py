"""The conversion engine: an ANN becomes a spiking network in named steps.

    validate -> trace (torch.fx) -> fold BN -> collect activation sites -> (observe,
    calibrate: done by the method with the sites) -> replace -> finalize

`prepare_conversion(ann)` runs the first four steps and returns a `ConversionGraph`: a
GraphModule that computes exactly what the ANN computes, with every activation turned into
a named submodule (an *activation site*) so that methods can observe it, and
`to_spiking(neuron_for)` puts a neuron (or anything else the method chooses) in each site.

Stateless nodes are untouched: they run on the folded `[T*B, ...]` batch, so residual
additions and concatenations work on spikes exactly as on activations. The graph output
(the classifier) is not spiking; `SpikingNetwork` returns it for every step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from snnbench_suite.errors import ConversionError
from snnbench_suite.snn.temporal import TemporalModule, fold_time, unfold_time

# Activations a conversion method knows how to replace. Methods with their own ANN
# activation (clipped, quantized) add its type with `register_convertible_activation`.
_CONVERTIBLE_MODULES: list[type[nn.Module]] = [nn.ReLU, nn.ReLU6]
_RELU_FUNCTIONS: dict[object, type[nn.Module]] = {
    F.relu: nn.ReLU,
    torch.relu: nn.ReLU,
    torch.relu_: nn.ReLU,
    F.relu6: nn.ReLU6,
}
# Activations that no rate-coded neuron reproduces: refused by name.
_UNCONVERTIBLE_MODULES: tuple[type[nn.Module], ...] = (
    nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.ELU, nn.SELU, nn.LeakyReLU, nn.PReLU,
    nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.Softplus, nn.CELU, nn.GLU,
)
_UNCONVERTIBLE_FUNCTIONS: tuple[object, ...] = (
    F.gelu, F.silu, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh, F.elu, F.leaky_relu,
    F.hardswish, F.mish, F.softplus,
)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)

SITES_MODULE = "activation_sites"


def register_convertible_activation(module_type: type[nn.Module]) -> None:
    """Let the engine treat `module_type` as an activation site (e.g. a clipped ReLU)."""
    if module_type not in _CONVERTIBLE_MODULES:
        _CONVERTIBLE_MODULES.append(module_type)


@dataclass(frozen=True)
class ActivationSite:
    """One activation of the ANN: where it is and what it was."""

    index: int
    name: str  # submodule path in the graph module, e.g. "activation_sites.site_3"
    source: str  # the fx node it replaced, e.g. "layer1_0_relu"
    activation: nn.Module
    is_last: bool  # the last activation before the classifier (RepAct replaces it)


class ConversionGraph:
    """The ANN as a traced graph with BN folded and named activation sites."""

    def __init__(self, module: fx.GraphModule, sites: list[ActivationSite]) -> None:
        self.module = module
        self.sites = sites

    def site_modules(self) -> dict[str, nn.Module]:
        return {site.name: self.module.get_submodule(site.name) for site in self.sites}

    def to_spiking(
        self,
        neuron_for: Callable[[ActivationSite], nn.Module],
        *,
        encoder: TemporalModule | None = None,
    ) -> SpikingNetwork:
        """Replace every activation site by `neuron_for(site)`.

        A returned TemporalModule (a neuron) is called with the number of steps; any other
        module (e.g. ReLU kept by RepAct) runs statelessly on the folded batch.
        """
        module = copy.deepcopy(self.module)
        graph = module.graph
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        with graph.inserting_after(placeholders[-1]):
            num_steps = graph.placeholder("num_steps")
        site_by_name = {site.name: site for site in self.sites}
        for node in list(graph.nodes):
            if node.op != "call_module" or node.target not in site_by_name:
                continue
            replacement = neuron_for(site_by_name[str(node.target)])
            if not isinstance(replacement, nn.Module):
                raise ConversionError(
                    f"neuron_for returned {type(replacement).__name__} for site "
                    f"{node.target!r}; expected an nn.Module"
                )
            _set_submodule(module, str(node.target), replacement)
            if isinstance(replacement, TemporalModule):
                node.args = (node.args[0], num_steps)
        graph.lint()
        module.recompile()
        return SpikingNetwork(module, encoder=encoder)


class SpikingNetwork(nn.Module):
    """Maps an input sequence `[T, B, ...]` to per-step outputs `[T, B, classes]`.

    In evaluation the batch is simulated in slices of at most `max_folded_rows` // T
    samples: samples are independent, and a folded batch of thousands of rows runs the
    stateless layers about twice slower per row than a small one (cache misses), which
    would make an SNN cost far more than T forward passes of its ANN. Training keeps the
    whole batch, because BN statistics are taken over the folded `[T*B]` batch.
    """

    def __init__(self, graph_module: fx.GraphModule, encoder: TemporalModule | None = None,
                 max_folded_rows: int = 128):
        super().__init__()
        self.graph_module = graph_module
        self.encoder = encoder
        self.max_folded_rows = max_folded_rows

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        num_steps, batch = x_seq.shape[:2]
        slice_size = max(1, self.max_folded_rows // num_steps)
        if self.training or batch <= slice_size:
            return self._simulate(x_seq)
        return torch.cat([self._simulate(x_seq[:, i:i + slice_size])
                          for i in range(0, batch, slice_size)], dim=1)

    def _simulate(self, x_seq: torch.Tensor) -> torch.Tensor:
        num_steps = x_seq.shape[0]
        x = fold_time(x_seq)
        if self.encoder is not None:
            x = self.encoder(x, num_steps)
        return unfold_time(self.graph_module(x, num_steps), num_steps)

    def neurons(self) -> Iterator[tuple[str, TemporalModule]]:
        for name, module in self.named_modules():
            if isinstance(module, TemporalModule):
                yield name, module


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, leaf = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, leaf, module)


class _SiteTracer(fx.Tracer):
    """Keeps registered activation modules whole: a method's own activation (a clipped or
    quantized ReLU written in Python) would otherwise be traced into its arithmetic and
    no longer be recognisable as an activation site."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, tuple(_CONVERTIBLE_MODULES)):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolically trace `model`, or say clearly why it cannot be converted."""
    try:
        graph = _SiteTracer().trace(model)
        return fx.GraphModule(model, graph, type(model).__name__)
    except Exception as exc:  # fx raises many types; all mean "not traceable"
        raise ConversionError(
            f"{type(model).__name__} cannot be traced with torch.fx, so it cannot be "
            f"converted: {type(exc).__name__}: {exc}. Remove data-dependent control flow "
            "from forward() or wrap that part in a leaf module."
        ) from exc


def fold_batch_norms(module: fx.GraphModule) -> int:
    """Fold each BN that directly follows a conv/linear used only by it. Returns the count.

    W' = W * g / sqrt(var + eps), b' = beta + (b - mu) * g / sqrt(var + eps).
    A BN with no such predecessor stays as an (eval-mode, affine) layer.
    """
    modules = dict(module.named_modules())
    folded = 0
    for node in list(module.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], _BATCH_NORMS):
            continue
        producer = node.args[0]
        if not isinstance(producer, fx.Node) or producer.op != "call_module":
            continue
        layer = modules[producer.target]
        bn = modules[node.target]
        if len(producer.users) != 1 or not bn.track_running_stats:
            continue
        if isinstance(layer, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            fused: nn.Module = fuse_conv_bn_eval(layer.eval(), bn.eval())
        elif isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d):
            fused = fuse_linear_bn_eval(layer.eval(), bn.eval())
        else:
            continue
        _set_submodule(module, str(producer.target), fused)
        node.replace_all_uses_with(producer)
        module.graph.erase_node(node)
        folded += 1
    module.delete_all_unused_submodules()
    module.recompile()
    return folded


def _activation_type(node: fx.Node, modules: dict[str, nn.Module]) -> type[nn.Module] | None:
    if node.op == "call_module":
        module = modules[str(node.target)]
        if isinstance(module, tuple(_CONVERTIBLE_MODULES)):
            return type(module)
        if isinstance(module, _UNCONVERTIBLE_MODULES):
            raise ConversionError(
                f"node {node.name!r} ({node.target}) is a {type(module).__name__} activation, "
                "which spiking neurons cannot reproduce. Convertible activations: "
                f"{', '.join(t.__name__ for t in _CONVERTIBLE_MODULES)}."
            )
    elif node.op == "call_function":
        if node.target in _RELU_FUNCTIONS:
            return _RELU_FUNCTIONS[node.target]
        if node.target in _UNCONVERTIBLE_FUNCTIONS:
            name = getattr(node.target, "__name__", str(node.target))
            raise ConversionError(
                f"node {node.name!r} calls {name}, which spiking neurons cannot reproduce. "
                "Use ReLU (or a clipped ReLU) activations."
            )
    elif node.op == "call_method" and node.target in ("relu", "relu_"):
        return nn.ReLU
    return None


def _collect_sites(module: fx.GraphModule) -> list[ActivationSite]:
    modules = dict(module.named_modules())
    sites_root = nn.Module()
    module.add_module(SITES_MODULE, sites_root)
    found: list[tuple[fx.Node, nn.Module]] = []
    for node in list(module.graph.nodes):
        kind = _activation_type(node, modules)
        if kind is None:
            continue
        activation = (
            copy.deepcopy(modules[str(node.target)]) if node.op == "call_module" else kind()
        )
        if hasattr(activation, "inplace"):
            activation.inplace = False  # in-place ops would corrupt observed activations
        target = f"{SITES_MODULE}.site_{len(found)}"
        sites_root.add_module(f"site_{len(found)}", activation)
        with module.graph.inserting_before(node):
            replacement = module.graph.call_module(target, args=(node.args[0],))
        node.replace_all_uses_with(replacement)
        module.graph.erase_node(node)
        replacement.name = node.name
        found.append((replacement, activation))
    if not found:
        layers = sorted({type(m).__name__ for m in modules.values() if m is not module})
        raise ConversionError(
            "the model has no activation to replace by a spiking neuron "
            f"(its layers: {', '.join(layers) or 'none'}); convertible activations: "
            f"{', '.join(t.__name__ for t in _CONVERTIBLE_MODULES)}."
        )
    module.delete_all_unused_submodules()
    module.recompile()
    last = len(found) - 1
    return [
        ActivationSite(index=i, name=f"{SITES_MODULE}.site_{i}", source=node.name,
                       activation=activation, is_last=i == last)
        for i, (node, activation) in enumerate(found)
    ]


def prepare_conversion(ann: nn.Module, *, fold_bn: bool = True) -> ConversionGraph:
    """Validate, trace, fold BN and collect the activation sites of `ann` (left unchanged)."""
    if not isinstance(ann, nn.Module):
        raise ConversionError(f"expected a torch.nn.Module, got {type(ann).__name__}")
    model = copy.deepcopy(ann)
    module = trace(model)
    if fold_bn:
        module.eval()  # folding uses the running statistics
        fold_batch_norms(module)
    sites = _collect_sites(module)
    module.graph.lint()
    return ConversionGraph(module, sites)


__all__ = [
    "ActivationSite",
    "ConversionGraph",
    "SpikingNetwork",
    "fold_batch_norms",
    "prepare_conversion",
    "register_convertible_activation",
    "trace",
]
