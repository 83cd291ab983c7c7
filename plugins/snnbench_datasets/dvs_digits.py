"""`dvs_digits`: the bundled digits recorded by a simulated event camera (embedded, events).

scikit-learn's 1,797 handwritten 8x8 digits (see `digits`), each displayed 28 pixels wide
on a 34x34, two-polarity sensor that moves in three 100 ms saccades along a triangle,
the way N-MNIST was recorded (Orchard et al., Frontiers in Neuroscience 9:437, 2015). The
sensor model (log-intensity change events, contrast threshold with per-pixel mismatch,
refractory period, background noise, microsecond timestamps) is in `event_camera`.

Format: each sample is a tonic event array (x, y, t in microseconds, p: True = ON), framed
with tonic's `ToFrame` into `[frames, 2, 34, 34]` event counts (channel 0 OFF, 1 ON):
- `framing="time"` (default): `frames` equal time windows over the 300 ms recording. The
  windows are fixed to the recording, not to its first and last events, because the
  background noise would otherwise move them from sample to sample.
- `framing="count"`: `frames` bins of equal event count (tonic's `n_event_bins`).
The loader yields `[B, frames, 2, 34, 34]`; the runner feeds one frame per step, so T may
not exceed `frames`.

Generated once (about 10 s on one core; 29 MB) and cached, compressed, in
`<cache>/datasets/dvs_digits/`, keyed by the generator version and its parameters and
written atomically; a corrupt cache file is regenerated. Deterministic: the sensor's
mismatch is seeded by the generator version, each sample's noise by its index as well.

Split as `digits`: the same stratified 1,437 / 360 split and calibration subset. Training
augmentation: the frames shifted together by up to one pixel. The generator parameters
(`contrast_threshold`, `threshold_mismatch`, `refractory_us`, `noise_rate_hz`) and the
framing (`frames`, `framing`) are dataset parameters: part of every cell's id and of the
fingerprint, which also hashes the generated events and the split.
"""

from __future__ import annotations

import io
import sys
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from snnbench_datasets.digits import CALIBRATION_SIZE, SPLIT_SEED, TEST_SIZE, stratified_split
from snnbench_datasets.event_camera import GENERATOR_VERSION, CameraModel, record
from snnbench_datasets.files import (
    cache_folder,
    calibration_subset,
    check_cache_writable,
    parameters_key,
    write_atomic,
)
from snnbench_datasets.tensors import TensorImages, random_shift
from snnbench_suite import (
    DatasetInfo,
    DatasetRequest,
    DatasetSpec,
    DatasetSplits,
    TrainConfig,
    UsageError,
)

NAME = "dvs_digits"
VERSION = "1"
FRAMINGS = ("time", "count")
CHUNK = 256  # samples simulated together: bounds memory, not results
PARAMS: dict[str, Any] = {
    "frames": 8,
    "framing": "time",
    "contrast_threshold": 0.2,
    "threshold_mismatch": 0.03,
    "refractory_us": 1000,
    "noise_rate_hz": 0.5,
}


@dataclass(frozen=True)
class Recordings:
    """Every sample's events, concatenated in index order; sample i is
    `events[offsets[i]:offsets[i + 1]]`."""

    events: np.ndarray
    offsets: np.ndarray

    def sample(self, index: int) -> np.ndarray:
        return self.events[self.offsets[index]:self.offsets[index + 1]]


def camera_for(params: dict[str, Any]) -> CameraModel:
    camera = CameraModel(
        contrast_threshold=float(params["contrast_threshold"]),
        threshold_mismatch=float(params["threshold_mismatch"]),
        refractory_us=int(params["refractory_us"]),
        noise_rate_hz=float(params["noise_rate_hz"]),
    )
    try:
        camera.validate()
    except ValueError as exc:
        raise UsageError(f"--set {NAME}.{exc}") from None
    return camera


def check_params(params: dict[str, Any]) -> CameraModel:
    frames = int(params["frames"])
    if frames < 1:
        raise UsageError(f"--set {NAME}.frames={frames}: the number of frames must be >= 1")
    if params["framing"] not in FRAMINGS:
        raise UsageError(f"--set {NAME}.framing={params['framing']}: use one of "
                         f"{', '.join(FRAMINGS)}")
    return camera_for(params)


def check(request: DatasetRequest) -> None:
    """Pre-flight: the parameters are valid and the cache can be written if needed."""
    camera = check_params(dict(request.params))
    if not cache_path(Path(request.cache_dir), camera).exists():
        check_cache_writable(Path(request.cache_dir) / NAME, NAME)


def cache_path(cache_dir: Path, camera: CameraModel) -> Path:
    key = parameters_key(NAME, GENERATOR_VERSION, asdict(camera))
    return cache_dir / NAME / f"events-g{GENERATOR_VERSION}-{key}.npz"


def generate(images: np.ndarray, camera: CameraModel) -> Recordings:
    """Record every image; the chunking leaves each sample's events unchanged."""
    parts: list[np.ndarray] = []
    for start in range(0, len(images), CHUNK):
        stop = min(start + CHUNK, len(images))
        parts.extend(record(images[start:stop], range(start, stop), camera))
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return Recordings(np.concatenate(parts), offsets)


def _save(recordings: Recordings, handle: IO[bytes]) -> None:
    events = recordings.events
    # Compact field types (the sensor is 34 px, a recording 0.3 s): a third of the size.
    np.savez_compressed(handle, x=events["x"].astype(np.uint8), y=events["y"].astype(np.uint8),
                        t=events["t"].astype(np.uint32), p=events["p"],
                        offsets=recordings.offsets)


