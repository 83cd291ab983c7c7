"""The plugin contract, checked.

- Every hookspec is documented in docs/plugins.md with its exact signature, arguments and
  return; every hook has a test (HOOK_TESTS); the hooks are called in the documented order.
- Every registered method, architecture, dataset, table layout and executor is enrolled in
  a smoke test the moment it registers (the parameters come from load_plugins() at
  collection time): one tiny cell, or one rendering, each.
- The public API is `snnbench_suite.__all__`: documented, cheap to import, typed, and the
  only thing the built-in plugins and the example plugin import.
- The example plugin, installed, works end to end through the CLI; the tutorial's code and
  commands work.

Adding a hookspec without documenting it, naming a test for it here and placing it in the
documented order fails this file.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import json
import math
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import snnbench_suite
from snnbench_suite import (
    ArchitectureRequest,
    DataMissingError,
    UsageError,
    hookspecs,
    snn,
    testing,
)
from snnbench_suite.cli import main
from snnbench_suite.plugins import known_hooks, load_plugins, registration_hooks
from snnbench_suite.progress import Reporter

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plugins.md"
HOOKS = known_hooks()
SLOW_TESTS = os.environ.get("SNNBENCH_SLOW_TESTS", "") == "1"


# --- the documentation ------------------------------------------------------------------


def doc_section(title: str) -> str:
    """The text of the `## ...` section of docs/plugins.md whose heading contains title."""
    text = DOC.read_text()
    match = re.search(rf"^## [^\n]*{re.escape(title)}[^\n]*\n(.*?)(?=^## |\Z)", text,
                      flags=re.S | re.M)
    assert match, f"docs/plugins.md has no '## ... {title}' section"
    return match.group(1)


def hook_signature(hook: str) -> str:
    """The hookspec's signature as the reference writes it (annotations as in the source)."""
    signature = inspect.signature(getattr(hookspecs, hook))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"def {hook}({params}) -> {signature.return_annotation}"


def documented_hooks() -> dict[str, str]:
    """hook -> the `def ...` line of its reference entry (the python blocks of the section)."""
    found = {}
    for block in re.findall(r"```python\n(.*?)```", doc_section("Hook reference"), re.S):
        for line in block.splitlines():
            match = re.match(r"def (snnbench_\w+)\(", line)
            if match:
                found[match.group(1)] = line.strip()
    return found


def hook_entry(hook: str) -> str:
    """The reference entry of one hook: from its `#### \\`hook\\`` heading to the next."""
    match = re.search(rf"^#### `{hook}`\n(.*?)(?=^###|\Z)", doc_section("Hook reference"),
                      flags=re.S | re.M)
    assert match, f"docs/plugins.md: no '#### `{hook}`' entry in the hook reference"
    return match.group(1)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_exact_signature(hook: str) -> None:
    documented = documented_hooks()
    assert hook in documented, (
        f"{hook} is a hookspec but docs/plugins.md does not document it: add a "
        f"'#### `{hook}`' entry to the hook reference with\n    {hook_signature(hook)}")
    assert documented[hook] == hook_signature(hook), (
        f"docs/plugins.md documents {hook} as\n    {documented[hook]}\nbut the hookspec is\n"
        f"    {hook_signature(hook)}")


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_documents_its_arguments_and_return(hook: str) -> None:
    entry = hook_entry(hook)
    for argument in inspect.signature(getattr(hookspecs, hook)).parameters:
        assert f"- `{argument}`" in entry, f"{hook}: argument {argument!r} is not described"
    assert "- Returns:" in entry, f"{hook}: the reference does not say what it returns"
    options = getattr(getattr(hookspecs, hook), f"{hookspecs.PROJECT_NAME}_spec")
    # The reference says no hook is firstresult or historic; a hook that is must say so.
    if options.get("firstresult") or options.get("historic"):
        assert "firstresult" in entry or "historic" in entry, hook


def test_the_reference_documents_no_hook_that_does_not_exist() -> None:
    assert sorted(set(documented_hooks()) - set(HOOKS)) == []


