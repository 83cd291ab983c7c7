"""Detection: COCO mAP through the project's scoring code against hand-computed values, the
FCOS assignment and box coding, annotation checks (bad input is an error naming the
annotation or file), the det.<backbone> detectors (build, trace, convert), the matrix's
choice of detector and skipped cells, digits_det, and a tiny COCO 2017 folder of real
JPEGs run end to end through the same code path as digits_det.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from snnbench_datasets import coco as coco_plugin
from snnbench_datasets import digits_det
from snnbench_suite import DatasetRequest
from snnbench_suite.detection import (
    CocoScorer,
    Detections,
    DetectionSamples,
    HeadLayout,
    check_annotations,
    coco_results,
    detect,
    fcos_loss,
)
from snnbench_suite.detection.loss import assign, centerness_target
from snnbench_suite.errors import DataCorruptError, DataMissingError, UsageError
from snnbench_suite.matrix import Overrides, build_plan
from snnbench_suite.results import records_frame
from snnbench_suite.snn import IFNeuron, direct, prepare_conversion
from snnbench_suite.testing import plugin_manager, run_one_cell

IOU_THRESHOLDS = [0.5 + 0.05 * i for i in range(10)]
RECALL_POINTS = 101  # COCOeval interpolates precision at recall 0, 0.01, ..., 1


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """IoU of two (x, y, w, h) boxes, by hand."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def ground_truth(boxes: list[tuple[float, float, float, float]]) -> dict[str, Any]:
    """One 40x40 image per box, category 7."""
    return {
        "images": [{"id": i + 1, "width": 40, "height": 40, "file_name": f"{i}.jpg"}
                   for i in range(len(boxes))],
        "annotations": [{"id": i + 1, "image_id": i + 1, "category_id": 7, "bbox": list(b),
                         "area": b[2] * b[3], "iscrowd": 0} for i, b in enumerate(boxes)],
        "categories": [{"id": 7, "name": "seven"}],
    }


def detection(image_id: int, box: tuple[float, ...], score: float) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": 7, "bbox": list(box), "score": score}


# --- COCO mAP ----------------------------------------------------------------------------


def test_perfect_predictions_score_one() -> None:
    boxes = [(5.0, 5.0, 10.0, 10.0), (20.0, 8.0, 12.0, 6.0)]
    scorer = CocoScorer(ground_truth(boxes))
    result = scorer.score([detection(i + 1, b, 0.9) for i, b in enumerate(boxes)])
    assert result == pytest.approx({"map": 1.0, "map50": 1.0})
    assert scorer.score([]) == {"map": 0.0, "map50": 0.0}


@pytest.mark.parametrize(("shift", "counted"), [(2.6, 2), (3.0, 1), (1.0, 7)])
def test_a_shifted_box_counts_at_the_iou_thresholds_below_its_iou(shift: float,
                                                                  counted: int) -> None:
    truth = (10.0, 10.0, 10.0, 10.0)
    shifted = (10.0 + shift, 10.0, 10.0, 10.0)
    overlap = iou(truth, shifted)  # (10 - shift) / (10 + shift): 0.587, 0.538, 0.818
    assert sum(overlap >= t for t in IOU_THRESHOLDS) == counted
    result = CocoScorer(ground_truth([truth])).score([detection(1, shifted, 0.8)])
    # One object: AP is 1 at the thresholds the box passes, 0 at the others.
    assert result["map"] == pytest.approx(counted / 10)
    assert result["map50"] == pytest.approx(1.0)


def test_one_missed_object_of_two_halves_precision_beyond_half_recall() -> None:
    # Image 1 is found exactly (score 0.9); image 2's box is shifted to IoU 7/13 (score 0.8):
    # a hit at IoU 0.5, a false positive (and a miss) at 0.55 and above, where the
    # precision is 1 up to recall 0.5 and 0 beyond: AP = 51 of the 101 recall points.
    truth = [(5.0, 5.0, 10.0, 10.0), (10.0, 10.0, 10.0, 10.0)]
    assert iou(truth[1], (13.0, 10.0, 10.0, 10.0)) == pytest.approx(7 / 13)
    result = CocoScorer(ground_truth(truth)).score(
        [detection(1, truth[0], 0.9), detection(2, (13.0, 10.0, 10.0, 10.0), 0.8)])
    assert result["map50"] == pytest.approx(1.0)
    assert result["map"] == pytest.approx((1.0 + 9 * 51 / RECALL_POINTS) / 10)


