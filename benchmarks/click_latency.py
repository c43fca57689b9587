"""Click latency: one foreground point, multimask, the chosen (top-IoU) mask at full size.

Times, on the same embedding and the same clicks, in one run:
- `torch`: our TorchSegmenter.decode + Prediction.mask(0) (upscales the chosen mask only);
- `reference`: Meta's SamPredictor.predict (upscales all 3 masks) + picking the top mask;
- `onnx` (with --onnx DIR): our ONNX Runtime backend, decode + mask(0).
Clicks alternate between backends so that load changes on a shared machine hit all of
them alike. Weights are seeded random vit_b (latency does not depend on the values).
Prints one JSON object (and writes it to --out when given).

    .venv/bin/python benchmarks/click_latency.py [--clicks 50] [--image IMG] [--onnx DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_IMAGE = REPO.parent / "shared" / "data" / "sam_demo_photos" / "mobilesamv2_test_1.jpg"


def load_or_make_image(path: Path | None) -> tuple[np.ndarray, str]:
    """The benchmark image (2250x1500 photo when present), else a generated 2250x1500."""
    from samstudio.core.images import load_image

    if path is not None and path.is_file():
        return load_image(path), str(path)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1500, 0:2250]
    image = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1).astype(np.float32)
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), "generated 2250x1500"


def random_vit_b(seed: int = 0) -> Any:
    import torch
    from segment_anything import sam_model_registry

    torch.manual_seed(seed)
    return sam_model_registry["vit_b"](checkpoint=None).eval()


def summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    return {
        "median": round(statistics.median(ms), 2),
        "p10": round(ms[int(0.1 * (len(ms) - 1))], 2),
        "p90": round(ms[int(0.9 * (len(ms) - 1))], 2),
        "min": round(ms[0], 2),
    }


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def emit(result: dict[str, Any], out: Path | None) -> None:
    """Print the result as JSON, and write it atomically to `out` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out is not None:
        from samstudio.core.atomic import atomic_write_text

        atomic_write_text(out, text + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--onnx", type=Path, help="an exported ONNX folder to time as well")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    parser.add_argument(
        "--threads", type=int, help="torch intra-op threads for everything (default: torch's)"
    )
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from segment_anything import SamPredictor

    from samstudio.inference.torch_backend import TorchSegmenter
    from samstudio.inference.types import Prompts

    image, image_name = load_or_make_image(args.image)
    height, width = image.shape[:2]
    sam = random_vit_b(args.seed)
    device = None if args.device == "auto" else args.device
    ours = TorchSegmenter(sam, "sam_vit_b-random", device=device, architecture="vit_b")
    reference = SamPredictor(sam)

    started = time.perf_counter()
    reference.set_image(image)
    reference_encode_s = time.perf_counter() - started
    started = time.perf_counter()
    embedding = ours.encode(image)
    ours_encode_s = time.perf_counter() - started
    feature_diff = float(
        np.abs(embedding.features - reference.features[0].float().cpu().numpy()).max()
    )

    onnx_model = onnx_embedding = None
    if args.onnx is not None:
        from samstudio.inference.loader import open_model

        onnx_model = open_model(args.onnx)
        onnx_embedding = onnx_model.encode(image)

    rng = np.random.default_rng(args.seed)
    clicks = rng.uniform([0, 0], [width, height], size=(args.warmup + args.clicks, 2))
    clicks = clicks.astype(np.float32)

    def ours_click(point: np.ndarray) -> tuple[np.ndarray, float]:
        prediction = ours.decode(embedding, Prompts(points=point[None], labels=[1]), True)
        decoded = time.perf_counter()
        return prediction.mask(0), decoded

    def reference_click(point: np.ndarray) -> tuple[np.ndarray, float]:
        masks, iou, _ = reference.predict(
            point_coords=point[None], point_labels=np.ones(1, np.int32), multimask_output=True
        )
        return masks[int(np.argmax(iou))], float("nan")

    def onnx_click(point: np.ndarray) -> tuple[np.ndarray, float]:
        assert onnx_model is not None and onnx_embedding is not None
        prediction = onnx_model.decode(
            onnx_embedding, Prompts(points=point[None], labels=[1]), True
        )
        decoded = time.perf_counter()
        return prediction.mask(0), decoded

    backends: dict[str, Callable[[np.ndarray], tuple[np.ndarray, float]]] = {
        "torch": ours_click,
        "reference": reference_click,
    }
    if onnx_model is not None:
        backends["onnx"] = onnx_click
    totals: dict[str, list[float]] = {name: [] for name in backends}
    decode_only: dict[str, list[float]] = {name: [] for name in backends}
    ious: dict[str, list[float]] = {name: [] for name in backends if name != "reference"}
    names = list(backends)
    with torch.inference_mode():
        for index, point in enumerate(clicks):
            order = names if index % 2 == 0 else names[::-1]
            chosen: dict[str, np.ndarray] = {}
            for name in order:
                start = time.perf_counter()
                mask, decoded = backends[name](point)
                end = time.perf_counter()
                chosen[name] = mask
                if index >= args.warmup:
                    totals[name].append(end - start)
                    if decoded == decoded:  # not NaN
                        decode_only[name].append(decoded - start)
            if index >= args.warmup:
                for name in ious:
                    ious[name].append(mask_iou(chosen[name], chosen["reference"]))

    result: dict[str, Any] = {
        "benchmark": "click_latency",
        "what": "1 foreground point, multimask, top mask upscaled to the full image",
        "image": image_name,
        "image_hw": [height, width],
        "clicks": args.clicks,
        "weights": f"random vit_b, seed {args.seed}",
        "device": ours.info.device,
        "gpu": torch.cuda.get_device_name(0) if ours.info.device.startswith("cuda") else None,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "encode_s": {"torch": round(ours_encode_s, 2), "reference": round(reference_encode_s, 2)},
        "features_max_abs_diff": feature_diff,
        "latency_ms": {name: summary(values) for name, values in totals.items()},
        "decode_only_ms": {name: summary(v) for name, v in decode_only.items() if v},
        "top_mask_iou_vs_reference": {
            name: {"mean": round(float(np.mean(v)), 5), "min": round(float(np.min(v)), 5)}
            for name, v in ious.items()
        },
    }
    ref_median = result["latency_ms"]["reference"]["median"]
    result["speedup_vs_reference"] = {
        name: round(ref_median / stats["median"], 2)
        for name, stats in result["latency_ms"].items()
        if name != "reference"
    }
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
