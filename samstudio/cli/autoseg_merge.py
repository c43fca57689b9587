"""The merged files of a `samstudio auto-segment` run: `--coco` and `--coco-results`.

Both hold the outputs in --out made with the run's model and parameters: the run's own
images when their outputs are up to date, and the outputs of earlier runs on other
images (see `select_outputs`), with the folder's ids (`autoseg_collect`). `--coco-results`
writes COCO results (`core.formats.coco_results`): with `--reference GT.json` its image
ids are the ground truth's, images matched by file name, so that
``COCO(GT).loadRes(results)`` and ``COCOeval(..., "segm")`` work; without, the ids are
those of the COCO file. Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samstudio.cli.autoseg_collect import (
    Output,
    image_path,
    merge_outputs,
    same_making,
    same_marker,
)


@dataclass
class MergedFiles:
    """What a run merges into: the COCO file, the results file, the reference dataset
    (None: the ids of the COCO file) and the reference's file name."""

    coco: Path | None = None
    results: Path | None = None
    reference: Any = None
    reference_name: str = ""


def merged_files(args: argparse.Namespace, targets: list[Path]) -> MergedFiles | None:
    """The run's merged files, checked before anything is segmented; None (after printing
    why) when the options cannot work: a file that is an image's output, the same file
    twice, `--reference` without `--coco-results`, a reference that is not a COCO
    instances file."""
    outputs = {os.path.abspath(t) for t in targets}
    files = MergedFiles(
        Path(args.coco) if args.coco else None,
        Path(args.coco_results) if args.coco_results else None,
    )
    for flag, value in (("--coco", args.coco), ("--coco-results", args.coco_results)):
        if value and os.path.abspath(value) in outputs:
            return _refuse(f"{flag} {value} is the output file of an image; choose another name")
    if (
        files.coco
        and files.results
        and os.path.abspath(files.coco) == os.path.abspath(files.results)
    ):
        return _refuse(f"--coco and --coco-results both name {files.coco}; choose two files")
    if args.reference:
        if not files.results:
            return _refuse(
                "--reference gives the image ids of --coco-results; add --coco-results FILE"
            )
        from samstudio.core.formats.coco_results import read_reference
        from samstudio.core.formats.records import FormatError

        try:
            files.reference = read_reference(args.reference)
        except FormatError as exc:
            return _refuse(f"--reference: {exc}")
        files.reference_name = args.reference
    return files


def _refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    return None


def select_outputs(
    outputs: list[Output], run_marks: dict[Path, dict[str, Any]], out: Path
) -> list[Output]:
    """The outputs a run merges: an image of the run counts when its output matches this
    run's marker (up to date); an output of another image when it was made with the same
    model (by content) and parameters."""
    run = {os.path.abspath(path): mark for path, mark in run_marks.items()}
    some = next(iter(run_marks.values()))
    run_images = {image_path(out, mark.get("source")) for mark in run_marks.values()}
    chosen = []
    for output in outputs:
        mark = run.get(os.path.abspath(output.path))
        if mark is not None:
            if same_marker(output.mark, mark):
                chosen.append(output)
        elif output.image not in run_images and same_making(
            output.mark, some["model_sha256"], some["params"]
        ):
            chosen.append(output)
    return chosen


def write_merged(
    files: MergedFiles, outputs: list[Output], run_marks: dict[Path, dict[str, Any]], out: Path
) -> int:
    """Write the run's merged files; returns how many problems made the run incomplete."""
    from samstudio.core.formats.coco import export_coco
    from samstudio.core.formats.coco_results import export_results

    if files.coco is None and files.results is None:
        return 0
    dataset, paths, problems = merge_outputs(select_outputs(outputs, run_marks, out))
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    failures = len(problems)
    if files.coco is not None:
        try:
            files.coco.parent.mkdir(parents=True, exist_ok=True)
            export_coco(dataset, files.coco)
        except (OSError, ValueError) as exc:
            print(f"error: cannot write COCO file {files.coco}: {exc}", file=sys.stderr)
            return failures + 1
        print(f"wrote {files.coco} ({len(dataset.images)} images)", file=sys.stderr)
    if files.results is None:
        return failures
    reference = files.reference
    try:
        files.results.parent.mkdir(parents=True, exist_ok=True)
        written, report = export_results(
            dataset, files.results, reference, paths, files.reference_name
        )
    except (OSError, ValueError) as exc:
        print(f"error: cannot write COCO results {files.results}: {exc}", file=sys.stderr)
        return failures + 1
    for issue in report.issues:
        print(issue, file=sys.stderr)
    if written is not None:
        left_out = sum(1 for issue in report.errors if issue.image_id is not None)
        ids = (
            f"image ids of {files.reference_name}"
            if reference is not None
            else "image ids of --coco"
        )
        print(
            f"wrote {files.results} ({len(dataset.images) - left_out} images, {ids})",
            file=sys.stderr,
        )
    return failures + len(report.errors)