def test_a_dense_map_holding_the_true_boxes_decodes_to_map_one() -> None:
    # The whole path a detector's output takes: dense map -> detect -> COCO results ->
    # COCOeval, with boxes mapped back to original pixels (here 2x the input).
    layout = HeadLayout(num_classes=3, image_size=(16, 16), grid=(4, 4))
    output = torch.full((1, 8, 4, 4), -12.0)
    box = torch.tensor([1.0, 3.0, 7.0, 8.0])  # contains the grid point (2, 6): cell (1, 0)
    center = torch.tensor([2.0, 6.0])
    sides = torch.cat([center - box[:2], box[2:] - center]) / torch.tensor(layout.stride * 2)
    output[0, :4, 1, 0] = sides.log()
    output[0, 4, 1, 0] = 12.0
    output[0, 5 + 2, 1, 0] = 12.0  # label 2
    found = detect(output, (16, 16), 3)
    assert len(found[0].scores) == 1 and int(found[0].labels[0]) == 2
    torch.testing.assert_close(found[0].boxes[0], box)
    truth = {"images": [{"id": 5, "width": 32, "height": 32, "file_name": "a.jpg"}],
             "annotations": [{"id": 1, "image_id": 5, "category_id": 30, "area": 120.0,
                              "bbox": [2.0, 6.0, 12.0, 10.0], "iscrowd": 0}],
             "categories": [{"id": 10}, {"id": 20}, {"id": 30}]}
    results = coco_results(found, [5], [(2.0, 2.0)], [10, 20, 30])
    assert results[0]["bbox"] == pytest.approx([2.0, 6.0, 12.0, 10.0])
    assert CocoScorer(truth).score(results) == pytest.approx({"map": 1.0, "map50": 1.0})


