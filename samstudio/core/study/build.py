"""Building a rating study (paper §7.1, §E) from ground-truth masks and models, Qt-free.

The recipe of §E: sample `n_items` ground-truth masks uniformly at random (seeded) among
all eligible ones (per dataset when the sources span several, see below), i.e. not crowd regions and at least `min_area` (24^2) pixels *after*
the image is rescaled to a long side of at most `max_side` (2000); prompt every model with
the same input, the mask's centre point (the maximum of its distance transform, as
§D.1's first click) or its box; submit each model's mask and, for comparison, the
ground-truth mask itself. The conditions:

- "model": for a point, the top-ranked of the model's 3 candidates (SAM's default
  output); for a box, the single-mask output (SAM's default for a box);
- "single-output" (point prompts only, the paper's ablation): the model's single-mask
  output for the same point (`multimask=False`);
- "ground-truth": the dataset's mask, rescaled like the image.

Datasets: each source names its dataset (`StudySource.dataset`), and each item keeps the
name of its source's. The paper rates 1000 masks of each of 7 datasets and reports every
figure per dataset; likewise, when the sources span several datasets `n_items` masks are
sampled from *each* of them (independently, uniformly among that dataset's eligible
masks), so the study holds n_items x datasets items. With one dataset (every source
named alike, "" included) the sampling is exactly the single-dataset one.

Frames: items, prompts and masks are in the pixel frame of the image as shown
(`images/<id>.png`, long side <= `max_side`). Images are rescaled with area averaging
(OpenCV INTER_AREA) unless the source already returns them at that size (JPEGs are
decoded at reduced scale by `load_image`); masks are rescaled by nearest neighbour,
sampling each output pixel's centre (`rescale_mask`). A point is (x, y) of a pixel
centre; a box is XYXY in pixel-edge coordinates (x1, y1 exclusive, `mask_to_box`).

Files: each source image that holds sampled masks is written once, atomically, as
`images/<id>.png` where <id> is the id of the first item on it (items on the same source
image share the file). `study.json` is written last, by `save_study`: a run stopped
early (the caller stops iterating `build_study`) leaves images but no study.json, so
it is never taken for a finished study.

Memory: sources are descriptions that read their image and masks on demand; the
builder reads each used image once, encodes it once per model and lets it go, so only
one image is held at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from samstudio.core.atomic import atomic_write_bytes
from samstudio.core.masks import encode_rle, mask_to_box
from samstudio.core.point_eval import farthest_from_boundary
from samstudio.core.study.model import (
    Condition,
    RatingJob,
    Study,
    StudyError,
    StudyItem,
    now_iso,
    save_study,
)
from samstudio.core.study.sources import StudySource
from samstudio.inference.types import ImageEmbedding, Prompts, Segmenter

PROMPT_KINDS = ("point", "box")
MIN_MAX_SIDE = 64
GROUND_TRUTH_NAME = "ground truth"
SINGLE_OUTPUT_SUFFIX = " single-output"


@dataclass(frozen=True)
class StudyProgress:
    """What `build_study` has done. stage: "scanning" (done/total source images looked
    at for eligible masks; total 0 when the sources do not say how many there are),
    "predicting" (done/total sampled images written and predicted), "done" (`study` is the saved study, `message` its study.json)."""

    stage: str
    done: int
    total: int
    message: str = ""
    study: Study | None = None


# --- rescaling ----------------------------------------------------------------------


def scaled_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(H, W) after rescaling so that the long side is at most `max_side` (never up),
    rounded as `load_image(..., max_side)` rounds."""
    h, w = size
    if max(h, w) <= max_side:
        return h, w
    scale = max_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _nearest(n_src: int, n_dst: int) -> np.ndarray:
    """Source index of each of `n_dst` output pixels: the pixel under its centre."""
    idx = ((np.arange(n_dst) + 0.5) * (n_src / n_dst)).astype(np.int64)
    return np.minimum(idx, n_src - 1)


