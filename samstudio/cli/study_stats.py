"""`samstudio study stats` and `samstudio study export`: a rating study's results.

    samstudio study stats STUDY [--json OUT] [--plots DIR] [--confidence 0.95]
        [--pair-confidence 0.99] [--resamples 10000] [--seed 0]
    samstudio study export STUDY --csv OUT

`stats` prints each condition's mean rating with its CI and histogram, and the paired
comparisons of every two conditions (paired t-test, paired bootstrap CI of the
difference: the paper's Table 8); `--json` writes them, `--plots` draws the figures.
When the study's items come from several datasets (`study create` with several `--coco`),
all of that is given over all items and then for each dataset, and `--plots` also draws
each condition's mean rating per dataset (the paper's Fig. 9b).
`export` writes every rating as a CSV row, conditions unblinded.

`register(study_sub)` adds both to the sub-parsers of the `study` command. Standard
library only at import time; numpy, scipy and matplotlib load inside the commands.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

CSV_COLUMNS = (
    "participant",
    "job",
    "item",
    "condition",
    "condition_name",
    "kind",
    "rating",
    "seconds",
    "time",
    "source_image",
    "source_annotation",
    "dataset",
)
HISTOGRAM_PNG = "ratings_histogram.png"
MEANS_PNG = "mean_ratings.png"
DATASETS_PNG = "mean_ratings_by_dataset.png"


def dataset_histogram_name(dataset: str) -> str:
    """The file of one dataset's rating histogram: letters, digits, '-', '_' and '.' of
    its name kept, the rest '_' (a name is free text)."""
    import re

    return f"ratings_histogram_{re.sub(r'[^A-Za-z0-9_.-]+', '_', dataset) or 'dataset'}.png"


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def register(study_sub: Any) -> None:
    """Add `stats` and `export` to `study_sub` (an argparse sub-parsers object)."""
    p = study_sub.add_parser(
        "stats",
        help="mean ratings with CIs, histograms and paired tests (SAM paper 7.1, Table 8)",
    )
    p.add_argument("study", metavar="STUDY", help="the study folder (or its study.json)")
    p.add_argument("--json", metavar="OUT", help="write the report as JSON here")
    p.add_argument(
        "--plots",
        metavar="DIR",
        help="write the PNG figures into DIR (with several datasets, also the means per dataset)",
    )
    p.add_argument(
        "--confidence",
        type=_fraction,
        default=0.95,
        help="confidence of each condition's t interval (default 0.95)",
    )
    p.add_argument(
        "--pair-confidence",
        type=_fraction,
        default=0.99,
        help="confidence of the bootstrap interval of a difference (default 0.99)",
    )
    p.add_argument(
        "--resamples", type=_positive_int, default=10_000, help="bootstrap resamples (10000)"
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.set_defaults(func=run_stats)

    e = study_sub.add_parser("export", help="every rating as a CSV row, conditions unblinded")
    e.add_argument("study", metavar="STUDY", help="the study folder (or its study.json)")
    e.add_argument("--csv", metavar="OUT", required=True, help="the CSV file to write")
    e.set_defaults(func=run_export)


def run_stats(args: argparse.Namespace) -> int:
    from pathlib import Path

    from samstudio.core.atomic import atomic_write_json
    from samstudio.core.study.model import StudyError, load_study
    from samstudio.core.study.sheets import load_ratings
    from samstudio.core.study.stats import analyse

    skipped: list[str] = []
    try:
        study = load_study(args.study)
        ratings = load_ratings(study, skipped)
        for problem in skipped:
            print(f"warning: left out: {problem}", file=sys.stderr)
        report = analyse(
            study,
            ratings,
            confidence=args.confidence,
            pair_confidence=args.pair_confidence,
            n_resamples=args.resamples,
            seed=args.seed,
        )
        print(report.table())
        if args.json:
            atomic_write_json(args.json, report.to_json(), indent=2)
            print(f"report: {args.json}")
        if args.plots:
            from samstudio.core.study.plots import dataset_means, mean_ratings, rating_histograms

            folder = Path(args.plots)
            folder.mkdir(parents=True, exist_ok=True)
            print(f"plot: {rating_histograms(report, folder / HISTOGRAM_PNG)}")
            print(f"plot: {mean_ratings(report, folder / MEANS_PNG)}")
            if len(report.datasets) > 1:
                print(f"plot: {dataset_means(report, folder / DATASETS_PNG)}")
                for name, part in report.datasets.items():  # the paper's Fig. 18
                    path = folder / dataset_histogram_name(name)
                    print(f"plot: {rating_histograms(part, path)}")
    except (StudyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if skipped:
        print(
            f"warning: {len(skipped)} rating sheet(s) left out (named above): the figures "
            "are of the other participants only",
            file=sys.stderr,
        )
        return 1
    return 0


def run_export(args: argparse.Namespace) -> int:
    import csv
    import io

    from samstudio.core.atomic import atomic_write_text
    from samstudio.core.study.model import StudyError, load_study
    from samstudio.core.study.sheets import load_ratings

    try:
        study = load_study(args.study)
        ratings = load_ratings(study)
        items = {it.id: it for it in study.items}
        conditions = {c.id: c for c in study.conditions}
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in ratings:
            job = study.job(r.job)
            cond = conditions[job.condition]  # load_study checked the references
            item = items[job.item]
            writer.writerow(
                [
                    r.participant,
                    r.job,
                    job.item,
                    cond.id,
                    cond.name,
                    cond.kind,
                    r.rating,
                    r.seconds,
                    r.time,
                    item.source_image,
                    "" if item.source_annotation is None else item.source_annotation,
                    item.dataset,
                ]
            )
        atomic_write_text(args.csv, buf.getvalue())
    except (StudyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(ratings)} ratings: {args.csv}")
    return 0
