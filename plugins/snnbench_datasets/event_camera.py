"""A simulated event camera recording still images moved in three saccades.

This is the recording protocol of N-MNIST (Orchard et al., Converting Static Image Datasets
to Spiking Neuromorphic Datasets Using Saccades, Frontiers in Neuroscience 9:437, 2015):
an event sensor looks at an image on a screen and moves along a triangle, so that the
image's edges sweep over the pixels. Here both the scene and the sensor are simulated.

Pixel model (the standard DVS model, as in the ESIM and v2e simulators: Rebecq et al.,
CoRL 2018; Hu et al., CVPR Workshops 2021):
- every pixel keeps a reference log intensity, set to the scene's log intensity when the
  recording starts (the sensor has adapted to the still image);
- each time the log intensity has moved by the pixel's contrast threshold above (below)
  the reference, the pixel emits an ON (OFF) event and moves its reference by that
  threshold; the event time is where the linearly interpolated log intensity crosses the
  level within the render step;
- the ON and OFF thresholds of each pixel are drawn once per sensor from a Gaussian
  around the nominal threshold (fixed-pattern mismatch: the same camera records every
  sample);
- an event less than the refractory period after the pixel's previous event is dropped
  (the change it signalled is consumed all the same, as a real pixel's reset loses it);
- background activity: independent events at a uniform rate per pixel, random polarity.

Output: tonic's structured event arrays (`tonic.io.events_struct`: x, y, t in
microseconds, p with True = ON), so tonic's transforms apply unchanged.

The simulation is vectorised over samples and pixels; it loops over render steps only.
All randomness comes from generators seeded by the generator version and, for the noise,
the sample index, so a sample's events do not depend on which other samples are
simulated with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Bumped whenever the simulated events change for the same parameters.
GENERATOR_VERSION = 1
_SEED = 0x5EB0  # fixed entropy shared by every random stream of the simulator


@dataclass(frozen=True)
class CameraModel:
    """The sensor, the scene and the motion. Defaults follow N-MNIST's recordings."""

    sensor_size: int = 34  # N-MNIST's ATIS crop: 34 x 34 pixels
    image_size: float = 28.0  # side of the displayed image on the sensor, in pixels
    contrast_threshold: float = 0.2  # nominal log-intensity step per event
    threshold_mismatch: float = 0.03  # std of the per-pixel thresholds
    refractory_us: int = 1000
    noise_rate_hz: float = 0.5  # background events per pixel per second
    black_level: float = 0.1  # screen luminance of a blank pixel (white = 1); log needs > 0
    saccade_us: int = 100_000
    saccade_px: float = 3.0  # side of the triangle the sensor moves along
    step_us: int = 1000  # render step; motion is sub-pixel per step

    def validate(self) -> None:
        """Raise ValueError naming the first parameter outside its range."""
        checks = [
            ("contrast_threshold", self.contrast_threshold > 0, "> 0"),
            ("threshold_mismatch", self.threshold_mismatch >= 0, ">= 0"),
            ("refractory_us", self.refractory_us >= 0, ">= 0"),
            ("noise_rate_hz", self.noise_rate_hz >= 0, ">= 0"),
            ("black_level", 0 < self.black_level < 1, "in (0, 1)"),
            ("sensor_size", self.sensor_size >= 4, ">= 4"),
            ("image_size", 0 < self.image_size <= self.sensor_size, "in (0, sensor_size]"),
            ("step_us", self.step_us >= 1, ">= 1"),
            ("saccade_us", self.saccade_us >= self.step_us, ">= step_us"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {getattr(self, name)}")

    @property
    def steps_per_saccade(self) -> int:
        return self.saccade_us // self.step_us

    @property
    def duration_us(self) -> int:
        return 3 * self.steps_per_saccade * self.step_us


def saccade_path(camera: CameraModel) -> np.ndarray:
    """Image offsets (dx, dy) in pixels at every render step, `[3 * steps + 1, 2]`.

    The sensor moves at constant speed along an equilateral triangle centred on the
    image, so the image drifts by at most about half the side from the centre."""
    radius = camera.saccade_px / math.sqrt(3.0)
    angles = np.deg2rad([-90.0, 150.0, 30.0, -90.0])  # y grows downwards: start on top
    vertices = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    steps = camera.steps_per_saccade
    fractions = np.arange(steps) / steps
    legs = [vertices[i] + fractions[:, None] * (vertices[i + 1] - vertices[i]) for i in range(3)]
    return np.concatenate([*legs, vertices[-1:]], axis=0)


def _interpolation_matrix(sensor: int, source: int, scale: float, shift: float) -> np.ndarray:
    """`[sensor, source]` bilinear weights sampling a `source`-pixel axis, displayed
    `scale` sensor pixels per source pixel and centred on the sensor plus `shift`, at
    every sensor pixel centre. Outside the image the screen is blank (weight 0)."""
    start = (sensor - source * scale) / 2.0 + shift
    position = (np.arange(sensor) + 0.5 - start) / scale - 0.5  # in source pixel indices
    low = np.floor(position)
    frac = position - low
    weights = np.zeros((sensor, source))
    for offset, weight in ((0, 1.0 - frac), (1, frac)):
        index = low.astype(int) + offset
        inside = (index >= 0) & (index < source)
        weights[np.nonzero(inside)[0], index[inside]] += weight[inside]
    return weights


def _log_luminance(images: np.ndarray, camera: CameraModel, dx: float, dy: float) -> np.ndarray:
    """Log luminance seen by the sensor, `[N, S, S]`, for images `[N, h, w]` in [0, 1]
    (1 = bright ink, displayed on a dark screen) shifted by (dx, dy) pixels."""
    _, height, width = images.shape
    rows = _interpolation_matrix(camera.sensor_size, height, camera.image_size / height, dy)
    cols = _interpolation_matrix(camera.sensor_size, width, camera.image_size / width, dx)
    ink = np.einsum("ri,nij,cj->nrc", rows, images, cols, optimize=True)
    np.clip(ink, 0.0, 1.0, out=ink)
    return np.log(camera.black_level + (1.0 - camera.black_level) * ink)


def pixel_thresholds(camera: CameraModel) -> tuple[np.ndarray, np.ndarray]:
    """The sensor's ON and OFF thresholds per pixel, `[S, S]` each (fixed pattern)."""
    rng = np.random.default_rng([_SEED, GENERATOR_VERSION, 0])
    shape = (2, camera.sensor_size, camera.sensor_size)
    drawn = rng.normal(camera.contrast_threshold, camera.threshold_mismatch, size=shape)
    # A threshold near zero would make a pixel fire on rounding noise; real ones never do.
    floor = 0.25 * camera.contrast_threshold
    return np.maximum(drawn[0], floor), np.maximum(drawn[1], floor)


def background_events(camera: CameraModel, index: int, duration_us: int
                      ) -> tuple[np.ndarray, ...]:
    """(x, y, t, p) of sample `index`'s background activity, seeded by the index."""
    rng = np.random.default_rng([_SEED, GENERATOR_VERSION, 1, index])
    size = camera.sensor_size
    count = int(rng.poisson(camera.noise_rate_hz * size * size * duration_us * 1e-6))
    return (rng.integers(0, size, count), rng.integers(0, size, count),
            rng.integers(0, duration_us, count), rng.integers(0, 2, count).astype(bool))


def record(images: np.ndarray, indices: Sequence[int], camera: CameraModel,
           path: np.ndarray | None = None) -> list[np.ndarray]:
    """Record each image `[N, h, w]` (values in [0, 1]) as a tonic event array sorted by t.

    `indices` are the samples' dataset indices: they seed the background noise. `path`
    gives the image offsets (dx, dy) at every render step; default: the three saccades."""
    import tonic

    camera.validate()
    count = images.shape[0]
    if len(indices) != count:
        raise ValueError(f"{count} images but {len(indices)} indices")
    if path is None:
        path = saccade_path(camera)
    duration_us = (len(path) - 1) * camera.step_us
    on_threshold, off_threshold = pixel_thresholds(camera)
    on_threshold = np.broadcast_to(on_threshold, (count, *on_threshold.shape)).ravel()
    off_threshold = np.broadcast_to(off_threshold, (count, *off_threshold.shape)).ravel()
    previous = _log_luminance(images, camera, *path[0]).ravel()
    reference = previous.copy()
    last_event = np.full(previous.shape, -np.inf)
    pixels = camera.sensor_size * camera.sensor_size
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (flat pixel, t, is ON)
    for step in range(1, len(path)):
        current = _log_luminance(images, camera, *path[step]).ravel()
        change = current - reference
        # Most pixels see no crossing in a step: find the few that do, then work on those.
        active = np.flatnonzero((change >= on_threshold) | (change <= -off_threshold))
        if active.size:
            found.extend(_crossings(active, change[active], on_threshold, off_threshold,
                                    reference, previous, current, last_event,
                                    (step - 1) * camera.step_us, camera))
        previous = current
    flat = np.concatenate([f[0] for f in found]) if found else np.zeros(0, np.int64)
    times = np.concatenate([f[1] for f in found]) if found else np.zeros(0, np.int64)
    polarity = np.concatenate([f[2] for f in found]) if found else np.zeros(0, bool)
    sample, pixel = np.divmod(flat, pixels)
    order = np.lexsort((times, sample))  # stable within a sample: a fixed, sorted stream
    sample, pixel, times, polarity = sample[order], pixel[order], times[order], polarity[order]
    bounds = np.searchsorted(sample, np.arange(count + 1))
    recordings = []
    for row, index in enumerate(indices):
        part = slice(bounds[row], bounds[row + 1])
        y, x = np.divmod(pixel[part], camera.sensor_size)
        nx, ny, nt, npol = background_events(camera, int(index), duration_us)
        events = np.empty(len(x) + len(nx), dtype=tonic.io.events_struct)
        events["x"] = np.concatenate([x, nx])
        events["y"] = np.concatenate([y, ny])
        events["t"] = np.concatenate([times[part], nt])
        events["p"] = np.concatenate([polarity[part], npol])
        recordings.append(events[np.argsort(events["t"], kind="stable")])
    return recordings


def _crossings(active: np.ndarray, change: np.ndarray, on_threshold: np.ndarray,
               off_threshold: np.ndarray, reference: np.ndarray, previous: np.ndarray,
               current: np.ndarray, last_event: np.ndarray, step_start: int,
               camera: CameraModel) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The events of one render step at the `active` pixels, whose log intensity moved by
    `change` from their reference; updates `reference` and `last_event` in place."""
    is_on = change > 0
    threshold = np.where(is_on, on_threshold[active], off_threshold[active])
    counts = np.maximum(np.floor(np.abs(change) / threshold), 1.0).astype(np.int64)
    sign = np.where(is_on, 1.0, -1.0)
    start, stop, ref = previous[active], current[active], reference[active]
    reference[active] = ref + sign * counts * threshold
    slope = stop - start
    out = []
    for crossing in range(1, int(counts.max()) + 1):
        has = counts >= crossing
        level = ref[has] + sign[has] * crossing * threshold[has]
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.clip((level - start[has]) / slope[has], 0.0, 1.0)
        fraction = np.nan_to_num(fraction, nan=1.0)
        # Integer microseconds inside the step, as a sensor's clock gives them.
        offset = np.minimum(np.floor(fraction * camera.step_us), camera.step_us - 1)
        times = step_start + offset.astype(np.int64)
        pixel = active[has]
        fires = times - last_event[pixel] >= camera.refractory_us
        last_event[pixel[fires]] = times[fires]
        out.append((pixel[fires], times[fires], is_on[has][fires]))
    return out
