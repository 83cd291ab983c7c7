"""Validation of registered specs: run by `register` the moment a plugin registers one.

Each error says which spec is wrong, what was expected and what to change; the loader
adds the plugin and its distribution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from snnbench_suite.errors import InvalidSpecError
from snnbench_suite.registry import check_name
from snnbench_suite.specs import (
    METHOD_FAMILIES,
    MODALITIES,
    T_MODES,
    TASK_METRICS,
    TASKS,
    AnnRecipe,
    ArchitectureSpec,
    DatasetSpec,
    ExecutorSpec,
    MethodSpec,
    TableSpec,
)


def _require_type(spec: object, expected: type, kind: str) -> None:
    if not isinstance(spec, expected):
        raise InvalidSpecError(
            f"register() for {kind} expects a snnbench_suite.{expected.__name__}, "
            f"got {type(spec).__name__}: {spec!r:.80}. Build one with "
            f"`from snnbench_suite import {expected.__name__}` and pass it to register()."
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
    _check_parameters(spec)


# Types a default may have: `--set` parses a value as the type of its default, and the
# resolved parameters are stored as JSON in every record.
PARAMETER_TYPES = (bool, int, float, str, type(None), list, tuple, dict)


def _check_parameters(spec: MethodSpec) -> None:
    """The declared parameters (`params`: name -> default) must be what `check_params` and
    a callable `ann_recipe` read, and the defaults must pass the method's own check."""
    name = spec.name
    if not isinstance(spec.params, Mapping):
        raise InvalidSpecError(
            f"method {name!r}: params must be a mapping of parameter name -> default, "
            f"got {type(spec.params).__name__}"
        )
    for key, default in spec.params.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise InvalidSpecError(
                f"method {name!r}: parameter name {key!r} is invalid; use a Python "
                "identifier (it is set with --set METHOD.PARAM=VALUE)"
            )
        if not isinstance(default, PARAMETER_TYPES):
            raise InvalidSpecError(
                f"method {name!r}: the default of parameter {key!r} has type "
                f"{type(default).__name__}; defaults are bool, int, float, str, None, or "
                "lists and dicts of those (they are parsed from --set and stored in records)"
            )
    declared = ", ".join(sorted(spec.params)) or "(none)"
    defaults = dict(spec.params)
    if spec.check_params is not None:
        if not callable(spec.check_params):
            raise InvalidSpecError(f"method {name!r}: check_params must be callable or None")
        try:
            spec.check_params(defaults)
        except ValueError as exc:
            raise InvalidSpecError(
                f"method {name!r}: its declared defaults fail its own check_params: {exc}. "
                "Make the defaults in params valid values."
            ) from exc
        except KeyError as exc:
            raise InvalidSpecError(
                f"method {name!r}: check_params reads parameter {exc}, which params does not "
                f"declare (declared: {declared}). Add it to params with its default."
            ) from exc
    if spec.ann_recipe is not None and not isinstance(spec.ann_recipe, AnnRecipe):
        if not callable(spec.ann_recipe):
            raise InvalidSpecError(
                f"method {name!r}: ann_recipe must be an AnnRecipe, a function of the "
                "parameters returning one, or None"
            )
        try:
            recipe = spec.ann_recipe(defaults)
        except KeyError as exc:
            raise InvalidSpecError(
                f"method {name!r}: ann_recipe reads parameter {exc}, which params does not "
                f"declare (declared: {declared}). Add it to params with its default."
            ) from exc
        if not isinstance(recipe, AnnRecipe):
            raise InvalidSpecError(
                f"method {name!r}: ann_recipe(params) returned {type(recipe).__name__}; "
                "it must return a snnbench_suite.AnnRecipe"
            )


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
    if not spec.tasks:
        raise InvalidSpecError(f"architecture {spec.name!r}: tasks must name at least one task")
    for task in spec.tasks:
        _require_in(task, TASKS, "each task", spec.name)


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
    _require_in(spec.metric, TASK_METRICS[spec.task], f"metric of a {spec.task} dataset",
                spec.name)


def check_table(spec: object) -> None:
    _require_type(spec, TableSpec, "tables")
    assert isinstance(spec, TableSpec)
    check_name("table layout", spec.name)
    if not callable(spec.build):
        raise InvalidSpecError(f"table layout {spec.name!r}: build must be callable")


def check_executor(spec: object) -> None:
    _require_type(spec, ExecutorSpec, "executors")
    assert isinstance(spec, ExecutorSpec)
    check_name("executor", spec.name)
    for attribute in ("run", "check_params", "available", "preflight"):
        value = getattr(spec, attribute)
        if value is not None and not callable(value):
            raise InvalidSpecError(f"executor {spec.name!r}: {attribute} must be callable")
    if not isinstance(spec.params, Mapping):
        raise InvalidSpecError(f"executor {spec.name!r}: params must be a mapping")
    for key, default in spec.params.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise InvalidSpecError(f"executor {spec.name!r}: parameter name {key!r} is invalid")
        if not isinstance(default, PARAMETER_TYPES):
            raise InvalidSpecError(
                f"executor {spec.name!r}: the default of {key!r} has type "
                f"{type(default).__name__}; use bool, int, float, str or None"
            )


KIND_CHECKS: dict[str, Callable[[Any], None]] = {
    "methods": check_method,
    "architectures": check_architecture,
    "datasets": check_dataset,
    "tables": check_table,
    "executors": check_executor,
}

# How messages name one thing of each kind; a kind not listed drops its plural 's'.
KIND_LABELS: dict[str, str] = {"tables": "table layout"}


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind[:-1] if kind.endswith("s") else kind)


def check_named(kind: str) -> Callable[[Any], None]:
    """The least any registered thing must be: an object with a valid `name`."""

    def check(spec: object) -> None:
        check_name(kind_label(kind), getattr(spec, "name", None))

    return check


def kind_check(kind: str) -> Callable[[Any], None]:
    """The validation `register` runs for `kind` (a kind without its own check: its name)."""
    return KIND_CHECKS.get(kind) or check_named(kind)
