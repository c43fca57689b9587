"""A rating study and its files: conditions, items, blinded jobs, participants' sheets.

Folder layout::

    STUDY/study.json          the study (below), written once by `save_study`
    STUDY/images/<item>.png   each item's image as shown, long side <= 2000 px
    STUDY/ratings/<slug>.json  one participant's sheet (`RatingSheet`), rewritten
                               atomically after every rating

`study.json`::

    {"format": "samstudio-study", "version": 1 (2 with a queue), "title": str, "created": ISO 8601,
     "seed": int, "guidelines": str, "ratings_per_job": int (absent: 0),
     "conditions": [{"id": "c1", "name": "samstudio_demo_v1", "kind": "model",
                     "source": "..."}, ...],
     "items": [{"id": "i0001", "image": "images/i0001.png", "source_image": str,
                "source_annotation": int | str | null, "size": [H, W],
                "prompt": {"point": [x, y]} | {"box": [x0, y0, x1, y1]},
                "dataset": str (absent: "")}, ...],
     "jobs": [{"id": "j0001", "item": "i0001", "condition": "c1",
               "mask": {"size": [H, W], "counts": str}}, ...]}

Condition kinds: "model" (the top-ranked of the model's candidates, SAM's default
output), "single-output" (the model's single-mask output, the paper's ablation),
"ground-truth" (the dataset's own mask) and "file" (masks from a predictions file).
Points and boxes are in the item image's pixel frame: a point (x, y) is a pixel centre,
a box pixel-edge XYXY (x1, y1 one past the last pixel, `mask_to_box`); masks are
COCO compressed RLE of that image. Job ids are assigned after shuffling, so neither
their order nor their numbers tell the condition. An item's "dataset" names the dataset
its mask was sampled from (the paper rates 7 and reports each one); it is written only
when not empty, and an older SAM Studio ignores it, so the format version stays.

The sheet of a participant::

    {"format": "samstudio-ratings", "version": 1, "participant": str,
     "order": [job ids], "ratings": {job id: {"rating": 1..10, "seconds": float,
     "time": ISO 8601}}}

"order" is the participant's own permutation of every job (`participant_order`); the
keys of "ratings" are in the order the participant first rated the jobs (a changed
rating keeps its place).

`ratings_per_job` K: 0 (the default) means every participant rates every job. K >= 1
is the paper's queue (§E): participants rating the same study folder (a shared network
folder, say) draw the jobs that still need ratings, and a job leaves the queue once K
participants have rated it. A participant then sees the jobs they rated (in the order
they rated them) followed by those still available to them, in their own order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from samstudio.core.atomic import atomic_write_json
from samstudio.core.masks import RLE, decode_rle

FORMAT = "samstudio-study"
RATINGS_FORMAT = "samstudio-ratings"
VERSION = 2  # the newest study format this code reads and writes
# version 1 has no queue; a study with `ratings_per_job` >= 1 is written as version 2, so
# that an older SAM Studio refuses it rather than letting every participant rate every job
QUEUE_VERSION = 2
RATINGS_VERSION = 1
MIN_RATING, MAX_RATING = 1, 10
CONDITION_KINDS = ("model", "single-output", "ground-truth", "file")

# the paper's rating scale (§E), shown to participants
GUIDELINES = (
    "Rate the overall quality of the mask from 1 to 10. Judge three things: does the "
    "mask correspond to a valid object? Does it have a clean boundary? Does it "
    "correspond to the input (the blue point must be on the mask; a box must fit the "
    "object)?\n"
    "1: the mask corresponds to no object at all.\n"
    "2-4: huge errors, such as large parts of other objects or large areas of "
    "nonsensical boundary.\n"
    "5-6: mostly sensible, but significant semantic or boundary errors.\n"
    "7-9: only minor boundary errors (the object is identifiable; errors are small "
    "and rare).\n"
    "10: no visible errors.\n"
    "Pixelation of a small mask is not an error when the mask follows the object's "
    "edges."
)


class StudyError(ValueError):
    """A study or ratings file is missing, unreadable or malformed; the message names
    the file and the problem."""


@dataclass(frozen=True)
class Condition:
    """What made a job's mask. `name` and `kind` are hidden from participants."""

    id: str
    name: str
    kind: str
    source: str = ""


