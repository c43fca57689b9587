"""Masks from another tool as a study condition (the paper's RITM baseline, §7.1, §E), Qt-free.

The paper compares SAM with a baseline from another code base on the very same
prompts. The round trip:

1. `prompts_document(study)`: every item's image, size and prompt, for the other tool.
2. The other tool writes one mask per item, in one of the two forms that
   `read_external_masks` reads.
3. `add_condition(study, name, masks)`: a new condition of kind "file" with one
   blinded job per item that has a mask, saved atomically into study.json.

Frame (the same as the study's, see `samstudio.core.study.model`): the pixel grid of the
item image as stored in the study (`images/<id>.png`, `width` x `height`; x to the right,
y down, origin at the top-left pixel). A point (x, y) names the centre of the pixel in
column x, row y (integers name pixel centres, as SAM's predictor takes them). A box
[x0, y0, x1, y1] is COCO's pixel-edge XYXY: x0, y0 the first column and row inside it,
x1, y1 one past the last. Masks must be exactly the item image's size, (height, width):

- RLE: COCO's ``{"size": [height, width], "counts": str | [int, ...]}``, column-major;
- polygons: COCO rings ``[[x0, y0, x1, y1, ...], ...]`` in pixel-edge coordinates
  (pixel (column c, row r) is the square [c, c+1) x [r, r+1), so the centre of the
  prompt's pixel is at (x + 0.5, y + 0.5)), rasterised by pycocotools and unioned.

The masks file, either::

    {"format": "samstudio-study-masks", "version": 1,
     "masks": {item id: RLE | polygons, ...}}

or a COCO results list whose entries name their item::

    [{"item": item id, "segmentation": RLE | polygons, ...}, ...]

Items without a mask are allowed (they get no job of the new condition) and reported.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samstudio.core.formats.records import ImportReport
from samstudio.core.formats.validate import AnnotationContext, read_segmentation
from samstudio.core.masks import RLE, RLEError, compress_rle
from samstudio.core.study.model import (
    Condition,
    RatingJob,
    Study,
    StudyError,
    StudyItem,
    save_study,
)
from samstudio.core.study.sheets import load_ratings

PROMPTS_FORMAT = "samstudio-study-prompts"
MASKS_FORMAT = "samstudio-study-masks"
EXTERNAL_VERSION = 1
FRAME = (
    "pixel coordinates of the item image as stored in the study: x right, y down, origin "
    "at the top-left pixel; a point (x, y) is the centre of the pixel in column x, row y; "
    "a box [x0, y0, x1, y1] is pixel-edge XYXY (x1, y1 one past the last column and row); "
    "each mask must be the image's size (height x width), as COCO RLE or COCO polygons "
    "(pixel-edge coordinates: the point's pixel centre is at (x + 0.5, y + 0.5))"
)


def prompts_document(study: Study) -> dict[str, Any]:
    """What another tool needs to make masks for `study`'s items (see the module
    docstring for the frame)::

        {"format": "samstudio-study-prompts", "version": 1, "study": title, "frame": str,
         "items": [{"item": id, "image": path, "width": W, "height": H,
                    "point": [x, y] | null, "box": [x0, y0, x1, y1] | null}, ...]}

    `image` is absolute when the study has a folder, else relative to the study folder.
    """
    root = study.folder.resolve() if study.folder is not None else None
    items = []
    for it in study.items:
        h, w = it.size
        items.append(
            {
                "item": it.id,
                "image": str(root / it.image) if root is not None else it.image,
                "width": int(w),
                "height": int(h),
                "point": None if it.point is None else [float(v) for v in it.point],
                "box": None if it.box is None else [float(v) for v in it.box],
            }
        )
    return {
        "format": PROMPTS_FORMAT,
        "version": EXTERNAL_VERSION,
        "study": study.title,
        "frame": FRAME,
        "items": items,
    }


@dataclass(frozen=True)
class ExternalMasks:
    """The masks of a masks file: item id -> compressed RLE (str counts) of the item
    image's size, in the file's order; `missing`: the study's items without a mask, in
    study order; `warnings`: what was accepted but worth saying (a polygon clipped to
    the image, an empty mask), each naming the file and the item."""

    path: str
    masks: dict[str, RLE]
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Object(dict[str, Any]):
    """A JSON object that remembers which of its keys appeared more than once."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _load(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StudyError(f"{path}: no masks file here") from None
    except OSError as exc:
        raise StudyError(f"{path}: cannot read the masks file ({exc.strerror or exc})") from exc
    try:
        return json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_object)
    except UnicodeDecodeError as exc:
        raise StudyError(f"{path}: the masks file is not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise StudyError(
            f"{path}: the masks file is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}); truncated, or still being written?"
        ) from None
    except (RecursionError, ValueError) as exc:
        raise StudyError(f"{path}: the masks file is not usable JSON ({exc})") from None