def rescale_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool -> `size` (H', W') bool by nearest neighbour (pixel centres)."""
    if mask.shape == size:
        return np.asarray(mask, bool)
    rows, cols = _nearest(mask.shape[0], size[0]), _nearest(mask.shape[1], size[1])
    return np.asarray(mask, bool)[np.ix_(rows, cols)]


def rescale_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> `size` (H', W', 3) uint8 by area averaging (no-op when equal)."""
    if image.shape[:2] == size:
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


# --- building -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Pick:
    """A sampled mask: source index, mask index in it, item id."""

    source: int
    mask: int
    item: str


def study_conditions(
    model_names: Sequence[str],
    model_sources: Sequence[str],
    single_output: bool,
    ground_truth: bool,
) -> list[Condition]:
    """Conditions c1.. in a fixed order: each model, followed by its single-output
    ablation when asked, then the ground truth."""
    specs: list[tuple[str, str, str]] = []
    for name, src in zip(model_names, model_sources):
        specs.append((name, "model", src))
        if single_output:
            specs.append((name + SINGLE_OUTPUT_SUFFIX, "single-output", src))
    if ground_truth:
        specs.append((GROUND_TRUTH_NAME, "ground-truth", ""))
    return [Condition(f"c{i}", n, k, s) for i, (n, k, s) in enumerate(specs, 1)]


def build_study(
    sources: Iterable[StudySource],
    models: Sequence[tuple[str, Segmenter]],
    out_dir: str | Path,
    *,
    n_items: int = 100,
    prompt: str = "point",
    single_output: bool = False,
    ground_truth: bool = True,
    min_area: int = 576,
    max_side: int = 2000,
    seed: int = 0,
    title: str = "",
    ratings_per_job: int = 0,
) -> Iterator[StudyProgress]:
    """Build a study in `out_dir` (see the module docstring); iterate to run it.

    models: (condition name, segmenter) pairs, names unique. n_items: masks to sample,
    from each dataset when the sources span several (`StudySource.dataset`; see the
    module docstring). ratings_per_job: 0 for
    every participant to rate every job, K >= 1 for a shared queue in which a job is
    rated by K participants (`Study.ratings_per_job`). Parameters are checked,
    and an `out_dir` that already holds a study.json is refused, when this is called
    (ValueError / StudyError), before anything is read or written. Iterating yields a
    `StudyProgress` after each source image scanned and each sampled image predicted,
    and a last one with stage "done" and the saved study. Raises StudyError when fewer
    than `n_items` masks are eligible (in a dataset, naming it), or a source cannot be
    read (naming it).
    """
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 1:
        raise ValueError(f"a study needs at least 1 item, got n_items={n_items!r}")
    if prompt not in PROMPT_KINDS:
        raise ValueError(f"prompt must be 'point' or 'box', got {prompt!r}")
    k = ratings_per_job
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"ratings_per_job is a whole number >= 0, got {k!r}")
    if min_area < 0:
        raise ValueError(f"min_area is a number of pixels >= 0, got {min_area}")
    if max_side < MIN_MAX_SIDE:
        raise ValueError(f"max_side must be at least {MIN_MAX_SIDE} pixels, got {max_side}")
    if single_output and prompt != "point":
        raise ValueError("the single-output condition is the ablation for point prompts only")
    names = [str(n) for n, _ in models]
    if any(not n.strip() for n in names):
        raise ValueError("every model needs a non-empty condition name")
    if len(set(names)) != len(names):
        raise ValueError(f"model condition names must be unique, got {names}")
    if not models and not ground_truth:
        raise ValueError("a study needs at least one condition: a model or the ground truth")
    root = Path(out_dir)
    check_new_study_folder(root)
    conditions = study_conditions(
        names,
        [seg.info.source or seg.info.model_id for _, seg in models],
        single_output,
        ground_truth,
    )
    return _build(
        sources,
        list(models),
        root,
        conditions,
        n_items=n_items,
        prompt=prompt,
        min_area=min_area,
        max_side=max_side,
        seed=seed,
        title=title or f"Mask quality ({prompt} prompts)",
        ratings_per_job=ratings_per_job,
    )


