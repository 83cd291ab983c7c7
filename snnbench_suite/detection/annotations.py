"""COCO-format annotations: checked before anything reads them, so bad input is an error
naming the annotation and the file, never a crash deep inside pycocotools.

Rules (the same for every detection dataset):
- the file holds `images`, `annotations` and `categories` lists; ids are unique integers;
- an annotation names a known image and a known category and has a finite
  `bbox = [x, y, width, height]` with width, height >= 0;
- a box may cross the image border by at most `BORDER_TOLERANCE` pixels (rounding in the
  annotation tools); such a box is clipped to the image. A box further outside is an error;
- a box of zero width or zero height (zero area) cannot be matched by any detection and
  makes IoU undefined: it is dropped from training and evaluation, and the number dropped
  is reported (`CleanAnnotations.dropped_zero_area`, stored in every record);
- crowd annotations (`iscrowd = 1`) are kept for evaluation, where COCOeval ignores the
  detections that match them, and are not trained on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from snnbench_suite.errors import DataCorruptError

BORDER_TOLERANCE = 1.0


@dataclass(frozen=True)
class ImageEntry:
    id: int
    width: int
    height: int
    file_name: str


@dataclass(frozen=True)
class BoxEntry:
    id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]  # x, y, width, height (clipped to the image)
    area: float
    iscrowd: int


@dataclass
class CleanAnnotations:
    """Checked annotations: images in file order, categories sorted by id (label k is the
    k-th category), boxes per image."""

    source: str
    images: list[ImageEntry]
    categories: list[dict[str, Any]]
    boxes: dict[int, list[BoxEntry]] = field(default_factory=dict)
    dropped_zero_area: int = 0

    @property
    def category_ids(self) -> list[int]:
        return [int(c["id"]) for c in self.categories]

    def ground_truth(self, image_ids: Sequence[int] | None = None) -> dict[str, Any]:
        """A COCO-format dict of `image_ids` (default: all) that pycocotools reads as is."""
        wanted = None if image_ids is None else set(image_ids)
        chosen = [im for im in self.images if wanted is None or im.id in wanted]
        annotations = [
            {"id": b.id, "image_id": b.image_id, "category_id": b.category_id,
             "bbox": list(b.bbox), "area": b.area, "iscrowd": b.iscrowd}
            for im in chosen for b in self.boxes.get(im.id, [])
        ]
        return {
            "images": [{"id": im.id, "width": im.width, "height": im.height,
                        "file_name": im.file_name} for im in chosen],
            "annotations": annotations,
            "categories": [dict(c) for c in self.categories],
        }


def _fail(source: str, what: str, problem: str, hint: str = "") -> DataCorruptError:
    return DataCorruptError(f"{source}: {what} {problem}.{' ' + hint if hint else ''}")


def _int_id(entry: Mapping[str, Any], key: str, source: str, what: str) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(source, what, f"has {key} = {value!r}; it must be an integer")
    return value


def _list(data: Mapping[str, Any], key: str, source: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise _fail(source, "the file", f"has no {key!r} list (got {type(value).__name__})",
                    "A COCO instances file holds 'images', 'annotations' and 'categories'.")
    return value


def _images(data: Mapping[str, Any], source: str) -> list[ImageEntry]:
    images: list[ImageEntry] = []
    seen: set[int] = set()
    for index, raw in enumerate(_list(data, "images", source)):
        what = f"image entry {index}"
        if not isinstance(raw, Mapping):
            raise _fail(source, what, "is not an object")
        image_id = _int_id(raw, "id", source, what)
        what = f"image {image_id}"
        if image_id in seen:
            raise _fail(source, what, "appears twice (image ids must be unique)")
        seen.add(image_id)
        width, height = raw.get("width"), raw.get("height")
        if (not isinstance(width, int) or not isinstance(height, int)
                or isinstance(width, bool) or isinstance(height, bool)
                or width <= 0 or height <= 0):
            raise _fail(source, what, f"has width {width!r} and height {height!r}; both "
                        "must be positive integers")
        file_name = raw.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise _fail(source, what, f"has file_name {file_name!r}")
        images.append(ImageEntry(image_id, int(width), int(height), file_name))
    return images


def _categories(data: Mapping[str, Any], source: str) -> list[dict[str, Any]]:
    categories: dict[int, dict[str, Any]] = {}
    for index, raw in enumerate(_list(data, "categories", source)):
        what = f"category entry {index}"
        if not isinstance(raw, Mapping):
            raise _fail(source, what, "is not an object")
        category_id = _int_id(raw, "id", source, what)
        if category_id in categories:
            raise _fail(source, f"category {category_id}", "appears twice")
        categories[category_id] = {"id": category_id,
                                   "name": str(raw.get("name", category_id)),
                                   "supercategory": str(raw.get("supercategory", ""))}
    if not categories:
        raise _fail(source, "the file", "declares no categories")
    return [categories[k] for k in sorted(categories)]


def _box(raw: Mapping[str, Any], image: ImageEntry, source: str, what: str
         ) -> tuple[float, float, float, float] | None:
    """The box clipped to the image, None for a zero-area box, an error when malformed or
    outside the image."""
    bbox = raw.get("bbox")
    if (not isinstance(bbox, Sequence) or isinstance(bbox, str) or len(bbox) != 4
            or not all(isinstance(v, int | float) and not isinstance(v, bool)
                       and math.isfinite(v) for v in bbox)):
        raise _fail(source, what, f"has bbox {bbox!r}; expected [x, y, width, height] of "
                    "finite numbers")
    x, y, w, h = (float(v) for v in bbox)
    if w < 0 or h < 0:
        raise _fail(source, what, f"has a negative width or height in bbox {bbox!r}",
                    "COCO boxes are [x, y, width, height] with width, height >= 0.")
    tol = BORDER_TOLERANCE
    if x < -tol or y < -tol or x + w > image.width + tol or y + h > image.height + tol:
        raise _fail(source, what, f"has bbox {bbox!r}, outside its image {image.id} "
                    f"({image.file_name}, {image.width}x{image.height}) by more than {tol:g} "
                    "pixel", "Fix or remove the annotation.")
    x1, y1 = max(x, 0.0), max(y, 0.0)
    x2, y2 = min(x + w, float(image.width)), min(y + h, float(image.height))
    if w == 0 or h == 0 or x2 <= x1 or y2 <= y1:
        return None
    return x1, y1, x2 - x1, y2 - y1


def check_annotations(data: Any, source: str) -> CleanAnnotations:
    """Check a COCO-format dict (`source` names it in errors) and return it cleaned."""
    if not isinstance(data, Mapping):
        raise _fail(source, "the file", f"holds a {type(data).__name__}, not a COCO object")
    images = _images(data, source)
    categories = _categories(data, source)
    by_id = {im.id: im for im in images}
    known_categories = {int(c["id"]) for c in categories}
    clean = CleanAnnotations(source=source, images=images, categories=categories)
    seen: set[int] = set()
    for index, raw in enumerate(_list(data, "annotations", source)):
        what = f"annotation entry {index}"
        if not isinstance(raw, Mapping):
            raise _fail(source, what, "is not an object")
        annotation_id = _int_id(raw, "id", source, what)
        what = f"annotation {annotation_id}"
        if annotation_id in seen:
            raise _fail(source, what, "appears twice (annotation ids must be unique)")
        seen.add(annotation_id)
        image_id = _int_id(raw, "image_id", source, what)
        if image_id not in by_id:
            raise _fail(source, what, f"refers to image {image_id}, which the file does not "
                        "list")
        category_id = _int_id(raw, "category_id", source, what)
        if category_id not in known_categories:
            shown = sorted(known_categories)
            raise _fail(source, what, f"has unknown category id {category_id} (known: "
                        f"{shown[:20]}{' ...' if len(shown) > 20 else ''})",
                        "Every category_id must be declared in 'categories'.")
        box = _box(raw, by_id[image_id], source, what)
        if box is None:
            clean.dropped_zero_area += 1
            continue
        crowd = raw.get("iscrowd", 0)
        if crowd not in (0, 1):
            raise _fail(source, what, f"has iscrowd = {crowd!r}; it must be 0 or 1")
        area = raw.get("area")
        if not (isinstance(area, int | float) and not isinstance(area, bool)
                and math.isfinite(area) and area > 0):
            area = box[2] * box[3]
        clean.boxes.setdefault(image_id, []).append(
            BoxEntry(annotation_id, image_id, category_id, box, float(area), int(crowd)))
    return clean