def documented_order() -> list[str]:
    return re.findall(r"^\d+\. `(snnbench_\w+)`", doc_section("Call order"), flags=re.M)


def test_the_documented_call_order_places_every_hook() -> None:
    order = documented_order()
    assert len(order) == len(set(order))
    assert sorted(order) == sorted(HOOKS), (
        f"the 'Call order' section of docs/plugins.md lists {order}; the hooks are {HOOKS}: "
        "place every hook in the order snnbench calls it")


def public_dataclasses() -> list[type]:
    return [value for name in snnbench_suite.__all__
            if dataclasses.is_dataclass(value := getattr(snnbench_suite, name))
            and isinstance(value, type)]


@pytest.mark.parametrize("cls", public_dataclasses(), ids=lambda cls: cls.__name__)
def test_every_public_spec_is_documented_field_by_field(cls: type) -> None:
    specs = doc_section("Spec reference")
    match = re.search(rf"^### {cls.__name__}\n(.*?)(?=^### |\Z)", specs, flags=re.S | re.M)
    assert match, f"docs/plugins.md: the spec reference has no '### {cls.__name__}' section"
    missing = [f.name for f in dataclasses.fields(cls) if f"| `{f.name}` |" not in match.group(1)]
    assert not missing, f"docs/plugins.md, {cls.__name__}: fields not documented: {missing}"


# --- every hook has a test --------------------------------------------------------------

# hook -> tests (in this file) that call it and check what it does. A new hookspec needs an
# entry here, with a test that exercises it.
HOOK_TESTS: dict[str, list[str]] = {
    "snnbench_register_methods": ["test_registered_method_runs_a_cell",
                                  "test_hooks_are_called_in_the_documented_order"],
    "snnbench_register_architectures": ["test_registered_architecture_runs_a_cell",
                                        "test_hooks_are_called_in_the_documented_order"],
    "snnbench_register_datasets": ["test_registered_dataset_runs_a_cell",
                                   "test_hooks_are_called_in_the_documented_order"],
    "snnbench_register_tables": ["test_registered_layout_renders",
                                 "test_hooks_are_called_in_the_documented_order"],
    "snnbench_register_executors": ["test_registered_executor_runs_a_cell",
                                    "test_hooks_are_called_in_the_documented_order"],
    "snnbench_cell_started": ["test_hooks_are_called_in_the_documented_order",
                              "test_run_events_receive_the_cell_and_its_written_record"],
    "snnbench_cell_finished": ["test_hooks_are_called_in_the_documented_order",
                               "test_run_events_receive_the_cell_and_its_written_record"],
    "snnbench_environment_info": ["test_hooks_are_called_in_the_documented_order",
                                  "test_environment_info_is_merged_into_every_record"],
}


def test_every_hook_has_a_test() -> None:
    untested = [hook for hook in HOOKS if not HOOK_TESTS.get(hook)]
    assert not untested, (
        f"hooks without a test: {untested}. Write a test that exercises each and name it "
        "in HOOK_TESTS in tests/test_contract.py")
    assert sorted(set(HOOK_TESTS) - set(HOOKS)) == [], "HOOK_TESTS names hooks that are gone"
    for hook, names in HOOK_TESTS.items():
        for name in names:
            assert callable(globals().get(name)), f"HOOK_TESTS[{hook!r}]: no test {name}"


# --- the hooks, called in the documented order ------------------------------------------


def recorder_source(log: str) -> str:
    """A plugin implementing every hook of the contract, logging each call with what it
    received, generated from the hookspecs so a new hook is recorded too."""
    lines = ["from snnbench_suite import hookimpl", f"import {log}", ""]
    for hook in HOOKS:
        arguments = list(inspect.signature(getattr(hookspecs, hook)).parameters)
        received = ", ".join(f"{a!r}: {a}" for a in arguments)
        lines += ["@hookimpl", f"def {hook}({', '.join(arguments)}):",
                  f"    {log}.EVENTS.append(({hook!r}, {{{received}}}))"]
        if hook == "snnbench_environment_info":
            lines.append("    return {'contract_lab': 'bench-7'}")
        lines.append("")
    return "\n".join(lines)