def _entries(doc: Any, path: Path) -> list[tuple[str, Any]]:
    """(item id, segmentation) pairs of either form, duplicates refused."""
    if isinstance(doc, dict):
        if doc.get("format") != MASKS_FORMAT:
            raise StudyError(
                f"{path}: not a masks file: expected {{'format': {MASKS_FORMAT!r}, 'masks': "
                "{item id: RLE or polygons}} or a COCO results list of {'item': id, "
                "'segmentation': ...}"
            )
        version = doc.get("version", EXTERNAL_VERSION)
        if not isinstance(version, int) or version > EXTERNAL_VERSION:
            raise StudyError(
                f"{path}: masks format version {version!r} is not one this SAM Studio reads "
                f"(up to {EXTERNAL_VERSION})"
            )
        masks = doc.get("masks")
        if not isinstance(masks, dict):
            raise StudyError(f"{path}: 'masks' must map item ids to masks, got {masks!r:.60}")
        dup = getattr(masks, "duplicates", [])
        if dup:
            raise StudyError(f"{path}: item {dup[0]!r} has more than one mask; keep one")
        return list(masks.items())
    if not isinstance(doc, list):
        raise StudyError(f"{path}: a masks file is a JSON object or a COCO results list")
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for n, entry in enumerate(doc):
        if not isinstance(entry, dict) or "item" not in entry:
            hint = (
                " (it has an 'image_id'; name the study's item id)"
                if (isinstance(entry, dict) and "image_id" in entry)
                else ""
            )
            raise StudyError(f"{path}: entry {n} names no item: each needs 'item'{hint}")
        item = entry["item"]
        if not isinstance(item, str):
            raise StudyError(f"{path}: entry {n}: item {item!r} is not an item id (a string)")
        if "segmentation" not in entry:
            raise StudyError(f"{path}: item {item!r} (entry {n}) has no 'segmentation'")
        if item in seen:
            raise StudyError(
                f"{path}: item {item!r} has more than one mask (entry {n} again); keep one, "
                "e.g. the top-scoring"
            )
        seen.add(item)
        out.append((item, entry["segmentation"]))
    return out


def read_external_masks(path: str | Path, study: Study) -> ExternalMasks:
    """Read a masks file (module docstring) for `study`'s items.

    Raises StudyError naming the file (and the item, where there is one) for an
    unreadable or truncated file, an unknown item id, an item given twice, a mask whose
    size is not its image's, a malformed RLE or polygon list, or a file with no mask at
    all. Items without a mask are allowed and listed in `missing`.
    """
    where = Path(path)
    entries = _entries(_load(where), where)
    sizes = {it.id: it.size for it in study.items}
    masks: dict[str, RLE] = {}
    warnings: list[str] = []
    for item, seg in entries:
        if item not in sizes:
            raise StudyError(
                f"{where}: item {item!r} is not in study {study.title!r} (items "
                f"{_range(list(sizes))}); masks of another study?"
            )
        h, w = sizes[item]
        prefix = f"{where}: item {item!r}"
        if isinstance(seg, dict):  # checked here: the importer's messages speak of images
            try:
                rle = compress_rle(seg)
            except RLEError as exc:
                raise StudyError(f"{prefix}: malformed RLE ({exc})") from None
            if rle["size"] != [h, w]:
                swapped = " (height and width swapped?)" if rle["size"] == [w, h] else ""
                raise StudyError(
                    f"{prefix}: the mask is {rle['size'][0]} x {rle['size'][1]} (height x "
                    f"width) but the item image is {h} x {w}{swapped}; masks must be in the "
                    "image's size as stored in the study"
                )
            masks[item] = rle
            continue
        if not isinstance(seg, list):
            raise StudyError(f"{prefix}: a mask is an RLE or polygons, got {type(seg).__name__}")
        report = ImportReport()
        got = read_segmentation(seg, h, w, AnnotationContext(report, str(where)))
        bad = [i for i in report.issues if i.severity == "error" or i.code == "bad_polygon"]
        if bad or got is None:
            reason = "not a list of rings"
            if bad:
                reason = bad[0].message
            if bad and bad[0].code == "bad_polygon":
                reason = "each ring must be a flat list of at least 3 finite (x, y) pairs"
            raise StudyError(f"{prefix}: malformed polygons ({reason})")
        warnings += [f"{prefix}: {i.message}" for i in report.warnings]
        if got.rle is None:  # [] is COCO's empty segmentation
            warnings.append(f"{prefix}: no polygon, an empty mask")
            got_rle = compress_rle({"size": [h, w], "counts": [h * w]})
        else:
            got_rle = got.rle
        masks[item] = got_rle
    if not masks:
        raise StudyError(f"{where}: the masks file holds no mask")
    missing = [it.id for it in study.items if it.id not in masks]
    return ExternalMasks(str(where), masks, missing, warnings)


def _range(ids: list[str]) -> str:
    if not ids:
        return "none"
    return ", ".join(ids) if len(ids) <= 3 else f"{ids[0]} .. {ids[-1]}"