@dataclass(frozen=True)
class StudyItem:
    """One input to rate masks for: an image and a prompt (a point or a box).
    `image` is relative to the study folder; size is (H, W) of that image;
    point (x, y) (a pixel centre) or box (x0, y0, x1, y1) (pixel edges) in its pixel frame.
    `dataset` names the dataset the item comes from ("" when the study has no names)."""

    id: str
    image: str
    size: tuple[int, int]
    point: tuple[float, float] | None = None
    box: tuple[float, float, float, float] | None = None
    source_image: str = ""
    source_annotation: int | str | None = None
    dataset: str = ""


@dataclass(frozen=True)
class RatingJob:
    """Rating one mask for one item: what a participant sees (item + mask), and
    what they must not (the condition)."""

    id: str
    item: str
    condition: str
    mask: RLE

    def decode(self) -> np.ndarray:
        """The mask, (H, W) bool in the item image's frame."""
        return decode_rle(self.mask)


@dataclass
class Study:
    """A whole study. `folder` is where it lives (set by load/save)."""

    title: str
    conditions: list[Condition]
    items: list[StudyItem]
    jobs: list[RatingJob]
    seed: int = 0
    created: str = ""
    guidelines: str = GUIDELINES
    folder: Path | None = None
    ratings_per_job: int = 0  # 0: everyone rates every job; K >= 1: K ratings per job
    _by_id: dict[str, RatingJob] = field(default_factory=dict, repr=False)

    def job(self, job_id: str) -> RatingJob:
        if not self._by_id:
            self._by_id = {j.id: j for j in self.jobs}
        try:
            return self._by_id[job_id]
        except KeyError:
            raise StudyError(f"no job {job_id!r} in study {self.title!r}") from None

    def item(self, item_id: str) -> StudyItem:
        for it in self.items:
            if it.id == item_id:
                return it
        raise StudyError(f"no item {item_id!r} in study {self.title!r}")

    def condition(self, condition_id: str) -> Condition:
        for c in self.conditions:
            if c.id == condition_id:
                return c
        raise StudyError(f"no condition {condition_id!r} in study {self.title!r}")

    def datasets(self) -> list[str]:
        """The items' dataset names, each once, in the order of their first item."""
        return list(dict.fromkeys(it.dataset for it in self.items))

    def image_path(self, item: StudyItem) -> Path:
        if self.folder is None:
            raise StudyError("the study has no folder yet (save it first)")
        return self.folder / item.image


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def study_to_json(study: Study) -> dict[str, Any]:
    def item_json(it: StudyItem) -> dict[str, Any]:
        prompt: dict[str, Any] = (
            {"point": list(it.point)} if it.point is not None else {"box": list(it.box or ())}
        )
        out = {
            "id": it.id,
            "image": it.image,
            "source_image": it.source_image,
            "source_annotation": it.source_annotation,
            "size": list(it.size),
            "prompt": prompt,
        }
        return {**out, "dataset": it.dataset} if it.dataset else out

    return {
        "format": FORMAT,
        "version": QUEUE_VERSION if study.ratings_per_job else 1,
        "title": study.title,
        "created": study.created or now_iso(),
        "seed": study.seed,
        "guidelines": study.guidelines,
        "ratings_per_job": study.ratings_per_job,
        "conditions": [
            {"id": c.id, "name": c.name, "kind": c.kind, "source": c.source}
            for c in study.conditions
        ],
        "items": [item_json(it) for it in study.items],
        "jobs": [
            {"id": j.id, "item": j.item, "condition": j.condition, "mask": j.mask}
            for j in study.jobs
        ],
    }