@pytest.fixture
def recorder(install_plugin, monkeypatch) -> list[tuple[str, dict[str, Any]]]:
    """The recording plugin installed through an entry point; returns its event log."""
    import types

    log = types.ModuleType("contract_event_log")
    log.EVENTS = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "contract_event_log", log)
    # A fresh import of the recorder each test, bound to this test's log.
    monkeypatch.delitem(sys.modules, "contract_recorder", raising=False)
    install_plugin("contract_recorder", recorder_source("contract_event_log"))
    return log.EVENTS  # type: ignore[attr-defined, no-any-return]


def quick_run(tmp_path: Path, *args: str) -> list[str]:
    return ["run", "--results", str(tmp_path / "results"), "--cache", str(tmp_path / "cache"),
            "--epochs", "1", "--quiet", "--archs", "vgg11", "--set", "vgg11.width=0.125",
            *args]


def test_hooks_are_called_in_the_documented_order(recorder, tmp_path, capsys) -> None:
    assert main(quick_run(tmp_path, "--methods", "naive,robust", "--T", "1")) == 0
    calls = [hook for hook, _ in recorder]
    cells = 2
    registration = list(registration_hooks().values())
    assert calls == [*registration, "snnbench_environment_info",
                     *["snnbench_cell_started", "snnbench_cell_finished"] * cells]
    # ... which is the order docs/plugins.md documents, hook by hook.
    first_calls = list(dict.fromkeys(calls))
    assert first_calls == documented_order()
    # Registration hooks receive the validating register callback.
    assert all(callable(args["register"]) for hook, args in recorder if hook in registration)


def test_run_events_receive_the_cell_and_its_written_record(recorder, tmp_path, capsys) -> None:
    assert main(quick_run(tmp_path, "--methods", "naive,always_missing_steps", "--T", "1")
                ) == 2  # an unknown method: refused before any hook of a run
    assert [hook for hook, _ in recorder] == list(registration_hooks().values())
    recorder.clear()
    assert main(quick_run(tmp_path, "--methods", "naive", "--T", "1")) == 0
    started = [args for hook, args in recorder if hook == "snnbench_cell_started"]
    finished = [args for hook, args in recorder if hook == "snnbench_cell_finished"]
    assert len(started) == len(finished) == 1
    cell, record = finished[0]["cell"], finished[0]["record"]
    assert started[0]["cell"] == cell and cell.method == "naive" and cell.seed == 0
    # The record the hook gets is the one written to disk.
    on_disk = json.loads((tmp_path / "results" / f"{cell.cell_id}.json").read_text())
    assert json.loads(json.dumps(record)) == on_disk and on_disk["status"] == "ok"
    # A cell that is already recorded does not run again: no run events.
    recorder.clear()
    assert main(quick_run(tmp_path, "--methods", "naive", "--T", "1")) == 0
    assert "snnbench_cell_started" not in [hook for hook, _ in recorder]


def test_environment_info_is_merged_into_every_record(recorder, tmp_path, capsys) -> None:
    assert main(quick_run(tmp_path, "--methods", "naive,robust", "--T", "1")) == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")]
    assert len(records) == 2
    assert all(r["provenance"]["contract_lab"] == "bench-7" for r in records)
    assert [hook for hook, _ in recorder].count("snnbench_environment_info") == 1


# --- every registered thing, enrolled in a smoke test -----------------------------------

# Loaded once at collection: what is registered now is what gets a test. Non-strict, so a
# broken installed plugin fails test_every_installed_plugin_loads instead of collection.
PLUGINS = load_plugins(strict=False, disabled=(), warn=lambda _: None,
                       extra=[(testing.TOY_PLUGIN_NAME, testing.ToyPlugin())])

