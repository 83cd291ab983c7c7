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
# Tensor methods that are a ReLU: `x.relu()` and, in place, `x.relu_()` (see
# `_redirect_in_place`). Tensors have no relu6 method.
_RELU_METHODS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "relu_": nn.ReLU}
# Activations that no rate-coded neuron reproduces: refused by name. (nn.ReLU6 is a
# subclass of nn.Hardtanh; it is recognised as convertible before this list is read.)
_UNCONVERTIBLE_MODULES: tuple[type[nn.Module], ...] = (
    nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.ELU, nn.SELU, nn.LeakyReLU, nn.PReLU,
    nn.RReLU, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Mish, nn.Softplus, nn.CELU,
    nn.GLU, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink, nn.Softshrink, nn.Hardshrink,
    nn.Threshold,
)
_UNCONVERTIBLE_FUNCTION_NAMES = (
    "gelu", "silu", "sigmoid", "sigmoid_", "tanh", "tanh_", "elu", "elu_", "selu", "selu_",
    "celu", "celu_", "leaky_relu", "leaky_relu_", "prelu", "rrelu", "rrelu_", "hardswish",
    "hardsigmoid", "hardtanh", "hardtanh_", "mish", "softplus", "softsign", "logsigmoid",
    "tanhshrink", "softshrink", "hardshrink", "glu", "threshold", "threshold_",
)
# The same activations however they are written: F.gelu, torch.sigmoid, torch.special.expit.
_UNCONVERTIBLE_FUNCTIONS: frozenset[object] = frozenset(
    function
    for namespace in (F, torch)
    for name in _UNCONVERTIBLE_FUNCTION_NAMES
    if (function := getattr(namespace, name, None)) is not None
) | {torch.special.expit}
# ... and as tensor methods: `x.sigmoid()`, timm's Swish `x.mul(x.sigmoid())`, `x.tanh_()`.
_UNCONVERTIBLE_METHODS = frozenset({"sigmoid", "sigmoid_", "tanh", "tanh_", "hardshrink"})
# Class names (lower case, timm's memory-efficient "Me" suffix removed) of activation
# modules of other libraries (timm's GELU, Swish, HardSwishMe, ...), recognised when a
# model cannot be traced and its activations can only be found by scanning its modules.
_UNCONVERTIBLE_CLASS_NAMES = frozenset({
    "gelu", "gelutanh", "quickgelu", "silu", "swish", "mish", "hardmish", "hardswish",
    "hardsigmoid", "sigmoid", "tanh", "elu", "selu", "celu", "leakyrelu", "prelu", "rrelu",
    "softplus", "softsign", "glu", "swiglu", "geglu",
})
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
        return unfold_time(self.graph_module(self.graph_input(x_seq), num_steps), num_steps)

    def graph_input(self, x_seq: torch.Tensor) -> torch.Tensor:
        """What the traced graph receives for the input sequence `[T, B, ...]`: the folded
        `[T*B, ...]` batch, through the encoder when there is one."""
        x = fold_time(x_seq)
        return self.encoder(x, x_seq.shape[0]) if self.encoder is not None else x

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
    """Symbolically trace `model`, or say clearly why it cannot be converted (and, as
    its graph is then unknown, which of its modules are activations no neuron converts)."""
    try:
        graph = _SiteTracer().trace(model)
        return fx.GraphModule(model, graph, type(model).__name__)
    except Exception as exc:  # fx raises many types; all mean "not traceable"
        found = unconvertible_activation_modules(model)
        also = ""
        if found:
            also = (" It also contains activations that spiking neurons cannot reproduce, "
                    f"so it could not be converted even if traced: {_describe_modules(found)}."
                    f" Convertible activations: {_convertible_names()}.")
        raise ConversionError(
            f"{type(model).__name__} cannot be traced with torch.fx, so it cannot be "
            f"converted: {type(exc).__name__}: {exc}. Remove data-dependent control flow "
            f"from forward() or wrap that part in a leaf module.{also}"
        ) from exc


def _is_unconvertible_module(module: nn.Module) -> bool:
    if isinstance(module, tuple(_CONVERTIBLE_MODULES)):
        return False
    if isinstance(module, _UNCONVERTIBLE_MODULES):
        return True
    name = type(module).__name__.lower()
    return bool({name, name.removesuffix("me")} & _UNCONVERTIBLE_CLASS_NAMES)


def unconvertible_activation_modules(model: nn.Module) -> dict[str, list[str]]:
    """Activation modules of `model` that no neuron converts, found by scanning its
    modules (no tracing): class name -> the paths of its instances."""
    found: dict[str, list[str]] = {}
    for path, module in model.named_modules():
        if _is_unconvertible_module(module):
            found.setdefault(type(module).__name__, []).append(path or "<model>")
    return found


