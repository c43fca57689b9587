"""`samstudio evaluate`: the SAM paper's §D.1 point-prompt evaluation.

    samstudio evaluate --model M --coco ANNOTATIONS.json --images DIR
        [--points 1,2,3,5,9] [--first center|random] [--out report.json]
    samstudio evaluate --model M --synthetic 200      (held-out synthetic scenes)

Prints a table (mIoU after N points, 1-point oracle mIoU) and writes the figures as
JSON with `--out`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="point-prompt mIoU (SAM paper D.1) on a COCO dataset or held-out synthetic scenes",
    )
    p.add_argument("--model", help="checkpoint, ONNX folder or catalog name (default: demo)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--coco", help="COCO instances annotation JSON")
    src.add_argument(
        "--synthetic",
        type=int,
        metavar="N",
        help="evaluate on N held-out synthetic scenes instead of a COCO dataset",
    )
    p.add_argument("--images", help="folder of the COCO images (with --coco)")
    p.add_argument("--synthetic-seed", type=int, default=10_000_000, help="first held-out seed")
    p.add_argument("--synthetic-size", type=int, default=256, help="long side of synthetic scenes")
    p.add_argument("--points", default="1,2,3,5,9", help="numbers of points to report")
    p.add_argument("--first", choices=("center", "random"), default="center")
    p.add_argument("--seed", type=int, default=0, help="seed for --first random")
    p.add_argument(
        "--no-mask-input",
        action="store_true",
        help="do not feed the previous low-res logits back as a mask prompt",
    )
    p.add_argument("--device", help="cpu or cuda (default: automatic)")
    p.add_argument("--out", help="write the report as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        points = [int(x) for x in args.points.split(",") if x.strip()]
    except ValueError:
        print(
            f"error: --points must be comma-separated integers, got {args.points!r}",
            file=sys.stderr,
        )
        return 2
    if args.coco and not args.images:
        print("error: --coco needs --images DIR", file=sys.stderr)
        return 2

    from samstudio.core import point_eval
    from samstudio.inference.errors import ModelLoadError
    from samstudio.inference.loader import open_model

    try:
        segmenter = open_model(args.model, device=args.device)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.coco:
        samples = point_eval.coco_samples(args.coco, args.images)
    else:
        samples = point_eval.synthetic_samples(
            args.synthetic, args.synthetic_seed, args.synthetic_size
        )

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
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    print(f"model: {segmenter.info.model_id} ({segmenter.info.backend})")
    print(report.table())
    if args.out:
        from samstudio.core.atomic import atomic_write_json

        data = report.to_json()
        data["model"] = segmenter.info.model_id
        data["dataset"] = (
            {"coco": args.coco, "images": args.images}
            if args.coco
            else {"synthetic": args.synthetic, "seed": args.synthetic_seed}
        )
        atomic_write_json(args.out, data, indent=2)
        print(f"report: {args.out}")
    return 0
