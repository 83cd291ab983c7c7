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
