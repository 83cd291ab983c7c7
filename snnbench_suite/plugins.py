"""Plugin-manager factory: entry-point loading, hook validation and the registries.

There is no module-global manager: every command (and every test) builds its own with
`load_plugins()`. Each entry point is loaded in its own try/except so one broken plugin
is reported (stderr and `snnbench plugins`) while the others keep working.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

import pluggy

from snnbench_suite import hookspecs
from snnbench_suite.errors import PluginError, SnnbenchError
from snnbench_suite.registry import Registry
from snnbench_suite.spec_checks import KIND_CHECKS

S = TypeVar("S")

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
HOOK_PREFIX = "snnbench_"
BUILTIN_DISTRIBUTION = "snnbench-suite"


@dataclass
class PluginStatus:
    """What happened to one plugin; shown by `snnbench plugins`."""

    name: str
    source: str
    distribution: str | None = None
    version: str | None = None
    status: str = "loaded"  # loaded | failed | disabled
    error: str | None = None
    hooks: list[str] = field(default_factory=list)


@dataclass
class Plugins:
    """A plugin manager with its registries filled."""

    manager: pluggy.PluginManager
    statuses: list[PluginStatus]
    methods: Registry[Any]
    architectures: Registry[Any]
    datasets: Registry[Any]
    tables: Registry[Any]

    def status(self, name: str) -> PluginStatus | None:
        return next((s for s in self.statuses if s.name == name), None)

    @property
    def failed(self) -> list[PluginStatus]:
        return [s for s in self.statuses if s.status == "failed"]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _known_hooks() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith(HOOK_PREFIX))


def _unknown_hooks(plugin: object) -> list[str]:
    """Hook-like names on a plugin (marked as hookimpl) that the contract does not define."""
    known = set(_known_hooks())
    unknown = []
    for attr in dir(plugin):
        if not attr.startswith(HOOK_PREFIX) or attr in known:
            continue
        candidate = getattr(plugin, attr, None)
        if callable(candidate) and hasattr(candidate, f"{hookspecs.PROJECT_NAME}_impl"):
            unknown.append(attr)
    return unknown


def _describe_unknown_hook(plugin_name: str, hook: str) -> str:
    close = difflib.get_close_matches(hook, _known_hooks(), n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"plugin {plugin_name!r} implements {hook!r}, which is not a snnbench hook.{hint} "
        f"Known hooks: {', '.join(_known_hooks())}."
    )


def _load_order(ep: EntryPoint) -> tuple[bool, str]:
    """Built-in plugins first, so a third-party name collision fails the newcomer."""
    dist = getattr(ep, "dist", None)
    return (dist is None or dist.name != BUILTIN_DISTRIBUTION, ep.name)


class _Loader:
    def __init__(self, strict: bool, warn: Callable[[str], None]) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.statuses: list[PluginStatus] = []
        self.strict = strict
        self.warn = warn

    def fail(self, status: PluginStatus, message: str, exc: BaseException | None) -> None:
        status.status = "failed"
        status.error = message
        self.warn(
            f"snnbench: error: plugin {status.name!r} ({status.source}) was not loaded: "
            f"{message} The other plugins keep working; set SNNBENCH_STRICT_PLUGINS=1 "
            f"to make this fatal, or SNNBENCH_DISABLE_PLUGINS={status.name} to silence it."
        )
        if self.strict:
            raise PluginError(f"plugin {status.name!r} ({status.source}): {message}") from exc

    def register(self, status: PluginStatus, plugin: object) -> None:
        """Register `plugin` and validate its hooks; on failure it is left unregistered."""
        self.statuses.append(status)
        unknown = _unknown_hooks(plugin)
        if unknown:
            self.fail(status, _describe_unknown_hook(status.name, unknown[0]), None)
            return
        try:
            self.manager.register(plugin, name=status.name)
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            if self.manager.is_registered(plugin):
                self.manager.unregister(plugin)
            self.fail(status, f"does not fulfil the hook contract: {exc}", exc)
            return
        status.hooks = sorted(
            caller.name for caller in self.manager.get_hookcallers(plugin) or []
        )


def load_plugins(
    *,
    strict: bool | None = None,
    disabled: Iterable[str] | None = None,
    extra: Sequence[tuple[str, object]] = (),
    use_entry_points: bool = True,
    warn: Callable[[str], None] | None = None,
) -> Plugins:
    """Build a plugin manager: entry points of group `snnbench_suite`, then `extra`
    (name, plugin object) pairs, then fill the registries.

    `strict` (default: SNNBENCH_STRICT_PLUGINS) re-raises plugin failures as PluginError.
    `disabled` (default: SNNBENCH_DISABLE_PLUGINS, comma separated) blocks entry points
    by name.
    """
    if strict is None:
        strict = _env_flag("SNNBENCH_STRICT_PLUGINS")
    if disabled is None:
        disabled = [
            n.strip() for n in os.environ.get("SNNBENCH_DISABLE_PLUGINS", "").split(",")
        ]
    blocked = {n for n in disabled if n}
    loader = _Loader(strict, warn or (lambda msg: print(msg, file=sys.stderr)))

    if use_entry_points:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=_load_order):
            dist = getattr(ep, "dist", None)
            status = PluginStatus(
                name=ep.name,
                source=ep.value,
                distribution=dist.name if dist is not None else None,
                version=dist.version if dist is not None else None,
            )
            if ep.name in blocked:
                status.status = "disabled"
                loader.statuses.append(status)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                loader.statuses.append(status)
                loader.fail(status, f"importing it raised {type(exc).__name__}: {exc}", exc)
                continue
            loader.register(status, plugin)

    for name, plugin in extra:
        loader.register(PluginStatus(name=name, source=repr(plugin)), plugin)

    plugins = Plugins(
        manager=loader.manager,
        statuses=loader.statuses,
        methods=Registry("method"),
        architectures=Registry("architecture"),
        datasets=Registry("dataset"),
        tables=Registry("table layout"),
    )
    _fill_registries(plugins, loader)
    return plugins


_REGISTRATION_HOOKS = {
    "methods": "snnbench_register_methods",
    "architectures": "snnbench_register_architectures",
    "datasets": "snnbench_register_datasets",
    "tables": "snnbench_register_tables",
}


def _fill_registries(plugins: Plugins, loader: _Loader) -> None:
    """Call each plugin's registration hooks with a validating `register` callback.

    A plugin's registrations are committed together: if any of them is invalid, none is
    kept, the plugin is reported as failed, and the other plugins keep working.
    """
    by_plugin: dict[str, list[tuple[Registry[Any], str, object]]] = {}
    for kind, hook_name in _REGISTRATION_HOOKS.items():
        registry: Registry[Any] = getattr(plugins, kind)
        check = KIND_CHECKS[kind]
        for impl in getattr(plugins.manager.hook, hook_name).get_hookimpls():
            pending = by_plugin.setdefault(impl.plugin_name, [])
            status = plugins.status(impl.plugin_name)

            def register(spec: object, _check: Any = check, _pending: Any = pending,
                         _registry: Any = registry) -> None:
                _check(spec)
                _pending.append((_registry, spec.name, spec))  # type: ignore[attr-defined]

            try:
                impl.function(register=register)
            except SnnbenchError as exc:
                _drop(plugins, loader, impl.plugin_name, status, str(exc), exc)
            except Exception as exc:
                message = f"its {hook_name} hook raised {type(exc).__name__}: {exc}"
                _drop(plugins, loader, impl.plugin_name, status, message, exc)

    load_order = {s.name: i for i, s in enumerate(plugins.statuses)}
    for plugin_name, pending in sorted(by_plugin.items(),
                                       key=lambda item: load_order.get(item[0], len(load_order))):
        status = plugins.status(plugin_name)
        if status is not None and status.status == "failed":
            continue
        committed: list[tuple[Registry[Any], str]] = []
        try:
            for registry, name, spec in pending:
                registry.register(name, spec, origin=plugin_name)
                committed.append((registry, name))
        except SnnbenchError as exc:
            for registry, name in committed:
                registry.unregister(name)
            _drop(plugins, loader, plugin_name, status, str(exc), exc)


def _drop(
    plugins: Plugins,
    loader: _Loader,
    plugin_name: str,
    status: PluginStatus | None,
    message: str,
    exc: BaseException,
) -> None:
    if status is None:
        status = PluginStatus(name=plugin_name, source=plugin_name)
        plugins.statuses.append(status)
    if status.status != "failed":
        loader.fail(status, message, exc)