# Speed-ups for the smoke cells of known datasets; any other dataset runs as registered.
SMOKE_SETTINGS = {
    testing.TOY_DATASET: ["toy_digits.train=16", "toy_digits.test=10"],
    "digits_det": ["digits_det.train_images=16", "digits_det.test_images=8"],
}
# Datasets whose smoke cell is too slow for every test run, with what it costs; without
# SNNBENCH_SLOW_TESTS=1 only their declaration and pre-flight check are tested here.
SLOW_DATASETS = {"dvs_digits": "simulates 9 million camera events first: 9 s on one core"}
SMOKE_WIDTH = 0.25
# Architectures whose smoke cell costs seconds (tracing and converting a deep network);
# test_architectures builds, trains, traces and converts them on every run.
SLOW_ARCHITECTURES = {"densenet121": "2.3 s on one core, 5.6 s on a busy one"}


def test_every_installed_plugin_loads() -> None:
    failed = {s.name: s.error for s in PLUGINS.failed}
    assert not failed, f"plugins that failed to load: {failed}"


def compatible(method: Any, dataset: Any) -> bool:
    return dataset.modality in method.modalities and dataset.task in method.tasks


def pick(names: list[str], prefer: str | list[str],
         accept: Callable[[str], bool]) -> str | None:
    """The first preferred name that is acceptable, else the first acceptable name."""
    preferred = [prefer] if isinstance(prefer, str) else prefer
    for name in [*preferred, *names]:
        if name in names and accept(name):
            return name
    return None


# Methods to smoke-test architectures and datasets with: conversion when the data allows
# it, else direct training (no ANN to train on event frames).
TEST_METHODS = ["naive", "sdt"]


def embedded_dataset_for(task: str, modality: str | None = None) -> str | None:
    def fits(name: str) -> bool:
        spec = PLUGINS.datasets.get(name)
        return (spec.embedded and spec.task == task and name not in SLOW_DATASETS
                and (modality is None or spec.modality == modality))
    return pick(PLUGINS.datasets.names(), testing.TOY_DATASET, fits)


def architecture_for(task: str) -> str | None:
    """toy_cnn for classification, else the first architecture (or family example) that
    serves the task."""
    def fits(name: str) -> bool:
        return name not in SLOW_ARCHITECTURES and task in PLUGINS.architectures.get(name).tasks
    return pick(enrolled_architectures(), testing.TOY_ARCHITECTURE, fits)


def smallest_input(name: str, channels: int = 1) -> int:
    """The smallest square input in 8, 16, 32, 64 that the architecture builds for."""
    spec = PLUGINS.architectures.get(name)
    for size in (8, 16, 32, 64):
        try:
            spec.build(ArchitectureRequest(num_classes=10, input_shape=(channels, size, size),
                                           width=min(spec.default_width, SMOKE_WIDTH)))
        except ValueError:
            continue
        return size
    return 64


def arch_settings(name: str) -> list[str]:
    """A smaller width for every architecture except members of a family (their widths
    are their own)."""
    if name not in PLUGINS.architectures.names():
        return []
    width = min(PLUGINS.architectures.get(name).default_width, SMOKE_WIDTH)
    return [f"{name}.width={width}"]


def smoke_cell(tmp_path: Path, *, method: str, architecture: str, dataset: str,
               settings: list[str] = (), data_root: Path | None = None,
               steps: tuple[int, ...] = (1,)) -> dict[str, Any]:
    """One cell at T = 1 with one epoch per training step; its record, checked."""
    overrides = [*SMOKE_SETTINGS.get(dataset, []), *arch_settings(architecture), *settings]
    record = testing.run_one_cell(PLUGINS, tmp_path, method=method, T=steps,
                                  architecture=architecture, dataset=dataset, epochs=1,
                                  overrides=overrides, data_root=data_root)
    assert record["status"] == "ok"
    assert [entry["T"] for entry in record["per_T"]] == list(steps)
    metric = PLUGINS.datasets.get(dataset).metric
    for entry in record["per_T"]:
        value = entry[metric]
        assert math.isfinite(value) and value >= 0
    return record