def _describe_modules(found: dict[str, list[str]]) -> str:
    parts = []
    for kind, paths in sorted(found.items()):
        more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
        parts.append(f"{kind} ({paths[0]}{more})")
    return ", ".join(parts)


def _convertible_names() -> str:
    modules = ", ".join(t.__name__ for t in _CONVERTIBLE_MODULES)
    return f"{modules} modules; F.relu, torch.relu, F.relu6, x.relu(), x.relu_()"


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


def _layer_of(node: fx.Node) -> str:
    """The module a traced call sits in, e.g. "in layer1.0 (BasicBlock)", from the module
    stack torch.fx records while tracing."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return "in the model's forward()"
    path, (_, kind) = next(reversed(stack.items()))
    return f"in {path} ({getattr(kind, '__name__', kind)})"


def _refuse(node: fx.Node, what: str) -> ConversionError:
    return ConversionError(
        f"node {node.name!r} {what}, which spiking neurons cannot reproduce. Convertible "
        f"activations: {_convertible_names()}."
    )


def _activation_type(node: fx.Node, modules: dict[str, nn.Module]) -> type[nn.Module] | None:
    """The activation `node` is (its site's module type), None when it is no activation;
    ConversionError for an activation no neuron converts, however it is written."""
    if node.op == "call_module":
        module = modules[str(node.target)]
        if isinstance(module, tuple(_CONVERTIBLE_MODULES)):
            return type(module)
        if _is_unconvertible_module(module):
            raise _refuse(node, f"({node.target}) is a {type(module).__name__} activation")
    elif node.op == "call_function":
        if node.target in _RELU_FUNCTIONS:
            return _RELU_FUNCTIONS[node.target]
        if node.target in _UNCONVERTIBLE_FUNCTIONS:
            name = getattr(node.target, "__name__", str(node.target))
            raise _refuse(node, f"{_layer_of(node)} calls {name}")
    elif node.op == "call_method":
        if node.target in _RELU_METHODS:
            return _RELU_METHODS[str(node.target)]
        if node.target in _UNCONVERTIBLE_METHODS:
            raise _refuse(node, f"{_layer_of(node)} calls the tensor method .{node.target}()")
    return None


def _is_in_place(node: fx.Node, module: nn.Module | None) -> bool:
    """Whether the activation overwrites its input (x.relu_(), torch.relu_,
    F.relu(x, inplace=True), nn.ReLU(inplace=True))."""
    if node.op == "call_method":
        return str(node.target).endswith("_")
    if node.op == "call_function":
        if node.target is torch.relu_:
            return True
        return bool(node.kwargs.get("inplace", False)) or (
            len(node.args) > 1 and node.args[1] is True)
    return bool(getattr(module, "inplace", False))


def _redirect_in_place(activation: fx.Node, replacement: fx.Node) -> None:
    """An in-place activation changed its input tensor, so every later reader of that
    input read the activated values; the site computes out of place, so those readers
    are pointed at its output. (`y = conv(x); y.relu_(); return pool(y)`: pool reads y.)"""
    source = activation.args[0]
    if not isinstance(source, fx.Node):
        return
    later: set[fx.Node] = set()
    cursor = activation.next
    while cursor.op != "root":
        later.add(cursor)
        cursor = cursor.next
    for user in list(source.users):
        if user in later:
            user.replace_input_with(source, replacement)


def _collect_sites(module: fx.GraphModule) -> list[ActivationSite]:
    modules = dict(module.named_modules())
    sites_root = nn.Module()
    module.add_module(SITES_MODULE, sites_root)
    found: list[tuple[fx.Node, nn.Module]] = []
    for node in list(module.graph.nodes):
        kind = _activation_type(node, modules)
        if kind is None:
            continue
        original = modules[str(node.target)] if node.op == "call_module" else None
        in_place = _is_in_place(node, original)
        activation = copy.deepcopy(original) if original is not None else kind()
        if hasattr(activation, "inplace"):
            activation.inplace = False  # in-place ops would corrupt observed activations
        target = f"{SITES_MODULE}.site_{len(found)}"
        sites_root.add_module(f"site_{len(found)}", activation)
        with module.graph.inserting_before(node):
            replacement = module.graph.call_module(target, args=(node.args[0],))
        node.replace_all_uses_with(replacement)
        if in_place:
            _redirect_in_place(node, replacement)
        module.graph.erase_node(node)
        replacement.name = node.name
        found.append((replacement, activation))
    if not found:
        layers = sorted({type(m).__name__ for m in modules.values() if m is not module})
        raise ConversionError(
            "the model has no activation to replace by a spiking neuron "
            f"(its layers: {', '.join(layers) or 'none'}); convertible activations: "
            f"{_convertible_names()}."
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
    "unconvertible_activation_modules",
]
