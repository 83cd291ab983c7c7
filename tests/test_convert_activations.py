"""Which activations the conversion engine accepts, however they are written (modules,
functions, tensor methods, in place), and how it refuses the others: naming the node, the
layer it sits in and what it can convert, also when the model cannot be traced."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnbench_suite.errors import ConversionError
from snnbench_suite.snn import IFNeuron, direct, prepare_conversion
from snnbench_suite.snn.convert import unconvertible_activation_modules


class Swish(nn.Module):
    """Written as timm writes its Swish: a tensor method, no torch activation module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(x.sigmoid())


class Block(nn.Module):
    """A linear layer followed by `activation` (a function of the tensor)."""

    def __init__(self, activation: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.fc(x))


def net(activation: Callable[[torch.Tensor], torch.Tensor]) -> nn.Module:
    return nn.Sequential(Block(activation), nn.Linear(4, 2))


REFUSED = [
    pytest.param(lambda x: F.gelu(x), r"node 'gelu' in 0 \(Block\) calls gelu", id="F.gelu"),
    pytest.param(lambda x: torch.sigmoid(x), r"node 'sigmoid' in 0 \(Block\) calls sigmoid",
                 id="torch.sigmoid"),
    pytest.param(lambda x: x.sigmoid(),
                 r"node 'sigmoid' in 0 \(Block\) calls the tensor method \.sigmoid\(\)",
                 id="x.sigmoid()"),
    pytest.param(lambda x: x.tanh_(), r"calls the tensor method \.tanh_\(\)", id="x.tanh_()"),
    pytest.param(lambda x: F.silu(x), "calls silu", id="F.silu"),
    pytest.param(lambda x: torch.special.expit(x), "calls special_expit", id="expit"),
    pytest.param(lambda x: F.hardtanh(x, 0.0, 6.0), "calls hardtanh", id="F.hardtanh"),
    pytest.param(lambda x: F.leaky_relu(x, 0.1), "calls leaky_relu", id="F.leaky_relu"),
]


@pytest.mark.parametrize(("activation", "message"), REFUSED)
def test_unconvertible_functions_and_tensor_methods_are_refused_by_node_and_layer(
        activation, message) -> None:
    with pytest.raises(ConversionError, match=message) as error:
        prepare_conversion(net(activation))
    assert "which spiking neurons cannot reproduce" in str(error.value)
    assert "Convertible activations: ReLU, ReLU6" in str(error.value)
    assert "x.relu_()" in str(error.value)


def test_a_swish_written_with_a_tensor_method_is_refused_in_its_module() -> None:
    model = nn.Sequential(nn.Linear(4, 4), Swish(), nn.Linear(4, 2))
    with pytest.raises(ConversionError, match=r"node 'sigmoid' in 1 \(Swish\) calls the "
                       r"tensor method \.sigmoid\(\)"):
        prepare_conversion(model)


@pytest.mark.parametrize("module", [nn.Hardtanh(0.0, 6.0), nn.Softsign(), nn.RReLU()],
                         ids=lambda m: type(m).__name__)
def test_unconvertible_modules_are_refused_by_name(module: nn.Module) -> None:
    model = nn.Sequential(nn.Linear(4, 4), module, nn.Linear(4, 2))
    with pytest.raises(ConversionError, match=rf"node '_1' \(1\) is a {type(module).__name__}"):
        prepare_conversion(model)


def test_relu6_is_not_refused_as_the_hardtanh_it_subclasses() -> None:
    graph = prepare_conversion(nn.Sequential(nn.Linear(4, 4), nn.ReLU6(), nn.Linear(4, 2)))
    assert [type(site.activation) for site in graph.sites] == [nn.ReLU6]


class InPlaceReLU(nn.Module):
    """`y.relu_()` whose result is dropped: the pool reads y, which the ReLU changed."""

    def __init__(self, method: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3, 2)
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.method:
            y.relu_()
        else:
            torch.relu_(y)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


@pytest.mark.parametrize("method", [True, False], ids=["x.relu_()", "torch.relu_"])
def test_in_place_relu_is_a_site_read_by_the_layers_after_it(method: bool) -> None:
    torch.manual_seed(0)
    model = InPlaceReLU(method).eval()
    x = torch.randn(5, 1, 6, 6)
    graph = prepare_conversion(model)
    assert len(graph.sites) == 1 and type(graph.sites[0].activation) is nn.ReLU
    with torch.no_grad():
        expected = model(x.clone())
        torch.testing.assert_close(graph.module(x.clone()), expected)
        # Without the ReLU the pool would average negative currents: a different output.
        raw = model.fc(torch.flatten(F.adaptive_avg_pool2d(model.conv(x), 1), 1))
        assert not torch.allclose(raw, expected, atol=1e-3)
        # The spiking pool reads the neuron's spikes, so the SNN converges to the ANN.
        snn = graph.to_spiking(lambda site: IFNeuron(8.0, reset="subtract",
                                                     amplitude="threshold"))
        torch.testing.assert_close(snn(direct(x, 4000)).mean(0), expected, atol=0.02,
                                   rtol=0.0)


def test_tensor_method_relu_is_a_site() -> None:
    graph = prepare_conversion(net(lambda x: x.relu()))
    assert [type(site.activation) for site in graph.sites] == [nn.ReLU]


class UntraceableWithActivations(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.GELU()
        self.gate = Swish()
        self.more = nn.Sequential(nn.Linear(4, 4), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            return self.more(self.gate(self.act(self.fc(x))))
        return self.fc(x)


def test_untraceable_model_error_also_names_its_unconvertible_activations() -> None:
    with pytest.raises(ConversionError) as error:
        prepare_conversion(UntraceableWithActivations())
    message = str(error.value)
    assert "UntraceableWithActivations cannot be traced with torch.fx" in message
    assert "GELU (act and 1 more), Swish (gate)" in message
    assert "Convertible activations: ReLU, ReLU6" in message


def test_untraceable_model_with_only_relus_says_only_that_it_is_untraceable() -> None:
    class Untraceable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.act = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.fc(x)) if x.sum() > 0 else x

    with pytest.raises(ConversionError, match="cannot be traced") as error:
        prepare_conversion(Untraceable())
    assert "cannot reproduce" not in str(error.value)


def test_scanning_finds_activation_modules_of_other_libraries_by_class_name() -> None:
    class HardSwishMe(nn.Module):  # timm's memory-efficient naming
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    model = nn.Sequential(nn.ReLU(), nn.ReLU6(), HardSwishMe(), nn.SiLU(), Swish())
    assert unconvertible_activation_modules(model) == {
        "HardSwishMe": ["2"], "SiLU": ["3"], "Swish": ["4"]}
