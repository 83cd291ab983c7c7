"""Plugin-manager factory: entry-point loading, hook validation and the registries.

There is no module-global manager: every command (and every test) builds its own with
`load_plugins()`. Each entry point is loaded in its own try/except so one broken plugin
is reported (stderr and `snnbench plugins`) while the others keep working. Every error
names the plugin, the distribution that installed it, and what to fix.
"""

from __future__ import annotations

import difflib
import inspect
import os
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from snnbench_suite import hookspecs
from snnbench_suite.errors import PluginError, SnnbenchError
from snnbench_suite.registry import Registry
from snnbench_suite.spec_checks import kind_check, kind_label

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
HOOK_PREFIX = "snnbench_"
REGISTER_PREFIX = "snnbench_register_"
BUILTIN_DISTRIBUTION = "snnbench-suite"


def known_hooks() -> list[str]:
    """Every hook of the contract, in the order hookspecs.py defines them."""
    return [n for n, v in vars(hookspecs).items() if n.startswith(HOOK_PREFIX) and callable(v)]


def registration_hooks() -> dict[str, str]:
    """kind -> hook, for every `snnbench_register_<kind>` hook, in the order they are called
    (the order hookspecs.py defines them)."""
    return {n[len(REGISTER_PREFIX):]: n for n in known_hooks() if n.startswith(REGISTER_PREFIX)}


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
    registered: dict[str, list[str]] = field(default_factory=dict)  # kind -> names

    @property
    def described(self) -> str:
        """The plugin as messages name it: entry point, distribution and version."""
        if self.distribution is None:
            return f"{self.name!r} (registered in-process: {self.source})"
        return (f"{self.name!r} (distribution {self.distribution} {self.version}, "
                f"entry point {self.name} = {self.source})")


@dataclass
class Plugins:
    """A plugin manager with its registries filled: one registry per registration hook.

    The registries hold the spec classes of snnbench_suite.specs (methods: MethodSpec, ...);
    they are typed Any so callers narrow them where they need to."""

    manager: pluggy.PluginManager
    statuses: list[PluginStatus]
    registries: dict[str, Registry[Any]]

    @property
    def methods(self) -> Registry[Any]:
        return self.registries["methods"]

    @property
    def architectures(self) -> Registry[Any]:
        return self.registries["architectures"]

    @property
    def datasets(self) -> Registry[Any]:
        return self.registries["datasets"]

    @property
    def tables(self) -> Registry[Any]:
        return self.registries["tables"]

    def __getattr__(self, kind: str) -> Registry[Any]:
        # Kinds added to the contract later (e.g. `executors`) are reached by name too.
        registries = self.__dict__.get("registries") or {}
        if kind in registries:
            return registries[kind]
        raise AttributeError(kind)

    def status(self, name: str) -> PluginStatus | None:
        return next((s for s in self.statuses if s.name == name), None)

    @property
    def failed(self) -> list[PluginStatus]:
        return [s for s in self.statuses if s.status == "failed"]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _required_arguments(function: Callable[..., Any]) -> list[str]:
    """The arguments pluggy would pass to `function`: those without a default."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]


def _contract_problem(plugin: object) -> str | None:
    """What is wrong with the hookimpls of `plugin`, or None: a hook the contract does not
    define (a misspelling, usually), or an argument the hook does not provide."""
    known = known_hooks()
    for attr in dir(plugin):
        if not attr.startswith(HOOK_PREFIX):
            continue
        function = getattr(plugin, attr, None)
        if not (callable(function) and hasattr(function, f"{hookspecs.PROJECT_NAME}_impl")):
            continue
        if attr not in known:
            close = difflib.get_close_matches(attr, known, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            return (f"it implements {attr!r}, which is not a snnbench hook.{hint} "
                    f"Rename the function to one of the hooks: {', '.join(known)}.")
        provided = _required_arguments(getattr(hookspecs, attr))
        unknown = [a for a in _required_arguments(function) if a not in provided]
        if unknown:
            return (f"its {attr} takes argument(s) {', '.join(map(repr, unknown))}, which the "
                    f"hook does not provide; the hook provides: "
                    f"{', '.join(provided) or '(no arguments)'}. Remove them: a hookimpl "
                    "may take any subset of the hook's arguments, by name.")
    return None


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
        status.registered = {}
        self.warn(
            f"snnbench: error: plugin {status.described} was not loaded: {message} "
            f"The other plugins keep working; set SNNBENCH_STRICT_PLUGINS=1 to make this "
            f"fatal, or SNNBENCH_DISABLE_PLUGINS={status.name} to silence it."
        )
        if self.strict:
            raise PluginError(f"plugin {status.described}: {message}") from exc

    def register(self, status: PluginStatus, plugin: object) -> None:
        """Register `plugin` and validate its hooks; on failure it is left unregistered."""
        self.statuses.append(status)
        problem = _contract_problem(plugin)
        if problem is not None:
            self.fail(status, problem, None)
            return
        try:
            self.manager.register(plugin, name=status.name)
            self.manager.check_pending()
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self.manager.is_registered(plugin):
                self.manager.unregister(plugin)
            self.fail(status, f"it does not fulfil the hook contract: {exc}", exc)
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
    distributions: Collection[str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Plugins:
    """Build a plugin manager: entry points of group `snnbench_suite`, then `extra`
    (name, plugin object) pairs, then fill the registries.

    `strict` (default: SNNBENCH_STRICT_PLUGINS) re-raises plugin failures as PluginError.
    `disabled` (default: SNNBENCH_DISABLE_PLUGINS, comma separated) blocks entry points
    by name. `distributions`, when given, loads only the entry points of those
    distributions (tests use it to leave other installed plugins out).
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
            if distributions is not None and status.distribution not in distributions:
                continue
            if ep.name in blocked:
                status.status = "disabled"
                loader.statuses.append(status)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                loader.statuses.append(status)
                loader.fail(status, f"importing it raised {type(exc).__name__}: {exc}. Fix "
                            "the import error (run `python -c 'import "
                            f"{ep.value.split(':')[0]}'` to see the traceback).", exc)
                continue
            loader.register(status, plugin)

    for name, plugin in extra:
        if loader.manager.is_registered(plugin):
            continue  # also installed: registered once, with its distribution
        loader.register(PluginStatus(name=name, source=_describe_object(plugin)), plugin)

    plugins = Plugins(
        manager=loader.manager,
        statuses=loader.statuses,
        registries={kind: Registry(kind_label(kind)) for kind in registration_hooks()},
    )
    _fill_registries(plugins, loader)
    return plugins


