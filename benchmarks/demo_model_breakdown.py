"""Where does a model lose on the held-out synthetic scenes? §D.1 figures by mask group.

Runs the paper's point protocol (`samstudio.core.point_eval.evaluate_mask`, the same
code as `samstudio evaluate --synthetic N`) on held-out generated scenes and prints, as
JSON, the mean IoU after 1, 3, 5 and 9 points and the 1-point oracle IoU for every
group of masks:
- by the annotation's kind in the generator (`object`, `whole`, `part`, `subpart`);
- by visible area in pixels;
- by the number of 8-connected pieces of the visible mask (an occluded object can be
  cut in two; one click cannot reach a piece it is not in);
and, for each group, its share of the whole set's 5-point shortfall (the sum of
1 - IoU over its masks, divided by that sum over all masks): the groups that keep the
figure from the target.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/demo_model_breakdown.py
        [--model resources/models/samstudio-demo/model.pt] [--scenes 100] [--first center]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

AREA_BINS = ((0, 100), (100, 400), (400, 1600), (1600, 6400), (6400, None))
POINTS = (1, 3, 5, 9)


def pieces(mask: np.ndarray) -> int:
    """Number of 8-connected components of a bool mask."""
    n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return int(n) - 1


def area_label(area: int) -> str:
    for lo, hi in AREA_BINS:
        if hi is None or area < hi:
            return f">= {lo}" if hi is None else f"{lo}-{hi}"
    raise AssertionError("unreachable")


def summarise(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Means per value of `key` over `rows`, and each group's share of the 5-pt shortfall."""
    total = sum(1.0 - r["iou"][5] for r in rows) or 1.0
    out: dict[str, Any] = {}
    for value in sorted({r[key] for r in rows}, key=str):
        group = [r for r in rows if r[key] == value]
        out[str(value)] = {
            "masks": len(group),
            "miou": {n: round(float(np.mean([r["iou"][n] for r in group])), 4) for n in POINTS},
            "oracle_miou_1": round(float(np.mean([r["oracle"] for r in group])), 4),
            "share_of_5pt_shortfall": round(sum(1.0 - r["iou"][5] for r in group) / total, 3),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(REPO / "resources/models/samstudio-demo/model.pt"))
    p.add_argument("--scenes", type=int, default=100)
    p.add_argument("--seed", type=int, default=10_000_000, help="first held-out scene seed")
    p.add_argument("--first", choices=("center", "random"), default="center")
    args = p.parse_args(argv)

    from samstudio.core.point_eval import evaluate_mask
    from samstudio.inference.loader import open_model
    from samstudio.training.synthetic import make_scene

    seg = open_model(args.model, device="cpu")
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for i in range(args.scenes):
        scene = make_scene(args.seed + i)
        emb = seg.encode(scene.image)
        for gt, kind in zip(scene.masks, scene.kinds):
            if not gt.any():
                continue
            res = evaluate_mask(seg, emb, gt, max(POINTS), args.first, rng)
            area = int(gt.sum())
            rows.append(
                {
                    "kind": kind,
                    "area": area_label(area),
                    "pieces": min(pieces(gt), 3),
                    "iou": {n: res.ious[n - 1] for n in POINTS},
                    "oracle": res.oracle_iou_1,
                }
            )
    result = {
        "model": args.model,
        "scenes": args.scenes,
        "first_seed": args.seed,
        "first": args.first,
        "masks": len(rows),
        "seconds": round(time.perf_counter() - t0, 1),
        "all": summarise([{**r, "all": "all"} for r in rows], "all")["all"],
        "by_kind": summarise(rows, "kind"),
        "by_area_px": summarise(rows, "area"),
        "by_pieces (3 = 3 or more)": summarise(rows, "pieces"),
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
