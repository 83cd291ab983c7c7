"""Provenance: what produced a record (versions, git state, hardware, determinism).

Every record carries it: snnbench's and each plugin's distribution version, the git commit
and dirty flag of the source tree, python / torch / CUDA, the device and host, the thread
counts, the deterministic settings, and (added per cell by the worker) the seed, the
dataset fingerprint and a hash of the cell's whole configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PACKAGE_ROOT = Path(__file__).resolve().parent


def package_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the snnbench source tree, when it is a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=10,
            check=True,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def deterministic_flags() -> dict[str, Any]:
    """The settings that make a cell reproducible, as they are in this process now."""
    return {
        "torch_deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def make_deterministic() -> None:
    """Deterministic kernels everywhere; on CUDA, cuBLAS needs its workspace pinned too
    (it must be set before the first cuBLAS call, so every worker calls this first)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def thread_counts() -> dict[str, Any]:
    """Torch's thread pools: CPU results can depend on them (the order of reductions)."""
    return {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
    }


def config_hash(config: Any) -> str:
    """SHA-256 of the canonical JSON of everything that configures a cell."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def environment(device: torch.device, plugin_versions: dict[str, Any]) -> dict[str, Any]:
    cuda = torch.version.cuda if torch.cuda.is_available() else None
    device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine()
    )
    return {
        "snnbench_version": package_version("snnbench-suite"),
        "plugins": {name: entry.get("version") for name, entry in plugin_versions.items()},
        "plugin_versions": plugin_versions,
        "host": platform.node(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": cuda,
        "device": str(device),
        "device_name": device_name,
        "torch_threads": torch.get_num_threads(),
        "threads": thread_counts(),
        "cpu_count": os.cpu_count(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic": deterministic_flags(),
    }
