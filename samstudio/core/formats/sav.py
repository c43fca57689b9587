"""SA-V masklet JSON (SAM 2's video annotations) read as per-frame instance masks.

An SA-V file holds ``masklet[frame][object]`` compressed RLEs for the annotated frames of
one video (``video_height`` x ``video_width``), plus per-object metadata such as
``masklet_id`` and ``masklet_stability_score[frame][object]``. It is imported as a
dataset with one image per annotated frame (``file_name`` ``<video_id>/<frame:05d>``, no
image files exist) and one annotation per visible object, so automatic-pipeline output
can be compared and rated like AMG output. Objects absent from a frame (an RLE with no
pixels) are reported as one warning per frame, not imported.
"""

from __future__ import annotations

import os
from typing import Any

from samstudio.core.formats.records import (
    Annotation,
    Dataset,
    FormatError,
    ImageRecord,
    ImportReport,
)
from samstudio.core.formats.validate import (
    AnnotationContext,
    finite_number,
    int_id,
    load_json,
    read_segmentation,
)
from samstudio.core.masks import rle_area, rle_bbox


def import_sav(path: str | os.PathLike[str]) -> tuple[Dataset, ImportReport]:
    """Read an SA-V ``*_auto.json`` / ``*_manual.json`` file."""
    return read_sav(load_json(path), str(path))


def read_sav(doc: Any, source: str) -> tuple[Dataset, ImportReport]:
    if not isinstance(doc, dict) or not isinstance(doc.get("masklet"), list):
        raise FormatError(source, "not an SA-V file (a JSON object with a 'masklet' list)")
    h, w = int_id(doc.get("video_height")), int_id(doc.get("video_width"))
    if h is None or w is None or h <= 0 or w <= 0 or h * w > 100_000_000:
        raise FormatError(
            source,
            f"video_height/video_width {doc.get('video_height')!r}/{doc.get('video_width')!r} are not a usable size",
        )
    video = str(doc.get("video_id", "video"))
    raw_ids = doc.get("masklet_id")
    ids: list[Any] = raw_ids if isinstance(raw_ids, list) else []
    raw_stability = doc.get("masklet_stability_score")
    stability: list[Any] = raw_stability if isinstance(raw_stability, list) else []
    ds = Dataset(info={k: v for k, v in doc.items() if not k.startswith("masklet")})
    report = ImportReport()
    for frame, objects in enumerate(doc["masklet"]):
        image = ImageRecord(frame + 1, f"{video}/{frame:05d}", w, h, {"frame_index": frame})
        ds.images.append(image)
        if not isinstance(objects, list):
            report.error(
                "bad_annotation", source, f"frame {frame} is not a list of RLEs", image_id=image.id
            )
            continue
        absent = []
        for k, seg in enumerate(objects):
            object_id = int_id(ids[k]) if k < len(ids) else k
            ctx = AnnotationContext(report, source, f"object {object_id}", image.id)
            segm = read_segmentation(seg, h, w, ctx)
            if segm is None or segm.rle is None:
                continue
            if rle_area(segm.rle) == 0:
                absent.append(object_id)
                continue
            score = None
            if (
                frame < len(stability)
                and isinstance(stability[frame], list)
                and k < len(stability[frame])
            ):
                score = finite_number(stability[frame][k])
            ds.annotations.append(
                Annotation(
                    id=ds.next_annotation_id(),
                    image_id=image.id,
                    category_id=None,
                    segmentation=segm.rle,
                    bbox=rle_bbox(segm.rle),
                    stability_score=score,
                    extra={"masklet_id": object_id},
                )
            )
        if absent:
            report.warn(
                "empty_mask",
                source,
                f"objects {absent} are not visible in frame {frame}; not imported",
                image_id=image.id,
            )
    return ds, report