def _load(path: Path) -> Recordings:
    import tonic

    with np.load(path) as stored:
        events = np.empty(len(stored["t"]), dtype=tonic.io.events_struct)
        for field in ("x", "y", "t", "p"):
            events[field] = stored[field]
        offsets = stored["offsets"].astype(np.int64)
    if offsets[0] != 0 or offsets[-1] != len(events) or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets do not match the events")
    return Recordings(events, offsets)


def recordings(images: np.ndarray, camera: CameraModel, cache_dir: Path,
               log: Any = None) -> Recordings:
    """The cached recordings of `images`, generated and stored the first time."""
    path = cache_path(cache_dir, camera)
    if path.exists():
        try:
            cached = _load(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            cached = None  # a truncated or foreign file: generate again and replace it
        if cached is not None and len(cached.offsets) == len(images) + 1:
            return cached
    cache_folder(DatasetRequest(params={}, data_root=None, cache_dir=cache_dir), NAME)
    start = time.perf_counter()
    generated = generate(images, camera)
    buffer = io.BytesIO()
    _save(generated, buffer)
    write_atomic(path, lambda handle: handle.write(buffer.getvalue()), NAME)
    if log is not None:
        log(f"{NAME}: generated {len(generated.events):,} events in "
            f"{time.perf_counter() - start:.1f} s, {path.stat().st_size / 1e6:.1f} MB at {path}")
    return generated


def _note(message: str) -> None:
    print(message, file=sys.stderr)  # stdout carries the leaderboard


def to_frames(recorded: Recordings, camera: CameraModel, frames: int,
              framing: str) -> torch.Tensor:
    """`[N, frames, 2, S, S]` event counts through tonic's ToFrame."""
    from tonic.transforms import ToFrame

    size = camera.sensor_size
    if framing == "time":
        window = camera.duration_us / frames
        # end_time half a window past the end: tonic counts floor((end - start - w) / w) + 1
        # windows, and this keeps that count exact whatever the float rounding.
        framer = ToFrame(sensor_size=(size, size, 2), time_window=window, start_time=0,
                         end_time=camera.duration_us + window / 2)
    else:
        framer = ToFrame(sensor_size=(size, size, 2), n_event_bins=frames)
    count = len(recorded.offsets) - 1
    out = np.zeros((count, frames, 2, size, size), dtype=np.int16)
    for index in range(count):
        framed = framer(recorded.sample(index))
        out[index, :len(framed)] = framed[:frames]
    return torch.from_numpy(out)


def _as_float(frames: torch.Tensor) -> torch.Tensor:
    return frames.to(torch.float32)


def _float_and_shift(max_shift: int) -> Any:
    shift = random_shift(max_shift)

    def transform(frames: torch.Tensor) -> torch.Tensor:
        return shift(frames.to(torch.float32))

    return transform


def fingerprint(recorded: Recordings, labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                calibration: tuple[int, ...], params: dict[str, Any]) -> str:
    from snnbench_datasets.digits import fingerprint as hash_arrays

    events = recorded.events
    return hash_arrays(events["x"], events["y"], events["t"], events["p"], recorded.offsets,
                       labels, train, test, np.asarray(calibration),
                       extra=(NAME, VERSION, GENERATOR_VERSION, sorted(params.items())))


def load(request: DatasetRequest) -> DatasetSplits:
    from sklearn.datasets import load_digits

    params = {**PARAMS, **dict(request.params)}
    camera = check_params(params)
    frames, framing = int(params["frames"]), str(params["framing"])
    bunch = load_digits()
    images = bunch.images.astype(np.float64) / 16.0
    recorded = recordings(images, camera, Path(request.cache_dir), log=_note)
    framed = to_frames(recorded, camera, frames, framing)
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    train_idx, test_idx = stratified_split(bunch.target, TEST_SIZE, SPLIT_SEED)
    calibration = calibration_subset(len(train_idx), CALIBRATION_SIZE, SPLIT_SEED)
    info = DatasetInfo(
        name=NAME, version=VERSION, task="classification", modality="events",
        num_classes=10, input_shape=(2, camera.sensor_size, camera.sensor_size),
        fingerprint=fingerprint(recorded, bunch.target, train_idx, test_idx, calibration,
                                params),
        num_frames=frames,
        split_sizes={"train": len(train_idx), "test": len(test_idx),
                     "calibration": len(calibration)},
    )
    train_x, test_x = framed[train_idx], framed[test_idx]
    return DatasetSplits(
        info=info,
        train=TensorImages(train_x, labels[train_idx], transform=_float_and_shift(1)),
        train_eval=TensorImages(train_x, labels[train_idx], transform=_as_float),
        test=TensorImages(test_x, labels[test_idx], transform=_as_float),
        calibration_indices=calibration,
    )


DVS_DIGITS = DatasetSpec(
    name=NAME,
    version=VERSION,
    task="classification",
    modality="events",
    load=load,
    check=check,
    embedded=True,
    params=PARAMS,
    ann_training=TrainConfig(epochs=8, batch_size=64, optimizer="sgd", lr=0.1,
                             weight_decay=5e-4),
    snn_training=TrainConfig(epochs=8, batch_size=64, optimizer="sgd", lr=0.1,
                             weight_decay=5e-4),
    description="the bundled digits recorded by a simulated event camera in three saccades "
    "(embedded, 34x34x2, no download)",
    citation="Orchard et al., Converting Static Image Datasets to Spiking Neuromorphic "
    "Datasets Using Saccades, Front. Neurosci. 9:437 (2015) for the recording protocol; "
    "digits: Alpaydin & Kaynak, UCI ML Repository (1998)",
)
