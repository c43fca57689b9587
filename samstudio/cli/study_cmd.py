"""`samstudio study`: the paper's human study of mask quality (§7.1, §E).

    samstudio study create --out DIR
        (--coco [NAME=]ANNOTATIONS.json --images DIR [--coco ... --images ...] | --synthetic N)
        [--model M ...] [--prompt point|box] [--single-output] [--no-ground-truth]
        [--items 100] [--min-area 576] [--max-side 2000] [--seed 0] [--title T]
        [--ratings-per-job 0] [--device cpu|cuda]
    samstudio study prompts STUDY --out PROMPTS.json
    samstudio study add-masks STUDY --name NAME MASKS.json [--source TEXT] [--after-ratings]
        [--partial]

`create` samples ground-truth masks, prompts each model with the mask's centre point
(or its box) and writes a study folder of blinded rating jobs, which participants rate
in the desktop app (`samstudio-gui --study DIR`). With `--ratings-per-job K` (K >= 1)
the study is the paper's queue: participants rating the same study folder (a shared
network folder, say) draw the jobs that still need ratings, and each job is rated by K
of them; the default 0 has every participant rate every job. `stats` and `export` (the
analysis) come from `samstudio.cli.study_stats`.

Several datasets (the paper rates 7 and reports each): repeat `--coco` with one `--images`
per `--coco`, in the same order; each is a dataset named NAME (`--coco LVIS=lvis.json`),
by default the annotation file's name without `.json`, and `--items` masks are sampled
from each. `--synthetic N` is one dataset named "synthetic".

`prompts` and `add-masks` rate masks made by another tool (the paper's RITM baseline) on
the very same prompts: `prompts` writes every item's image, size and prompt (pixel frame
of the item image; `samstudio.core.study.external`), the other tool writes one mask per
item, and `add-masks` adds them as a new blinded condition of kind "file". Add them
before anyone rates: a participant who has rated already would get the new jobs at the
end of their order, so `add-masks` refuses unless `--after-ratings`.

Exit codes: 0 done, 1 error (unreadable data, a model that does not open, a folder that
already holds a study, a bad masks file), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "study",
        help="human study of mask quality (SAM paper 7.1, E): create, analyse",
        description="Create a blinded mask-rating study and analyse its ratings.",
    )
    study_sub = p.add_subparsers(dest="study_command", required=True, metavar="SUBCOMMAND")
    c = study_sub.add_parser(
        "create",
        help="sample ground-truth masks, predict them with models, write a study folder",
        description="Sample ground-truth masks (at least --min-area px, no crowd regions), "
        "prompt each model with the mask's centre point or its box, and write a study of "
        "blinded rating jobs (each model's mask and the ground truth) to --out.",
    )
    c.add_argument("--out", required=True, metavar="DIR", help="new folder for the study")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--coco",
        action="append",
        metavar="[NAME=]ANNOTATIONS",
        help="COCO instances annotation JSON, optionally named as a dataset (NAME=FILE; "
        "default name: the file's name without .json); repeat for several datasets, each "
        "with its own --images",
    )
    src.add_argument(
        "--synthetic", type=int, metavar="N", help="use N held-out synthetic scenes instead"
    )
    c.add_argument(
        "--images",
        action="append",
        metavar="DIR",
        help="folder of the COCO images: one per --coco, in the same order",
    )
    c.add_argument(
        "--model",
        action="append",
        metavar="[NAME=]M",
        help="checkpoint, ONNX folder or catalog name, optionally named for the "
        "analysis (NAME=M, e.g. 'SAM ViT-B=sam_vit_b'; default name: the model's id); "
        "repeat for several models (default: the shipped demo model)",
    )
    c.add_argument(
        "--prompt",
        choices=("point", "box"),
        default="point",
        help="prompt each model with the mask's centre point (default) or its box",
    )
    c.add_argument(
        "--single-output",
        action="store_true",
        help="also rate each model's single-mask output for the point (the paper's ablation)",
    )
    c.add_argument(
        "--no-ground-truth", action="store_true", help="do not rate the dataset's own masks"
    )
    c.add_argument(
        "--items", type=int, default=100, help="masks to sample per dataset (default 100)"
    )
    c.add_argument(
        "--min-area",
        type=int,
        default=576,
        help="smallest mask in pixels after rescaling (default 576 = 24^2)",
    )
    c.add_argument(
        "--max-side",
        type=int,
        default=2000,
        help="rescale larger images to this long side before predicting (default 2000)",
    )
    c.add_argument("--seed", type=int, default=0, help="seed for sampling and job order")
    c.add_argument("--title", default="", help="title shown to participants")
    c.add_argument(
        "--ratings-per-job",
        type=int,
        default=0,
        metavar="K",
        help="0 (default): every participant rates every job; K >= 1: participants "
        "sharing the study folder draw jobs from one queue, and a job leaves it once K "
        "participants have rated it (the paper's setup: K=1)",
    )
    c.add_argument("--device", choices=("cpu", "cuda"), help="where to run the models")
    c.set_defaults(func=run_create)

    _register_external(study_sub)

    from samstudio.cli import study_stats  # standard library only at import time

    study_stats.register(study_sub)


def _register_external(study_sub: Any) -> None:
    """`prompts` and `add-masks`: masks from another tool as a condition."""
    p = study_sub.add_parser(
        "prompts",
        help="write every item's image, size and prompt for another tool to segment",
        description="Write the study's items (image path, width, height, point or box in "
        "the item image's pixel frame) as JSON, for another tool to make one mask per item.",
    )
    p.add_argument("study", metavar="STUDY", help="the study folder (or its study.json)")
    p.add_argument("--out", required=True, metavar="PROMPTS.json", help="the JSON file to write")
    p.set_defaults(func=run_prompts)

    a = study_sub.add_parser(
        "add-masks",
        help="add masks from another tool as a new condition (one job per item)",
        description="Add one mask per item from another tool as a new blinded condition of "
        "kind 'file'. MASKS.json is {'format': 'samstudio-study-masks', 'masks': {item: RLE "
        "or polygons}} or a COCO results list of {'item': id, 'segmentation': ...}; masks are "
        "in the item image's size.",
    )
    a.add_argument("study", metavar="STUDY", help="the study folder (or its study.json)")
    a.add_argument("masks", metavar="MASKS.json", help="the masks file")
    a.add_argument("--name", required=True, help="the condition's name in the analysis")
    a.add_argument("--source", default="", help="where the masks come from (default: the file)")
    a.add_argument(
        "--after-ratings",
        action="store_true",
        help="add even though participants have rated (their new jobs come last: biased)",
    )
    a.add_argument(
        "--partial",
        action="store_true",
        help="add even though the file has no mask for some items (they get no job of "
        "this condition; paired comparisons use the items both conditions have)",
    )
    a.set_defaults(func=run_add_masks)


def run_prompts(args: argparse.Namespace) -> int:
    from samstudio.core.atomic import atomic_write_json
    from samstudio.core.study.external import prompts_document
    from samstudio.core.study.model import StudyError, load_study

    try:
        doc = prompts_document(load_study(args.study))
        atomic_write_json(args.out, doc, indent=1)
    except (StudyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(doc['items'])} item(s): {args.out}")
    return 0


def run_add_masks(args: argparse.Namespace) -> int:
    from samstudio.core.study.external import add_condition, read_external_masks
    from samstudio.core.study.model import StudyError, load_study

    try:
        study = load_study(args.study)
        found = read_external_masks(args.masks, study)
        if found.missing and found.masks and not args.partial:
            shown = ", ".join(found.missing[:10]) + (" ..." if len(found.missing) > 10 else "")
            raise StudyError(
                f"{args.masks}: no mask for {len(found.missing)} of the study's "
                f"{len(study.items)} items ({shown}); add them, or pass --partial to add "
                "the others only"
            )
        study = add_condition(
            study,
            args.name,
            found,
            args.source,
            allow_after_ratings=args.after_ratings,
        )
    except (StudyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in found.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    cond = study.conditions[-1]
    print(f"condition: {cond.id} ({cond.name!r}, kind {cond.kind})")
    print(f"jobs added: {len(found.masks)} (study: {len(study.jobs)} jobs)")
    if found.missing:
        shown = ", ".join(found.missing[:10]) + (" ..." if len(found.missing) > 10 else "")
        print(f"items without a mask: {len(found.missing)} ({shown})")
    else:
        print("items without a mask: 0")
    return 0


def _usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, or None."""
    if args.coco and not args.images:
        return "--coco needs --images DIR"
    if args.images and not args.coco:
        return "--images goes with --coco"
    if args.coco and len(args.coco) != len(args.images):
        return (
            f"{len(args.coco)} --coco but {len(args.images)} --images: give one --images DIR "
            "per --coco, in the same order"
        )
    if args.coco:
        from samstudio.core.study.create import repeated_name, split_coco_specs

        try:
            names = [name for name, _ in split_coco_specs(args.coco)]
        except ValueError as exc:
            return str(exc)
        twice = repeated_name(names)
        if twice is not None:
            return (
                f"two --coco datasets are named {twice!r}; name them apart with "
                "--coco NAME=ANNOTATIONS.json"
            )
    if args.synthetic is not None and args.synthetic < 1:
        return f"--synthetic needs at least 1 scene, got {args.synthetic}"
    if args.items < 1:
        return f"--items must be at least 1, got {args.items}"
    if args.min_area < 0:
        return f"--min-area must be >= 0, got {args.min_area}"
    if args.max_side < 64:
        return f"--max-side must be at least 64, got {args.max_side}"
    if args.ratings_per_job < 0:
        return f"--ratings-per-job must be >= 0, got {args.ratings_per_job}"
    if args.single_output and args.prompt != "point":
        return "--single-output is the ablation for point prompts; drop it with --prompt box"
    return None


