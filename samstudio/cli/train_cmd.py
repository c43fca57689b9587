"""`samstudio train --config CONFIG.yaml`: train the demo model (paper §A recipe on
synthetic scenes), with progress lines, checkpoints and resume."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train the small demo SAM on synthetic scenes (checkpoints and resumes)",
        description=(
            "Train the demo model with the SAM paper's interactive 11-round recipe on "
            "synthetic scenes. Checkpoints go to train.out_dir; running the same command "
            "again resumes from the last checkpoint."
        ),
    )
    p.add_argument("--config", required=True, help="YAML file with model/data/train sections")
    p.add_argument("--out-dir", help="override train.out_dir")
    p.add_argument("--iterations", type=int, help="override train.iterations")
    p.add_argument("--max-steps", type=int, help="stop after this many steps in this run")
    p.add_argument("--device", help="override train.device: cpu, cuda, cuda:N or auto")
    p.add_argument(
        "--workers", type=int, help="override train.workers (processes making batches ahead)"
    )
    p.add_argument(
        "--no-resume", action="store_true", help="start again even if a checkpoint exists"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from samstudio.training.config import load_config

    try:
        config = load_config(args.config)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out_dir:
        config["train"]["out_dir"] = args.out_dir
    if args.iterations:
        config["train"]["iterations"] = args.iterations
    if args.device:
        config["train"]["device"] = args.device
    if args.workers is not None:
        config["train"]["workers"] = args.workers

    from samstudio.training.train import train

    try:
        path = train(
            config,
            resume=not args.no_resume,
            log=lambda line: print(line, flush=True),
            max_steps=args.max_steps,
        )
    except ValueError as exc:  # no CUDA, init_from missing or of another architecture
        print(f"error: {args.config}: {exc}", file=sys.stderr)
        return 2
    print(f"weights: {path}")
    return 0
