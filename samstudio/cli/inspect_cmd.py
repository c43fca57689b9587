"""`samstudio inspect`: dataset views from the Segment Anything paper's §5.

    samstudio inspect stats DATASET... [--images DIR] [--json OUT] [--plots DIR] [--seed 0]
    samstudio inspect compare A B [--by-category] [--images DIR] [--json OUT] [--plot PNG]

``stats`` prints each dataset's mask properties: masks per image, image-relative mask size
sqrt(area / image area), concavity 1 - area / convex hull area (stratified by size, with
``--seed``) and object centres; ``--plots DIR`` writes mask_properties.png (the paper's
Fig. 6) and centres.png (Fig. 5). ``compare`` pairs the masks of two annotation sets of the
same images one to one by IoU (B is the reference; ``--by-category``: only masks of the
same category) and prints the share of pairs at IoU 0.5 / 0.75 / 0.9, the unmatched masks
and precision / recall; ``--plot`` draws the pairs' IoU histogram. Images are paired by
file name, or by image id when A or B is a COCO results list (which names no files; it
takes the other file's image ids). Crowd regions (iscrowd) are not objects: not counted,
and a mask over one is no false positive, as in COCO. When A's masks carry scores (a model's
COCO results), COCO mask AP, AP50 and AP75 are printed too (pycocotools' COCOeval, segm).
DATASET, A and B are anything ``samstudio convert`` reads: a COCO instances or results
file, an SA-1B file or folder, a labelme file or folder, an SA-V file.

Annotations the importer refused are listed (the first 10, then a count). Exit status, as
``samstudio convert``'s: 0 when everything was read, 1 when the figures leave out
annotations that could not be read, 2 when there is nothing to report: a file or the
``--images`` folder cannot be used, no masks, or no images in common.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "inspect",
        help="dataset mask properties and agreement of two annotation sets (SAM paper §5)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=lambda args: _usage(p))
    inner = p.add_subparsers(dest="inspect_command", metavar="VIEW")

    stats = inner.add_parser("stats", help="masks per image, relative size, concavity, centres")
    stats.add_argument("datasets", nargs="+", metavar="DATASET", help="annotation file or folder")
    stats.add_argument("--images", metavar="DIR", help="folder of the images (checked, optional)")
    stats.add_argument("--json", metavar="OUT", help="write the figures as JSON here")
    stats.add_argument("--plots", metavar="DIR", help="write PNG figures into this folder")
    stats.add_argument("--seed", type=int, default=0, help="seed of the concavity sample")
    stats.set_defaults(func=run_stats)

    compare = inner.add_parser("compare", help="IoU of one-to-one matched masks of two sets")
    compare.add_argument("a", metavar="A", help="annotation file or folder (e.g. automatic)")
    compare.add_argument("b", metavar="B", help="reference annotation file or folder")
    compare.add_argument(
        "--by-category", action="store_true", help="pair masks only within the same category"
    )
    compare.add_argument("--images", metavar="DIR", help="folder of the images (checked, optional)")
    compare.add_argument("--json", metavar="OUT", help="write the figures as JSON here")
    compare.add_argument("--plot", metavar="PNG", help="write the IoU histogram here")
    compare.set_defaults(func=run_compare)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _error(message: object) -> int:
    """Print ``message``; nothing to report (exit status 2)."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def _images_problem(images: str | None) -> str | None:
    from pathlib import Path

    if images is not None and not Path(images).is_dir():
        what = "no such folder" if not Path(images).exists() else "not a folder"
        return f"--images {images}: {what}"
    return None


def run_stats(args: argparse.Namespace) -> int:
    from pathlib import Path

    from samstudio.core.atomic import atomic_write_json
    from samstudio.core.inspect.mask_stats import dataset_mask_stats

    problem = _images_problem(args.images)
    if problem:
        return _error(problem)
    results = []
    try:
        for source in args.datasets:
            stats = dataset_mask_stats(source, images_dir=args.images)
            print(stats.table(seed=args.seed))
            results.append(stats)
    except (ValueError, OSError) as exc:
        return _error(exc)
    empty = [s.name for s in results if s.n_masks == 0]
    if empty:
        return _error(f"no masks in {', '.join(empty)}: nothing to describe")
    try:
        if args.json:
            doc = {"seed": args.seed, "datasets": [s.to_json(seed=args.seed) for s in results]}
            atomic_write_json(args.json, doc, indent=1)
        if args.plots:
            from samstudio.core.inspect.plots import plot_centres, plot_mask_stats

            folder = Path(args.plots)
            folder.mkdir(parents=True, exist_ok=True)
            named = [(s.name, s) for s in results]
            plot_mask_stats(named, folder / "mask_properties.png", seed=args.seed)
            plot_centres(named, folder / "centres.png")
    except (ValueError, OSError) as exc:
        return _error(exc)
    return _left_out(sum(s.import_errors for s in results))


def _left_out(import_errors: int) -> int:
    """Exit status 1, with a word why, when annotations could not be read (else 0)."""
    if import_errors:
        print(
            f"note: {import_errors} annotation(s) could not be read and are left out "
            "(listed above)",
            file=sys.stderr,
        )
        return 1
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from samstudio.core.atomic import atomic_write_json
    from samstudio.core.inspect.set_iou import compare_sets

    problem = _images_problem(args.images)
    if problem:
        return _error(problem)
    try:
        result = compare_sets(args.a, args.b, images_dir=args.images, by_category=args.by_category)
        print(result.table())
    except (ValueError, OSError) as exc:
        return _error(exc)
    if not result.images:
        return _error(
            f"no images in common between {args.a} and {args.b} (paired by {result.pairing})"
        )
    empty = [name for name, n in ((args.a, result.n_a), (args.b, result.n_b)) if n == 0]
    if empty:
        return _error(
            f"no masks in {' or '.join(empty)} (in the {len(result.images)} image(s) in "
            "common): nothing to compare"
        )
    try:
        if args.json:
            atomic_write_json(args.json, result.to_json(), indent=1)
        if args.plot:
            from samstudio.core.inspect.plots import plot_pair_ious

            plot_pair_ious(result, args.plot)
    except (ValueError, OSError) as exc:
        return _error(exc)
    return _left_out(result.import_errors)
