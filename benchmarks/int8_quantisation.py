"""Is dynamic int8 quantisation of the ONNX decoder (and encoder) worth offering?

Quantises an exported pair with `onnxruntime.quantization.quantize_dynamic` (int8
weights, activations quantised on the fly) and compares it with the fp32 pair on the
same photo and the same seeded random clicks (one foreground point, multimask, the
best candidate upscaled to full size, as a click in the annotator):

- decoder: click latency fp32 vs int8 (interleaved), and the IoU between the best mask
  of each, plus how often the best-ranked candidate changes;
- encoder (unless --skip-encoder): time fp32 vs int8, relative L2 change of the
  features, and the same click masks decoded (fp32 decoder) from the int8 features.

Weights: seeded random vit_b by default (onnx_speed.random_vit_b) (say so when quoting the mask figures), or
--checkpoint FILE (e.g. the trained demo model) or --onnx-dir of an existing export.

    .venv/bin/python benchmarks/int8_quantisation.py [--onnx-dir DIR] [--clicks 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from onnx_speed import DEFAULT_IMAGE, load_image, mask_iou, random_vit_b, summary_ms  # noqa: E402


def quantise(src: Path, dst: Path, per_channel: bool) -> float:
    """Dynamic int8 quantisation of one graph; returns the seconds it took."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    t0 = time.perf_counter()
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel)
    return time.perf_counter() - t0


