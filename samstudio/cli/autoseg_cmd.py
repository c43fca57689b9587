"""`samstudio auto-segment`: the paper's fully automatic stage over images and folders.

    samstudio auto-segment [--model M] INPUT... --out DIR [--points-per-side N]
        [--crop-n-layers N] [--pred-iou-thresh X] [--stability-score-thresh X]
        [--min-mask-region-area N] [--adaptive] [--preset paper|fast] [--coco FILE]

Writes one SA-1B JSON per image into DIR (`<image stem>.json`, written atomically) and,
with `--coco`, one COCO instances file over all images. Images whose JSON already exists
in DIR are skipped (the run is resumable: stop it and run the same command again). An
image that cannot be read, or whose masks cannot be generated, is reported and skipped;
the exit status is then 1. Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DONE_SUFFIX = ".json"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "auto-segment",
        help="generate all masks of images automatically (SA-1B JSON per image, optional COCO)",
        description=(
            "Prompt each image with a grid of points, keep the confident, stable, "
            "de-duplicated masks (paper §B) and write one SA-1B JSON per image into --out. "
            "Images already done in --out are skipped, so an interrupted run can be resumed."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    p.add_argument("--out", required=True, help="folder for the SA-1B JSON files")
    p.add_argument("--model", help="catalog name, .pth checkpoint or ONNX folder (default: demo)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="force a device (default: auto)")
    p.add_argument(
        "--preset",
        choices=["default", "paper", "fast"],
        default="default",
        help="default: Meta's generator settings (32x32 grid, no crops); paper: SA-1B's "
        "settings (crops in 2 layers, regions under 100 px cleaned); fast: adaptive grid",
    )
    p.add_argument("--points-per-side", type=int, help="grid size on the whole image (32)")
    p.add_argument("--points-per-batch", type=int, help="prompts per decoder call (64)")
    p.add_argument("--crop-n-layers", type=int, help="layers of zoomed-in crops (0)")
    p.add_argument("--pred-iou-thresh", type=float, help="minimum predicted IoU (0.88)")
    p.add_argument("--stability-score-thresh", type=float, help="minimum stability score (0.95)")
    p.add_argument(
        "--min-mask-region-area",
        type=int,
        help="fill holes / remove islands smaller than this many pixels (0: off)",
    )
    p.add_argument(
        "--adaptive",
        action="store_true",
        help=(
            "every other grid point first, then only the points near a kept mask that the "
            "finest masks of their neighbours do not settle (measured with the demo model: "
            "99%% of the full grid's masks with 2x fewer decoder calls)"
        ),
    )
    p.add_argument("--coco", metavar="FILE", help="also write one COCO instances file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _params(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from samstudio.core.amg_params import AmgParams

    base = {"default": AmgParams, "paper": AmgParams.paper, "fast": AmgParams.fast}[args.preset]()
    overrides: dict[str, Any] = {}
    for name in (
        "points_per_side",
        "points_per_batch",
        "crop_n_layers",
        "pred_iou_thresh",
        "stability_score_thresh",
        "min_mask_region_area",
    ):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.adaptive:
        overrides["adaptive"] = True
    return replace(base, **overrides)


def find_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Image files named or found (sorted, not recursive) in folders; and input problems."""
    from samstudio.core.images import SUPPORTED_SUFFIXES

    found: list[Path] = []
    problems: list[str] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            files = sorted(
                f for f in path.iterdir() if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
            )
            if not files:
                problems.append(f"{path}: folder holds no images")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    return found, problems


def output_names(images: list[Path]) -> list[str]:
    """One JSON file name per image: `<stem>.json`, `<stem>_2.json`... for equal stems."""
    seen: dict[str, int] = {}
    names = []
    for image in images:
        stem = image.stem or "image"
        count = seen.get(stem, 0) + 1
        seen[stem] = count
        names.append(f"{stem}{DONE_SUFFIX}" if count == 1 else f"{stem}_{count}{DONE_SUFFIX}")
    return names


