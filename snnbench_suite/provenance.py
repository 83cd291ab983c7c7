"""Provenance: what produced a record (versions, git state, hardware, determinism)."""

from __future__ import annotations

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


def environment(device: torch.device, plugin_versions: dict[str, str | None]) -> dict[str, Any]:
    cuda = torch.version.cuda if torch.cuda.is_available() else None
    device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine()
    )
    return {
        "snnbench_version": package_version("snnbench-suite"),
        "plugins": plugin_versions,
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": cuda,
        "device": str(device),
        "device_name": device_name,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
