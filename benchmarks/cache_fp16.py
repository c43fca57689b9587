"""Should the embedding cache store features as float16 or float32? Measure it.

Encodes one real photo with SAM vit_b (seeded random weights by default) or any checkpoint
that `load_sam_checkpoint` reads (--checkpoint: official SAM or the SAM Studio demo model), rounds the features to float16 and back, and decodes the same
random single-point prompts (multimask, as a click does) from both with Meta's
`SamPredictor`. Prints JSON: per-mask IoU between the fp32 and fp16 results, how often
the top-ranked candidate changes, logit and predicted-IoU differences, the fraction of
pixels that flip, and the entry sizes in the cache format (samstudio.inference.cache).

    .venv/bin/python benchmarks/cache_fp16.py [--image PHOTO] [--points 50] [--checkpoint F]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_IMAGE = REPO.parent / "shared" / "data" / "sam_demo_photos" / "sam1_truck.jpg"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from segment_anything import SamPredictor, sam_model_registry

    from samstudio.core.masks import mask_iou
    from samstudio.inference.cache import encode_entry
    from samstudio.inference.types import ImageEmbedding

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.checkpoint is not None:
        from samstudio.inference.checkpoints import load_sam_checkpoint

        sam, arch = load_sam_checkpoint(args.checkpoint)
        weights = f"{args.checkpoint} ({arch})"
    else:
        sam = sam_model_registry["vit_b"]()
        weights = f"random vit_b, torch.manual_seed({args.seed})"
    sam.eval()
    predictor = SamPredictor(sam)

    image = np.asarray(ImageOps.exif_transpose(Image.open(args.image)).convert("RGB"))
    t0 = time.perf_counter()
    predictor.set_image(image)
    encode_s = time.perf_counter() - t0
    feats32 = predictor.features.clone()
    feats16 = feats32.half().float()
    f32 = feats32[0].numpy()
    rel_l2 = float(np.linalg.norm(f32 - feats16[0].numpy()) / np.linalg.norm(f32))

    rng = np.random.default_rng(args.seed)
    h, w = image.shape[:2]
    points = np.stack([rng.uniform(0, w, args.points), rng.uniform(0, h, args.points)], 1)
    ious: list[float] = []
    best_ious: list[float] = []
    flipped: list[float] = []
    nontrivial = 0
    top_changed = 0
    max_logit_diff = 0.0
    max_iou_pred_diff = 0.0
    t0 = time.perf_counter()
    for p in points:
        results = []
        for feats in (feats32, feats16):
            predictor.features = feats
            masks, iou_pred, low_res = predictor.predict(
                point_coords=p[None].astype(np.float32),
                point_labels=np.array([1]),
                multimask_output=True,
            )
            results.append((masks, iou_pred, low_res))
        (m32, i32, l32), (m16, i16, l16) = results
        for k in range(len(m32)):
            ious.append(mask_iou(m32[k], m16[k]))
            flipped.append(float((m32[k] != m16[k]).mean()))
            area = m32[k].mean()
            nontrivial += int(0.001 < area < 0.999)
        b32, b16 = int(np.argmax(i32)), int(np.argmax(i16))
        top_changed += int(b32 != b16)
        best_ious.append(mask_iou(m32[b32], m16[b16]))
        max_logit_diff = max(max_logit_diff, float(np.abs(l32 - l16).max()))
        max_iou_pred_diff = max(max_iou_pred_diff, float(np.abs(i32 - i16).max()))
    decode_s = time.perf_counter() - t0

    ih, iw = predictor.input_size
    emb = ImageEmbedding(f32, (h, w), (ih, iw), "benchmark", "benchmark")
    size16 = len(encode_entry("0" * 40, emb, np.dtype(np.float16)))
    size32 = len(encode_entry("0" * 40, emb, np.dtype(np.float32)))
    iou_arr = np.asarray(ious)
    report = {
        "benchmark": "cache_fp16",
        "weights": weights,
        "image": args.image.name,
        "image_size_hw": [h, w],
        "points": args.points,
        "masks_compared": len(ious),
        "masks_nontrivial": nontrivial,
        "feature_abs_max": float(np.abs(f32).max()),
        "feature_rel_l2_error_fp16": rel_l2,
        "mask_iou_mean": float(iou_arr.mean()),
        "mask_iou_min": float(iou_arr.min()),
        "mask_iou_p01": float(np.percentile(iou_arr, 1)),
        "best_mask_iou_mean": float(np.mean(best_ious)),
        "best_mask_iou_min": float(np.min(best_ious)),
        "top_candidate_changed": top_changed,
        "pixels_flipped_mean": float(np.mean(flipped)),
        "pixels_flipped_max": float(np.max(flipped)),
        "low_res_logit_max_abs_diff": max_logit_diff,
        "iou_prediction_max_abs_diff": max_iou_pred_diff,
        "entry_bytes_fp16": size16,
        "entry_bytes_fp32": size32,
        "size_ratio_fp16_over_fp32": size16 / size32,
        "encode_s": encode_s,
        "decode_pairs_s": decode_s,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