def rated_participants(study: Study) -> list[str]:
    """Participants who have rated at least one job of `study` (from ratings/*.json)."""
    return sorted({r.participant for r in load_ratings(study)})


def add_condition(
    study: Study,
    name: str,
    masks: Mapping[str, RLE] | ExternalMasks,
    source: str = "",
    *,
    allow_after_ratings: bool = False,
    seed: int | None = None,
) -> Study:
    """Add masks from another tool to `study` (loaded or saved, so it has a folder) as a
    new condition of kind "file" and save study.json atomically; returns the new study
    (the argument is left as it was).

    The condition gets the next free id c<N>; each item with a mask gets one job. New
    job ids continue after the highest existing number (j<M+1>, ...) and are handed out
    after shuffling the new jobs among themselves (seeded by `seed`, default the study's
    seed and the condition id), so their numbers do not follow item order. Participants
    who open the study later get orders of all jobs mixed; those who have already rated
    get the new jobs at the end of their orders (`RatingSheet`), so they would rate the
    new condition last, after all the others: refused unless `allow_after_ratings`.

    `masks`: item id -> RLE, or what `read_external_masks` read (then `source`
    defaults to its file). Raises StudyError for a study without a folder, an empty or
    taken name, no masks, masks of unknown items, malformed or of the wrong size, and
    ratings already made.
    """
    if isinstance(masks, ExternalMasks):
        source = source or masks.path
        masks = masks.masks
    if study.folder is None:
        raise StudyError("the study has no folder (load or save it first)")
    label = name.strip()
    if not label:
        raise StudyError("the new condition needs a name (shown in the analysis)")
    taken = next((c for c in study.conditions if c.name.casefold() == label.casefold()), None)
    if taken is not None:
        raise StudyError(
            f"study {study.title!r} already has a condition named {taken.name!r} ({taken.id}, "
            f"{taken.kind}); choose another name"
        )
    if not masks:
        raise StudyError("no masks to add")
    sizes = {it.id: it.size for it in study.items}
    checked: dict[str, RLE] = {}
    for item, rle in masks.items():
        if item not in sizes:
            raise StudyError(f"item {item!r} is not in study {study.title!r}")
        try:
            checked[item] = compress_rle(rle)
        except RLEError as exc:
            raise StudyError(f"item {item!r}: malformed RLE ({exc})") from None
        if checked[item]["size"] != list(sizes[item]):
            raise StudyError(
                f"item {item!r}: its mask is {checked[item]['size']} (height, width), its "
                f"image {list(sizes[item])}"
            )
    if not allow_after_ratings:
        raters = rated_participants(study)
        if raters:
            who = ", ".join(repr(p) for p in raters[:3]) + (" ..." if len(raters) > 3 else "")
            raise StudyError(
                f"{len(raters)} participant(s) have already rated study {study.title!r} "
                f"({who}). The jobs of {label!r} would come at the end of their orders, after "
                "every job of the other conditions, so they would rate it last (more "
                "practised, more tired, anchored by what they saw), which biases the "
                "comparison. Add the masks before anyone rates (e.g. to a copy of the study "
                "without its ratings), or allow it explicitly (--after-ratings) and say so "
                "when you report the results."
            )

    number = 1 + max((_number(r"c(\d+)", c.id) for c in study.conditions), default=0)
    cond_ids = {c.id for c in study.conditions}
    while f"c{number}" in cond_ids:
        number += 1
    condition = Condition(f"c{number}", label, "file", source)
    items = [it for it in study.items if it.id in checked]  # study order, then shuffled
    rng = np.random.default_rng(_seed(study, condition.id) if seed is None else seed)
    jobs = _new_jobs(study, [items[i] for i in rng.permutation(len(items))], condition, checked)
    new = Study(
        title=study.title,
        conditions=[*study.conditions, condition],
        items=list(study.items),
        jobs=[*study.jobs, *jobs],
        seed=study.seed,
        created=study.created,
        guidelines=study.guidelines,
        ratings_per_job=study.ratings_per_job,
        folder=study.folder,
    )
    save_study(new, study.folder)
    return new


def _number(pattern: str, ident: str) -> int:
    m = re.fullmatch(pattern, ident)
    return int(m.group(1)) if m else 0


def _seed(study: Study, condition_id: str) -> int:
    digest = hashlib.sha256(f"{study.seed}\0{condition_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _new_jobs(
    study: Study, items: list[StudyItem], condition: Condition, masks: Mapping[str, RLE]
) -> list[RatingJob]:
    """One job per item (in the given order) with ids after the highest existing one."""
    taken = {j.id for j in study.jobs}
    n = max((_number(r"j(\d+)", j.id) for j in study.jobs), default=0)
    out = []
    for it in items:
        n += 1
        while f"j{n:04d}" in taken:
            n += 1
        out.append(RatingJob(f"j{n:04d}", it.id, condition.id, dict(masks[it.id])))
    return out
