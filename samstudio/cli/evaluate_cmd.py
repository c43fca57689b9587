"""`samstudio evaluate`: the SAM paper's §D.1 point-prompt evaluation.

    samstudio evaluate [--model M] --coco ANNOTATIONS.json --images DIR
        [--points 1,2,3,5,9] [--first center|random] [--out report.json]
        [--per-mask masks.csv]
    samstudio evaluate [--model M] --synthetic 200      (held-out synthetic scenes)

Each ground-truth mask gets a first click (the point farthest from its boundary, or a
random one), then each corrective click at the error pixel farthest from the error
region's boundary. Prints the mIoU after
N points, the 1-point oracle mIoU, and NoC@85 / NoC@90 (mean clicks to reach IoU 0.85 /
0.90; a mask that never does counts as the largest N, 9 by default). The COCO file is
read as `samstudio convert` reads it: every problem is printed with its file, image and
annotation; crowd, box-only, empty and too small annotations, those of unknown images and
those whose image file is missing are left out and counted; masks of EXIF-rotated images
annotated in the stored frame are turned into the displayed frame. `--out` writes the
figures, the counts and the model (backend, device, id, SHA-256 of a model file) as JSON;
`--per-mask` writes one row per mask (image, annotation id, area, IoU after each click,
oracle IoU) as CSV or JSON lines, to compare two models with a paired test. Exit status:
0 when the evaluation ran, 2 when the input cannot be used (unreadable or not COCO
instances, no mask to evaluate, bad options).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from samstudio.cli.study_stats import _positive_int

PROG = "samstudio evaluate"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="point-prompt mIoU and NoC (SAM paper D.1) on a COCO dataset or synthetic scenes",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", help="checkpoint, ONNX folder or catalog name (default: demo)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--coco", metavar="FILE", help="COCO instances annotation JSON")
    src.add_argument(
        "--synthetic",
        type=_positive_int,
        metavar="N",
        help="evaluate on N (>= 1) held-out synthetic scenes instead of a COCO dataset",
    )
    p.add_argument("--images", metavar="DIR", help="folder of the COCO images (with --coco)")
    p.add_argument(
        "--min-area",
        type=_positive_int,
        default=1,
        metavar="PIXELS",
        help="leave out (and count) masks smaller than this (default: 1, only empty masks)",
    )
    p.add_argument(
        "--synthetic-seed", type=int, default=10_000_000, help="first held-out scene seed"
    )
    p.add_argument(
        "--synthetic-size", type=_positive_int, default=256, help="long side of synthetic scenes"
    )
    p.add_argument(
        "--points", default="1,2,3,5,9", help="numbers of points to report (the largest: NoC cap)"
    )
    p.add_argument(
        "--first",
        choices=("center", "random"),
        default="center",
        help="first click: farthest from the boundary (center) or uniform in the mask (random)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for --first random")
    p.add_argument(
        "--no-mask-input",
        action="store_true",
        help="do not feed the previous low-res logits back as a mask prompt",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default="auto",
        help="where to run the model (default: auto, CUDA when available)",
    )
    p.add_argument("--out", metavar="JSON", help="write the report as JSON here")
    p.add_argument(
        "--per-mask",
        metavar="FILE",
        help="write one row per evaluated mask here: .csv, or .jsonl for JSON lines",
    )
    p.add_argument("--quiet", action="store_true", help="do not print the import's messages")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def _check_outputs(args: argparse.Namespace) -> str | None:
    """Why an output cannot be written, found before hours of evaluation."""
    from samstudio.core.point_eval_report import check_per_mask_path

    if args.out and not Path(args.out).parent.is_dir():
        return f"--out {args.out}: the folder {Path(args.out).parent} does not exist"
    if args.per_mask:
        why = check_per_mask_path(args.per_mask)
        if why is not None:
            return f"--per-mask {why}"
    return None


def run(args: argparse.Namespace) -> int:
    try:
        points = [int(x) for x in args.points.split(",") if x.strip()]
    except ValueError:
        return _fail(f"--points must be comma-separated integers, got {args.points!r}")
    if not points or min(points) < 1:
        return _fail(f"--points must be numbers >= 1, got {args.points!r}")
    if args.coco and not args.images:
        return _fail("--coco needs --images DIR")
    why = _check_outputs(args)
    if why is not None:
        return _fail(why)

    from samstudio.core import point_eval
    from samstudio.core.formats.records import FormatError

    samples: Any
    if args.coco:
        try:
            samples = point_eval.coco_samples(args.coco, args.images, args.min_area)
        except FormatError as exc:
            return _fail(str(exc))
        except MemoryError:
            return _fail(f"{args.coco}: out of memory while reading")
        printed = _print_issues(samples.issues.issues, 0, args.quiet)
        if samples.n_masks == 0:
            return _fail(f"{args.coco}: no mask to evaluate; {_left_out_words(samples.left_out)}")
    else:
        samples = point_eval.synthetic_samples(
            args.synthetic, args.synthetic_seed, args.synthetic_size
        )

    from samstudio.inference.errors import ModelLoadError
    from samstudio.inference.loader import open_model

    try:
        segmenter = open_model(args.model, device=None if args.device == "auto" else args.device)
    except ModelLoadError as exc:
        return _fail(str(exc))

    def progress(images: int, masks: int) -> None:
        print(f"\r{images} images, {masks} masks", end="", file=sys.stderr, flush=True)

    try:
        report = point_eval.evaluate(
            segmenter,
            samples,
            points=points,
            first=args.first,
            seed=args.seed,
            mask_input=not args.no_mask_input,
            progress=progress,
        )
    except ValueError as exc:
        print(file=sys.stderr)
        return _fail(str(exc))
    print(file=sys.stderr)
    if args.coco:
        _print_issues(samples.issues.issues, printed, args.quiet)
    if report.n_masks == 0:
        return _fail(f"no mask was evaluated; {_left_out_words(report.left_out)}")
    info = segmenter.info
    print(f"model: {info.model_id} ({info.backend}, {info.device})")
    print(report.table())
    if args.per_mask:
        from samstudio.core.point_eval_report import write_per_mask

        write_per_mask(report, args.per_mask)
        print(f"per-mask rows: {args.per_mask}")
    if args.out:
        from samstudio.core.atomic import atomic_write_json

        data = report.to_json()
        data.update(_model_fields(info.model_id, info.backend, info.device, info.source))
        data["dataset"] = (
            {"coco": args.coco, "images": args.images, "min_area": args.min_area}
            if args.coco
            else {"synthetic": args.synthetic, "seed": args.synthetic_seed}
        )
        atomic_write_json(args.out, data, indent=2)
        print(f"report: {args.out}")
    return 0


def _print_issues(issues: list[Any], start: int, quiet: bool) -> int:
    """Print issues[start:] (unless quiet) as `samstudio convert` does; how many there are."""
    if not quiet:
        for issue in issues[start:]:
            print(issue, file=sys.stderr)
    return len(issues)


def _left_out_words(left_out: dict[str, int]) -> str:
    from samstudio.core.point_eval_report import left_out_words

    return "left out: " + (left_out_words(left_out) or "nothing (no annotations)")


def _model_fields(model_id: str, backend: str, device: str, source: str) -> dict[str, Any]:
    """What the report records of the model: id, backend, device, where it came from and,
    when that is one file, its SHA-256 (None for a folder, such as an ONNX export)."""
    from samstudio.core.images import content_hash

    path = Path(source) if source else None
    return {
        "model": model_id,
        "backend": backend,
        "device": device,
        "model_source": source or None,
        "model_sha256": content_hash(path) if path is not None and path.is_file() else None,
    }
