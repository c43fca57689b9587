"""`samstudio convert`: annotation files between COCO, SA-1B and labelme.

    samstudio convert INPUT --to coco-rle|coco-polygon|sa1b --out OUTPUT [--images DIR]
    samstudio convert INPUT --to coco-results --out RESULTS.json [--reference GT.json]

INPUT is a COCO instances or results file, an SA-1B file or folder, a labelme file or
folder, or an SA-V file (detected from the content). ``--images`` names the image folder:
records are checked against the files (size, EXIF orientation) and labelme finds missing
images there. Every problem found is printed with its file and annotation id; the exit
status is 0 when nothing was refused, 1 when some annotations were not converted
(``--strict``: also on warnings), 2 when the input cannot be read at all.

``--to coco-results`` writes what ``COCO(GT).loadRes`` and ``COCOeval`` take: masks as
compressed RLE with a ``score`` (the annotation's, else SAM's predicted IoU) and the
image ids of ``--reference GT.json`` (a COCO instances file; images matched by file
name). Without ``--reference`` INPUT must be a COCO instances file: its own ids are kept.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

TARGETS = ("coco-rle", "coco-polygon", "sa1b", "coco-results")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "convert",
        help="convert annotations between COCO (RLE/polygons), SA-1B and labelme",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="INPUT", help="annotation file or folder")
    p.add_argument("--to", required=True, choices=TARGETS, help="output format")
    p.add_argument(
        "--out", required=True, metavar="OUTPUT", help="output file (COCO) or folder (SA-1B)"
    )
    p.add_argument("--images", metavar="DIR", help="folder of the images the annotations refer to")
    p.add_argument(
        "--reference",
        metavar="GT",
        help="ground-truth COCO instances file whose image ids --to coco-results uses",
    )
    p.add_argument("--labels", metavar="FILE", help="labelme labels.txt (category order and ids)")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from samstudio.core.formats.coco_results import export_results, read_reference
    from samstudio.core.formats.detect import export_annotations, import_annotations
    from samstudio.core.formats.records import FormatError

    labels = None
    if args.labels:
        try:
            labels = [
                ln.strip()
                for ln in Path(args.labels).read_text(encoding="utf-8").splitlines()
                if ln.strip()
            ]
        except OSError as exc:
            print(
                f"samstudio convert: cannot read labels file {args.labels}: {exc.strerror}",
                file=sys.stderr,
            )
            return 2
        except UnicodeDecodeError as exc:
            print(
                f"samstudio convert: cannot read labels file {args.labels}: not UTF-8 text "
                f"({exc.reason} at byte {exc.start})",
                file=sys.stderr,
            )
            return 2
    if not Path(args.input).exists():
        print(f"samstudio convert: {args.input}: no such file or folder", file=sys.stderr)
        return 2
    if args.images and not Path(args.images).is_dir():
        print(f"samstudio convert: --images {args.images}: not a folder", file=sys.stderr)
        return 2
    if args.reference and args.to != "coco-results":
        print("samstudio convert: --reference is for --to coco-results", file=sys.stderr)
        return 2
    try:
        reference = read_reference(args.reference) if args.reference else None
        dataset, report, kind = import_annotations(
            args.input, images_dir=args.images, labels=labels, ground_truth=reference
        )
    except FormatError as exc:
        print(f"samstudio convert: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"samstudio convert: {args.input}: out of memory while reading", file=sys.stderr)
        return 2
    if args.to == "coco-results" and reference is None and kind not in ("coco", "coco-results"):
        print(
            f"samstudio convert: {args.input} is {kind}, which has no image ids a ground "
            "truth shares: give --reference GT.json (the COCO instances file the results "
            "are scored against; images are matched by file name)",
            file=sys.stderr,
        )
        return 2
    try:
        if args.to == "coco-results":
            _, out_report = export_results(
                dataset, args.out, reference, None, args.reference or "reference"
            )
        else:
            _, out_report = export_annotations(dataset, args.to, args.out)
    except OSError as exc:
        print(f"samstudio convert: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            f"samstudio convert: {args.input}: out of memory while writing {args.out} "
            f"({args.to}); conversion stopped",
            file=sys.stderr,
        )
        return 2
    report.extend(out_report)
    if not args.quiet:
        for issue in report.issues:
            print(issue, file=sys.stderr)
    print(
        f"{args.input} ({kind}): {len(dataset.images)} image(s), {len(dataset.annotations)} "
        f"annotation(s) -> {args.out} ({args.to}); {report.summary()}"
    )
    if report.errors or (args.strict and report.warnings):
        return 1
    return 0
