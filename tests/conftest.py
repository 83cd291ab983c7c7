"""Shared fixtures: fresh plugin managers and installable throwaway plugin distributions."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from snnbench_suite.plugins import Plugins, load_plugins


def _share_the_cores_between_xdist_workers() -> None:
    """Give each xdist worker its share of the cores. torch otherwise starts one thread
    per core in every worker, and on a small machine the workers' threads then fight for
    the same cores: the same test took three times as long from one run to the next."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1:
        return
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    # Subprocesses the tests start (the CLI, spawned executors) inherit the setting.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, threads)
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


_share_the_cores_between_xdist_workers()


@pytest.fixture
def plugins() -> Plugins:
    return load_plugins(strict=True)


@pytest.fixture(autouse=True)
def _clean_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SNNBENCH_STRICT_PLUGINS", "SNNBENCH_DISABLE_PLUGINS", "SNNBENCH_RESULTS",
                 "SNNBENCH_CACHE", "SNNBENCH_DATA"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Path]:
    """Write a module and a dist-info folder declaring it in the entry-point group
    `snnbench_suite`, and put the folder on sys.path: a real installed distribution as far
    as importlib.metadata is concerned."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(name: str, source: str) -> Path:
        (site / f"{name}.py").write_text(textwrap.dedent(source))
        # A module of this name imported by an earlier test would be reused by the entry
        # point instead of this source.
        monkeypatch.delitem(sys.modules, name, raising=False)
        dist = site / f"{name}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[snnbench_suite]\n{name} = {name}\n")
        return site

    return install
