"""Image encoder time per image: our TorchSegmenter.encode vs Meta's SamPredictor.set_image.

Both run the same seeded random weights; ours preprocesses in numpy and, on the CPU,
computes the global attention in query-row chunks (`torch_encoder.FastImageEncoder`,
the same function; `features_max_abs_diff` reports how far the results are apart). Passes alternate (reference, ours, reference, ...)
so that load changes on a shared machine hit both alike. Prints one JSON object.

    .venv/bin/python benchmarks/encoder_speed.py [--repeats 2] [--image IMG]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from click_latency import DEFAULT_IMAGE, emit, load_or_make_image, random_vit_b  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--architecture", default="vit_b", choices=["vit_b", "vit_l", "vit_h"])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: auto)")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--threads", type=int, help="torch intra-op threads for everything (default: torch's)"
    )
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from segment_anything import SamPredictor, sam_model_registry

    from samstudio.inference.torch_backend import TorchSegmenter

    image, image_name = load_or_make_image(args.image)
    if args.architecture == "vit_b":
        sam = random_vit_b(0)
    else:
        torch.manual_seed(0)
        sam = sam_model_registry[args.architecture](checkpoint=None).eval()
    ours = TorchSegmenter(sam, f"sam_{args.architecture}-random", device=args.device)
    reference = SamPredictor(ours.sam)
    sync = torch.cuda.synchronize if ours.info.device.startswith("cuda") else (lambda: None)

    times: dict[str, list[float]] = {"reference": [], "torch": []}
    features: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        sync()
        start = time.perf_counter()
        reference.set_image(image)
        sync()
        times["reference"].append(time.perf_counter() - start)
        features["reference"] = reference.features[0].float().cpu().numpy()
        start = time.perf_counter()
        embedding = ours.encode(image)
        sync()
        times["torch"].append(time.perf_counter() - start)
        features["torch"] = embedding.features

    medians = {name: statistics.median(values) for name, values in times.items()}
    result: dict[str, Any] = {
        "benchmark": "encoder_speed",
        "architecture": args.architecture,
        "weights": "seeded random",
        "image": image_name,
        "image_hw": list(image.shape[:2]),
        "device": ours.info.device,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "repeats": args.repeats,
        "seconds": {name: [round(t, 3) for t in values] for name, values in times.items()},
        "median_s": {name: round(value, 3) for name, value in medians.items()},
        "speedup_vs_reference": round(medians["reference"] / medians["torch"], 3),
        "features_max_abs_diff": float(np.abs(features["torch"] - features["reference"]).max()),
    }
    if ours.info.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name(0)
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
