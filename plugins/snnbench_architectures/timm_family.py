"""`timm.<name>`: any model of timm (PyTorch Image Models) by name.

One family spec serves every name: the registry resolves `timm.resnet18` through the
spec's `variants`, which checks the name against `timm.list_models()` (did-you-mean on a
miss) and returns the spec of that model. Models are always built with
pretrained=False (snnbench never downloads weights), with the dataset's number of
classes and input channels; models with a fixed input size (vision transformers) get
the dataset's image size. timm is imported only when a timm model is asked for.

What the request controls: every nn.ReLU and nn.ReLU6 module becomes the method's
`request.activation()` (so a clipped or quantised activation reaches timm models too);
other activations (GELU, SiLU, Hardswish, ...) are kept and conversion refuses them by
name. timm models have no width multiplier (the width must be 1.0) and no BN-free
variant (batch_norm=False is refused). They keep their own pooling: max pooling in a
stem is not replaced, so converted accuracy may suffer where a model uses it.
"""

from __future__ import annotations

import difflib
import functools
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from snnbench_architectures.common import check_request, input_layers
from snnbench_suite import ArchitectureRequest, ArchitectureSpec

FAMILY = "timm"
CITATION = ("Wightman, PyTorch Image Models (timm), https://github.com/huggingface/"
            "pytorch-image-models; and the paper of the model")


@functools.cache
def model_names() -> tuple[str, ...]:
    import timm

    return tuple(timm.list_models())


def _replace_relus(module: nn.Module, request: ArchitectureRequest) -> None:
    for name, child in module.named_children():
        if type(child) in (nn.ReLU, nn.ReLU6):
            setattr(module, name, request.activation())
        else:
            _replace_relus(child, request)


def build_timm(model_name: str, request: ArchitectureRequest) -> nn.Module:
    import timm
    from timm.models import get_pretrained_cfg_value

    name = f"{FAMILY}.{model_name}"
    in_channels, height, width = check_request(request, name)
    if request.width != 1.0:
        raise ValueError(f"{name}: timm models have no width multiplier; got width "
                         f"{request.width}. Leave {name}.width at 1.0.")
    if not request.batch_norm:
        raise ValueError(f"{name}: timm models keep their own normalisation layers; a "
                         "method asking for a network without BN cannot use them.")
    kwargs: dict[str, Any] = {}
    if get_pretrained_cfg_value(model_name, "fixed_input_size"):
        kwargs["img_size"] = (height, width)  # e.g. ViTs size their position embedding
    try:
        model = timm.create_model(model_name, pretrained=False, num_classes=request.num_classes,
                                  in_chans=in_channels, **kwargs)
        _replace_relus(model, request)
        # A probe forward: timm models check their input size only when they run, and
        # that error must come now, before any training, not in the middle of it.
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, in_channels, height, width))
        model.train(was_training)
    except Exception as exc:  # timm raises many types for a shape it cannot take
        raise ValueError(f"{name} cannot be built for inputs of shape "
                         f"{tuple(request.input_shape)}: {type(exc).__name__}: {exc}") from exc
    prefix = input_layers(request)
    if not prefix:
        return model
    return nn.Sequential(OrderedDict([("normalize", prefix[0]), ("model", model)]))


def variant(model_name: str) -> ArchitectureSpec:
    """The spec of `timm.<model_name>`; ValueError with close matches for unknown names."""
    names = model_names()
    if model_name not in names:
        close = difflib.get_close_matches(model_name, names, n=5, cutoff=0.6)
        hint = f" Did you mean: {', '.join(f'{FAMILY}.{c}' for c in close)}?" if close else ""
        raise ValueError(f"timm has no model {model_name!r}.{hint} See timm.list_models() "
                         f"for the {len(names)} names.")
    return ArchitectureSpec(
        name=f"{FAMILY}.{model_name}", family=FAMILY,
        build=functools.partial(build_timm, model_name), default_width=1.0,
        description=f"timm's {model_name}, randomly initialised",
        citation=CITATION, deviations=__doc__ or "",
    )


def _family_build(request: ArchitectureRequest) -> nn.Module:
    raise ValueError("'timm' is a family of architectures: name a model as timm.<name>, "
                     "e.g. timm.resnet18")


SPEC = ArchitectureSpec(
    name=FAMILY, family=FAMILY, build=_family_build, default_width=1.0,
    description="any timm model by name, e.g. timm.resnet18 (pretrained=False, never "
    "downloads)",
    citation=CITATION, deviations=__doc__ or "",
    variants=variant,
    # The member the tests build, train and convert: timm's RegNetX-200MF (ReLU, no max
    # pooling, so its conversion is as faithful as snnbench's own networks).
    examples=("regnetx_002",),
)
