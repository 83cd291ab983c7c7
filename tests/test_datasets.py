"""On-disk datasets: tiny copies written in each official format (CIFAR python pickles, an
ImageFolder tree of JPEGs, CIFAR10-DVS .aedat files and tonic's layout) read back through
the plugins' own code; missing, corrupt and unwritable cases; every registered dataset's
contract."""

from __future__ import annotations

import importlib
import json
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from snnbench_datasets import cifar, cifar10_dvs, imagenet
from snnbench_suite import DatasetRequest
from snnbench_suite.cli import main
from snnbench_suite.errors import DataCorruptError, DataMissingError, UsageError
from snnbench_suite.plugins import load_plugins

DVS_CLASSES = cifar10_dvs.CLASSES


def request(root: Path | None, cache: Path, **params: object) -> DatasetRequest:
    return DatasetRequest(params=params, data_root=root, cache_dir=cache)


# --- writers of the official formats ----------------------------------------------------


def write_pickle(path: Path, value: object) -> None:
    with open(path, "wb") as handle:
        pickle.dump(value, handle, protocol=2)  # the release's files are protocol-2 pickles


def cifar_images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3072), dtype=np.uint8)


def write_cifar10(root: Path, per_batch: int = 8, test: int = 10) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for batch in range(1, 6):
        labels = [(batch + i) % 10 for i in range(per_batch)]
        write_pickle(folder / f"data_batch_{batch}",
                     {"batch_label": f"training batch {batch} of 5", "labels": labels,
                      "data": cifar_images(per_batch, batch),
                      "filenames": [f"img_{batch}_{i}.png" for i in range(per_batch)]})
    write_pickle(folder / "test_batch",
                 {"batch_label": "testing batch 1 of 1", "labels": [i % 10 for i in range(test)],
                  "data": cifar_images(test, 99),
                  "filenames": [f"test_{i}.png" for i in range(test)]})
    write_pickle(folder / "batches.meta",
                 {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                  "frog", "horse", "ship", "truck"],
                  "num_cases_per_batch": per_batch, "num_vis": 3072})
    return folder


def write_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, count, seed in (("train", 30, 1), ("test", 12, 2)):
        fine = [(7 * i) % 100 for i in range(count)]
        write_pickle(folder / name, {"data": cifar_images(count, seed), "fine_labels": fine,
                                     "coarse_labels": [f // 5 for f in fine],
                                     "filenames": [f"{name}_{i}.png" for i in range(count)]})
    write_pickle(folder / "meta", {"fine_label_names": [f"class_{i}" for i in range(100)],
                                   "coarse_label_names": [f"super_{i}" for i in range(20)]})
    return folder


def write_imagenet(root: Path, classes: tuple[str, ...] = ("n01440764", "n01443537"),
                   per_class: int = 3) -> Path:
    from PIL import Image

    folder = root / "imagenet"
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for wnid in classes:
            (folder / split / wnid).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / split / wnid / f"{wnid}_{i}.JPEG",
                                             quality=90)
    return folder


AEDAT_HEADER = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
                b"# Data format is int32 address, int32 timestamp (8 bytes total)\r\n")


def aedat_bytes(x: np.ndarray, y: np.ndarray, p: np.ndarray, t: np.ndarray) -> bytes:
    """An original-release .aedat file: header lines, then big-endian (address, time)."""
    address = (y.astype(np.uint32) << 8) | (x.astype(np.uint32) << 1) | p.astype(np.uint32)
    words = np.empty(2 * len(x), dtype=">u4")
    words[0::2], words[1::2] = address, t
    return AEDAT_HEADER + words.tobytes()


def random_stream(rng: np.random.Generator, count: int) -> tuple[np.ndarray, ...]:
    return (rng.integers(0, 128, count), rng.integers(0, 128, count),
            rng.integers(0, 2, count), np.sort(rng.integers(0, 1_000_000, count)))