def _describe_object(plugin: object) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__qualname__


def _fill_registries(plugins: Plugins, loader: _Loader) -> None:
    """Call each plugin's registration hooks with a validating `register` callback.

    Hooks are called kind by kind (the order of hookspecs.py), plugins in load order.
    A plugin's registrations are committed together: if any of them is invalid, none is
    kept, the plugin is reported as failed, and the other plugins keep working.
    """
    by_plugin: dict[str, list[tuple[str, str, object]]] = {}
    for kind, hook_name in registration_hooks().items():
        check = kind_check(kind)
        # pluggy keeps implementations in registration order (it calls them in reverse).
        for impl in getattr(plugins.manager.hook, hook_name).get_hookimpls():
            pending = by_plugin.setdefault(impl.plugin_name, [])
            status = plugins.status(impl.plugin_name)
            if status is not None and status.status == "failed":
                continue

            def register(spec: object, _check: Any = check, _pending: Any = pending,
                         _kind: str = kind) -> None:
                _check(spec)
                _pending.append((_kind, spec.name, spec))  # type: ignore[attr-defined]

            arguments = {"register": register}
            try:
                impl.function(*(arguments[name] for name in impl.argnames))
            except SnnbenchError as exc:
                _drop(plugins, loader, impl.plugin_name, status, f"{exc}", exc)
            except Exception as exc:
                message = f"its {hook_name} raised {type(exc).__name__}: {exc}"
                _drop(plugins, loader, impl.plugin_name, status, message, exc)

    load_order = {s.name: i for i, s in enumerate(plugins.statuses)}
    for plugin_name, pending in sorted(by_plugin.items(),
                                       key=lambda item: load_order.get(item[0], len(load_order))):
        status = plugins.status(plugin_name)
        if status is not None and status.status == "failed":
            continue
        committed: list[tuple[str, str]] = []
        try:
            for kind, name, spec in pending:
                plugins.registries[kind].register(name, spec, origin=plugin_name)
                committed.append((kind, name))
        except SnnbenchError as exc:
            for kind, name in committed:
                plugins.registries[kind].unregister(name)
            _drop(plugins, loader, plugin_name, status, str(exc), exc)
            continue
        if status is not None:
            for kind, name in committed:
                status.registered.setdefault(kind, []).append(name)


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
