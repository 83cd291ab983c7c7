"""`cifar10_dvs`: CIFAR10-DVS event recordings with a fixed split and TET's preprocessing.

Li, Liu, Ji, Li, Shi, CIFAR10-DVS: An Event-Stream Dataset for Object Classification,
Frontiers in Neuroscience 11:309 (2017). 10 classes x 1,000 recordings of CIFAR-10 images
moved on a monitor in front of a DVS128 sensor (128x128 pixels, 2 polarities).

Data root layout, one folder per class under `DIR/CIFAR10DVS/` (the folder tonic itself
uses, so a tonic data root works as the data root):

    DIR/CIFAR10DVS/{airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck}/

holding either
- tonic's layout: `*.aedat4` files, read through `tonic.datasets.CIFAR10DVS` (its archive
  check is bypassed because snnbench lists the files itself: tonic never downloads). Its
  decoder needs the `aedat` package. Events are used in tonic's orientation; or
- the original release: `*.aedat` files (AER-DAT 2.0): header lines starting with `#`,
  then big-endian uint32 (address, timestamp in microseconds) pairs with
  x = (address & 0xFE) >> 1, y = (address & 0x7F00) >> 8, polarity = address & 1,
  remapped as SpikingJelly does to x' = 127 - y, y' = 127 - x, p' = 1 - p (upright
  images, ON = 1). A file whose data is not a whole number of pairs is truncated and
  refused with its name.
A class folder may not mix the two.

Split (version 1): there is no official one, and the random splits of common tools make
results vary between runs. Per class, the recordings sorted by file name (plain string
order, so `..._10` precedes `..._2`), the first 90% (900) train and the rest (100) test,
the TET protocol. The file list, sizes and split are hashed into the fingerprint.

Preprocessing (TET: Deng et al., ICLR 2022): `frames` (10) frames of equal event count
(tonic's ToFrame with `n_event_bins`; the remainder events of an uneven division are
dropped, as tonic does), each frame divided by its maximum count, resized to `size` x
`size` (48) bilinearly with antialiasing. The frames are computed once and cached in
`<cache>/datasets/cifar10_dvs/` as float16 (half the disk and memory; the values are in
[0, 1]) under a key of the version, the file fingerprint and these parameters, written
atomically. Training augmentation: a horizontal flip (p = 0.5) and a random roll of
-5..5 pixels on each axis. The loader yields `[B, frames, 2, size, size]`.
Training defaults (SGD, 0.1, cosine) are the suite's; `--epochs` shortens them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from snnbench_datasets.augment import FlipAndRoll
from snnbench_datasets.files import (
    atomic_file,
    cache_folder,
    calibration_subset,
    check_cache_writable,
    dataset_folder,
    files_fingerprint,
    missing_data,
    parameters_key,
)
from snnbench_suite import (
    DataCorruptError,
    DataMissingError,
    DatasetInfo,
    DatasetRequest,
    DatasetSpec,
    DatasetSplits,
    TrainConfig,
    UsageError,
)

NAME = "cifar10_dvs"
SUBFOLDER = "CIFAR10DVS"
VERSION = "1"
SPLIT_VERSION = 1
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
SENSOR = 128
TRAIN_TENTHS = 9  # the first 9/10 of each class train: 900 of 1,000
CALIBRATION_SIZE = 1024
MAX_ROLL = 5
PARAMS: dict[str, Any] = {"frames": 10, "size": 48}
KINDS = (".aedat", ".aedat4")
LAYOUT = ("    DIR/CIFAR10DVS/<class>/*.aedat    (the original release), or\n"
          "    DIR/CIFAR10DVS/<class>/*.aedat4   (tonic's layout)\n"
          f"  with the 10 class folders {', '.join(CLASSES)}")
SOURCE = ("get the recordings yourself (the .aedat release the paper points to, or tonic's "
          ".aedat4 archive) and unpack them, one folder per class.")


@dataclass(frozen=True)
class Listing:
    """The recordings, class by class, each class sorted by file name, and the split."""

    folder: Path
    suffix: str
    files: tuple[Path, ...]
    labels: np.ndarray
    train: np.ndarray
    test: np.ndarray


def list_recordings(request: DatasetRequest) -> Listing:
    folder = dataset_folder(request, SUBFOLDER)
    if folder is None:
        raise missing_data(NAME, SUBFOLDER, None, "", LAYOUT, SOURCE)
    if not folder.is_dir():
        raise missing_data(NAME, SUBFOLDER, folder, "the folder does not exist", LAYOUT, SOURCE)
    absent = [name for name in CLASSES if not (folder / name).is_dir()]
    if absent:
        raise missing_data(NAME, SUBFOLDER, folder, f"no class folder {', '.join(absent)}",
                           LAYOUT, SOURCE)
    files: list[Path] = []
    labels: list[int] = []
    train: list[int] = []
    test: list[int] = []
    suffixes: set[str] = set()
    for label, name in enumerate(CLASSES):
        found = sorted((p for p in (folder / name).iterdir()
                        if p.is_file() and p.suffix.lower() in KINDS), key=lambda p: p.name)
        kinds = {p.suffix.lower() for p in found}
        if len(kinds) > 1:
            raise DataMissingError(
                f"dataset {NAME!r}: {folder / name} mixes .aedat and .aedat4 files; keep one "
                f"release per copy.\nExpected layout, under the data root:\n{LAYOUT}")
        if len(found) < 2:
            raise missing_data(NAME, SUBFOLDER, folder,
                               f"{name}/ holds {len(found)} .aedat/.aedat4 recordings "
                               "(at least 2 per class are needed for a train and a test "
                               "split; the release has 1,000)", LAYOUT, SOURCE)
        suffixes |= kinds
        first = len(files)
        cut = max(1, len(found) * TRAIN_TENTHS // 10)
        train.extend(range(first, first + cut))
        test.extend(range(first + cut, first + len(found)))
        files.extend(found)
        labels.extend([label] * len(found))
    if len(suffixes) > 1:
        raise DataMissingError(
            f"dataset {NAME!r}: {folder} mixes .aedat and .aedat4 class folders; keep one "
            f"release per copy.\nExpected layout, under the data root:\n{LAYOUT}")
    return Listing(folder=folder, suffix=suffixes.pop(), files=tuple(files),
                   labels=np.asarray(labels, dtype=np.int64),
                   train=np.asarray(train, dtype=np.int64), test=np.asarray(test, dtype=np.int64))


# --- reading ----------------------------------------------------------------------------


def read_aedat(path: Path) -> np.ndarray:
    """The events of one original-release `.aedat` file as a tonic event array, in
    SpikingJelly's orientation (see the module docstring)."""
    import tonic

    raw = path.read_bytes()
    start = 0
    while raw.startswith(b"#", start):
        end = raw.find(b"\n", start)
        if end < 0:
            raise DataCorruptError(
                f"dataset {NAME!r}: {path} ends inside its '#' header: the file is truncated. "
                "Replace it with the file from the release.")
        start = end + 1
    body = len(raw) - start
    if body % 8:
        raise DataCorruptError(
            f"dataset {NAME!r}: {path} holds {body} bytes of events after its header, "
            f"{body / 4:g} 32-bit words: not a whole number of (address, timestamp) pairs "
            "of 8 bytes (an odd number of words or a cut word), so the file is truncated "
            "or not AER-DAT 2.0. Replace it with the file from the release.")
    words = np.frombuffer(raw, dtype=">u4", offset=start)
    address, timestamp = words[0::2], words[1::2]
    events = np.empty(len(address), dtype=tonic.io.events_struct)
    x = (address & 0xFE) >> 1
    y = (address & 0x7F00) >> 8
    events["x"] = SENSOR - 1 - y
    events["y"] = SENSOR - 1 - x
    events["t"] = timestamp
    events["p"] = (address & 1) == 0  # p' = 1 - p
    return events