def write_cifar10_dvs(root: Path, per_class: int = 4) -> Path:
    folder = root / "CIFAR10DVS"
    rng = np.random.default_rng(1)
    for name in DVS_CLASSES:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            count = int(rng.integers(150, 300))
            (folder / name / f"cifar10_{name}_{i}.aedat").write_bytes(
                aedat_bytes(*random_stream(rng, count)))
    return folder


# --- CIFAR ------------------------------------------------------------------------------


def test_cifar10_reads_the_official_pickles(tmp_path) -> None:
    write_cifar10(tmp_path)
    data = cifar.CIFAR10.load(request(tmp_path, tmp_path / "cache"))
    info = data.info
    assert (info.num_classes, info.input_shape, info.modality) == (10, (3, 32, 32), "static")
    assert dict(info.split_sizes) == {"train": 40, "test": 10, "calibration": 40}
    image, label = data.test[3]
    # The first test image's red plane is the first 1024 bytes of its row, row-major.
    raw = cifar_images(10, 99)[3].reshape(3, 32, 32)
    assert torch.allclose(image, torch.from_numpy(raw).float() / 255)
    assert label == 3
    assert [data.train_eval[i][1] for i in (0, 8, 39)] == [1, 2, 2]
    # Training images are augmented (crop + flip), evaluation ones are not.
    torch.manual_seed(0)
    assert any(not torch.equal(data.train[0][0], data.train_eval[0][0]) for _ in range(4))
    assert info.mean is not None and len(info.mean) == 3
    assert info.mean[0] == pytest.approx(np.concatenate(
        [cifar_images(8, b) for b in range(1, 6)]).reshape(-1, 3, 1024)[:, 0].mean() / 255)
    again = cifar.CIFAR10.load(request(tmp_path, tmp_path / "cache"))
    assert again.info.fingerprint == info.fingerprint
    assert not (tmp_path / "cache").exists()  # CIFAR needs no cache


def test_cifar_fingerprint_follows_the_files(tmp_path) -> None:
    write_cifar10(tmp_path / "a")
    write_cifar10(tmp_path / "b", test=12)
    first = cifar.CIFAR10.load(request(tmp_path / "a", tmp_path))
    second = cifar.CIFAR10.load(request(tmp_path / "b", tmp_path))
    assert first.info.fingerprint != second.info.fingerprint


def test_cifar100_reads_fine_labels(tmp_path) -> None:
    write_cifar100(tmp_path)
    data = cifar.CIFAR100.load(request(tmp_path, tmp_path / "cache", autoaugment=True,
                                       cutout=16))
    assert data.info.num_classes == 100
    assert dict(data.info.split_sizes) == {"train": 30, "test": 12, "calibration": 30}
    assert data.test[5][1] == 35
    torch.manual_seed(0)
    image, _ = data.train[0]
    assert image.shape == (3, 32, 32)


def test_cutout_fills_one_square_with_the_mean() -> None:
    from snnbench_datasets.augment import Cutout

    torch.manual_seed(0)
    out = Cutout(16, fill=(0.25, 0.5, 0.75))(torch.ones(3, 32, 32))
    holes = out[0] != 1
    assert 0 < int(holes.sum()) <= 256
    assert torch.all(out[1][holes] == 0.5)


