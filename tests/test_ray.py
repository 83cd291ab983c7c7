"""The `ray` executor on a private local Ray instance (only when the `ray` extra is
installed: `pip install 'snnbench-suite[ray]'`).

Ray is started with address="local", two CPUs, no dashboard, usage statistics off and
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (without it Ray listens on every interface on Linux),
and shut down with ray.shutdown() afterwards, never `ray stop` (which would kill every
Ray process of the user).
"""

from __future__ import annotations

import json
import os

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed "
                          "(pip install 'snnbench-suite[ray]')")


@pytest.fixture
def local_ray(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        yield
    finally:
        ray.shutdown()


def test_a_matrix_runs_as_ray_tasks_writing_their_records(local_ray, tmp_path) -> None:
    from snnbench_suite.cli import main

    code = main(["run", "--methods", "naive", "--archs", "vgg11", "--set", "vgg11.width=0.125",
                 "--epochs", "1", "--T", "1,2", "--seeds", "0,1", "--executor", "ray",
                 "-j", "2", "--results", str(tmp_path / "results"),
                 "--cache", str(tmp_path / "cache"), "--quiet"])
    assert code == 0
    found = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")]
    assert sorted(r["cell"]["seed"] for r in found) == [0, 1]
    assert all(r["status"] == "ok" and [e["T"] for e in r["per_T"]] == [1, 2] for r in found)
    # Written by Ray's worker processes, not by this one.
    assert all(not r["provenance"]["worker"].endswith(f":{os.getpid()}") for r in found)
    assert ray.is_initialized()  # the executor joined this instance and left it running
