"""Automatic mask generation: SAM Studio's pipeline vs Meta's SamAutomaticMaskGenerator.

Same weights, same image, same parameters, one process. Prints one JSON object:
- per configuration: wall time of each side (encoding included), the ratio
  reference / ours, our time split (encoder, decoder calls, everything else), how far we
  are above the floor (encoder + decoder), the mask counts of both sides and how many
  masks of each side have a partner with IoU >= 0.95 on the other;
- optionally the adaptive mode against the full grid: decoder calls, time, and recall
  (share of the full grid's masks that adaptive mode finds with IoU >= 0.95).

    .venv/bin/python benchmarks/amg_speed.py [--image PHOTO] [--model CKPT]
        [--points-per-side 32] [--config paper|relaxed]... [--adaptive]

Without --model the weights are a seeded random vit_b (PyTorch's default init, seed 0):
random weights predict IoUs near 0, so the paper's filters keep nothing and "relaxed"
(no IoU filter, stability >= 0.02) is where masks survive.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_IMAGE = REPO.parent / "shared" / "data" / "sam_demo_photos" / "mobilesamv2_test_1.jpg"

CONFIGS: dict[str, dict[str, Any]] = {
    # Meta's defaults = the paper's filters (no crops, no region cleaning).
    "paper": {},
    "relaxed": {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.02},
    "paper_crops": {"crop_n_layers": 1, "min_mask_region_area": 100},
}


class TimedSegmenter:
    """Wraps a Segmenter and adds up the seconds spent in encode and decode calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.encode_s = 0.0
        self.decode_s = 0.0
        self.decoded_points = 0

    @property
    def info(self) -> Any:
        return self.inner.info

    def encode(self, image: np.ndarray) -> Any:
        t = time.perf_counter()
        try:
            return self.inner.encode(image)
        finally:
            self.encode_s += time.perf_counter() - t

    def decode(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.decode(*args, **kwargs)

    def decode_points_batch(
        self, embedding: Any, points: np.ndarray, multimask: bool = True
    ) -> Any:
        t = time.perf_counter()
        try:
            return self.inner.decode_points_batch(embedding, points, multimask=multimask)
        finally:
            self.decode_s += time.perf_counter() - t
            self.decoded_points += len(points)


def match_rates(ours: list[dict[str, Any]], ref: list[dict[str, Any]]) -> dict[str, Any]:
    from samstudio.core.masks import rle_iou

    iou = rle_iou(ours, ref)
    out: dict[str, Any] = {"ours": len(ours), "reference": len(ref)}
    out["ours_with_partner"] = float((iou.max(axis=1) >= 0.95).mean()) if iou.size else None
    out["reference_with_partner"] = float((iou.max(axis=0) >= 0.95).mean()) if iou.size else None
    if not ours and not ref:
        out["ours_with_partner"] = out["reference_with_partner"] = 1.0
    out["count_difference"] = abs(len(ours) - len(ref)) / max(len(ref), 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(DEFAULT_IMAGE))
    parser.add_argument("--model", help=".pth checkpoint (default: random vit_b, seed 0)")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--points-per-batch", type=int, default=64)
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS))
    parser.add_argument("--adaptive", action="store_true", help="also measure adaptive mode")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads for both sides (1: on a shared, busy CPU more threads "
        "spin-wait; pass 0 to keep torch's default)",
    )
    args = parser.parse_args()

    import torch
    from segment_anything import SamAutomaticMaskGenerator, sam_model_registry

    from samstudio.core.amg import AmgParams, generate_masks
    from samstudio.core.images import load_image
    from samstudio.inference.torch_backend import TorchSegmenter

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    image = load_image(args.image)
    if args.model:
        segmenter = TorchSegmenter.from_checkpoint(args.model, device="cpu")
        model_name = Path(args.model).name
    else:
        torch.manual_seed(0)
        sam = sam_model_registry["vit_b"](checkpoint=None).eval()
        segmenter = TorchSegmenter(sam, "sam_vit_b-random-seed0", device="cpu")
        model_name = "random vit_b (seed 0)"
    sam = segmenter.sam
    result: dict[str, Any] = {
        "benchmark": "amg_speed",
        "image": Path(args.image).name,
        "image_hw": list(image.shape[:2]),
        "model": model_name,
        "points_per_side": args.points_per_side,
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average": list(os.getloadavg()),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "configs": {},
    }
    for name in args.config or ["paper", "relaxed"]:
        extra = CONFIGS[name]
        common = {
            "points_per_side": args.points_per_side,
            "points_per_batch": args.points_per_batch,
            **extra,
        }
        params = AmgParams(max_mask_area_fraction=None, **common)  # Meta has no 95% filter
        timed = TimedSegmenter(segmenter)
        t0, c0 = time.perf_counter(), time.process_time()
        ours = generate_masks(timed, image, params)
        ours_s = time.perf_counter() - t0
        ours_cpu = time.process_time() - c0
        entry: dict[str, Any] = {
            "params": common,
            "ours_s": round(ours_s, 2),
            "ours_cpu_s": round(ours_cpu, 2),
            "ours_encode_s": round(timed.encode_s, 2),
            "ours_decode_s": round(timed.decode_s, 2),
            "ours_other_s": round(ours_s - timed.encode_s - timed.decode_s, 2),
            "ours_over_floor": round(ours_s / max(timed.encode_s + timed.decode_s, 1e-9), 3),
            "decoded_points": timed.decoded_points,
        }
        print(json.dumps({"progress": name, **entry}), file=sys.stderr, flush=True)
        if not args.skip_reference:
            generator = SamAutomaticMaskGenerator(sam, output_mode="coco_rle", **common)
            t0, c0 = time.perf_counter(), time.process_time()
            with torch.inference_mode():
                reference = generator.generate(image)
            ref_s = time.perf_counter() - t0
            ref_cpu = time.process_time() - c0
            entry["reference_s"] = round(ref_s, 2)
            entry["reference_cpu_s"] = round(ref_cpu, 2)
            entry["speedup"] = round(ref_s / ours_s, 2)
            entry["speedup_cpu"] = round(ref_cpu / max(ours_cpu, 1e-9), 2)
            entry["masks"] = match_rates(
                [r.segmentation for r in ours], [r["segmentation"] for r in reference]
            )
        if args.adaptive:
            timed_a = TimedSegmenter(segmenter)
            t0 = time.perf_counter()
            adaptive = generate_masks(
                timed_a, image, AmgParams(max_mask_area_fraction=None, adaptive=True, **common)
            )
            adaptive_s = time.perf_counter() - t0
            rates = match_rates([r.segmentation for r in adaptive], [r.segmentation for r in ours])
            entry["adaptive"] = {
                "seconds": round(adaptive_s, 2),
                "speedup_vs_full_grid": round(ours_s / adaptive_s, 2),
                "decoded_points": timed_a.decoded_points,
                "fewer_decoder_calls": round(
                    timed.decoded_points / max(timed_a.decoded_points, 1), 2
                ),
                "masks": len(adaptive),
                "recall_of_full_grid": rates["reference_with_partner"],
            }
        result["configs"][name] = entry
        print(json.dumps({"progress": name, **entry}), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
