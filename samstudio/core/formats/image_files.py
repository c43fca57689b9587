"""Check a dataset's image records against the image files in a folder.

``attach_images`` looks up every ``ImageRecord.file_name`` under ``images_dir`` (then its
base name, for files whose sub-folder prefix does not exist), records the path found,
and compares the record's size with the image as displayed (EXIF orientation applied):

- equal: fine;
- the record has the *stored* size of an image whose EXIF orientation (5-8) swaps width
  and height: the annotations were made on the un-rotated pixels, so masks, boxes, prompt
  points and crop boxes are turned into the displayed frame (warning ``reoriented``);
- any other disagreement, including width and height swapped without EXIF to explain it:
  error ``image_size_mismatch``; the image and its annotations are removed (listed);
- missing or unreadable file: warning; the record is kept as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from samstudio.core.formats.records import Annotation, Dataset, ImageRecord, ImportReport
from samstudio.core.images import (
    ImageLoadError,
    orient_array,
    orient_points,
    stored_size_and_orientation,
)
from samstudio.core.masks import decode_rle, encode_rle, rle_bbox


def find_image_file(image: ImageRecord, images_dir: str | os.PathLike[str]) -> Path | None:
    root = Path(images_dir)
    name = image.file_name.replace("\\", "/")
    for candidate in (root / name, root / Path(name).name):
        if candidate.is_file():
            return candidate
    return None


def attach_images(
    dataset: Dataset, images_dir: str | os.PathLike[str], report: ImportReport, source: str
) -> None:
    """Find, check and (when EXIF explains a swap) re-orient; see module docstring."""
    removed: set[int] = set()
    for image in dataset.images:
        path = find_image_file(image, images_dir)
        if path is None:
            report.warn(
                "image_missing",
                source,
                f"image file '{image.file_name}' not found in {images_dir}",
                image_id=image.id,
            )
            continue
        try:
            stored, orientation = stored_size_and_orientation(path)
        except ImageLoadError as exc:
            report.warn("image_unreadable", source, str(exc), image_id=image.id)
            continue
        image.path = str(path)
        displayed = (stored[1], stored[0]) if orientation >= 5 else stored
        record = (image.height, image.width)
        if record == displayed:
            continue
        anns = dataset.annotations_of(image.id)
        if orientation >= 5 and record == stored:
            for ann in anns:
                _reorient(ann, orientation, stored)
            image.height, image.width = displayed
            report.warn(
                "reoriented",
                source,
                f"size {record[1]}x{record[0]} is {path.name}'s stored frame; its EXIF orientation "
                f"{orientation} shows it as {displayed[1]}x{displayed[0]}, so {len(anns)} annotation(s) "
                "were turned into the displayed frame",
                image_id=image.id,
            )
            continue
        swapped = record == (displayed[1], displayed[0])
        report.error(
            "image_size_mismatch",
            source,
            f"record says {record[1]}x{record[0]} but {path} is {displayed[1]}x{displayed[0]}"
            f"{' (width and height swapped)' if swapped else ''}; image and annotations "
            f"{[a.id for a in anns]} not imported",
            image_id=image.id,
        )
        removed.add(image.id)
    if removed:
        dataset.images = [im for im in dataset.images if im.id not in removed]
        dataset.annotations = [a for a in dataset.annotations if a.image_id not in removed]


def _reorient(ann: Annotation, orientation: int, stored: tuple[int, int]) -> None:
    if ann.segmentation is not None:
        ann.segmentation = encode_rle(orient_array(decode_rle(ann.segmentation), orientation))
        ann.bbox = rle_bbox(ann.segmentation)
    elif ann.bbox is not None:
        ann.bbox = _box(ann.bbox, orientation, stored)
    if ann.crop_box is not None:
        ann.crop_box = _box(ann.crop_box, orientation, stored)
    if ann.point_coords:
        # Prompt points name pixel centres: move the centre, not the corner.
        pts = np.asarray(ann.point_coords, dtype=np.float64) + 0.5
        ann.point_coords = (orient_points(pts, orientation, stored) - 0.5).tolist()


def _box(box: list[float], orientation: int, stored: tuple[int, int]) -> list[float]:
    x, y, w, h = box
    pts = orient_points(np.array([[x, y], [x + w, y + h]]), orientation, stored)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