def _tonic_reader(listing: Listing) -> Any:
    """tonic's CIFAR10DVS over the listed folder, never downloading."""
    check_aedat4_decoder()
    from tonic.datasets import cifar10dvs

    class CIFAR10DVS(cifar10dvs.CIFAR10DVS):  # tonic locates files by this class name
        def _check_exists(self) -> bool:
            return True  # snnbench listed the files; tonic's own check wants the archive

        def download(self) -> None:
            raise DataMissingError(f"dataset {NAME!r}: tonic tried to download; snnbench "
                                   "never downloads. Unpack the recordings yourself.")

    dataset = CIFAR10DVS(save_to=str(listing.folder.parent))
    index = {str(Path(p).resolve()): i for i, p in enumerate(dataset.data)}
    return dataset, index


def check_aedat4_decoder() -> None:
    try:
        import aedat  # noqa: F401  (tonic's .aedat4 decoder)
    except ImportError:
        raise UsageError(
            f"dataset {NAME!r}: the copy holds .aedat4 files (tonic's layout), which tonic "
            "decodes with the 'aedat' package, and it is not installed. Install it "
            "(pip install aedat) or use the original .aedat release.") from None


def preprocess(events: np.ndarray, frames: int, size: int) -> np.ndarray:
    """`[frames, 2, size, size]` float16: equal-count frames, each divided by its
    maximum, resized."""
    import torch.nn.functional as F
    from tonic.transforms import ToFrame

    framed = ToFrame(sensor_size=(SENSOR, SENSOR, 2), n_event_bins=frames)(events)
    counts = torch.from_numpy(np.asarray(framed, dtype=np.float32))
    peak = counts.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1.0)  # empty frames stay 0
    scaled = F.interpolate(counts / peak, size=(size, size), mode="bilinear",
                           align_corners=False, antialias=True)
    return scaled.numpy().astype(np.float16)


