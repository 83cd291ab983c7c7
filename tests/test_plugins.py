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


BUILTINS = {"snnbench_methods", "snnbench_architectures", "snnbench_datasets", "snnbench_tables"}


def test_builtins_register_through_the_entry_point_group() -> None:
    plugins = load_plugins(strict=True)
    assert {"naive", "robust"} <= set(plugins.methods.names())
    assert plugins.methods.origin("naive") == "snnbench_methods"
    builtins = [s for s in plugins.statuses if s.name in BUILTINS]
    assert {s.name for s in builtins} == BUILTINS
    assert all(s.distribution == "snnbench-suite" for s in builtins)
    # What each registered is recorded per kind, for `snnbench plugins`.
    assert plugins.status("snnbench_tables").registered == {"tables": [
        "leaderboard", "comparison", "calibration", "ablation", "curve", "efficiency",
        "records"]}
    assert "naive" in plugins.status("snnbench_methods").registered["methods"]


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
    assert "leaderboard" not in plugins.tables and not warnings


# --- bad input at load time: the error names the distribution and the fix; others work ---

UNDECLARED_PARAMETER = """
from snnbench_suite import MethodSpec, hookimpl

def check(params):
    if params["scale"] <= 0:
        raise ValueError("scale must be > 0")

@hookimpl
def snnbench_register_methods(register):
    register(MethodSpec(name="undeclared", family="conversion", version="1",
                        t_mode="anytime", build=lambda ctx: None, params={"sacle": 1.0},
                        check_params=check))
"""

DEFAULT_FAILS_CHECK = """
from snnbench_suite import MethodSpec, hookimpl

def check(params):
    if not 0 < params["scale"] <= 1:
        raise ValueError(f"scale must be in (0, 1], got {params['scale']}")

@hookimpl
def snnbench_register_methods(register):
    register(MethodSpec(name="bad_default", family="conversion", version="1",
                        t_mode="anytime", build=lambda ctx: None, params={"scale": 2.0},
                        check_params=check))
"""

UNPARSABLE_DEFAULT = """
from snnbench_suite import MethodSpec, hookimpl

@hookimpl
def snnbench_register_methods(register):
    register(MethodSpec(name="object_default", family="conversion", version="1",
                        t_mode="anytime", build=lambda ctx: None, params={"fn": object()}))
"""

RECIPE_READS_UNDECLARED = """
from snnbench_suite import AnnRecipe, MethodSpec, hookimpl

@hookimpl
def snnbench_register_methods(register):
    register(MethodSpec(name="recipe_reads", family="conversion", version="1",
                        t_mode="anytime", build=lambda ctx: None, params={},
                        ann_recipe=lambda params: AnnRecipe(name=f"l{params['levels']}",
                                                            version="1")))
"""

FAMILY_NAMESPACE = """
from snnbench_suite import ArchitectureSpec, hookimpl

@hookimpl
def snnbench_register_architectures(register):
    register(ArchitectureSpec(name="timm.my_net", family="mine", build=lambda request: None))
"""

PARTLY_INVALID = """
from snnbench_suite import MethodSpec, TableSpec, hookimpl

@hookimpl
def snnbench_register_tables(register):
    register(TableSpec(name="partly_ok_layout", build=lambda frame: frame))

@hookimpl
def snnbench_register_methods(register):
    register(MethodSpec(name="Bad-Name", family="conversion", version="1",
                        t_mode="anytime", build=lambda ctx: None))
"""