def iou_stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {
        "mean": round(float(arr.mean()), 4),
        "median": round(float(np.median(arr)), 4),
        "min": round(float(arr.min()), 4),
        "fraction_ge_0_99": round(float((arr >= 0.99).mean()), 3),
        "fraction_ge_0_95": round(float((arr >= 0.95).mean()), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--onnx-dir", type=Path, default=None)
    parser.add_argument("--skip-encoder", action="store_true")
    parser.add_argument("--per-channel", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import onnxruntime as ort

    from samstudio.inference.onnx_backend import (
        OnnxSegmenter,
        cpu_threads,
        default_session_options,
        read_manifest,
    )
    from samstudio.inference.types import Prompts

    result: dict[str, Any] = {"benchmark": "int8_quantisation", "per_channel": args.per_channel}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        onnx_dir = args.onnx_dir
        if onnx_dir is None:
            from samstudio.inference.onnx_export import export_onnx

            if args.checkpoint is not None:
                onnx_dir = export_onnx(args.checkpoint, work / "fp32")
                result["weights"] = str(args.checkpoint)
            else:
                sam = random_vit_b(args.seed)
                onnx_dir = export_onnx(sam, work / "fp32", architecture="vit_b")
                result["weights"] = f"random vit_b (seed {args.seed}, hypernetwork outputs x10)"
        else:
            result["weights"] = f"export in {onnx_dir}"
        manifest = read_manifest(onnx_dir)
        result["model"] = {
            "model_id": manifest["model_id"],
            "architecture": manifest["architecture"],
        }

        def session(path: Path) -> Any:
            options = default_session_options(memory_arena="decoder" in path.name)
            return ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )

        enc_fp32 = session(onnx_dir / manifest["files"]["encoder"]["path"])
        dec_fp32_path = onnx_dir / manifest["files"]["decoder"]["path"]
        dec_int8_path = work / "decoder_int8.onnx"
        q_dec_s = quantise(dec_fp32_path, dec_int8_path, args.per_channel)
        fp32 = OnnxSegmenter(enc_fp32, session(dec_fp32_path), manifest)
        int8_dec = OnnxSegmenter(enc_fp32, session(dec_int8_path), manifest)
        result["sizes_mb"] = {
            "decoder_fp32": round(dec_fp32_path.stat().st_size / 2**20, 1),
            "decoder_int8": round(dec_int8_path.stat().st_size / 2**20, 1),
        }

        image, image_desc = load_image(args.image, args.seed)
        h, w = image.shape[:2]
        t0 = time.perf_counter()
        emb = fp32.encode(image)
        enc_fp32_s = time.perf_counter() - t0

        rng = np.random.default_rng(args.seed)
        points = rng.uniform([0, 0], [w - 1, h - 1], size=(args.clicks + 3, 2)).astype(np.float32)

        def click(seg: OnnxSegmenter, embedding: Any, point: np.ndarray) -> tuple[float, Any, Any]:
            t = time.perf_counter()
            pred = seg.decode(embedding, Prompts(points=point[None], labels=[1]), True)
            best = pred.mask(0)
            return time.perf_counter() - t, pred, best

        t_fp32: list[float] = []
        t_int8: list[float] = []
        ious: list[float] = []
        logit_diff: list[float] = []
        same_best = 0
        for i, point in enumerate(points):
            runs = {}
            for which in ("fp32", "int8") if i % 2 == 0 else ("int8", "fp32"):
                seg = fp32 if which == "fp32" else int8_dec
                runs[which] = click(seg, emb, point)
            if i < 3:
                continue  # warm-up
            t_fp32.append(runs["fp32"][0])
            t_int8.append(runs["int8"][0])
            ious.append(mask_iou(runs["fp32"][2], runs["int8"][2]))
            a, b = runs["fp32"][1], runs["int8"][1]
            # The int8 best candidate is "the same" when it is nearest to fp32's best.
            nearest = np.abs(a.low_res_logits - b.low_res_logits[0]).mean(axis=(1, 2)).argmin()
            same_best += int(nearest == 0)
            logit_diff.append(float(np.abs(a.low_res_logits[0] - b.low_res_logits[0]).mean()))
        fp32_ms, int8_ms = summary_ms(t_fp32), summary_ms(t_int8)
        result["image"] = {"path": image_desc, "hw": [h, w]}
        result["decoder"] = {
            "quantise_s": round(q_dec_s, 1),
            "click_fp32_ms": fp32_ms,
            "click_int8_ms": int8_ms,
            "speedup": round(fp32_ms["median"] / int8_ms["median"], 2),
            "best_mask_iou_int8_vs_fp32": iou_stats(ious),
            "best_candidate_kept": f"{same_best}/{len(ious)}",
            "mean_abs_logit_change_best": round(float(np.mean(logit_diff)), 4),
        }

        if not args.skip_encoder:
            enc_int8_path = work / "encoder_int8.onnx"
            enc_src = onnx_dir / manifest["files"]["encoder"]["path"]
            q_enc_s = quantise(enc_src, enc_int8_path, args.per_channel)
            int8_enc = OnnxSegmenter(session(enc_int8_path), session(dec_fp32_path), manifest)
            t0 = time.perf_counter()
            emb8 = int8_enc.encode(image)
            enc_int8_s = time.perf_counter() - t0
            diff = emb8.features - emb.features
            enc_ious = []
            for point in points[3:]:
                _, _, best_a = click(fp32, emb, point)
                _, _, best_b = click(fp32, emb8, point)
                enc_ious.append(mask_iou(best_a, best_b))
            result["encoder"] = {
                "quantise_s": round(q_enc_s, 1),
                "fp32_s": round(enc_fp32_s, 2),
                "int8_s": round(enc_int8_s, 2),
                "speedup": round(enc_fp32_s / enc_int8_s, 2),
                "features_rel_l2_change": float(
                    np.linalg.norm(diff) / np.linalg.norm(emb.features)
                ),
                "sizes_mb": {
                    "fp32": round(enc_src.stat().st_size / 2**20, 1),
                    "int8": round(enc_int8_path.stat().st_size / 2**20, 1),
                },
                "best_mask_iou_int8_features_vs_fp32": iou_stats(enc_ious),
            }
    result["machine"] = {
        "usable_cores": cpu_threads(),
        "load_avg_end": [round(v, 2) for v in os.getloadavg()],
        "onnxruntime": ort.__version__,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