def save_study(study: Study, folder: str | Path) -> Path:
    """Write `folder/study.json` atomically (the images are written by the builder)
    and create `folder/ratings/`. Returns the path of study.json."""
    root = Path(folder)
    (root / "ratings").mkdir(parents=True, exist_ok=True)
    validate_study(study, str(root / "study.json"))
    path = atomic_write_json(root / "study.json", study_to_json(study))
    study.folder = root
    return Path(path)


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyError(f"{path}: no {what} here") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: cannot read the {what} ({exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StudyError(
            f"{path}: the {what} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); truncated or edited by hand?"
        ) from exc


def load_study(folder: str | Path) -> Study:
    """Read `folder/study.json` (or a path to study.json itself). Raises StudyError
    naming the file on a missing, truncated or malformed study."""
    root = Path(folder)
    if root.name == "study.json" and root.is_file():
        root = root.parent
    path = root / "study.json"
    doc = _read_json(path, "study file")
    try:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise StudyError(f"{path}: not a SAM Studio study file (format {FORMAT!r})")
        if int(doc.get("version", 0)) > VERSION:
            raise StudyError(
                f"{path}: study format version {doc['version']} is newer than this SAM "
                f"Studio understands ({VERSION}); update SAM Studio"
            )
        conditions = [
            Condition(str(c["id"]), str(c["name"]), str(c["kind"]), str(c.get("source", "")))
            for c in doc["conditions"]
        ]
        items = []
        for it in doc["items"]:
            prompt = it["prompt"]
            point = tuple(float(v) for v in prompt["point"]) if "point" in prompt else None
            box = tuple(float(v) for v in prompt["box"]) if "box" in prompt else None
            items.append(
                StudyItem(
                    id=str(it["id"]),
                    image=str(it["image"]),
                    size=(int(it["size"][0]), int(it["size"][1])),
                    point=point,  # type: ignore[arg-type]
                    box=box,  # type: ignore[arg-type]
                    source_image=str(it.get("source_image", "")),
                    source_annotation=it.get("source_annotation"),
                    dataset=it.get("dataset") or "",  # checked by validate_study
                )
            )
        jobs = [
            RatingJob(str(j["id"]), str(j["item"]), str(j["condition"]), dict(j["mask"]))
            for j in doc["jobs"]
        ]
        study = Study(
            title=str(doc.get("title", root.name)),
            conditions=conditions,
            items=items,
            jobs=jobs,
            seed=int(doc.get("seed", 0)),
            created=str(doc.get("created", "")),
            guidelines=str(doc.get("guidelines", GUIDELINES)),
            folder=root,
            ratings_per_job=doc.get("ratings_per_job", 0),  # checked by validate_study
        )
        validate_study(study, str(path))  # inside: a mask size of ["a", 2] is malformed too
    except StudyError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise StudyError(f"{path}: malformed study file ({type(exc).__name__}: {exc})") from exc
    return study


def validate_study(study: Study, where: str) -> None:
    """Raise StudyError (naming `where`) when ids clash or references dangle."""

    def unique(ids: Iterable[str], what: str) -> set[str]:
        seen: set[str] = set()
        for i in ids:
            if i in seen:
                raise StudyError(f"{where}: {what} id {i!r} appears twice")
            seen.add(i)
        return seen

    k = study.ratings_per_job
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise StudyError(
            f"{where}: 'ratings_per_job' is a whole number >= 0 (0: every participant rates "
            f"every job), got {k!r}"
        )
    cond_ids = unique((c.id for c in study.conditions), "condition")
    item_ids = unique((i.id for i in study.items), "item")
    unique((j.id for j in study.jobs), "job")
    for c in study.conditions:
        if c.kind not in CONDITION_KINDS:
            raise StudyError(f"{where}: condition {c.id!r} has unknown kind {c.kind!r}")
    for it in study.items:
        if (it.point is None) == (it.box is None):
            raise StudyError(f"{where}: item {it.id!r} needs exactly one of a point or a box")
        if not isinstance(it.dataset, str):
            raise StudyError(f"{where}: item {it.id!r}: its dataset is a name, got {it.dataset!r}")
    sizes = {it.id: it.size for it in study.items}
    for j in study.jobs:
        if j.item not in item_ids:
            raise StudyError(f"{where}: job {j.id!r} refers to unknown item {j.item!r}")
        if j.condition not in cond_ids:
            raise StudyError(f"{where}: job {j.id!r} refers to unknown condition {j.condition!r}")
        size = j.mask.get("size") if isinstance(j.mask, dict) else None
        if size is None or tuple(int(v) for v in size) != sizes[j.item]:
            raise StudyError(
                f"{where}: job {j.id!r}: its mask's size {size} is not its image's "
                f"{list(sizes[j.item])}"
            )