@pytest.mark.parametrize("damage", ["truncated", "not_a_dict", "wrong_shape"])
def test_corrupt_cifar_file_is_named(tmp_path, damage) -> None:
    folder = write_cifar10(tmp_path)
    target = folder / "data_batch_3"
    if damage == "truncated":
        target.write_bytes(target.read_bytes()[:500])
    elif damage == "not_a_dict":
        write_pickle(target, [1, 2, 3])
    else:
        write_pickle(target, {"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4})
    with pytest.raises(DataCorruptError, match="data_batch_3"):
        cifar.CIFAR10.load(request(tmp_path, tmp_path / "cache"))


def test_cifar_labels_out_of_range_are_refused(tmp_path) -> None:
    folder = write_cifar10(tmp_path)
    write_pickle(folder / "test_batch", {"data": cifar_images(2, 0), "labels": [0, 10]})
    with pytest.raises(DataCorruptError, match="outside 0..9"):
        cifar.CIFAR10.load(request(tmp_path, tmp_path / "cache"))


# --- missing data -----------------------------------------------------------------------


@pytest.mark.parametrize("name,subfolder,expected", [
    ("cifar10", "cifar-10-batches-py", "data_batch_1"),
    ("cifar100", "cifar-100-python", "train, test, meta"),
    ("imagenet", "imagenet", "train/<wnid>/*.JPEG"),
    ("cifar10_dvs", "CIFAR10DVS", "<class>/*.aedat"),
])
def test_missing_data_is_exit_2_naming_dataset_folder_layout_and_fix(
        tmp_path, capsys, name, subfolder, expected) -> None:
    results, cache = tmp_path / "results", tmp_path / "cache"
    code = main(["run", "--datasets", name, "--data-root", str(tmp_path / "data"),
                 "--methods", "sdt", "--T", "4", "--epochs", "1", "--quiet",
                 "--results", str(results), "--cache", str(cache)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"dataset {name!r}" in err
    assert str(tmp_path / "data" / subfolder) in err  # the folder searched
    assert expected in err  # the layout
    assert "--data-root" in err and "SNNBENCH_DATA" in err  # how to point at a copy
    assert "never downloads" in err
    assert not results.exists() and not cache.exists()


def test_no_data_root_at_all_says_so(tmp_path, capsys) -> None:
    code = main(["run", "--datasets", "cifar10", "--methods", "naive", "--T", "4", "--quiet",
                 "--results", str(tmp_path / "r"), "--cache", str(tmp_path / "c")])
    assert code == 2
    err = capsys.readouterr().err
    assert "no data root was given" in err and "cifar-10-batches-py" in err
    assert not (tmp_path / "r").exists()


def test_data_root_from_the_environment(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SNNBENCH_DATA", str(tmp_path / "elsewhere"))
    code = main(["run", "--datasets", "cifar100", "--methods", "naive", "--T", "4",
                 "--quiet", "--results", str(tmp_path / "r"), "--cache", str(tmp_path / "c")])
    assert code == 2
    assert str(tmp_path / "elsewhere" / "cifar-100-python") in capsys.readouterr().err


def test_one_missing_cifar_file_is_named(tmp_path) -> None:
    folder = write_cifar10(tmp_path)
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataMissingError, match="missing data_batch_4"):
        cifar.CIFAR10.check(request(tmp_path, tmp_path / "cache"))


# --- the run end to end -----------------------------------------------------------------


def test_snnbench_run_on_a_cifar10_copy_end_to_end(tmp_path, capsys) -> None:
    write_cifar10(tmp_path / "data")
    results = tmp_path / "results"
    code = main(["run", "--datasets", "cifar10", "--data-root", str(tmp_path / "data"),
                 "--methods", "naive", "--T", "4", "--epochs", "1", "--archs", "vgg11",
                 "--results", str(results), "--cache", str(tmp_path / "cache"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    (record_file,) = results.glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "ok"
    expected = cifar.CIFAR10.load(request(tmp_path / "data", tmp_path / "cache")).info
    assert record["dataset"]["fingerprint"] == expected.fingerprint
    assert record["dataset"]["version"] == cifar.VERSION
    assert record["dataset"]["split_sizes"] == {"train": 40, "test": 10, "calibration": 40}
    assert [entry["T"] for entry in record["per_T"]] == [4]
    assert "cifar10" in capsys.readouterr().out


# --- ImageNet ---------------------------------------------------------------------------


def test_imagenet_reads_an_imagefolder_tree_of_jpegs(tmp_path) -> None:
    write_imagenet(tmp_path)
    data = imagenet.IMAGENET.load(request(tmp_path, tmp_path / "cache", size=32))
    assert data.info.num_classes == 2 and data.info.input_shape == (3, 32, 32)
    assert dict(data.info.split_sizes) == {"train": 6, "test": 6, "calibration": 6}
    image, label = data.test[4]
    assert image.shape == (3, 32, 32) and label == 1
    torch.manual_seed(0)
    assert data.train[0][0].shape == (3, 32, 32)
    again = imagenet.IMAGENET.load(request(tmp_path, tmp_path / "cache", size=32))
    assert again.info.fingerprint == data.info.fingerprint
    (tmp_path / "imagenet" / "val" / "n01440764" / "n01440764_0.JPEG").unlink()
    fewer = imagenet.IMAGENET.load(request(tmp_path, tmp_path / "cache", size=32))
    assert fewer.info.fingerprint != data.info.fingerprint


def test_a_flat_imagenet_val_folder_is_refused_with_instructions(tmp_path) -> None:
    folder = write_imagenet(tmp_path)
    val = folder / "val"
    for image in list(val.glob("*/*.JPEG")):
        image.rename(val / image.name)
    for wnid in list(val.iterdir()):
        if wnid.is_dir():
            wnid.rmdir()
    with pytest.raises(DataMissingError, match="flat validation folder") as error:
        imagenet.IMAGENET.check(request(tmp_path, tmp_path / "cache"))
    assert "one folder per class" in str(error.value) and "ground_truth" in str(error.value)


def test_imagenet_train_and_val_classes_must_match(tmp_path) -> None:
    folder = write_imagenet(tmp_path)
    (folder / "val" / "n01443537").rename(folder / "val" / "n09999999")
    with pytest.raises(DataMissingError, match="different class folders"):
        imagenet.IMAGENET.check(request(tmp_path, tmp_path / "cache"))


def test_an_imagenet_image_that_does_not_decode_is_named(tmp_path) -> None:
    folder = write_imagenet(tmp_path)
    broken = folder / "val" / "n01440764" / "n01440764_1.JPEG"
    broken.write_bytes(broken.read_bytes()[:200])  # a cut JPEG
    data = imagenet.IMAGENET.load(request(tmp_path, tmp_path / "cache", size=32))
    with pytest.raises(DataCorruptError, match="n01440764_1.JPEG"):
        data.test[1]


# --- CIFAR10-DVS ------------------------------------------------------------------------


def test_a_decoded_aedat_event_equals_the_one_written(tmp_path) -> None:
    path = tmp_path / "one.aedat"
    x, y, p, t = (np.array([5, 127, 0]), np.array([100, 3, 0]), np.array([1, 0, 1]),
                  np.array([10, 20, 4_000_000_000]))
    path.write_bytes(aedat_bytes(x, y, p, t))
    events = cifar10_dvs.read_aedat(path)
    assert len(events) == 3
    # SpikingJelly's orientation: x' = 127 - y, y' = 127 - x, p' = 1 - p.
    assert events[0]["x"] == 127 - 100 and events[0]["y"] == 127 - 5
    assert not events[0]["p"] and events[1]["p"]
    assert events[1]["x"] == 124 and events[1]["y"] == 0
    assert list(events["t"]) == [10, 20, 4_000_000_000]


def test_aedat_with_an_odd_number_of_words_is_named(tmp_path) -> None:
    path = tmp_path / "cut.aedat"
    path.write_bytes(aedat_bytes(np.array([1, 2]), np.array([3, 4]), np.array([0, 1]),
                                 np.array([5, 6]))[:-4])
    with pytest.raises(DataCorruptError, match="cut.aedat.*not a whole number"):
        cifar10_dvs.read_aedat(path)


def test_cifar10_dvs_split_frames_and_cache(tmp_path) -> None:
    folder = write_cifar10_dvs(tmp_path / "data")
    # Plain string order: _0, _1, _10, _2 -> the first 9/10 (3 of 4) train.
    (folder / "cat" / "cifar10_cat_3.aedat").rename(folder / "cat" / "cifar10_cat_10.aedat")
    cache = tmp_path / "cache"
    data = cifar10_dvs.CIFAR10_DVS.load(request(tmp_path / "data", cache))
    info = data.info
    assert (info.num_classes, info.input_shape, info.num_frames) == (10, (2, 48, 48), 10)
    assert dict(info.split_sizes) == {"train": 30, "test": 10, "calibration": 30}
    listing = cifar10_dvs.list_recordings(request(tmp_path / "data", cache))
    cat = DVS_CLASSES.index("cat")
    assert [listing.files[i].name for i in listing.train if listing.labels[i] == cat] == \
        ["cifar10_cat_0.aedat", "cifar10_cat_1.aedat", "cifar10_cat_10.aedat"]
    assert [data.test[i][1] for i in range(10)] == list(range(10))
    frames, _ = data.test[0]
    assert frames.shape == (10, 2, 48, 48) and frames.dtype == torch.float32
    # The frames are TET's preprocessing of the decoded file (up to float16 storage).
    events = cifar10_dvs.read_aedat(listing.files[listing.test[0]])
    expected = cifar10_dvs.preprocess(events, 10, 48)
    assert torch.equal(frames, torch.from_numpy(expected.astype(np.float32)))
    assert float(frames.amax()) <= 1.0
    # Augmentation: a flip and a roll of up to 5 pixels, never a change of content.
    torch.manual_seed(0)
    augmented, _ = data.train[0]
    assert float(augmented.sum()) == pytest.approx(float(data.train_eval[0][0].sum()), rel=1e-4)
    (cached,) = (cache / "cifar10_dvs").glob("frames-*.npy")
    assert not [p for p in (cache / "cifar10_dvs").iterdir() if p != cached]


def test_cifar10_dvs_reads_the_cache_the_second_time(tmp_path, monkeypatch) -> None:
    write_cifar10_dvs(tmp_path / "data", per_class=2)
    first = cifar10_dvs.CIFAR10_DVS.load(request(tmp_path / "data", tmp_path / "cache"))

    def no_reading(_path):
        raise AssertionError("read the recordings again despite the cache")

    monkeypatch.setattr(cifar10_dvs, "read_aedat", no_reading)
    again = cifar10_dvs.CIFAR10_DVS.load(request(tmp_path / "data", tmp_path / "cache"))
    assert again.info.fingerprint == first.info.fingerprint
    assert torch.equal(again.test[3][0], first.test[3][0])


def test_cifar10_dvs_corrupt_recording_is_named_and_nothing_is_cached(tmp_path) -> None:
    folder = write_cifar10_dvs(tmp_path / "data", per_class=2)
    bad = folder / "dog" / "cifar10_dog_1.aedat"
    bad.write_bytes(bad.read_bytes() + b"\x00\x00\x00\x01")  # one extra word
    with pytest.raises(DataCorruptError, match="cifar10_dog_1.aedat"):
        cifar10_dvs.CIFAR10_DVS.load(request(tmp_path / "data", tmp_path / "cache"))
    assert not list((tmp_path / "cache" / "cifar10_dvs").iterdir())


def test_cifar10_dvs_missing_class_folder(tmp_path) -> None:
    folder = write_cifar10_dvs(tmp_path / "data", per_class=2)
    for file in (folder / "frog").iterdir():
        file.unlink()
    (folder / "frog").rmdir()
    with pytest.raises(DataMissingError, match="no class folder frog"):
        cifar10_dvs.CIFAR10_DVS.check(request(tmp_path / "data", tmp_path / "cache"))


def test_cifar10_dvs_unwritable_cache_is_a_clear_error(tmp_path) -> None:
    write_cifar10_dvs(tmp_path / "data", per_class=2)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    with pytest.raises(UsageError, match="cannot cache data in .*--cache"):
        cifar10_dvs.CIFAR10_DVS.check(request(tmp_path / "data", blocker / "datasets"))
    with pytest.raises(UsageError, match="cannot cache data"):
        cifar10_dvs.CIFAR10_DVS.load(request(tmp_path / "data", blocker / "datasets"))


def test_cifar10_dvs_tonic_layout_goes_through_tonic(tmp_path, monkeypatch) -> None:
    """tonic's layout: class folders of .aedat4. Their decoder (the `aedat` package) is not
    needed to test the path: the files here hold arrays in the decoder's output format and
    a stand-in decoder loads them; listing, labels and framing are tonic's and ours."""
    import tonic.datasets.cifar10dvs as tonic_cifar

    folder = tmp_path / "data" / "CIFAR10DVS"
    rng = np.random.default_rng(3)
    decoder_dtype = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
    written = {}
    for name in DVS_CLASSES:
        (folder / name).mkdir(parents=True)
        for i in range(2):
            x, y, p, t = random_stream(rng, 200)
            events = np.empty(200, decoder_dtype)
            events["t"], events["x"], events["y"], events["on"] = t, x, y, p
            path = folder / name / f"{name}_{i}.aedat4"
            with open(path, "wb") as handle:
                np.save(handle, events)
            written[path.name] = events
    monkeypatch.setitem(sys.modules, "aedat", types.ModuleType("aedat"))
    monkeypatch.setattr(tonic_cifar, "read_aedat4", lambda path: np.load(path))
    data = cifar10_dvs.CIFAR10_DVS.load(request(tmp_path / "data", tmp_path / "cache"))
    assert dict(data.info.split_sizes) == {"train": 10, "test": 10, "calibration": 10}
    listing = cifar10_dvs.list_recordings(request(tmp_path / "data", tmp_path / "cache"))
    assert listing.suffix == ".aedat4"
    first_test = listing.files[listing.test[0]]
    source = written[first_test.name]
    as_tonic = np.empty(len(source), dtype=[("t", "<u8"), ("x", "<u2"), ("y", "<u2"),
                                            ("p", "?")])
    for out_name, in_name in zip(as_tonic.dtype.names, source.dtype.names, strict=True):
        as_tonic[out_name] = source[in_name]
    expected = cifar10_dvs.preprocess(as_tonic, 10, 48)
    assert torch.equal(data.test[0][0], torch.from_numpy(expected.astype(np.float32)))
    assert data.test[0][1] == 0


def test_cifar10_dvs_aedat4_without_its_decoder_says_what_to_install(tmp_path,
                                                                      monkeypatch) -> None:
    folder = tmp_path / "data" / "CIFAR10DVS"
    for name in DVS_CLASSES:
        (folder / name).mkdir(parents=True)
        for i in range(2):
            (folder / name / f"{name}_{i}.aedat4").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "aedat", None)  # import aedat -> ImportError
    with pytest.raises(UsageError, match="pip install aedat"):
        cifar10_dvs.CIFAR10_DVS.check(request(tmp_path / "data", tmp_path / "cache"))


# --- every registered dataset -----------------------------------------------------------


REGISTERED = sorted(entry.name for entry in load_plugins(strict=True).datasets.entries())


@pytest.mark.parametrize("name", REGISTERED)
def test_every_dataset_declares_its_contract(name, tmp_path) -> None:
    spec = load_plugins(strict=True).datasets.get(name)
    assert spec.version and spec.description and spec.citation
    assert spec.task in ("classification", "detection")
    module = importlib.import_module(spec.load.__module__)
    assert module.__doc__ and len(module.__doc__) > 200  # format notes and citation
    if spec.embedded:
        return
    # An on-disk dataset has a pre-flight check that names its sub-folder in its error;
    # the module docstring documents that sub-folder.
    assert spec.check is not None
    with pytest.raises(DataMissingError) as error:
        spec.check(request(tmp_path / "empty", tmp_path / "cache"))
    searched = str(error.value).split("searched ")[1].split(":")[0]
    subfolder = Path(searched).relative_to(tmp_path / "empty").parts[0]
    assert f"DIR/{subfolder}/" in module.__doc__
