"""What a bigger demo model would cost at inference: encoder, click, weights.

Issue 5 asks for a small encoder "sized for CPUs" (<= 1 s per image on the 2-core
machine, weights <= 20 MB) and the app promises clicks in tens of milliseconds. The
shipped model uses a fraction of that budget; a next stage on a lent GPU could train a
wider one. This builds the shipped architecture and wider variants (random weights: the
cost does not depend on them) and measures, against the shipped one in the same run:
parameters, float32 weight size, the image encoder on one 768 x 768 input (median of
`--repeats`, with 1 and 2 torch threads) and one click (prompt encoder and mask decoder,
one point, three masks; median of 25, 1 thread). Prints one JSON object.

    .venv/bin/python benchmarks/demo_arch_sizes.py [--repeats 5] [--variants shipped,decoder128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WIDER_ENCODER = {"stem_channels": 32, "stage_channels": [48, 96, 192]}
VARIANTS: dict[str, dict[str, Any]] = {
    "shipped": {},
    "encoder_x1.5": WIDER_ENCODER,
    "encoder_2_attention_blocks": {"attn_blocks": 2},
    "decoder128": {"embed_dim": 128, "decoder_mlp_dim": 512, "iou_head_hidden_dim": 128},
    "decoder256_like_sam": {"embed_dim": 256, "decoder_mlp_dim": 2048, "iou_head_hidden_dim": 256},
    "both_x1.5_128": {**WIDER_ENCODER, "embed_dim": 128, "decoder_mlp_dim": 512,
                      "iou_head_hidden_dim": 128},  # fmt: skip
}


def shipped_config() -> dict[str, Any]:
    from samstudio.training.config import load_config

    return dict(load_config(REPO / "resources/models/samstudio-demo/train_config.yaml")["model"])


def median_seconds(fn, repeats: int) -> float:  # noqa: ANN001
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(config: dict[str, Any], repeats: int) -> dict[str, Any]:
    import torch

    from samstudio.inference.demo_arch import build_demo_sam

    torch.manual_seed(0)
    sam = build_demo_sam(config).eval()
    size = int(sam.image_encoder.img_size)
    x = torch.randn(1, 3, size, size)
    params = sum(p.numel() for p in sam.parameters())
    out: dict[str, Any] = {"parameters": params, "weights_mb": round(params * 4 / 2**20, 2)}
    with torch.inference_mode():
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out[f"encoder_s_{threads}_thread"] = round(
                median_seconds(lambda: sam.image_encoder(x), repeats), 4
            )
        torch.set_num_threads(1)
        emb = sam.image_encoder(x)
        pe = sam.prompt_encoder.get_dense_pe()
        point = (torch.tensor([[[size / 3, size / 2]]]), torch.tensor([[1]]))

        def click() -> None:
            sparse, dense = sam.prompt_encoder(points=point, boxes=None, masks=None)
            sam.mask_decoder(
                image_embeddings=emb,
                image_pe=pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=True,
            )

        out["click_ms_1_thread"] = round(1000 * median_seconds(click, 25), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--variants", default=",".join(VARIANTS))
    args = p.parse_args(argv)
    base = shipped_config()
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    if "shipped" not in names:
        names.insert(0, "shipped")
    rows = {}
    for name in names:
        config = {**base, **VARIANTS[name]}
        rows[name] = {"changes": VARIANTS[name], **measure(config, args.repeats)}
        print(json.dumps({"progress": name}), file=sys.stderr)
    ref = rows["shipped"]
    for row in rows.values():
        row["vs_shipped"] = {
            key: round(row[key] / ref[key], 2)
            for key in ("parameters", "encoder_s_1_thread", "encoder_s_2_thread", "click_ms_1_thread")
        }
    print(json.dumps({"benchmark": "demo_arch_sizes", "img_size": base["img_size"],
                      "budget": {"encoder_s": 1.0, "weights_mb": 20}, "variants": rows},
                     indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
