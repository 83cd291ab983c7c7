"""Validation of registered specs: run by `register` the moment a plugin registers one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from snnbench_suite.errors import InvalidSpecError
from snnbench_suite.registry import check_name
from snnbench_suite.specs import (
    METHOD_FAMILIES,
    MODALITIES,
    T_MODES,
    TASKS,
    ArchitectureSpec,
    DatasetSpec,
    MethodSpec,
    TableSpec,
)


def _require_type(spec: object, expected: type, kind: str) -> None:
    if not isinstance(spec, expected):
        raise InvalidSpecError(
            f"register() for {kind} expects a snnbench_suite.{expected.__name__}, "
            f"got {type(spec).__name__}: {spec!r:.80}"
        )


def _require_in(value: object, allowed: tuple[str, ...], what: str, name: str) -> None:
    if value not in allowed:
        raise InvalidSpecError(
            f"{name!r}: {what} must be one of {', '.join(allowed)}; got {value!r}"
        )


def check_method(spec: object) -> None:
    _require_type(spec, MethodSpec, "methods")
    assert isinstance(spec, MethodSpec)
    check_name("method", spec.name)
    _require_in(spec.family, METHOD_FAMILIES, "family", spec.name)
    _require_in(spec.t_mode, T_MODES, "t_mode", spec.name)
    for modality in spec.modalities:
        _require_in(modality, MODALITIES, "each modality", spec.name)
    for task in spec.tasks:
        _require_in(task, TASKS, "each task", spec.name)
    if not callable(spec.build):
        raise InvalidSpecError(f"method {spec.name!r}: build must be callable")
    if not spec.version:
        raise InvalidSpecError(f"method {spec.name!r}: a version is required")
    for key in spec.params:
        if not isinstance(key, str) or not key.isidentifier():
            raise InvalidSpecError(f"method {spec.name!r}: parameter name {key!r} is invalid")
    if spec.check_params is not None:
        try:
            spec.check_params(dict(spec.params))
        except ValueError as exc:
            raise InvalidSpecError(
                f"method {spec.name!r}: its declared defaults fail its own check: {exc}"
            ) from exc


def check_architecture(spec: object) -> None:
    _require_type(spec, ArchitectureSpec, "architectures")
    assert isinstance(spec, ArchitectureSpec)
    check_name("architecture", spec.name)
    if not callable(spec.build):
        raise InvalidSpecError(f"architecture {spec.name!r}: build must be callable")
    if not spec.default_width > 0:
        raise InvalidSpecError(f"architecture {spec.name!r}: default_width must be > 0")
    if spec.variants is not None and not callable(spec.variants):
        raise InvalidSpecError(f"architecture {spec.name!r}: variants must be callable or None")
    if spec.examples and spec.variants is None:
        raise InvalidSpecError(
            f"architecture {spec.name!r}: examples name variants of a family; give "
            "`variants` too, or drop `examples`"
        )


def check_dataset(spec: object) -> None:
    _require_type(spec, DatasetSpec, "datasets")
    assert isinstance(spec, DatasetSpec)
    check_name("dataset", spec.name)
    _require_in(spec.task, TASKS, "task", spec.name)
    _require_in(spec.modality, MODALITIES, "modality", spec.name)
    if not callable(spec.load):
        raise InvalidSpecError(f"dataset {spec.name!r}: load must be callable")
    if spec.check is not None and not callable(spec.check):
        raise InvalidSpecError(f"dataset {spec.name!r}: check must be callable or None")


def check_table(spec: object) -> None:
    _require_type(spec, TableSpec, "tables")
    assert isinstance(spec, TableSpec)
    check_name("table layout", spec.name)
    if not callable(spec.build):
        raise InvalidSpecError(f"table layout {spec.name!r}: build must be callable")


KIND_CHECKS: dict[str, Callable[[Any], None]] = {
    "methods": check_method,
    "architectures": check_architecture,
    "datasets": check_dataset,
    "tables": check_table,
}
