"""What every dataset that touches the disk shares: finding its folder under the data root,
the missing-data error, fingerprints of file lists, and cache files written atomically.

No function here downloads anything, and none ever will: the machines the suite runs on
often cannot, and a silent download would make two runs read different data.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from snnbench_suite import DataMissingError, DatasetRequest, UsageError


def missing_data(dataset: str, subfolder: str, searched: Path | None, problem: str,
                 layout: str, source: str) -> DataMissingError:
    """The error for absent or incomplete files: what is missing, where the suite looked,
    the layout it expects, and how to point it at a copy."""
    if searched is None:
        where = ("no data root was given (neither --data-root nor SNNBENCH_DATA is set), "
                 f"so the suite did not know where to look for {subfolder}/")
    else:
        where = f"searched {searched}: {problem}"
    return DataMissingError(
        f"dataset {dataset!r} is read from disk and its files are missing: {where}.\n"
        f"Expected layout, under the data root:\n{layout}\n"
        f"Point the suite at a copy with --data-root DIR or SNNBENCH_DATA=DIR, where DIR "
        f"holds {subfolder}/. snnbench never downloads data; {source}"
    )


def dataset_folder(request: DatasetRequest, subfolder: str) -> Path | None:
    """`<data root>/<subfolder>`, or None when no data root was given."""
    if request.data_root is None:
        return None
    return Path(request.data_root).expanduser() / subfolder


def files_fingerprint(root: Path, paths: Iterable[Path], *arrays: np.ndarray,
                      extra: Any = "") -> str:
    """A hash of the files' paths relative to `root` and their sizes, plus `arrays`
    (split indices, labels) and `extra` (version, parameters).

    Sizes, not contents: hashing a 150 GB copy of ImageNet on every run is not an
    option, and a changed file list or a truncated file is what actually happens."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\n".encode())
    for array in arrays:
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr(extra).encode())
    return digest.hexdigest()[:16]


def parameters_key(*parts: Any) -> str:
    """A short, stable key for a cache entry made of versions and parameters."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def check_cache_writable(folder: Path, dataset: str) -> None:
    """Fail with a clear error, creating nothing, when `folder` cannot hold a cache."""
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(
            f"dataset {dataset!r}: cannot cache data in {folder}: {existing} is not a folder. "
            "Choose another --cache (or SNNBENCH_CACHE)."
        )
    try:
        # A real write test: os.access is not reliable for root or on odd filesystems.
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise UsageError(
            f"dataset {dataset!r}: cannot cache data in {folder}: {existing} is not writable "
            f"({exc.strerror or exc}). Choose a writable --cache (or SNNBENCH_CACHE)."
        ) from None


def cache_folder(request: DatasetRequest, dataset: str) -> Path:
    """`<cache>/<dataset>`, created; a clear error when it cannot be."""
    folder = Path(request.cache_dir) / dataset
    check_cache_writable(folder, dataset)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"dataset {dataset!r}: cannot create the cache folder {folder} "
            f"({exc.strerror or exc}). Choose a writable --cache (or SNNBENCH_CACHE)."
        ) from None
    return folder


@contextmanager
def atomic_file(path: Path, dataset: str) -> Iterator[Path]:
    """Yield a temporary path next to `path`; when the block succeeds the file is fsynced
    and renamed over `path`, so readers see the old file or the whole new one."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UsageError(
            f"dataset {dataset!r}: cannot write its cache file {path} "
            f"({exc.strerror or exc}). Choose a writable --cache (or SNNBENCH_CACHE)."
        ) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); a cache is shared like any file the user
        # writes, so give it the permissions the umask allows.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, write: Callable[[IO[bytes]], object], dataset: str) -> None:
    """Write a file through `write(handle)`, atomically (see `atomic_file`)."""
    with atomic_file(path, dataset) as tmp, open(tmp, "wb") as handle:
        write(handle)


def calibration_subset(train_size: int, size: int, seed: int = 0) -> tuple[int, ...]:
    """A fixed, seeded subset of the training indices for calibration, sorted."""
    chosen = np.random.default_rng(seed).choice(train_size, size=min(size, train_size),
                                                replace=False)
    return tuple(int(i) for i in np.sort(chosen))
