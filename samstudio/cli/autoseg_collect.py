"""The outputs of `samstudio auto-segment` in one --out folder: found, numbered, merged.

Every SA-1B JSON that this tool wrote into the folder (whichever run wrote it) is an
*output*. Their ids are numbered over the whole folder, so that the folder is one dataset
(``samstudio convert DIR`` reads it without renumbering) and the ids do not depend on
the order of the inputs or on which images an earlier run already did: images 1..N in
natural order of their paths (img_2 before img_10; see `natural_order`), annotations
1..M in that order of images, then in each file's order. An output whose ids differ
from that numbering is rewritten (atomically) with only its ids changed; adding an image
renumbers those after it. The COCO instances and COCO results files of a run are merged
from the outputs made with its model and parameters and use the same ids.
Only the standard library is imported at module level.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "samstudio_auto_segment"
"""Key, in an output's image object, of what the output records about how it was made."""


@dataclass
class Output:
    """One SA-1B JSON of ours: where it is, its marker, the absolute POSIX path of its
    image (from the marker's ``source``, relative to the folder) and its ids."""

    path: Path
    mark: dict[str, Any]
    image: str
    image_id: Any
    annotation_ids: list[Any]


def read_output(path: Path) -> dict[str, Any] | None:
    """The parsed SA-1B document of an output of ours; None for any other file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("annotations"), list):
        return None
    image = doc.get("image")
    if not isinstance(image, dict):
        return None
    mark = image.get(MARKER)
    if not isinstance(mark, dict) or mark.get("tool") != "samstudio auto-segment":
        return None
    return doc


def image_path(out: Path, source: Any) -> str:
    """Absolute POSIX path of an image recorded as `source` (relative to `out`)."""
    text = source if isinstance(source, str) else ""
    return Path(os.path.normpath(os.path.join(os.path.abspath(out), text))).as_posix()


def collect_outputs(out: Path) -> list[Output]:
    """Every output of ours in `out`, in natural order of their images' paths (then of
    their file names, for two outputs of one image)."""
    from samstudio.core.natural_order import natural_key

    found = []
    for path in sorted(out.glob("*.json")):
        doc = read_output(path) if path.is_file() else None
        if doc is None:
            continue
        mark = doc["image"][MARKER]
        ids = [a.get("id") if isinstance(a, dict) else None for a in doc["annotations"]]
        found.append(
            Output(
                path, mark, image_path(out, mark.get("source")), doc["image"].get("image_id"), ids
            )
        )
    found.sort(key=lambda o: (natural_key(o.image), o.path.name))
    return found


def number_outputs(outputs: list[Output]) -> list[str]:
    """Give `outputs` (as `collect_outputs` orders them) the folder's ids; rewrite those
    whose ids differ. Returns a message for each output that could not be rewritten."""
    from samstudio.core.atomic import atomic_write_json

    problems = []
    next_annotation = 1
    for image_id, output in enumerate(outputs, start=1):
        wanted = list(range(next_annotation, next_annotation + len(output.annotation_ids)))
        next_annotation += len(wanted)
        if output.image_id == image_id and output.annotation_ids == wanted:
            continue
        doc = read_output(output.path)
        if doc is None or len(doc["annotations"]) != len(wanted):
            problems.append(f"{output.path} changed while it was being numbered; left as it is")
            continue
        doc["image"]["image_id"] = image_id
        for annotation, number in zip(doc["annotations"], wanted, strict=True):
            if isinstance(annotation, dict):
                annotation["id"] = number
        try:
            atomic_write_json(output.path, doc)
        except OSError as exc:
            problems.append(f"cannot renumber {output.path}: {exc.strerror or exc}")
            continue
        output.image_id, output.annotation_ids = image_id, wanted
    return problems


def number_folder(out: Path) -> list[Output]:
    """`collect_outputs` of `out`, numbered (`number_outputs`; problems printed)."""
    import sys

    outputs = collect_outputs(out) if out.is_dir() else []
    for problem in number_outputs(outputs):
        print(f"warning: {problem}", file=sys.stderr)
    return outputs


def merge_outputs(outputs: list[Output]) -> tuple[Any, dict[int, str], list[str]]:
    """One dataset of `outputs` with their ids (see `number_outputs`); file_name: the
    image's path relative to the folder that holds all their images; every annotation's
    ``score`` is its predicted IoU (as SAM's automatic mask generator exports).
    Returns the dataset, each image id's absolute path and a message per unusable output."""
    from samstudio.core.formats.records import Dataset, FormatError
    from samstudio.core.formats.sa1b import read_sa1b

    merged = Dataset()
    paths: dict[int, str] = {}
    problems = []
    try:
        root = os.path.commonpath([os.path.dirname(o.image) for o in outputs]) if outputs else ""
    except ValueError:  # images on several drives (Windows): absolute names
        root = ""
    for output in outputs:
        doc = read_output(output.path)
        if doc is None:
            problems.append(f"{output.path} is no longer readable; left out")
            continue
        try:
            part, _ = read_sa1b(doc, str(output.path))
        except (FormatError, ValueError) as exc:
            problems.append(f"{output.path}: {exc}; left out")
            continue
        for record in part.images:
            relative = os.path.relpath(output.image, root) if root else output.image
            record.file_name = Path(relative).as_posix()
            record.extra.pop(MARKER, None)
            merged.images.append(record)
            paths[record.id] = output.image
        for ann in part.annotations:
            if ann.score is None:
                ann.score = ann.predicted_iou
            merged.annotations.append(ann)
    return merged, paths, problems


def same_marker(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether two markers describe the same image content, model and parameters: all
    fields equal but the modification time (the same bytes touched are the same image)."""

    def content(mark: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in mark.items() if k != "source_mtime_ns"}

    return content(old) == content(new)


def same_making(mark: dict[str, Any], model_sha256: str | None, params: dict[str, Any]) -> bool:
    """Whether an output was made with this model (by content) and these parameters."""
    return model_sha256 is not None and (mark.get("model_sha256"), mark.get("params")) == (
        model_sha256,
        params,
    )
