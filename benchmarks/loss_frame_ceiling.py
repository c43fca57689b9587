"""How well can low-res logits draw the held-out masks? The ceiling of a loss frame.

The decoder answers with low-res logits (4x its embedding grid: 64 x 64 for the demo
model's 256 px input); the app shows them upsampled (bilinear, `align_corners=False`)
to the image and thresholded at 0. For every mask of the held-out synthetic scenes
this prints, as JSON, the IoU of the shown mask with the exact mask when the logits are:
- `soft_target`: the mask area-averaged to the low-res grid, minus 0.5: the answer a
  loss computed in the low-res frame (against the area-averaged mask, stages 1-5 of
  the demo model) rewards as perfect;
- `optimised` (unless `--steps 0`): logits fitted by Adam for `--steps` steps to the
  upsampled mask itself (binary cross-entropy in the input frame, from the soft
  target), a lower bound on what any logits at that resolution can draw.
Mean IoU over all masks and by mask area (pixels) for each `--low` size. No model is
involved; these are properties of the frames, not of a network.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/loss_frame_ceiling.py [--scenes 100]
        [--low 64 --low 128] [--steps 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

AREA_BINS = ((0, 100), (100, 400), (400, 1600), (1600, None))


def shown_iou(logits: Any, masks: Any, size: int) -> np.ndarray:
    """(K,) IoU of upsampled (K, 1, r, r) logits > 0, cropped to masks (K, h, w)."""
    import torch.nn.functional as F

    h, w = masks.shape[1:]
    up = F.interpolate(logits, (size, size), mode="bilinear", align_corners=False)
    shown = up[:, 0, :h, :w] > 0
    inter = (shown & masks).flatten(1).sum(1).float()
    union = (shown | masks).flatten(1).sum(1).float()
    return (inter / union.clamp(min=1)).numpy()


def summary(ious: np.ndarray, areas: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {"mean_iou": round(float(ious.mean()), 4)}
    for lo, hi in AREA_BINS:
        sel = (areas >= lo) & (areas < (hi if hi is not None else np.inf))
        key = f"area_{lo}_{hi}" if hi is not None else f"area_{lo}_up"
        out[key] = {"masks": int(sel.sum()), "mean_iou": round(float(ious[sel].mean()), 4)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=10_000_000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--low", type=int, action="append", help="low-res side (default 64)")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from samstudio.training.synthetic import make_scene

    torch.set_num_threads(1)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "loss_frame_ceiling",
        "scenes": args.scenes,
        "first_seed": args.first_seed,
        "size": args.size,
        "optimise_steps": args.steps,
        "frames": {},
    }
    for low in args.low or [64]:
        soft, fitted, areas = [], [], []
        for seed in range(args.first_seed, args.first_seed + args.scenes):
            scene = make_scene(seed, size=args.size)
            masks = torch.from_numpy(scene.masks)
            if not len(masks):
                continue
            k, h, w = masks.shape
            padded = torch.zeros(k, 1, args.size, args.size)
            padded[:, 0, :h, :w] = masks.float()
            start = F.interpolate(padded, (low, low), mode="area") - 0.5
            soft.append(shown_iou(start, masks, args.size))
            areas.append(masks.flatten(1).sum(1).numpy())
            if args.steps:
                logits = (start * 8).requires_grad_(True)
                opt = torch.optim.Adam([logits], lr=0.3)
                for _ in range(args.steps):
                    up = F.interpolate(logits, (args.size, args.size), mode="bilinear")
                    loss = F.binary_cross_entropy_with_logits(
                        4 * up[:, :, :h, :w], padded[:, :, :h, :w]
                    )
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                fitted.append(shown_iou(logits.detach(), masks, args.size))
        area = np.concatenate(areas)
        frame: dict[str, Any] = {
            "masks": len(area),
            "soft_target": summary(np.concatenate(soft), area),
        }
        if fitted:
            frame["optimised"] = summary(np.concatenate(fitted), area)
        result["frames"][str(low)] = frame
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