@pytest.mark.parametrize("name", PLUGINS.methods.names())
def test_registered_method_runs_a_cell(name: str, tmp_path: Path) -> None:
    spec = PLUGINS.methods.get(name)
    assert spec.description and spec.version
    dataset = pick(PLUGINS.datasets.names(), testing.TOY_DATASET, lambda d: (
        compatible(spec, PLUGINS.datasets.get(d)) and PLUGINS.datasets.get(d).embedded
        and d not in SLOW_DATASETS))
    assert dataset, f"method {name!r}: no embedded dataset it accepts to test it on"
    architecture = architecture_for(PLUGINS.datasets.get(dataset).task)
    assert architecture, f"method {name!r}: no architecture for {dataset!r}"
    record = smoke_cell(tmp_path, method=name, architecture=architecture, dataset=dataset)
    assert record["method"]["version"] == spec.version
    assert record["method"]["origin"] == PLUGINS.methods.origin(name)


def enrolled_architectures() -> list[str]:
    """Every registered architecture; a family by the examples its spec names."""
    names = []
    for entry in PLUGINS.architectures.entries():
        if entry.value.variants is None:
            names.append(entry.name)
        else:
            names += [f"{entry.name}.{example}" for example in entry.value.examples]
    return names


def architecture_cases() -> list[object]:
    return [pytest.param(name, id=name, marks=[pytest.mark.skipif(
        name in SLOW_ARCHITECTURES and not SLOW_TESTS,
        reason=f"slow: set SNNBENCH_SLOW_TESTS=1 ({SLOW_ARCHITECTURES.get(name)})")])
        for name in enrolled_architectures()]


@pytest.mark.parametrize("name", architecture_cases())
def test_registered_architecture_runs_a_cell(name: str, tmp_path: Path) -> None:
    spec = PLUGINS.architectures.get(name)
    task = spec.tasks[0]
    dataset = embedded_dataset_for(task, "static")
    assert dataset, f"architecture {name!r}: no embedded {task} dataset to test it on"
    method = pick(PLUGINS.methods.names(), TEST_METHODS,
                  lambda m: compatible(PLUGINS.methods.get(m), PLUGINS.datasets.get(dataset)))
    settings = []
    if dataset == testing.TOY_DATASET:
        settings.append(f"toy_digits.size={smallest_input(name)}")
    smoke_cell(tmp_path, method=method, architecture=name, dataset=dataset, settings=settings)


def dataset_writers() -> dict[str, Callable[[Path], Path]]:
    """Writers of tiny copies of on-disk datasets, from the dataset tests."""
    import test_datasets as fixtures

    return {"cifar10": fixtures.write_cifar10, "cifar100": fixtures.write_cifar100,
            "imagenet": fixtures.write_imagenet, "cifar10_dvs": fixtures.write_cifar10_dvs}


def dataset_cases() -> list[object]:
    cases: list[object] = []
    for name in PLUGINS.datasets.names():
        marks = []
        if name in SLOW_DATASETS:
            marks.append(pytest.mark.skipif(not SLOW_TESTS, reason=(
                f"slow: set SNNBENCH_SLOW_TESTS=1 ({SLOW_DATASETS[name]}); its declaration "
                "and pre-flight check are tested by test_registered_dataset_is_declared")))
        cases.append(pytest.param(name, marks=marks, id=name))
    return cases


@pytest.mark.parametrize("name", [n for n in PLUGINS.datasets.names()])
def test_registered_dataset_is_declared(name: str, tmp_path: Path) -> None:
    """Version, description, citation; an on-disk dataset has a pre-flight check that
    refuses an empty data root with DataMissingError naming the folder it searched."""
    from snnbench_suite import DatasetRequest

    spec = PLUGINS.datasets.get(name)
    assert spec.version and spec.description and spec.citation
    request = DatasetRequest(params=dict(spec.params), data_root=tmp_path / "empty",
                             cache_dir=tmp_path / "cache")
    if spec.embedded:
        if spec.check is not None:
            spec.check(request)  # embedded data is never missing
        return
    assert spec.check is not None, f"on-disk dataset {name!r} declares no pre-flight check"
    with pytest.raises(DataMissingError, match=re.escape(str(tmp_path / "empty"))):
        spec.check(request)