# --- the frame cache --------------------------------------------------------------------


def _fingerprint(listing: Listing, params: dict[str, Any], calibration: tuple[int, ...]) -> str:
    return files_fingerprint(listing.folder, listing.files, listing.labels, listing.train,
                             listing.test, np.asarray(calibration, dtype=np.int64),
                             extra=(NAME, VERSION, SPLIT_VERSION, listing.suffix,
                                    sorted(params.items())))


def _cache_path(cache_dir: Path, listing: Listing, params: dict[str, Any]) -> Path:
    files_key = files_fingerprint(listing.folder, listing.files, extra=listing.suffix)
    key = parameters_key(NAME, VERSION, files_key, int(params["frames"]), int(params["size"]))
    return cache_dir / NAME / f"frames-{key}.npy"


def _build_cache(path: Path, listing: Listing, frames: int, size: int) -> None:
    """Preprocess every recording into one `[N, frames, 2, size, size]` .npy file."""
    reader = _tonic_reader(listing) if listing.suffix == ".aedat4" else None
    start = time.perf_counter()
    with atomic_file(path, NAME) as tmp:
        # Written row by row into a memory-mapped file: the array never sits in memory.
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16,
                                        shape=(len(listing.files), frames, 2, size, size))
        for row, file in enumerate(listing.files):
            out[row] = preprocess(_events(file, listing, row, reader), frames, size)
            if (row + 1) % 500 == 0:
                elapsed = time.perf_counter() - start
                print(f"{NAME}: preprocessed {row + 1}/{len(listing.files)} recordings in "
                      f"{elapsed:.0f} s", file=sys.stderr)
        out.flush()
        del out


def _events(file: Path, listing: Listing, row: int, reader: Any) -> np.ndarray:
    if reader is None:
        return read_aedat(file)
    dataset, index = reader
    position = index.get(str(file.resolve()))
    if position is None or int(dataset.targets[position]) != int(listing.labels[row]):
        raise DataMissingError(f"dataset {NAME!r}: tonic's CIFAR10DVS does not list {file} "
                               "under its class; check the class folders.")
    try:
        events, _ = dataset[position]
    except Exception as exc:  # the decoder's own error types vary by version
        raise DataCorruptError(
            f"dataset {NAME!r}: {file} does not decode as AEDAT4 ({type(exc).__name__}: "
            f"{exc}); the file is truncated or corrupt. Replace it.") from None
    return np.asarray(events)