def run_create(args: argparse.Namespace) -> int:
    problem = _usage_error(args)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    from tqdm import tqdm

    from samstudio.core.images import ImageLoadError
    from samstudio.core.study import build, create
    from samstudio.core.study.sources import synthetic_sources
    from samstudio.inference.errors import InferenceError, ModelLoadError
    from samstudio.inference.loader import open_model

    try:  # the cheap checks first, then the models
        build.check_new_study_folder(args.out)
        sources: Any
        if args.coco:
            datasets = create.split_coco_specs(args.coco)
            sources = create.coco_study_sources(
                [(name, ann, images) for (name, ann), images in zip(datasets, args.images)]
            )
        else:
            sources = synthetic_sources(args.synthetic)
        specs = [create.split_model_spec(spec) for spec in args.model or [None]]
        models = create.open_study_models(specs, args.device, open_model)
    except (ValueError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bar = None
    try:
        steps = build.build_study(
            sources,
            models,
            args.out,
            n_items=args.items,
            prompt=args.prompt,
            single_output=args.single_output,
            ground_truth=not args.no_ground_truth,
            min_area=args.min_area,
            max_side=args.max_side,
            seed=args.seed,
            title=args.title,
            ratings_per_job=args.ratings_per_job,
        )
        study = None
        stage = ""
        for step in steps:
            if step.stage == "done":
                study = step.study
                break
            if bar is None or step.stage != stage:
                stage = step.stage
                if bar is not None:
                    bar.close()
                bar = tqdm(total=step.total or None, desc=stage, unit="img", file=sys.stderr)
            bar.update(step.done - bar.n)
    except (ValueError, OSError, ImageLoadError, InferenceError) as exc:
        if bar is not None:
            bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if bar is not None:
        bar.close()
    assert study is not None
    _report(study, args.out)
    return 0


def _report(study: Any, out: str) -> None:
    conditions = ", ".join(c.name for c in study.conditions)
    print(f"study: {out}")
    print(f"items: {len(study.items)}")
    datasets = study.datasets()
    if len(datasets) > 1:
        counts = [sum(it.dataset == d for it in study.items) for d in datasets]
        shown = ", ".join(f"{d}: {n} items" for d, n in zip(datasets, counts))
        print(f"datasets: {len(datasets)} ({shown})")
    print(f"conditions: {len(study.conditions)} ({conditions})")
    print(f"jobs: {len(study.jobs)}")
    print(
        f"rate it: samstudio-gui --study {out}   (from a source checkout: python main.py "
        f"--study {out})"
    )
    print(f"analyse it: samstudio study stats {out}")
