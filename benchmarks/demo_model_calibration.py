"""Would the paper's filters keep a model's good masks? Its quality scores against the truth.

Automatic mask generation keeps a candidate only when its predicted IoU is above 0.88
and its stability score (IoU of the masks at logit thresholds +1 and -1, on the
full-resolution logits, as Meta's generator and `samstudio.core.amg` compute it) is at
least 0.95. For one centre click (the point farthest from the boundary) on every mask of
generated scenes, each of the 3 candidates is compared with the true mask, and this
prints, as JSON, by bins of the candidate's true IoU: the mean predicted IoU, the share
with predicted IoU > 0.88, the median stability score, the share with stability >= 0.95,
and the share that passes both. The row that matters for auto-segment is the one of
candidates with true IoU >= 0.8 (what `tests/unit/test_amg.py` counts as found).

Would the logits pass the stability filter if they were calibrated? `temperature` gives
the mean pixel log-loss (binary cross-entropy against the true mask, full resolution) of
the logits multiplied by T, for the top-ranked candidate of every click (the masks a
user sees) and for the candidates with true IoU >= 0.8 alone, and the share of the
latter with stability >= 0.95 after the scaling (T > 1 sharpens; the masks at logit 0
do not change).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/demo_model_calibration.py
        [--model resources/models/samstudio-demo/model.pt] [--scenes 30] [--seed 11000000]
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

BINS = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01), (0.8, 1.01))
PRED_IOU, STABILITY = 0.88, 0.95
TEMPERATURES = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
GOOD = 0.8


def log_loss_sums(logits: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Summed pixel binary cross-entropy of logits * T against the 0/1 truth, per T."""
    sign = np.where(truth, -1.0, 1.0) * logits.astype(np.float64)
    return np.array([np.logaddexp(0.0, t * sign).sum() for t in TEMPERATURES])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(REPO / "resources/models/samstudio-demo/model.pt"))
    p.add_argument("--scenes", type=int, default=30)
    p.add_argument("--seed", type=int, default=11_000_000, help="first scene seed")
    args = p.parse_args(argv)

    from samstudio.core.point_eval import farthest_from_boundary, iou
    from samstudio.inference.loader import open_model
    from samstudio.inference.preprocess import stability_scores
    from samstudio.inference.types import Prompts
    from samstudio.training.synthetic import make_scene

    seg = open_model(args.model, device="cpu")
    true_iou, predicted, stability = [], [], []
    top_loss, good_loss = np.zeros(len(TEMPERATURES)), np.zeros(len(TEMPERATURES))
    top_pixels = good_pixels = 0
    good_stable = np.zeros(len(TEMPERATURES))
    t0 = time.perf_counter()
    for i in range(args.scenes):
        scene = make_scene(args.seed + i)
        emb = seg.encode(scene.image)
        for gt in scene.masks:
            x, y = farthest_from_boundary(gt)
            pred = seg.decode(emb, Prompts(np.array([[x, y]], np.float32), np.array([1])))
            for k in range(len(pred.iou_predictions)):
                logits = pred.mask_logits(k)
                true_iou.append(iou(logits > 0, gt))
                predicted.append(float(pred.iou_predictions[k]))
                stability.append(float(stability_scores(logits[None], 0.0, 1.0)[0]))
                if k == 0:  # `decode` ranks the candidates by predicted IoU
                    top_loss += log_loss_sums(logits, gt)
                    top_pixels += gt.size
                if true_iou[-1] >= GOOD:
                    good_loss += log_loss_sums(logits, gt)
                    good_pixels += gt.size
                    scaled = np.stack([logits * t for t in TEMPERATURES])
                    good_stable += stability_scores(scaled, 0.0, 1.0) >= STABILITY
    t, pr, st = (np.array(v) for v in (true_iou, predicted, stability))
    rows = []
    for lo, hi in BINS:
        m = (t >= lo) & (t < hi)
        n = int(m.sum())
        rows.append(
            {
                "true_iou": f"{lo}-{min(hi, 1.0)}",
                "candidates": n,
                "mean_predicted_iou": round(float(pr[m].mean()), 3) if n else None,
                "share_predicted_iou_above_0.88": round(float((pr[m] > PRED_IOU).mean()), 3)
                if n
                else None,
                "median_stability": round(float(np.median(st[m])), 3) if n else None,
                "share_stability_at_least_0.95": round(float((st[m] >= STABILITY).mean()), 3)
                if n
                else None,
                "share_passing_both": round(
                    float(((pr[m] > PRED_IOU) & (st[m] >= STABILITY)).mean()), 3
                )
                if n
                else None,
            }
        )
    result = {
        "model": args.model,
        "scenes": args.scenes,
        "first_seed": args.seed,
        "candidates": int(t.size),
        "seconds": round(time.perf_counter() - t0, 1),
        "correlation_predicted_true": round(float(np.corrcoef(pr, t)[0, 1]), 3),
        "by_true_iou": rows,
        "temperature": [
            {
                "T": temp,
                "top_ranked_log_loss": round(float(top_loss[i] / max(top_pixels, 1)), 4),
                "good_log_loss": round(float(good_loss[i] / max(good_pixels, 1)), 4),
                "good_share_stability_at_least_0.95": round(
                    float(good_stable[i] / max(int((t >= GOOD).sum()), 1)), 3
                ),
            }
            for i, temp in enumerate(TEMPERATURES)
        ],
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