class CachedFrames(Dataset):
    """Samples of the frame cache, opened lazily (memory-mapped) in each process."""

    def __init__(self, path: Path, indices: np.ndarray, labels: np.ndarray,
                 augment: FlipAndRoll | None = None) -> None:
        self.path = path
        self.indices = indices
        self.labels = torch.as_tensor(labels[indices], dtype=torch.long)
        self.augment = augment
        self._frames: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_frames": None}  # a memory map must not be pickled

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._frames is None:
            self._frames = np.load(self.path, mmap_mode="r")
        frames = torch.from_numpy(np.asarray(self._frames[self.indices[index]], np.float32))
        if self.augment is not None:
            frames = self.augment(frames)
        return frames, self.labels[index]


def _load_cache(path: Path, listing: Listing, frames: int, size: int) -> None:
    """Make sure `path` holds this listing's frames; (re)build it otherwise."""
    expected = (len(listing.files), frames, 2, size, size)
    if path.exists():
        try:
            stored = np.load(path, mmap_mode="r")
            if stored.shape == expected and stored.dtype == np.float16:
                return
        except (OSError, ValueError):
            pass  # truncated or foreign: rebuilt below
    _build_cache(path, listing, frames, size)


# --- the plugin -------------------------------------------------------------------------


def check_params(params: dict[str, Any]) -> None:
    if int(params["frames"]) < 1:
        raise UsageError(f"--set {NAME}.frames={params['frames']}: must be >= 1")
    if int(params["size"]) < 1:
        raise UsageError(f"--set {NAME}.size={params['size']}: must be >= 1")


def check(request: DatasetRequest) -> None:
    params = {**PARAMS, **dict(request.params)}
    check_params(params)
    listing = list_recordings(request)
    if listing.suffix == ".aedat4":
        check_aedat4_decoder()
    if not _cache_path(Path(request.cache_dir), listing, params).exists():
        check_cache_writable(Path(request.cache_dir) / NAME, NAME)


def load(request: DatasetRequest) -> DatasetSplits:
    params = {**PARAMS, **dict(request.params)}
    check_params(params)
    frames, size = int(params["frames"]), int(params["size"])
    listing = list_recordings(request)
    cache_folder(request, NAME)
    path = _cache_path(Path(request.cache_dir), listing, params)
    _load_cache(path, listing, frames, size)
    calibration = calibration_subset(len(listing.train), CALIBRATION_SIZE)
    info = DatasetInfo(
        name=NAME, version=VERSION, task="classification", modality="events",
        num_classes=len(CLASSES), input_shape=(2, size, size),
        fingerprint=_fingerprint(listing, params, calibration), num_frames=frames,
        split_sizes={"train": len(listing.train), "test": len(listing.test),
                     "calibration": len(calibration)},
    )
    return DatasetSplits(
        info=info,
        train=CachedFrames(path, listing.train, listing.labels, FlipAndRoll(MAX_ROLL)),
        train_eval=CachedFrames(path, listing.train, listing.labels),
        test=CachedFrames(path, listing.test, listing.labels),
        calibration_indices=calibration,
    )


CIFAR10_DVS = DatasetSpec(
    name=NAME, version=VERSION, task="classification", modality="events",
    load=load, check=check, params=PARAMS,
    ann_training=TrainConfig(epochs=200, batch_size=64, optimizer="sgd", lr=0.1,
                             weight_decay=5e-4),
    snn_training=TrainConfig(epochs=200, batch_size=64, optimizer="sgd", lr=0.1,
                             weight_decay=5e-4),
    description="CIFAR10-DVS from DATA_ROOT/CIFAR10DVS/<class>/ (.aedat or tonic's .aedat4, "
    "on disk), fixed 900/100 split, TET preprocessing",
    citation="Li et al., CIFAR10-DVS: An Event-Stream Dataset for Object Classification, "
    "Front. Neurosci. 11:309 (2017); preprocessing: Deng et al., ICLR 2022",
)