BAD_INPUT = {
    "wrong_type": (WRONG_TYPE, ["expects a snnbench_suite.MethodSpec, got dict",
                                "`from snnbench_suite import MethodSpec`"]),
    "collides": (COLLIDES, ["'records' is registered twice", "'snnbench_tables'",
                            "rename the one in plugin 'collides'"]),
    "unknown_argument": (WRONG_ARGUMENT, ["snnbench_register_methods takes argument(s) 'colour'",
                                          "the hook provides: register", "Remove them"]),
    "misspelled": (MISSPELLED, ["'snnbench_register_method', which is not a snnbench hook",
                                "Did you mean 'snnbench_register_methods'?"]),
    "undeclared": (UNDECLARED_PARAMETER, ["check_params reads parameter 'scale'",
                                          "declared: sacle", "Add it to params"]),
    "bad_default": (DEFAULT_FAILS_CHECK, ["declared defaults fail its own check_params",
                                          "scale must be in (0, 1], got 2.0"]),
    "unparsable": (UNPARSABLE_DEFAULT, ["default of parameter 'fn' has type object",
                                        "defaults are bool, int, float, str, None"]),
    "recipe_reads": (RECIPE_READS_UNDECLARED, ["ann_recipe reads parameter 'levels'",
                                               "declared: (none)"]),
    "family_namespace": (FAMILY_NAMESPACE, ["'timm.my_net'", "namespace of the family 'timm'",
                                            "outside 'timm.'"]),
    "partly_invalid": (PARTLY_INVALID, ["invalid method name 'Bad-Name'", "lowercase"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_plugin_is_a_load_error_naming_its_distribution_and_the_fix(
        install_plugin, case) -> None:
    source, expected = BAD_INPUT[case]
    install_plugin(case, source)
    install_plugin("good_plugin", GOOD)
    warnings: list[str] = []
    plugins = load_plugins(warn=warnings.append)
    status = plugins.status(case)
    assert status.status == "failed" and status.registered == {}
    for fragment in expected:
        assert fragment in status.error
    # The message on stderr names the plugin, its distribution and version, and its module.
    [warning] = [w for w in warnings if f"plugin '{case}'" in w]
    assert f"(distribution {case} 0.1, entry point {case} = {case})" in warning
    assert status.error in warning
    # Nothing of the failed plugin is kept; the other plugins keep working.
    assert "partly_ok_layout" not in plugins.tables
    assert plugins.tables.origin("third_party_layout") == "good_plugin"
    assert plugins.tables.origin("records") == "snnbench_tables"
    assert "naive" in plugins.methods and "vgg11" in plugins.architectures
    # Strict loading turns the same problem into an error naming the distribution.
    with pytest.raises(PluginError, match=f"distribution {case} 0.1"):
        load_plugins(strict=True, warn=lambda _: None)


def test_hookimpl_taking_a_subset_of_the_arguments_is_fine(install_plugin) -> None:
    install_plugin("no_arguments", """
from snnbench_suite import hookimpl
import sys

@hookimpl
def snnbench_register_tables():
    sys.modules[__name__].CALLED = True
""")
    plugins = load_plugins(strict=True)
    assert plugins.status("no_arguments").hooks == ["snnbench_register_tables"]
    import no_arguments  # the module the entry point loaded

    assert no_arguments.CALLED is True


# --- `snnbench plugins` -------------------------------------------------------------------


def test_plugins_command_shows_distribution_hooks_registrations_and_errors(
        install_plugin, capsys) -> None:
    from snnbench_suite.cli import main

    install_plugin("broken_plugin", BROKEN)
    install_plugin("good_plugin", GOOD)
    assert main(["plugins", "--all"]) == 0
    out = capsys.readouterr().out
    assert "1 failed" in out.splitlines()[0]
    good = out.split("good_plugin  good_plugin 0.1  loaded\n")[1].split("\n\n")[0]
    assert good.splitlines() == ["  entry point    good_plugin",
                                 "  hooks          snnbench_register_tables",
                                 "  tables         third_party_layout"]
    broken = out.split("broken_plugin  broken_plugin 0.1  failed\n")[1].split("\n\n")[0]
    assert "error          importing it raised RuntimeError: this plugin is broken on " \
           "purpose" in broken
    assert "snnbench_methods  snnbench-suite" in out and "methods        naive, robust" in out


# --- snnbench_suite.testing ---------------------------------------------------------------


def test_testing_plugin_manager_is_fresh_and_registers_the_toy_plugin(install_plugin) -> None:
    import types

    from snnbench_suite import testing

    install_plugin("good_plugin", GOOD)  # installed, but not snnbench's own
    module = types.ModuleType("my_test_plugin")
    exec(GOOD.replace("third_party_layout", "my_layout"), module.__dict__)
    plugins = testing.plugin_manager(module)
    assert plugins.tables.origin("my_layout") == "my_test_plugin"
    assert "third_party_layout" not in plugins.tables  # installed="builtin"
    assert plugins.datasets.origin("toy_digits") == testing.TOY_PLUGIN_NAME
    assert plugins.architectures.origin("toy_cnn") == testing.TOY_PLUGIN_NAME
    assert "my_layout" not in testing.plugin_manager().tables  # gone in the next manager
    everything = testing.plugin_manager(installed="all", toy=False)
    assert "third_party_layout" in everything.tables and "toy_digits" not in everything.datasets
    assert len(testing.plugin_manager(installed="none", toy=False).methods) == 0


def test_testing_plugin_manager_registers_an_installed_plugin_once(install_plugin) -> None:
    import importlib

    from snnbench_suite import testing

    install_plugin("good_plugin", GOOD)
    plugins = testing.plugin_manager(importlib.import_module("good_plugin"), installed="all")
    assert [s.name for s in plugins.statuses].count("good_plugin") == 1
    assert plugins.status("good_plugin").distribution == "good_plugin"


def test_testing_plugin_manager_is_strict(install_plugin) -> None:
    import types

    from snnbench_suite import testing

    module = types.ModuleType("bad_plugin")
    exec(WRONG_TYPE, module.__dict__)
    with pytest.raises(PluginError, match="bad_plugin.*expects a snnbench_suite.MethodSpec"):
        testing.plugin_manager(module)


def test_toy_dataset_and_architecture(tmp_path) -> None:
    import torch

    from snnbench_suite import ArchitectureRequest, DatasetRequest, testing

    spec = testing.toy_dataset(train=30, test=20)
    splits = spec.load(DatasetRequest(params={**spec.params, "size": 16}, data_root=None,
                                      cache_dir=tmp_path))
    assert (len(splits.train), len(splits.test)) == (30, 20)
    assert splits.info.input_shape == (1, 16, 16) and splits.calibration_indices == tuple(
        range(30))
    x, y = splits.test[0]
    assert x.shape == (1, 16, 16) and 0 <= int(y) <= 9
    # The bundled digits cycle through the classes: the first 30 hold every class 3 times.
    assert sorted(int(splits.train[i][1]) for i in range(30)) == sorted(list(range(10)) * 3)
    model = testing.toy_architecture().build(ArchitectureRequest(num_classes=10,
                                                                 input_shape=(1, 8, 8)))
    # conv 1->8 (3x3), conv 8->16, linear 16->10, BN scale and shift on 8 + 16 channels
    assert sum(p.numel() for p in model.parameters()) == (
        (9 + 1) * 8 + (8 * 9 + 1) * 16 + (16 + 1) * 10 + 2 * (8 + 16))
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_run_one_cell_returns_the_written_record(tmp_path) -> None:
    import json

    from snnbench_suite import testing

    plugins = testing.plugin_manager()
    record = testing.run_one_cell(plugins, tmp_path, method="naive", T=(2, 1), epochs=1,
                                  overrides={"toy_digits.train": 16, "toy_digits.test": 10})
    [path] = (tmp_path / "results").glob("*.json")
    assert record == json.loads(path.read_text())
    assert [e["T"] for e in record["per_T"]] == [1, 2]
    assert record["cell"]["dataset_params"] == {"train": 16, "test": 10, "size": 8}
    assert record["provenance"]["plugin_versions"]["snnbench_methods"]["distribution"] == (
        "snnbench-suite")


def test_run_one_cell_raises_with_the_traceback_of_a_failed_cell(tmp_path) -> None:
    import types

    from snnbench_suite import testing

    module = types.ModuleType("failing_method")
    exec('''
from snnbench_suite import MethodSpec, hookimpl

def build(ctx):
    raise RuntimeError("this method fails on purpose")

@hookimpl
def snnbench_register_methods(register):
    register(MethodSpec(name="always_fails", family="conversion", version="1",
                        t_mode="anytime", build=build))
''', module.__dict__)
    plugins = testing.plugin_manager(module)
    with pytest.raises(testing.CellFailed, match="(?s)fails on purpose.*Traceback"):
        testing.run_one_cell(plugins, tmp_path, method="always_fails", epochs=1)
    record = testing.run_one_cell(plugins, tmp_path / "again", method="always_fails",
                                  epochs=1, check=False)
    assert record["status"] == "failed" and record["error"]["type"] == "RuntimeError"
