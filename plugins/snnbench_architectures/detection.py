"""`det.<backbone>`: a single-stage detector on any built-in classification architecture.

The backbone is the registered classification network (`det.resnet20` wraps
`resnet20`, `det.timm.resnet18` wraps `timm.resnet18`) cut at its last activation whose
feature map is at least 1/4 of the input side (inputs up to 64x64) or 1/16 of it (larger
inputs): its classifier and the layers after that point are dropped. On it sits an
FCOS-style head (Tian et al., ICCV 2019) with one level: two 3x3 convolutions with BN and
the method's activation, then one 3x3 convolution producing the dense map
`[B, 5 + K, h, w]` (4 box sides, centerness, K class logits) that
`snnbench_suite.detection` decodes. The whole network is plain convolutions, BN and the
request's activation, so every conversion method converts it as it converts the
classifier; the final convolution is the non-spiking readout, averaged over time.

Deviations from FCOS: one feature level and no FPN (the embedded digits_det objects are
8-16 pixels on a 32x32 canvas); BN instead of GroupNorm in the head (BN folds into the
convolutions, GroupNorm has no spiking equivalent); one tower shared by the class and box
branches. The head is as wide as the backbone's feature map.

Selecting it: name it (`--archs det.vgg11`), or pair a classification architecture with
a detection dataset (`--archs vgg11 --datasets digits_det`): the run plan then uses
`det.vgg11` for that dataset (snnbench_suite.matrix).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from snnbench_architectures.common import conv_bn_act, is_small, scaled
from snnbench_suite import ArchitectureRequest, ArchitectureSpec, ConversionError
from snnbench_suite.snn import trace

FAMILY = "det"
DEVIATIONS = (
    "One feature level and no FPN (the embedded digits_det objects are 8-16 pixels on a "
    "32x32 canvas); BN instead of GroupNorm in the head (BN folds into the convolutions, "
    "GroupNorm has no spiking equivalent); one tower shared by the class and box branches, "
    "as wide as the backbone's feature map; the backbone is cut at its last activation "
    "with a map of at least 1/4 (inputs up to 64x64) or 1/16 of the input side."
)
HEAD_CONVS = 2
SMALL_INPUT_STRIDE = 4
LARGE_INPUT_STRIDE = 16
PRIOR_PROBABILITY = 0.01  # initial class score: the focal loss starts from rare positives
BOX_AND_CENTERNESS = 5
_RELU_FUNCTIONS = (torch.relu, torch.nn.functional.relu, torch.nn.functional.relu6)


def feature_stride(side: int) -> int:
    return SMALL_INPUT_STRIDE if is_small(side) else LARGE_INPUT_STRIDE


def _is_activation(node: fx.Node, modules: dict[str, nn.Module],
                   activation: type[nn.Module]) -> bool:
    if node.op == "call_module":
        module = modules[str(node.target)]
        return isinstance(module, activation | nn.ReLU | nn.ReLU6)
    if node.op == "call_function":
        return node.target in _RELU_FUNCTIONS
    return node.op == "call_method" and node.target in ("relu", "relu_")


def backbone_features(classifier: nn.Module, request: ArchitectureRequest, name: str
                      ) -> tuple[fx.GraphModule, int, tuple[int, int]]:
    """`classifier` cut at its last activation whose map is at least the target side.
    Returns (features module, channels, (h, w))."""
    try:
        module = trace(classifier)
    except ConversionError as exc:
        raise ValueError(f"{name}: the backbone cannot be traced, so no feature map can "
                         f"be taken from it: {exc}") from None
    side = min(int(request.input_shape[1]), int(request.input_shape[2]))
    target = max(1, side // feature_stride(side))
    was_training = module.training
    module.eval()  # shape propagation must not move BN statistics
    with torch.no_grad():
        ShapeProp(module).propagate(torch.zeros(2, *request.input_shape))
    module.train(was_training)
    modules = dict(module.named_modules())
    activation = type(request.activation())
    chosen = None
    for node in module.graph.nodes:
        meta = node.meta.get("tensor_meta")
        shape = getattr(meta, "shape", None)
        if (shape is not None and len(shape) == 4 and min(shape[2], shape[3]) >= target
                and _is_activation(node, modules, activation)):
            chosen = node
    if chosen is None:
        raise ValueError(f"{name}: the backbone has no activation on a 4-D feature map of "
                         f"side >= {target}; a detector needs a convolutional backbone")
    output = next(n for n in module.graph.nodes if n.op == "output")
    output.args = (chosen,)
    module.graph.eliminate_dead_code()
    module.delete_all_unused_submodules()
    module.recompile()
    shape = chosen.meta["tensor_meta"].shape
    return module, int(shape[1]), (int(shape[2]), int(shape[3]))


class SingleStageDetector(nn.Module):
    """Backbone features -> head tower -> dense map `[B, 5 + K, h, w]`."""

    def __init__(self, backbone: fx.GraphModule, channels: int, request: ArchitectureRequest
                 ) -> None:
        super().__init__()
        self.backbone = backbone
        width = max(channels, scaled(16, 1.0))
        layers: list[nn.Module] = []
        for index in range(HEAD_CONVS):
            layers += conv_bn_act(channels if index == 0 else width, width, 3, 1, request)
        self.tower = nn.Sequential(*layers)
        self.predict = nn.Conv2d(width, BOX_AND_CENTERNESS + request.num_classes, 3, 1, 1)
        nn.init.normal_(self.predict.weight, std=0.01)
        bias = self.predict.bias
        assert bias is not None  # the prediction convolution is built with a bias
        nn.init.zeros_(bias)
        with torch.no_grad():
            bias[BOX_AND_CENTERNESS:] = -math.log(
                (1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(self.tower(self.backbone(x)))


def detector_builder(backbone: ArchitectureSpec) -> Callable[[ArchitectureRequest], nn.Module]:
    name = f"{FAMILY}.{backbone.name}"

    def build(request: ArchitectureRequest) -> nn.Module:
        if request.num_classes < 1:
            raise ValueError(f"{name}: needs at least 1 class, got {request.num_classes}")
        # The backbone's classifier is dropped, so its class count only has to be valid.
        classifier = backbone.build(
            ArchitectureRequest(**{**request.__dict__,
                                   "num_classes": max(2, request.num_classes)}))
        features, channels, _ = backbone_features(classifier, request, name)
        return SingleStageDetector(features, channels, request)

    return build


def _backbones() -> dict[str, ArchitectureSpec]:
    from snnbench_architectures import ARCHITECTURES

    return {spec.name: spec for spec in ARCHITECTURES}


def _backbone(variant: str) -> ArchitectureSpec:
    """The classification spec `variant` names (a family member as `family.member`)."""
    import difflib

    known = _backbones()
    family, dot, member = variant.partition(".")
    spec = known.get(family)
    if spec is not None and dot and spec.variants is not None:
        return spec.variants(member)
    if spec is not None and not dot and spec.variants is None:
        return spec
    plain = sorted(n for n, s in known.items() if s.variants is None)
    close = difflib.get_close_matches(variant, plain, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"{variant!r} is not a built-in classification architecture to use as "
                     f"a detection backbone.{hint} Backbones: {', '.join(plain)}, timm.<name>.")


def detector(variant: str) -> ArchitectureSpec:
    backbone = _backbone(variant)
    return ArchitectureSpec(
        name=f"{FAMILY}.{variant}", family=FAMILY, build=detector_builder(backbone),
        default_width=backbone.default_width, tasks=("detection",),
        description=f"single-stage FCOS-style detector on {variant} features",
        citation="Tian, Shen, Chen, He. FCOS: Fully Convolutional One-Stage Object "
        f"Detection, ICCV 2019; backbone: {backbone.citation}",
        deviations=DEVIATIONS,
    )


SPEC = ArchitectureSpec(
    name=FAMILY, family=FAMILY, build=lambda request: _no_member(), tasks=("detection",),
    variants=detector, examples=("vgg11", "resnet20", "mobilenet_v1"),
    description="single-stage FCOS-style detector on a classification backbone: "
    "det.<architecture>",
    citation="Tian, Shen, Chen, He. FCOS: Fully Convolutional One-Stage Object Detection, "
    "ICCV 2019",
)


def _no_member() -> nn.Module:
    raise ValueError(f"name a backbone: {FAMILY}.<architecture>, e.g. {FAMILY}.vgg11")
