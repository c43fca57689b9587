"""How many objects could automatic mask generation find at best with a model?

`tests/unit/test_amg.py::test_demo_model_finds_the_objects_of_generated_scenes` (issue 7:
the default pipeline finds >= 90% of the objects of generated scenes at IoU >= 0.8)
counts an object found when a kept mask matches it at IoU >= 0.8. A kept mask is one of
the three candidates of one point of the full grid, so the share of objects that *some*
candidate of *some* grid point matches at IoU >= 0.8 is a ceiling: no filter, NMS or
adaptive rule can find more. For each filter setting this prints, as JSON, the ceiling
among the candidates that pass the filters (before NMS) and what the generator finds
(`generate_masks`, as the test runs it), on the test's scenes by default.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/amg_ceiling.py [--model M]
        [--first-seed 10000500] [--scenes 4] [--filters 0.88/0.95,0.7/0.9,0.5/0.8]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

FOUND_IOU = 0.8


def candidate_scores(seg, image: np.ndarray, objects: np.ndarray, grid: int, emb=None):  # noqa: ANN001
    """For every candidate of the full grid (grid**2 points x 3): its best IoU with an
    object, that object's index, its predicted IoU and its stability score (on the
    full-resolution logits, as the generator computes it). `emb`: the image's embedding
    (computed when None)."""
    from samstudio.core.amg_grid import point_grid
    from samstudio.inference.preprocess import resized_shape, stability_scores, upscale_logits

    h, w = image.shape[:2]
    emb = seg.encode(image) if emb is None else emb
    points = (point_grid(grid) * np.array([w, h])).astype(np.float32)
    batch = seg.decode_points_batch(emb, points)
    size = int(batch.image_size)
    input_size = resized_shape(h, w, size)
    flat = objects.reshape(len(objects), -1).astype(np.float32)
    areas = flat.sum(axis=1)
    best, which, pred, stab = [], [], [], []
    for low, ious in zip(batch.low_res_logits, batch.iou_predictions, strict=True):
        logits = upscale_logits(low, input_size, (h, w), size)
        masks = (logits > 0).reshape(len(logits), -1).astype(np.float32)
        inter = masks @ flat.T  # (3, objects)
        union = masks.sum(axis=1)[:, None] + areas[None] - inter
        iou = inter / np.maximum(union, 1)
        best += list(iou.max(axis=1))
        which += list(iou.argmax(axis=1))
        pred += list(np.asarray(ious, np.float64))
        stab += list(stability_scores(logits, 0.0, 1.0))
    return np.array(best), np.array(which), np.array(pred), np.array(stab)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="default: the shipped demo model")
    p.add_argument("--first-seed", type=int, default=10_000_500)
    p.add_argument("--scenes", type=int, default=4)
    p.add_argument("--points-per-side", type=int, default=32)
    p.add_argument("--filters", default="0.88/0.95,0.7/0.9,0.5/0.8", help="PRED/STAB,...")
    args = p.parse_args(argv)

    from amg_adaptive_replay import ReplaySegmenter, objects_found

    from samstudio.core.amg import AmgParams, generate_masks
    from samstudio.core.masks import encode_rles
    from samstudio.inference.loader import open_model
    from samstudio.training.synthetic import make_scene

    filters = [tuple(float(v) for v in f.split("/")) for f in args.filters.split(",")]
    seg = open_model(args.model, device="cpu")
    t0 = time.perf_counter()
    objects = 0
    ceiling = {"no filter": 0} | {f"{a}/{b}": 0 for a, b in filters}
    found = {f"{a}/{b}": 0 for a, b in filters}
    kept = {f"{a}/{b}": 0 for a, b in filters}
    for seed in range(args.first_seed, args.first_seed + args.scenes):
        scene = make_scene(seed)
        n = len(scene.masks)
        objects += n
        emb = seg.encode(scene.image)
        best, which, pred, stab = candidate_scores(
            seg, scene.image, scene.masks, args.points_per_side, emb
        )
        # the generator's runs share one decoding of the grid (a point's output does not
        # depend on the filters) and the embedding
        replay, rles = ReplaySegmenter(seg), encode_rles(scene.masks)
        good = best >= FOUND_IOU
        ceiling["no filter"] += len(np.unique(which[good]))
        for a, b in filters:
            name = f"{a}/{b}"
            passes = good & (pred > a) & (stab >= b)
            ceiling[name] += len(np.unique(which[passes]))
            params = AmgParams(
                points_per_side=args.points_per_side, pred_iou_thresh=a, stability_score_thresh=b
            )
            records = generate_masks(replay, scene.image, params, embedding=emb)
            kept[name] += len(records)
            found[name] += int(objects_found(rles, [r.segmentation for r in records]).sum())
        print(json.dumps({"progress": seed, "objects": n}), file=sys.stderr)
    print(
        json.dumps(
            {
                "benchmark": "amg_ceiling",
                "model": seg.info.model_id,
                "seeds": [args.first_seed, args.first_seed + args.scenes - 1],
                "points_per_side": args.points_per_side,
                "objects": objects,
                "found_iou": FOUND_IOU,
                "ceiling_objects": ceiling,
                "generator_found": found,
                "generator_kept_masks": kept,
                "seconds": round(time.perf_counter() - t0, 1),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