def run(args: argparse.Namespace) -> int:
    from samstudio.core.amg_params import AmgParamsError

    try:
        params = _params(args)
    except AmgParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    images, problems = find_images(args.inputs)
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not images:
        print("error: no images to segment", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot create output folder {out}: {exc.strerror}", file=sys.stderr)
        return 2
    names = output_names(images)
    todo = [i for i, name in enumerate(names) if not _is_done(out / name)]
    skipped = len(images) - len(todo)
    if skipped:
        print(
            f"{skipped} of {len(images)} images already done in {out}; skipping them",
            file=sys.stderr,
        )
    failures = len(problems)
    if todo:
        failures += _segment_all(args, params, images, names, todo, out)
    if args.coco:
        try:
            n = _write_coco(Path(args.coco), [out / n for n in names], images)
            print(f"wrote {args.coco} ({n} images)", file=sys.stderr)
        except (OSError, ValueError) as exc:
            print(f"error: cannot write COCO file {args.coco}: {exc}", file=sys.stderr)
            return 1
    return 1 if failures else 0


def _is_done(path: Path) -> bool:
    """A JSON that loads and has annotations counts as done (atomic writes never leave
    half files, but a file from elsewhere might be broken: redo it then)."""
    import json

    if not path.is_file():
        return False
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("annotations"), list)


def _segment_all(
    args: argparse.Namespace,
    params: Any,
    images: list[Path],
    names: list[str],
    todo: list[int],
    out: Path,
) -> int:
    from tqdm import tqdm

    from samstudio.core.amg import iter_masks
    from samstudio.core.images import ImageLoadError, load_image
    from samstudio.inference.errors import InferenceError, ModelLoadError
    from samstudio.inference.loader import open_model

    try:
        segmenter = open_model(args.model, device=args.device)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return len(todo)
    failures = 0
    bar_images = tqdm(todo, desc="images", unit="img", disable=args.quiet, file=sys.stderr)
    for index in bar_images:
        path = images[index]
        try:
            image = load_image(path)
        except ImageLoadError as exc:
            tqdm.write(f"skipped {path}: {exc.reason}", file=sys.stderr)
            failures += 1
            continue
        bar = tqdm(
            total=1, desc=path.name, unit="pt", leave=False, disable=args.quiet, file=sys.stderr
        )
        try:
            records = None
            for progress in iter_masks(segmenter, image, params):
                bar.total = max(progress.points_total, 1)
                bar.n = progress.points_done
                bar.set_postfix(masks=progress.candidates, refresh=False)
                bar.refresh()
                if progress.stage == "done":
                    records = progress.masks
        except (InferenceError, ValueError, MemoryError) as exc:
            tqdm.write(f"skipped {path}: mask generation failed: {exc}", file=sys.stderr)
            failures += 1
            continue
        finally:
            bar.close()
        assert records is not None
        _write_sa1b(out / names[index], path, image.shape[:2], index + 1, records)
    return failures


def _write_sa1b(
    target: Path, image_path: Path, size: tuple[int, int], image_id: int, records: Any
) -> None:
    from samstudio.core.atomic import atomic_write_json
    from samstudio.core.formats.records import Annotation, Dataset, ImageRecord
    from samstudio.core.formats.sa1b import sa1b_document

    height, width = size
    image = ImageRecord(id=image_id, file_name=image_path.name, width=width, height=height)
    dataset = Dataset(images=[image])
    for number, record in enumerate(records, start=1):
        dataset.annotations.append(
            Annotation(
                id=number,
                image_id=image_id,
                category_id=None,
                segmentation=dict(record.segmentation),
                bbox=list(record.bbox),
                predicted_iou=float(record.predicted_iou),
                stability_score=float(record.stability_score),
                point_coords=[[float(x), float(y)] for x, y in record.point_coords],
                crop_box=[float(v) for v in record.crop_box],
            )
        )
    atomic_write_json(target, sa1b_document(dataset, image))


def _write_coco(target: Path, done: list[Path], images: list[Path]) -> int:
    """One COCO instances file from the per-image SA-1B files that exist (ids renumbered)."""
    from samstudio.core.formats.coco import export_coco
    from samstudio.core.formats.records import Dataset
    from samstudio.core.formats.sa1b import import_sa1b

    merged = Dataset()
    next_ann = 1
    for image_id, (json_path, image_path) in enumerate(zip(done, images), start=1):
        if not json_path.is_file():
            continue
        part, _ = import_sa1b(json_path)
        for record in part.images:
            old_id = record.id
            record.id = image_id
            record.file_name = image_path.name
            merged.images.append(record)
            for ann in part.annotations_of(old_id):
                ann.id = next_ann
                ann.image_id = image_id
                next_ann += 1
                merged.annotations.append(ann)
    target.parent.mkdir(parents=True, exist_ok=True)
    export_coco(merged, target)
    return len(merged.images)