def check_new_study_folder(root: str | Path) -> None:
    """Raise StudyError when `root` is a file or already holds a study.json."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise StudyError(f"{root} is a file, not a folder for a study")
    if (root / "study.json").exists():
        raise StudyError(
            f"{root} already holds a study (study.json); choose a new folder, or move that "
            "study (and its ratings) away first"
        )


def eligible_masks(source: StudySource, min_area: int, max_side: int) -> list[int]:
    """Indices of `source.masks` that may be sampled: not crowd, non-empty, and with at
    least `min_area` pixels after rescaling to `max_side`."""
    size = scaled_size(source.size, max_side)
    out = []
    for k, m in enumerate(source.masks):
        if m.crowd or m.area <= 0:
            continue
        area = m.area if size == source.size else int(rescale_mask(source.read_mask(k), size).sum())
        if area >= max(min_area, 1):
            out.append(k)
    return out


def _build(
    sources: Iterable[StudySource],
    models: list[tuple[str, Segmenter]],
    root: Path,
    conditions: list[Condition],
    *,
    n_items: int,
    prompt: str,
    min_area: int,
    max_side: int,
    seed: int,
    title: str,
    ratings_per_job: int = 0,
) -> Iterator[StudyProgress]:
    total = len(sources) if isinstance(sources, Sized) else 0  # 0: not known
    kept: list[StudySource] = []  # the sources with eligible masks
    eligible: list[tuple[int, int]] = []  # (index in kept, mask index)
    for n, source in enumerate(sources, 1):
        ks = eligible_masks(source, min_area, max_side)
        if ks:
            eligible += [(len(kept), k) for k in ks]
            kept.append(source)
        yield StudyProgress("scanning", n, total, source.name)
    rng = np.random.default_rng(seed)
    chosen = sorted(_sample(eligible, [s.dataset for s in kept], n_items, rng, min_area, max_side))
    picks = [_Pick(s, k, f"i{n:04d}") for n, (s, k) in enumerate(chosen, 1)]
    by_source: dict[int, list[_Pick]] = {}
    for p in picks:
        by_source.setdefault(p.source, []).append(p)

    (root / "images").mkdir(parents=True, exist_ok=True)
    items: list[StudyItem] = []
    masks: list[tuple[str, str, dict[str, Any]]] = []  # (item, condition, RLE)
    for done, (s, group) in enumerate(by_source.items(), 1):
        source = kept[s]
        new_items, new_masks = _predict_source(
            source, group, models, conditions, root, prompt, max_side
        )
        items += new_items
        masks += new_masks
        yield StudyProgress("predicting", done, len(by_source), source.name)

    order = rng.permutation(len(masks))
    jobs = [
        RatingJob(f"j{n:04d}", masks[i][0], masks[i][1], masks[i][2])
        for n, i in enumerate(order, 1)
    ]
    study = Study(
        title,
        conditions,
        items,
        jobs,
        seed=seed,
        created=now_iso(),
        ratings_per_job=ratings_per_job,
    )
    check_new_study_folder(root)  # another run may have finished meanwhile
    path = save_study(study, root)
    yield StudyProgress("done", len(by_source), len(by_source), str(path), study)


def _sample(
    eligible: list[tuple[int, int]],
    datasets: list[str],
    n_items: int,
    rng: np.random.Generator,
    min_area: int,
    max_side: int,
) -> list[tuple[int, int]]:
    """`n_items` of the eligible (source, mask) pairs, drawn without replacement with
    `rng`; `n_items` of each dataset (`datasets[source]`, in the order first seen) when
    there are several. Raises StudyError when a dataset has too few."""
    groups: dict[str, list[tuple[int, int]]] = {}
    for pair in eligible:
        groups.setdefault(datasets[pair[0]], []).append(pair)
    if not groups:
        groups[""] = []
    chosen: list[tuple[int, int]] = []
    for name, pairs in groups.items():
        if len(pairs) < n_items:
            where = f" in dataset {name!r}" if len(groups) > 1 else ""
            per = " per dataset" if len(groups) > 1 else ""
            raise StudyError(
                f"only {len(pairs)} mask(s) are eligible{where} (not crowd, at least "
                f"{min_area} px after rescaling to {max_side} px), fewer than the {n_items} "
                f"items asked for{per}"
            )
        chosen += [pairs[i] for i in rng.choice(len(pairs), n_items, replace=False)]
    return chosen


def _predict_source(
    source: StudySource,
    picks: list[_Pick],
    models: list[tuple[str, Segmenter]],
    conditions: list[Condition],
    root: Path,
    prompt: str,
    max_side: int,
) -> tuple[list[StudyItem], list[tuple[str, str, dict[str, Any]]]]:
    """Write the source's image once, then one mask per (pick, condition)."""
    size = scaled_size(source.size, max_side)
    image = np.asarray(source.read_image(max_side))
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise StudyError(f"{source.name}: read as {image.shape} {image.dtype}, not (H, W, 3) uint8")
    if image.shape[:2] not in (size, source.size):
        raise StudyError(
            f"{source.name}: the image is {image.shape[1]}x{image.shape[0]} but its masks are "
            f"{source.size[1]}x{source.size[0]}"
        )
    image = rescale_image(image, size)
    rel = f"images/{picks[0].item}.png"
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise StudyError(f"{source.name}: cannot encode the image as PNG")
    atomic_write_bytes(root / rel, png.tobytes())

    gts = [rescale_mask(source.read_mask(p.mask), size) for p in picks]
    items = []
    for p, gt in zip(picks, gts):
        point: tuple[float, float] | None = None
        box: tuple[float, float, float, float] | None = None
        if prompt == "point":
            x, y = farthest_from_boundary(gt)
            point = (float(x), float(y))
        else:
            x0, y0, x1, y1 = mask_to_box(gt, "xyxy")
            box = (float(x0), float(y0), float(x1), float(y1))
        items.append(
            StudyItem(
                id=p.item,
                image=rel,
                size=size,
                point=point,
                box=box,
                source_image=source.name,
                source_annotation=source.masks[p.mask].annotation,
                dataset=source.dataset,
            )
        )
    out: list[tuple[str, str, dict[str, Any]]] = []
    for (_, segmenter), (model_id, single_id) in zip(models, _model_condition_ids(conditions)):
        embedding = segmenter.encode(image)
        for item in items:
            mask = model_mask(segmenter, embedding, item)
            out.append((item.id, model_id, encode_rle(mask)))
            if single_id is not None:
                mask = model_mask(segmenter, embedding, item, single_output=True)
                out.append((item.id, single_id, encode_rle(mask)))
    gt_cond = next((c.id for c in conditions if c.kind == "ground-truth"), None)
    if gt_cond is not None:
        out += [(item.id, gt_cond, encode_rle(gt)) for item, gt in zip(items, gts)]
    return items, out