@pytest.mark.parametrize("name", dataset_cases())
def test_registered_dataset_runs_a_cell(name: str, tmp_path: Path) -> None:
    spec = PLUGINS.datasets.get(name)
    data_root = None
    if not spec.embedded:
        writers = dataset_writers()
        if name not in writers:
            # No tiny copy to run on: the missing-files error is its smoke test.
            with pytest.raises(DataMissingError):
                testing.run_one_cell(PLUGINS, tmp_path, method="naive", dataset=name,
                                     data_root=tmp_path / "empty")
            return
        data_root = tmp_path / "data"
        writers[name](data_root)  # a tiny copy in the official layout under data_root
    method = pick(PLUGINS.methods.names(), TEST_METHODS,
                  lambda m: compatible(PLUGINS.methods.get(m), spec))
    assert method, f"dataset {name!r}: no method accepts it"
    architecture = architecture_for(spec.task)
    smoke_cell(tmp_path, method=method, architecture=architecture, dataset=name,
               data_root=data_root)


@pytest.fixture(scope="module")
def records_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Records of two methods at two T on the toy data, for every layout to render."""
    workdir = tmp_path_factory.mktemp("layouts")
    for method in ("naive", "robust"):
        smoke_cell(workdir, method=method, architecture=testing.TOY_ARCHITECTURE,
                   dataset=testing.TOY_DATASET, steps=(1, 4))
    return workdir / "results"


@pytest.mark.parametrize("name", PLUGINS.tables.names())
@pytest.mark.parametrize("fmt", ["md", "csv"])
def test_registered_layout_renders(name: str, fmt: str, records_folder: Path) -> None:
    """Every layout renders the records, or says it has nothing to show for them (a
    layout of calibration ablations has no rows for naive and robust records)."""
    from snnbench_suite.tables import EmptyTableError

    try:
        text = testing.render_table(PLUGINS, records_folder, name, fmt=fmt)
    except EmptyTableError as exc:
        assert f"layout {name!r} has nothing to show" in str(exc)
        return
    assert isinstance(text, str) and text.strip()


# Executors whose smoke run costs seconds before the first cell; the executor tests cover
# them.
SLOW_EXECUTORS = {"ray": "starts a local Ray cluster first: 8 s on one core"}


def executor_cases() -> list[object]:
    names = PLUGINS.executors.names() if "executors" in PLUGINS.registries else []
    return [pytest.param(name, id=name, marks=[pytest.mark.skipif(
        name in SLOW_EXECUTORS and not SLOW_TESTS,
        reason=f"slow: set SNNBENCH_SLOW_TESTS=1 ({SLOW_EXECUTORS.get(name)})")])
        for name in names]


@pytest.mark.parametrize("name", executor_cases())
def test_registered_executor_runs_a_cell(name: str, tmp_path: Path) -> None:
    """An executor that can run here runs a one-cell matrix with one worker; one that
    cannot says what is missing and what to install, or (installed, but its system is not
    reachable, e.g. no Slurm controller) refuses the run with a UsageError saying why.
    Workers elsewhere load the installed plugins only, so the cell uses built-ins."""
    import torch

    from snnbench_suite.execute import RunSettings
    from snnbench_suite.matrix import Overrides, build_plan, resolve_executor
    from snnbench_suite.runner import run_plan

    spec = PLUGINS.executors.get(name)
    missing = spec.available() if spec.available is not None else None
    if missing is not None:
        assert missing.strip()
        if spec.extra:
            assert spec.extra in missing, f"executor {name!r}: say which extra to install"
        return
    plan = build_plan(PLUGINS, methods=["naive"], architectures=["vgg11"],
                      datasets=["digits"], seeds=[0], steps=[1],
                      overrides=Overrides.parse(["vgg11.width=0.125"]), epochs=1)
    settings = RunSettings(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache",
                           data_root=None, device=torch.device("cpu"))
    try:
        summary = run_plan(plan, PLUGINS, settings, Reporter(),
                           resolve_executor(PLUGINS, name, {}, jobs=1))
    except UsageError as exc:
        assert str(exc).strip() and name != "local", f"{name}: {exc}"
        assert not list((tmp_path / "results").glob("*.json"))
        return
    assert summary.exit_code == 0
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")]
    assert record["status"] == "ok"


# --- the public API ---------------------------------------------------------------------


def test_every_public_name_resolves() -> None:
    for name in snnbench_suite.__all__:
        assert getattr(snnbench_suite, name) is not None, name
    assert snnbench_suite.snn is snn and snnbench_suite.testing is testing
    assert sorted(snnbench_suite.__all__) == sorted(set(snnbench_suite.__all__))


def test_importing_the_public_api_is_cheap() -> None:
    """Plugin discovery imports snnbench_suite; torch and pandas load only when used."""
    code = ("import sys, snnbench_suite; "
            "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_the_package_is_typed() -> None:
    assert (Path(snnbench_suite.__file__).parent / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'\[tool\.setuptools\.package-data\]\s*\nsnnbench_suite = \["py\.typed"\]',
                     pyproject), "py.typed must be package data, so installs carry it"


def public_modules() -> dict[str, set[str]]:
    """module -> importable names: the package's __all__, and that of each public
    subpackage (`snn`, `detection`: exported modules with their own __all__)."""
    modules = {"snnbench_suite": set(snnbench_suite.__all__)}
    for name in snnbench_suite.__all__:
        value = getattr(snnbench_suite, name)
        if inspect.ismodule(value) and hasattr(value, "__all__"):
            modules[value.__name__] = set(value.__all__)
    return modules


def private_imports(path: Path) -> list[str]:
    """`snnbench_suite` imports of a file that are not the public API."""
    public = public_modules()
    problems = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            problems += [a.name for a in node.names
                         if a.name.startswith("snnbench_suite.") and a.name not in public]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("snnbench_suite"):
            allowed = public.get(node.module or "")
            if allowed is None:
                problems.append(f"from {node.module} import ...")
            else:
                problems += [f"{node.module}.{a.name}" for a in node.names if a.name not in allowed]
    return [f"{path.relative_to(ROOT)}:{p}" for p in problems]


PLUGIN_SOURCES = sorted([*ROOT.glob("plugins/snnbench_*/**/*.py"),
                         *ROOT.glob("examples/*/src/**/*.py"),
                         *ROOT.glob("examples/*/tests/**/*.py")])


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_the_public_api(path: Path) -> None:
    assert private_imports(path) == [], (
        "plugins import from `snnbench_suite` (its __all__) and its public subpackages "
        f"({', '.join(sorted(public_modules()))}) only; export what they need there or keep "
        "it in the plugin")


# --- the example plugin, installed as CI installs it -----------------------------------

needs_example = pytest.mark.skipif(
    importlib.util.find_spec("snnbench_example_plugin") is None,
    reason="the example plugin is not installed; CI installs it with "
    "`pip install ./examples/snnbench-example-plugin`")


@needs_example
def test_example_plugin_end_to_end_through_the_cli(tmp_path: Path, capsys,
                                                    monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # rich tables: names whole on one line
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    for name in ("example_halfinit", "example_lenet", "example_latency"):
        assert re.search(rf"{name}\b.*\bexample_plugin\b", listing), name
    assert main(["plugins"]) == 0
    plugins_out = capsys.readouterr().out
    assert "example_plugin  snnbench-example-plugin 0.1.0  loaded" in plugins_out
    assert "methods        example_halfinit" in plugins_out

    results = tmp_path / "results"
    run = ["run", "--methods", "naive,example_halfinit", "--archs", "example_lenet",
           "--T", "1,4,16", "--epochs", "2", "--results", str(results),
           "--cache", str(tmp_path / "cache"), "--quiet"]
    assert main(run) == 0
    leaderboard = capsys.readouterr().out
    assert re.search(r"^\| digits \| example_halfinit \| example_lenet \|", leaderboard, re.M)
    [record] = [r for r in (json.loads(p.read_text()) for p in results.glob("*.json"))
                if r["cell"]["method"] == "example_halfinit"]
    assert record["status"] == "ok" and record["method"]["origin"] == "example_plugin"
    assert record["architecture"]["origin"] == "example_plugin"
    provenance = record["provenance"]
    assert provenance["plugin_versions"]["example_plugin"] == {
        "distribution": "snnbench-example-plugin", "version": "0.1.0"}
    assert provenance["plugins"]["example_plugin"] == "0.1.0"

    assert main(["table", "--layout", "example_latency", "--results", str(results)]) == 0
    table = capsys.readouterr().out
    assert "| T within 1 of ANN |" in table
    assert re.search(r"^\| digits \| example_halfinit \| example_lenet \|", table, re.M)


@needs_example
def test_example_plugin_is_found_by_a_fresh_process() -> None:
    result = subprocess.run([sys.executable, "-m", "snnbench_suite.cli", "--strict-plugins",
                             "list", "tables"], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "example_latency" in result.stdout


# --- the tutorial of docs/plugins.md, as written ----------------------------------------


def code_blocks(text: str) -> list[tuple[str, str, str]]:
    """(language, content, the paragraph just before) of every fenced block in `text`."""
    blocks, lines, index = [], text.splitlines(), 0
    while index < len(lines):
        if lines[index].startswith("```"):
            language = lines[index][3:].strip()
            end = lines.index("```", index + 1)
            before = "\n".join(lines[:index]).rstrip().rsplit("\n\n", 1)[-1]
            blocks.append((language, "\n".join(lines[index + 1:end]) + "\n", before))
            index = end
        index += 1
    return blocks


def tutorial_files() -> dict[str, str]:
    """file name -> content, for each block the tutorial introduces with its file name."""
    files = {}
    for language, content, before in code_blocks(doc_section("Tutorial")):
        named = re.search(r"`([\w./]+\.(?:toml|py))`:$", before)
        if language and named:
            files[named.group(1)] = content
    return files


def tutorial_commands(program: str) -> list[list[str]]:
    return [shlex.split(line)[1:] for language, content, _ in code_blocks(doc_section("Tutorial"))
            if not language for line in content.splitlines() if line.startswith(f"{program} ")]


def test_the_tutorial_plugin_works_as_written(tmp_path: Path, monkeypatch, capsys) -> None:
    """The tutorial's files, installed as `pip install -e .` would (an entry point from
    its pyproject.toml), then its test and its `snnbench` commands, as written."""
    files = tutorial_files()
    assert set(files) == {"pyproject.toml", "src/snnbench_mylab/__init__.py",
                          "tests/test_scaled.py"}
    [(name, module)] = re.findall(r"\[project\.entry-points\.snnbench_suite\]\n(\w+) = \"(\w+)\"",
                                  files["pyproject.toml"])
    assert module == "snnbench_mylab"
    site = tmp_path / "site"
    (site / "snnbench_mylab").mkdir(parents=True)
    (site / "snnbench_mylab" / "__init__.py").write_text(files["src/snnbench_mylab/__init__.py"])
    dist = site / "snnbench_mylab-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: snnbench-mylab\n"
                                   "Version: 0.1.0\n")
    (dist / "entry_points.txt").write_text(f"[snnbench_suite]\n{name} = {module}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SNNBENCH_CACHE", str(tmp_path / "cache"))

    namespace: dict[str, Any] = {}
    exec(compile(files["tests/test_scaled.py"], "test_scaled.py", "exec"), namespace)
    namespace["test_scaled_runs_a_cell"](tmp_path / "test")

    commands = tutorial_commands("snnbench")
    assert [c[0] for c in commands] == ["plugins", "list", "run", "table", "run"]
    for command in commands:
        assert main(command) == 0, command
    out = capsys.readouterr().out
    assert "mylab  snnbench-mylab 0.1.0  loaded" in out
    assert re.search(r"^\| digits \| mylab_scaled \| vgg11 \|", out, re.M)
    records = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")]
    scaled = [r for r in records if r["cell"]["method"] == "mylab_scaled"]
    assert sorted(r["cell"]["method_params"]["scale"] for r in scaled) == [0.6, 0.8]
    assert all(r["provenance"]["plugin_versions"]["mylab"] == {
        "distribution": "snnbench-mylab", "version": "0.1.0"} for r in scaled)
    assert main(["run", "--methods", "mylab_scaled", "--T", "4", "--set",
                 "mylab_scaled.scale=0"]) == 2
    assert "scale must be > 0" in capsys.readouterr().err