class FixedMap(torch.nn.Module):
    """A 'detector' whose dense map is given: one box per image at grid cell (1, 1)."""

    def __init__(self, boxes: list[list[float]]) -> None:
        super().__init__()
        maps = torch.full((len(boxes), 6, 4, 4), -12.0)
        center = torch.tensor([6.0, 6.0])  # grid point of cell (1, 1) at stride 4
        for index, box in enumerate(torch.tensor(boxes)):
            sides = torch.cat([center - box[:2], box[2:] - center]) / 4
            maps[index, :4, 1, 1] = sides.log()
            maps[index, 4:, 1, 1] = 12.0
        self.register_buffer("maps", maps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maps[: x.shape[0]]


def test_a_given_dense_map_scores_through_the_evaluation_path() -> None:
    from torch.utils.data import DataLoader

    from snnbench_suite.detection.evaluate import evaluate_detector

    truth = [(3.0, 2.0, 8.0, 9.0)]  # x, y, w, h on a 16x16 image, around the point (6, 6)
    clean = check_annotations({**ground_truth(truth), "images": [
        {"id": 1, "width": 16, "height": 16, "file_name": "0.jpg"}]}, "fixture")
    split = DetectionSamples(clean, [1], lambda index: torch.zeros(1, 16, 16), (16, 16))
    loader = DataLoader(split, batch_size=4)
    exact = [[3.0, 2.0, 11.0, 11.0]]
    assert evaluate_detector(FixedMap(exact), loader, torch.device("cpu")) == pytest.approx(
        {"map": 1.0, "map50": 1.0})
    # 2.6 px to the right: IoU (8 - 2.6) * 9 / (2 * 72 - 5.4 * 9) = 0.5094, counted at 0.5 only.
    shifted = [[5.6, 2.0, 13.6, 11.0]]
    assert iou(truth[0], (5.6, 2.0, 8.0, 9.0)) == pytest.approx(48.6 / 95.4)
    assert evaluate_detector(FixedMap(shifted), loader, torch.device("cpu")) == pytest.approx(
        {"map": 0.1, "map50": 1.0})


def test_bad_detections_are_named_before_pycocotools_sees_them() -> None:
    scorer = CocoScorer(ground_truth([(5.0, 5.0, 10.0, 10.0)]))
    with pytest.raises(ValueError, match="detection 1: image_id 9"):
        scorer.score([detection(1, (5, 5, 10, 10), 0.9), detection(9, (5, 5, 10, 10), 0.5)])
    with pytest.raises(ValueError, match="detection 0: bbox"):
        scorer.score([detection(1, (5, 5, -1, 10), 0.9)])
    with pytest.raises(ValueError, match="no \\(non-crowd\\) box"):
        CocoScorer({**ground_truth([]), "annotations": []})


# --- assignment and loss -------------------------------------------------------------------


def test_fcos_assignment_and_centerness_by_hand() -> None:
    layout = HeadLayout(num_classes=2, image_size=(16, 16), grid=(4, 4))  # points 2, 6, 10, 14
    targets = torch.tensor([[[0.0, 0.0, 8.0, 8.0, 1.0], [0.0, 0.0, 0.0, 0.0, -1.0]]])
    positive, boxes, labels = assign(layout, targets)
    # Inside (0, 0, 8, 8) and within 1.5 strides (6 px) of (4, 4): x, y in {2, 6}.
    expected = torch.zeros(16, dtype=torch.bool)
    expected[[0, 1, 4, 5]] = True
    assert torch.equal(positive[0], expected)
    assert torch.equal(labels[0, positive[0]], torch.ones(4, dtype=torch.long))
    centers = layout.centers()[positive[0]]
    # (2, 2): l = t = 2, r = b = 6 -> sqrt(2/6 * 2/6) = 1/3; (6, 6): 1/3 too; (6, 2): 1/3.
    torch.testing.assert_close(centerness_target(centers, boxes[0, positive[0]]),
                               torch.full((4,), 1 / 3))


def test_a_box_between_grid_points_takes_the_nearest_location() -> None:
    layout = HeadLayout(num_classes=1, image_size=(16, 16), grid=(4, 4))
    targets = torch.tensor([[[6.5, 2.5, 9.5, 9.5, 0.0]]])  # no grid x in (6.5, 9.5)
    positive, _, _ = assign(layout, targets)
    assert positive.sum() == 1
    assert int(positive[0].nonzero()) == 1 * 4 + 1  # the point (6, 6), nearest (8, 6)


def test_the_loss_of_a_perfect_map_is_the_centerness_entropy() -> None:
    targets = torch.tensor([[[0.0, 0.0, 8.0, 8.0, 1.0]]])
    blank = torch.zeros(1, 7, 4, 4, requires_grad=True)
    loss = fcos_loss(blank, targets, (16, 16))
    loss.backward()
    assert torch.isfinite(loss) and blank.grad is not None and blank.grad.abs().sum() > 0
    # The four positives (x, y in {2, 6}) get their exact sides, a sure class 1 and the
    # centerness logit of their target 1/3; every other logit is sure of "no object".
    perfect = torch.full((1, 7, 4, 4), -12.0)
    for row, y in enumerate((2.0, 6.0)):
        for col, x in enumerate((2.0, 6.0)):
            perfect[0, :4, row, col] = torch.tensor([x, y, 8 - x, 8 - y]).div(4).log()
            perfect[0, 4, row, col] = math.log((1 / 3) / (2 / 3))
            perfect[0, 6, row, col] = 12.0
    # Focal and GIoU terms vanish; the centerness BCE is the entropy of 1/3 per positive.
    entropy = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))
    assert float(fcos_loss(perfect, targets, (16, 16))) == pytest.approx(entropy, abs=1e-4)
    assert entropy < float(loss.detach())


# --- annotations: bad input ----------------------------------------------------------------


def annotations(**changes: Any) -> dict[str, Any]:
    data = {
        "images": [{"id": 1, "width": 40, "height": 30, "file_name": "a.jpg"}],
        "annotations": [{"id": 11, "image_id": 1, "category_id": 3, "bbox": [1, 2, 10, 8],
                         "area": 80.0, "iscrowd": 0}],
        "categories": [{"id": 3, "name": "three"}],
    }
    for key, value in changes.items():
        data["annotations"][0][key] = value
    return data


@pytest.mark.parametrize(("change", "message"), [
    ({"category_id": 99}, "annotation 11 has unknown category id 99"),
    ({"bbox": [35, 2, 10, 8]}, "annotation 11 has bbox .* outside its image 1 \\(a.jpg"),
    ({"bbox": [1, 2, -3, 8]}, "annotation 11 has a negative width"),
    ({"bbox": [1, 2, float("nan"), 8]}, "annotation 11 has bbox"),
    ({"bbox": "1 2 3 4"}, "annotation 11 has bbox"),
    ({"image_id": 2}, "annotation 11 refers to image 2"),
    ({"iscrowd": 2}, "annotation 11 has iscrowd = 2"),
])
def test_bad_annotations_are_errors_naming_the_annotation_and_file(change, message) -> None:
    with pytest.raises(DataCorruptError, match=f"instances.json: {message}"):
        check_annotations(annotations(**change), "instances.json")


