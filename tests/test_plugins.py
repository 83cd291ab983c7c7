"""Plugin loading through real entry points: good, broken, misspelled, invalid, disabled."""

from __future__ import annotations

import pytest

from snnbench_suite.errors import PluginError
from snnbench_suite.plugins import load_plugins

GOOD = """
from snnbench_suite import TableSpec, hookimpl

@hookimpl
def snnbench_register_tables(register):
    register(TableSpec(name="third_party_layout", build=lambda frame: frame))
"""

BROKEN = """
raise RuntimeError("this plugin is broken on purpose")
"""

MISSPELLED = """
from snnbench_suite import hookimpl

@hookimpl
def snnbench_register_method(register):
    pass
"""

WRONG_ARGUMENT = """
from snnbench_suite import hookimpl

@hookimpl
def snnbench_register_methods(register, colour):
    pass
"""

WRONG_TYPE = """
from snnbench_suite import hookimpl

@hookimpl
def snnbench_register_methods(register):
    register({"name": "not_a_spec"})
"""

COLLIDES = """
from snnbench_suite import TableSpec, hookimpl

@hookimpl
def snnbench_register_tables(register):
    register(TableSpec(name="records", build=lambda frame: frame))
"""


def test_builtins_register_through_the_entry_point_group() -> None:
    plugins = load_plugins(strict=True)
    assert {"naive", "robust"} <= set(plugins.methods.names())
    assert plugins.methods.origin("naive") == "snnbench_methods"
    assert {s.name for s in plugins.statuses} >= {
        "snnbench_methods", "snnbench_architectures", "snnbench_datasets", "snnbench_tables"}
    assert all(s.distribution == "snnbench-suite" for s in plugins.statuses)


def test_installed_third_party_plugin_is_loaded(install_plugin) -> None:
    install_plugin("good_plugin", GOOD)
    plugins = load_plugins(strict=True)
    assert plugins.tables.origin("third_party_layout") == "good_plugin"
    status = plugins.status("good_plugin")
    assert status.status == "loaded" and status.version == "0.1"
    assert status.hooks == ["snnbench_register_tables"]


def test_broken_plugin_is_reported_and_the_others_keep_working(install_plugin) -> None:
    install_plugin("broken_plugin", BROKEN)
    install_plugin("good_plugin", GOOD)
    warnings: list[str] = []
    plugins = load_plugins(warn=warnings.append)
    assert plugins.status("broken_plugin").status == "failed"
    assert "broken on purpose" in plugins.status("broken_plugin").error
    assert any("broken_plugin" in w and "RuntimeError" in w for w in warnings)
    assert "third_party_layout" in plugins.tables
    assert "naive" in plugins.methods


def test_strict_mode_re_raises(install_plugin, monkeypatch) -> None:
    install_plugin("broken_plugin", BROKEN)
    with pytest.raises(PluginError, match="broken_plugin.*broken on purpose"):
        load_plugins(strict=True, warn=lambda _: None)
    monkeypatch.setenv("SNNBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError):
        load_plugins(warn=lambda _: None)


def test_misspelled_hook_is_an_error_naming_plugin_and_hook(install_plugin) -> None:
    install_plugin("typo_plugin", MISSPELLED)
    warnings: list[str] = []
    plugins = load_plugins(warn=warnings.append)
    status = plugins.status("typo_plugin")
    assert status.status == "failed"
    assert "'snnbench_register_method'" in status.error
    assert "Did you mean 'snnbench_register_methods'" in status.error
    assert any("error: plugin 'typo_plugin'" in w for w in warnings)
    with pytest.raises(PluginError, match="typo_plugin"):
        load_plugins(strict=True, warn=lambda _: None)


def test_hookimpl_with_unknown_argument_is_refused(install_plugin) -> None:
    install_plugin("argument_plugin", WRONG_ARGUMENT)
    plugins = load_plugins(warn=lambda _: None)
    status = plugins.status("argument_plugin")
    assert status.status == "failed" and "colour" in status.error
    assert "naive" in plugins.methods


def test_registering_the_wrong_type_fails_the_plugin_only(install_plugin) -> None:
    install_plugin("wrong_type_plugin", WRONG_TYPE)
    plugins = load_plugins(warn=lambda _: None)
    status = plugins.status("wrong_type_plugin")
    assert status.status == "failed" and "expects a snnbench_suite.MethodSpec" in status.error
    assert "naive" in plugins.methods


def test_name_collision_with_a_builtin_names_both(install_plugin) -> None:
    install_plugin("collide_plugin", COLLIDES)
    plugins = load_plugins(warn=lambda _: None)
    status = plugins.status("collide_plugin")
    assert status.status == "failed"
    assert "'snnbench_tables'" in status.error and "'collide_plugin'" in status.error
    assert plugins.tables.origin("records") == "snnbench_tables"


def test_disabled_plugins_are_not_loaded(install_plugin, monkeypatch) -> None:
    install_plugin("broken_plugin", BROKEN)
    monkeypatch.setenv("SNNBENCH_DISABLE_PLUGINS", "broken_plugin,snnbench_tables")
    warnings: list[str] = []
    plugins = load_plugins(warn=warnings.append)
    assert plugins.status("broken_plugin").status == "disabled"
    assert plugins.status("snnbench_tables").status == "disabled"
    assert len(plugins.tables) == 0 and not warnings