def _model_condition_ids(conditions: list[Condition]) -> list[tuple[str, str | None]]:
    """(model condition id, its single-output condition id or None), one per model, in
    the order of `study_conditions`."""
    out: list[tuple[str, str | None]] = []
    for c in conditions:
        if c.kind == "model":
            out.append((c.id, None))
        elif c.kind == "single-output":
            out[-1] = (out[-1][0], c.id)
    return out


def model_mask(
    segmenter: Segmenter,
    embedding: ImageEmbedding,
    item: StudyItem,
    single_output: bool = False,
) -> np.ndarray:
    """The (H, W) bool mask a model gives for `item`'s prompt, in the item image's frame:
    for a point, the top-ranked of the multimask candidates (highest predicted IoU), or
    the single-mask output with `single_output`; for a box, the single-mask output."""
    if item.point is not None:
        prompts = Prompts(np.array([item.point], np.float32), np.array([1], np.int32))
        pred = segmenter.decode(embedding, prompts, multimask=not single_output)
    else:
        prompts = Prompts(box=np.array(item.box, np.float32))
        pred = segmenter.decode(embedding, prompts, multimask=False)
    best = int(np.argmax(pred.iou_predictions)) if len(pred) > 1 else 0
    return np.asarray(pred.mask(best), bool)