def test_boxes_within_a_pixel_of_the_border_are_clipped_and_zero_area_boxes_counted() -> None:
    data = annotations(bbox=[-0.5, 2, 41, 8])  # 0.5 px left and right of the 40 px image
    data["annotations"] += [
        {"id": 12, "image_id": 1, "category_id": 3, "bbox": [5, 5, 0, 4]},
        {"id": 13, "image_id": 1, "category_id": 3, "bbox": [5, 5, 3, 0]},
    ]
    clean = check_annotations(data, "instances.json")
    assert clean.boxes[1][0].bbox == (0.0, 2.0, 40.0, 8.0)
    assert clean.dropped_zero_area == 2
    assert [a["id"] for a in clean.ground_truth()["annotations"]] == [11]


def test_malformed_files_are_errors() -> None:
    with pytest.raises(DataCorruptError, match="no 'annotations' list"):
        check_annotations({"images": [], "categories": [{"id": 1}]}, "x.json")
    with pytest.raises(DataCorruptError, match="image 1 appears twice"):
        data = annotations()
        data["images"].append(dict(data["images"][0]))
        check_annotations(data, "x.json")
    with pytest.raises(DataCorruptError, match="declares no categories"):
        check_annotations({**annotations(), "categories": []}, "x.json")


# --- detectors ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["det.vgg11", "det.resnet20", "det.mobilenet_v1"])
def test_detectors_build_train_and_convert(plugins, name: str) -> None:
    from snnbench_suite import ArchitectureRequest

    spec = plugins.architectures.get(name)
    assert spec.tasks == ("detection",)
    model = spec.build(ArchitectureRequest(num_classes=10, input_shape=(1, 32, 32),
                                           width=spec.default_width))
    x = torch.rand(2, 1, 32, 32)
    out = model(x)
    assert out.shape == (2, 15, 8, 8)  # stride 4 on small inputs
    fcos_loss(out, torch.tensor([[[0.0, 0.0, 8.0, 8.0, 3.0]]] * 2), (32, 32)).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    snn = prepare_conversion(model).to_spiking(lambda site: IFNeuron(1.0))
    with torch.no_grad():
        assert snn(direct(x, 3)).shape == (3, 2, 15, 8, 8)


def test_large_inputs_get_a_stride_16_map_and_unknown_backbones_are_named(plugins) -> None:
    from snnbench_suite import ArchitectureRequest

    spec = plugins.architectures.get("det.resnet18")
    model = spec.build(ArchitectureRequest(num_classes=3, input_shape=(3, 128, 128),
                                           width=0.125))
    assert model(torch.rand(1, 3, 128, 128)).shape == (1, 8, 8, 8)
    with pytest.raises(UsageError, match="det.vgg12.*Did you mean: .*vgg11"):
        plugins.architectures.get("det.vgg12")


def test_the_plan_wraps_classifiers_for_detection_and_skips_mismatches(plugins) -> None:
    plan = build_plan(plugins, methods=["naive", "tet"], architectures=["vgg11", "det.vgg11"],
                      datasets=["digits", "digits_det"], seeds=[0], steps=[4],
                      overrides=Overrides.parse([]), epochs=1)
    cells = {(c.method, c.architecture, c.dataset): c.cell_id for c in plan.cells}
    # vgg11 on digits_det runs as det.vgg11, the same cell as naming det.vgg11: once.
    assert sorted(cells) == sorted([
        ("naive", "vgg11", "digits"), ("tet", "vgg11", "digits"),
        ("naive", "det.vgg11", "digits"), ("tet", "det.vgg11", "digits"),
        ("naive", "det.vgg11", "digits_det"), ("tet", "det.vgg11", "digits_det")])
    assert "is for detection; dataset 'digits' is classification" in plan.skipped[
        cells[("naive", "det.vgg11", "digits")]]
    assert "dataset 'digits_det' is detection" in plan.skipped[
        cells[("tet", "det.vgg11", "digits_det")]]
    assert cells[("naive", "det.vgg11", "digits_det")] not in plan.skipped


