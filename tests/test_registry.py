"""Registry: names, duplicates naming both origins, did-you-mean."""

from __future__ import annotations

import pytest

from snnbench_suite.errors import DuplicateNameError, InvalidSpecError, UnknownNameError
from snnbench_suite.registry import Registry


def test_unknown_name_suggests_close_matches_and_lists_all() -> None:
    registry: Registry[int] = Registry("method")
    for name in ("naive", "robust", "calib.light"):
        registry.register(name, 1, origin="p")
    with pytest.raises(UnknownNameError) as info:
        registry.get("naiv")
    message = str(info.value)
    assert "Unknown method 'naiv'" in message
    assert "Did you mean: naive?" in message
    assert "Available: calib.light, naive, robust." in message


def test_duplicate_names_both_origins() -> None:
    registry: Registry[int] = Registry("architecture")
    registry.register("vgg11", 1, origin="snnbench_architectures")
    with pytest.raises(DuplicateNameError, match="'snnbench_architectures'.*'my_plugin'"):
        registry.register("vgg11", 2, origin="my_plugin")


@pytest.mark.parametrize("name", ["VGG", "my-net", "", "a.b.c", ".x", "x."])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidSpecError, match="lowercase"):
        Registry("method").register(name, 1, origin="p")


def test_dotted_variant_names_are_allowed() -> None:
    registry: Registry[int] = Registry("method")
    registry.register("calib.light", 1, origin="p")
    assert registry.get("calib.light") == 1
    assert registry.origin("calib.light") == "p"


class _Family:
    """A value with `variants`: the registry resolves `family.<variant>` through it."""

    examples = ("small",)

    def __init__(self) -> None:
        self.calls: list[str] = []

    def variants(self, variant: str) -> str:
        self.calls.append(variant)
        if variant not in ("small", "large"):
            raise ValueError(f"no member {variant!r}. Did you mean: fam.small?")
        return f"member {variant}"


def test_a_family_entry_resolves_dotted_members_once() -> None:
    registry: Registry[object] = Registry("architecture")
    family = _Family()
    registry.register("fam", family, origin="p")
    assert registry.get("fam.small") == "member small"
    assert registry.get("fam.small") == "member small"
    assert family.calls == ["small"]  # resolved once, then remembered
    assert registry.origin("fam.large") == "p"
    with pytest.raises(UnknownNameError, match=r"Unknown architecture 'fam.tiny': no member"):
        registry.get("fam.tiny")
    with pytest.raises(UnknownNameError, match=r"'fam' is a family.*'fam.small'"):
        registry.get("fam")
    with pytest.raises(UnknownNameError, match=r"Available: fam.<variant>\."):
        registry.get("other")
    registry.unregister("fam")
    with pytest.raises(UnknownNameError):
        registry.get("fam.small")
