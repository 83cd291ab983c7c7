"""dvs_digits: the simulated event camera (polarity at moving edges, determinism, noise,
refractory period) and the dataset built on it (framing, split, cache, fingerprint)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tonic
import torch

from snnbench_datasets import dvs_digits
from snnbench_datasets.digits import load as load_digits_dataset
from snnbench_datasets.event_camera import CameraModel, record, saccade_path
from snnbench_suite import DatasetRequest
from snnbench_suite.errors import UsageError

QUIET = CameraModel(noise_rate_hz=0.0, threshold_mismatch=0.0)


def rightward(pixels: float, steps: int = 100) -> np.ndarray:
    """Image offsets moving right by `pixels` over `steps` render steps."""
    dx = np.linspace(0.0, pixels, steps + 1)
    return np.stack([dx, np.zeros_like(dx)], axis=1)


def bright_square() -> np.ndarray:
    image = np.zeros((1, 8, 8))
    image[0, 2:6, 2:6] = 1.0  # 14 x 14 sensor pixels in the middle of the 34 x 34 sensor
    return image


def test_a_square_moving_right_gives_on_at_its_leading_and_off_at_its_trailing_edge() -> None:
    events = record(bright_square(), [0], QUIET, path=rightward(3.0))[0]
    on, off = events[events["p"]], events[~events["p"]]
    assert len(on) > 50 and len(off) > 50
    centre = QUIET.sensor_size / 2
    assert np.all(on["x"] >= centre) and np.all(off["x"] < centre)
    # The square covers rows 10..23, blurred by one row on each side by the bilinear
    # display (rows 8 and 25 see a sliver of it); nothing fires above or below.
    assert np.all((events["y"] >= 8) & (events["y"] <= 25))
    # Moving left swaps the edges.
    back = record(bright_square(), [0], QUIET, path=-rightward(3.0))[0]
    assert np.all(back[back["p"]]["x"] < centre) and np.all(back[~back["p"]]["x"] >= centre)


def test_a_moved_digit_fires_on_ahead_of_its_strokes_and_off_behind_them() -> None:
    from sklearn.datasets import load_digits

    digit = load_digits().images[:1] / 16.0  # a real zero
    events = record(digit, [0], QUIET, path=rightward(3.0))[0]
    on, off = events[events["p"]], events[~events["p"]]
    for y in np.unique(events["y"]):  # row by row: ON events right of the OFF ones
        row_on, row_off = on[on["y"] == y]["x"], off[off["y"] == y]["x"]
        if len(row_on) and len(row_off):
            assert row_on.max() > row_off.max() and row_on.min() > row_off.min()


def test_a_still_image_without_noise_gives_no_events() -> None:
    still = np.zeros((50, 2))
    assert len(record(bright_square(), [0], QUIET, path=still)[0]) == 0


def test_events_are_tonic_arrays_sorted_in_time_within_the_recording() -> None:
    events = record(bright_square(), [3], CameraModel())[0]
    assert events.dtype == tonic.io.events_struct
    assert np.all(np.diff(events["t"]) >= 0)
    duration = CameraModel().duration_us
    assert events["t"].min() >= 0 and events["t"].max() < duration == 300_000
    assert events["x"].max() < 34 and events["y"].max() < 34


def test_contrast_threshold_sets_the_event_count_per_edge() -> None:
    fine = record(bright_square(), [0], QUIET, path=rightward(3.0))[0]
    coarse_camera = CameraModel(noise_rate_hz=0.0, threshold_mismatch=0.0,
                                contrast_threshold=0.4)
    coarse = record(bright_square(), [0], coarse_camera, path=rightward(3.0))[0]
    # Contrast black level 0.1 -> white: ln(10) = 2.3, i.e. 11 events at C = 0.2, 5 at 0.4.
    assert len(coarse) / len(fine) == pytest.approx(0.5, abs=0.1)


def test_refractory_period_spaces_each_pixels_events() -> None:
    camera = CameraModel(noise_rate_hz=0.0, refractory_us=5000)
    events = record(bright_square(), [0], camera, path=rightward(6.0, steps=20))[0]
    for pixel in np.unique(events["y"].astype(int) * 34 + events["x"]):
        times = events["t"][events["y"].astype(int) * 34 + events["x"] == pixel]
        assert np.all(np.diff(times) >= 5000)
    free = record(bright_square(), [0], CameraModel(noise_rate_hz=0.0, refractory_us=0),
                  path=rightward(6.0, steps=20))[0]
    assert len(free) > len(events)


def test_noise_rate_sets_the_background_event_count() -> None:
    still = np.zeros((301, 2))  # 300 ms without motion: only noise
    camera = CameraModel(noise_rate_hz=2.0)
    counts = [len(record(bright_square(), [i], camera, path=still)[0]) for i in range(5)]
    expected = 2.0 * 34 * 34 * 0.3
    assert np.mean(counts) == pytest.approx(expected, rel=0.1)


def test_a_sample_does_not_depend_on_the_samples_simulated_with_it() -> None:
    from sklearn.datasets import load_digits

    images = load_digits().images[:6] / 16.0
    together = record(images, range(6), CameraModel())
    alone = record(images[4:5], [4], CameraModel())[0]
    assert np.array_equal(together[4], alone)
    assert not np.array_equal(together[3], together[4])


def test_the_saccades_form_a_closed_triangle() -> None:
    path = saccade_path(CameraModel())
    assert path.shape == (301, 2)
    assert np.allclose(path[0], path[-1])
    corners = path[[0, 100, 200]]
    sides = np.linalg.norm(corners - np.roll(corners, 1, axis=0), axis=1)
    assert np.allclose(sides, 3.0)


# --- the dataset ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dvs-cache")


@pytest.fixture(scope="module")
def default_load(cache_dir: Path) -> tuple:
    return dvs_digits.load(DatasetRequest(params={}, data_root=None, cache_dir=cache_dir))


def test_dataset_shapes_split_and_info(default_load) -> None:
    data = default_load
    info = data.info
    assert (info.name, info.modality, info.num_classes) == ("dvs_digits", "events", 10)
    assert info.input_shape == (2, 34, 34) and info.num_frames == 8
    assert info.mean is None and info.std is None  # event counts are not normalised
    assert dict(info.split_sizes) == {"train": 1437, "test": 360, "calibration": 256}
    frames, label = data.test[0]
    assert frames.shape == (8, 2, 34, 34) and frames.dtype == torch.float32
    assert 0 <= int(label) < 10
    # Split as digits: the same labels in the same order.
    digits = load_digits_dataset(DatasetRequest(params={}, data_root=None,
                                                cache_dir=Path("unused")))
    assert torch.equal(data.test.labels, digits.test.labels)
    assert data.calibration_indices == digits.calibration_indices
    # Every event of a sample lands in some frame (time framing covers the recording).
    assert float(data.test[0][0].sum()) > 1000


def test_dataset_frames_are_tonic_frames_of_the_cached_events(default_load, cache_dir) -> None:
    from sklearn.datasets import load_digits
    from tonic.transforms import ToFrame

    from snnbench_datasets.digits import SPLIT_SEED, TEST_SIZE, stratified_split

    camera = dvs_digits.camera_for(dvs_digits.PARAMS)
    recorded = dvs_digits._load(dvs_digits.cache_path(cache_dir, camera))
    labels = load_digits().target
    assert len(recorded.offsets) == len(labels) + 1
    _, test_idx = stratified_split(labels, TEST_SIZE, SPLIT_SEED)
    events = recorded.sample(int(test_idx[0]))
    expected = ToFrame(sensor_size=(34, 34, 2), time_window=37_500, start_time=0,
                       end_time=318_750)(events)
    assert expected.shape == (8, 2, 34, 34)
    assert int(expected.sum()) == len(events)  # the fixed windows drop no event
    assert torch.equal(default_load.test[0][0], torch.from_numpy(expected).float())
    # Channel 1 holds the ON events (p = True).
    assert int(expected[:, 1].sum()) == int(events["p"].sum())


def test_training_frames_are_augmented_and_evaluation_frames_are_not(default_load) -> None:
    torch.manual_seed(0)
    shifted = [default_load.train[0][0] for _ in range(8)]
    assert any(not torch.equal(shifted[0], other) for other in shifted[1:])
    assert torch.equal(default_load.train_eval[0][0], default_load.train_eval[0][0])


def test_second_load_reads_the_cache(default_load, cache_dir, monkeypatch) -> None:
    def no_generation(*_args, **_kwargs):
        raise AssertionError("generated again despite the cache")

    monkeypatch.setattr(dvs_digits, "generate", no_generation)
    again = dvs_digits.load(DatasetRequest(params={}, data_root=None, cache_dir=cache_dir))
    assert again.info.fingerprint == default_load.info.fingerprint
    assert not list((cache_dir / "dvs_digits").glob(".*tmp"))  # atomic: no leftovers


def test_framing_parameters_change_frames_and_fingerprint_not_events(default_load,
                                                                     cache_dir) -> None:
    counted = dvs_digits.load(DatasetRequest(params={"frames": 4, "framing": "count"},
                                             data_root=None, cache_dir=cache_dir))
    assert counted.info.num_frames == 4 and counted.test[0][0].shape == (4, 2, 34, 34)
    assert counted.info.fingerprint != default_load.info.fingerprint
    assert len(list((cache_dir / "dvs_digits").glob("events-*.npz"))) == 1


def test_a_generator_parameter_changes_events_and_fingerprint(default_load, cache_dir) -> None:
    other = dvs_digits.load(DatasetRequest(params={"contrast_threshold": 0.4}, data_root=None,
                                           cache_dir=cache_dir))
    assert other.info.fingerprint != default_load.info.fingerprint
    assert len(list((cache_dir / "dvs_digits").glob("events-*.npz"))) == 2
    # A higher threshold gives fewer events.
    assert float(other.test[0][0].sum()) < float(default_load.test[0][0].sum())


def test_a_corrupt_cache_file_is_regenerated(tmp_path) -> None:
    from sklearn.datasets import load_digits

    images = load_digits().images[:12] / 16.0
    camera = CameraModel()
    first = dvs_digits.recordings(images, camera, tmp_path)
    path = dvs_digits.cache_path(tmp_path, camera)
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 2])  # truncated
    again = dvs_digits.recordings(images, camera, tmp_path)
    assert np.array_equal(again.events, first.events)
    assert np.array_equal(again.offsets, first.offsets)
    assert path.stat().st_size == size
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary leftovers
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


@pytest.mark.parametrize("key,value", [("contrast_threshold", 0.0), ("frames", 0),
                                       ("framing", "random"), ("noise_rate_hz", -1.0)])
def test_bad_parameters_are_usage_errors(tmp_path, key, value) -> None:
    request = DatasetRequest(params={**dvs_digits.PARAMS, key: value}, data_root=None,
                             cache_dir=tmp_path)
    with pytest.raises(UsageError, match=f"dvs_digits.{key}"):
        dvs_digits.check(request)
    assert not list(tmp_path.iterdir())


def test_a_bad_parameter_on_the_command_line_is_exit_2_before_anything_runs(tmp_path,
                                                                          capsys) -> None:
    from snnbench_suite.cli import main

    code = main(["run", "--datasets", "dvs_digits", "--methods", "sdt", "--T", "4", "--quiet",
                 "--set", "dvs_digits.framing=random", "--results", str(tmp_path / "r"),
                 "--cache", str(tmp_path / "c")])
    assert code == 2
    assert "dvs_digits.framing=random: use one of time, count" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_cache_that_cannot_be_written_is_a_clear_error(tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    request = DatasetRequest(params=dvs_digits.PARAMS, data_root=None,
                             cache_dir=blocker / "datasets")
    with pytest.raises(UsageError, match="cannot cache data .* is not a folder"):
        dvs_digits.check(request)
    with pytest.raises(UsageError, match="--cache"):
        dvs_digits.load(request)