# --- digits_det ------------------------------------------------------------------------------


def small_digits_det(tmp_path: Path) -> Any:
    return digits_det.load(DatasetRequest(params={"train_images": 60, "test_images": 20},
                                          data_root=None, cache_dir=tmp_path))


def test_digits_det_is_fixed_and_its_boxes_lie_on_their_digits(tmp_path) -> None:
    data = small_digits_det(tmp_path)
    again = small_digits_det(tmp_path)
    assert data.info.fingerprint == again.info.fingerprint
    assert data.info.metric == "map50" and data.info.task == "detection"
    counts = []
    for index in range(len(data.test)):
        image, packed = data.test[index]
        boxes, labels = data.test.targets(index)
        counts.append(len(boxes))
        assert image.shape == (1, 32, 32)
        assert ((boxes >= 0) & (boxes <= 32)).all() and ((labels >= 0) & (labels < 10)).all()
        for x1, y1, x2, y2 in boxes.tolist():
            ink = image[0, math.floor(y1):math.ceil(y2), math.floor(x1):math.ceil(x2)]
            assert ink.max() > 0.3  # the box holds the digit's ink
        assert packed.shape == (data.test.max_objects, 5)
    assert 1 <= min(counts) and max(counts) <= 4
    truth = data.test.ground_truth()
    assert len(truth["annotations"]) == sum(counts) == data.info.split_sizes["test_objects"]
    check_annotations(truth, "digits_det")  # a valid COCO dict


def test_digits_det_runs_end_to_end_with_map_per_t(tmp_path) -> None:
    record = run_one_cell(plugin_manager(), tmp_path, method="naive", T=(2, 4),
                          architecture="vgg11", dataset="digits_det", epochs=1,
                          overrides={"digits_det.train_images": 48,
                                     "digits_det.test_images": 16})
    assert record["cell"]["architecture"] == "det.vgg11"
    assert record["dataset"]["metric"] == "map50"
    assert 0.0 <= record["ann"]["map50"] <= 1.0 and "top1" not in record["ann"]
    assert [e["T"] for e in record["per_T"]] == [2, 4]
    for entry in record["per_T"]:
        assert 0.0 <= entry["map"] <= entry["map50"] <= 1.0  # COCOeval's fractions
        assert "firing_rate" in entry and "top1" not in entry
    frame = records_frame([record])
    assert list(frame["metric"].unique()) == ["map50"]
    assert frame["map50"].tolist() == [e["map50"] for e in record["per_T"]]
    assert frame["ann_map50"].iloc[0] == record["ann"]["map50"]


# --- COCO 2017 on disk ----------------------------------------------------------------------

CATEGORIES = [{"id": 1, "name": "square", "supercategory": "shape"},
              {"id": 3, "name": "bar", "supercategory": "shape"}]


def write_coco(root: Path, *, train: int = 6, val: int = 3) -> Path:
    """A COCO 2017 folder: JPEGs with a bright square (category 1) and a bar (3), the
    instances files in the official format, one crowd box and one zero-area box."""
    from PIL import Image, ImageDraw

    folder = root / "coco"
    (folder / "annotations").mkdir(parents=True)
    for split, count in (("train2017", train), ("val2017", val)):
        (folder / split).mkdir()
        images, anns = [], []
        for i in range(count):
            width, height = 48 + 8 * (i % 2), 40
            image_id = 1000 * (split == "val2017") + i + 1
            name = f"{image_id:012d}.jpg"
            picture = Image.new("RGB", (width, height), (20, 20, 20))
            draw = ImageDraw.Draw(picture)
            x = 4 + 3 * i
            draw.rectangle([x, 6, x + 14, 20], fill=(240, 240, 240))
            draw.rectangle([30, 24, 44, 30], fill=(200, 40, 40))
            picture.save(folder / split / name, quality=95)
            images.append({"id": image_id, "width": width, "height": height,
                           "file_name": name})
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1,
                         "bbox": [x, 6, 15, 15], "area": 225.0, "iscrowd": 0})
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 3,
                         "bbox": [30, 24, 15, 7], "area": 105.0, "iscrowd": 0})
        anns.append({"id": len(anns) + 1, "image_id": images[0]["id"], "category_id": 3,
                     "bbox": [0, 32, 20, 8], "area": 160.0, "iscrowd": 1})
        anns.append({"id": len(anns) + 1, "image_id": images[0]["id"], "category_id": 1,
                     "bbox": [2, 2, 0, 5], "area": 0.0, "iscrowd": 0})
        kind = split.replace("2017", "")
        (folder / "annotations" / f"instances_{kind}2017.json").write_text(json.dumps(
            {"info": {}, "licenses": [], "images": images, "annotations": anns,
             "categories": CATEGORIES}))
    return root


def coco_request(root: Path | None, tmp_path: Path, **params: Any) -> DatasetRequest:
    return DatasetRequest(params={"size": 32, **params}, data_root=root,
                          cache_dir=tmp_path / "cache")


def test_coco_reads_the_official_layout(tmp_path) -> None:
    root = write_coco(tmp_path / "data")
    data = coco_plugin.load(coco_request(root, tmp_path))
    assert data.info.num_classes == 2 and data.info.input_shape == (3, 32, 32)
    assert data.info.metric == "map" and data.info.filtered == {"zero_area_boxes": 2}
    assert data.info.split_sizes == {"train": 6, "test": 3, "calibration": 6}
    assert isinstance(data.test, DetectionSamples)
    image, packed = data.test[1]
    assert image.shape == (3, 32, 32) and 0 <= image.min() and image.max() <= 1
    # Image 1002 is 56x40: the square at x = 7 (15 px) scales by 32/56 and 32/40.
    boxes, labels = data.test.targets(1)
    torch.testing.assert_close(boxes[0], torch.tensor([7 * 32 / 56, 6 * 0.8, 22 * 32 / 56,
                                                       21 * 0.8]))
    assert labels.tolist() == [0, 1]  # category 3 is label 1
    assert data.test.scales[1] == (56 / 32, 40 / 32)
    # The crowd box stays in the ground truth COCOeval scores against.
    assert any(a["iscrowd"] for a in data.test.ground_truth()["annotations"])


def test_coco_runs_end_to_end_like_digits_det(tmp_path) -> None:
    root = write_coco(tmp_path / "data")
    plugins = plugin_manager()
    for method, steps in (("naive", (2, 4)), ("calib", (2,))):
        record = run_one_cell(plugins, tmp_path / "work", method=method, T=steps,
                              architecture="vgg11", dataset="coco", epochs=1,
                              overrides={"coco.size": 32}, data_root=root)
        assert record["status"] == "ok" and record["cell"]["architecture"] == "det.vgg11"
        assert record["dataset"]["filtered"] == {"zero_area_boxes": 2}
        assert [e["T"] for e in record["per_T"]] == list(steps)
        assert all(0.0 <= e["map"] <= e["map50"] <= 1.0 for e in record["per_T"])
        assert 0.0 <= record["ann"]["map"] <= 1.0


def test_coco_bad_files_are_errors_naming_them(tmp_path) -> None:
    with pytest.raises(DataMissingError, match="DIR/coco/train2017"):
        coco_plugin.check(coco_request(None, tmp_path))
    root = write_coco(tmp_path / "data")
    broken = root / "coco" / "val2017" / "000000001002.jpg"
    broken.write_bytes(b"not a jpeg")
    data = coco_plugin.load(coco_request(root, tmp_path))
    with pytest.raises(DataCorruptError, match="000000001002.jpg does not decode"):
        data.test[1]
    broken.unlink()
    with pytest.raises(DataMissingError, match="1 image\\(s\\) listed in .*instances_val2017"):
        coco_plugin.load(coco_request(root, tmp_path))
    path = root / "coco" / "annotations" / "instances_train2017.json"
    content = json.loads(path.read_text())
    content["annotations"][0]["category_id"] = 2
    path.write_text(json.dumps(content))
    with pytest.raises(DataCorruptError, match="instances_train2017.json: annotation 1 has "
                       "unknown category id 2"):
        coco_plugin.load(coco_request(root, tmp_path))
    path.write_text("{")
    with pytest.raises(DataCorruptError, match="instances_train2017.json cannot be read"):
        coco_plugin.load(coco_request(root, tmp_path))


def test_results_without_detections_score_zero() -> None:
    empty = [Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))]
    assert coco_results(empty, [1], [(1.0, 1.0)], [7]) == []
