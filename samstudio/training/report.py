"""Figures and pictures for the demo model's card (torch for timing; the pictures
and the evaluation go through any `Segmenter`).

    python -m samstudio.training.report --model resources/models/samstudio-demo/model.pt \
        --out resources/models/samstudio-demo --photos ../shared/data/sam_demo_photos

writes `eval_synthetic.json` (§D.1 on held-out synthetic scenes), `encoder_timing.json`,
`samples/*.png` (a few clicks on real photos and on a held-out scene: the clicked
point and the top-ranked mask) and `SHA256SUMS`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from samstudio.core.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from samstudio.inference.types import Prompts, Segmenter

# Clicks (x, y) in the original frame of SAM's own demo photos.
PHOTO_CLICKS: dict[str, list[tuple[int, int]]] = {
    "sam1_truck.jpg": [(500, 375), (562, 733), (1080, 540)],
    "sam1_dog.jpg": [(570, 190), (310, 300)],
    "sam1_groceries.jpg": [(470, 260), (80, 100)],
}
COLOURS = [(30, 144, 255), (255, 80, 40), (60, 200, 60)]


def overlay(
    image: np.ndarray, masks: list[np.ndarray], points: list[tuple[int, int]]
) -> np.ndarray:
    """(H, W, 3) uint8 RGB with each mask tinted and outlined and each click drawn."""
    out = image.astype(np.float32)
    for i, m in enumerate(masks):
        c = np.array(COLOURS[i % len(COLOURS)], np.float32)
        out[m] = 0.45 * out[m] + 0.55 * c
    out8 = out.astype(np.uint8)
    thick = max(1, round(max(image.shape[:2]) / 300))
    for i, m in enumerate(masks):
        contours, _ = cv2.findContours(
            m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        cv2.drawContours(out8, contours, -1, COLOURS[i % len(COLOURS)], thick)
    for x, y in points:
        r = max(3, round(max(image.shape[:2]) / 80))
        cv2.circle(out8, (int(x), int(y)), r, (255, 255, 255), -1)
        cv2.circle(out8, (int(x), int(y)), r, (0, 0, 0), max(1, r // 3))
    return out8


def small_png(image: np.ndarray, long_side: int = 360) -> bytes:
    """PNG bytes of an RGB image scaled so its long side is `long_side`."""
    h, w = image.shape[:2]
    s = long_side / max(h, w)
    small = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def photo_samples(seg: Segmenter, photos: Path, out: Path) -> list[dict[str, object]]:
    """One picture per photo: each click's top-ranked mask. Returns what was drawn."""
    from PIL import Image, ImageOps

    records: list[dict[str, object]] = []
    for name, clicks in PHOTO_CLICKS.items():
        path = photos / name
        if not path.is_file():
            continue
        with Image.open(path) as im:
            image = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        emb = seg.encode(image)
        masks = []
        for x, y in clicks:
            pred = seg.decode(emb, Prompts(np.array([[x, y]], np.float32), np.array([1])))
            masks.append(pred.masks[0])
            records.append(
                {
                    "photo": name,
                    "click": [x, y],
                    "predicted_iou": round(float(pred.iou_predictions[0]), 3),
                    "mask_fraction_of_image": round(float(pred.masks[0].mean()), 4),
                }
            )
        png = small_png(overlay(image, masks, clicks))
        atomic_write_bytes(out / f"{Path(name).stem}_clicks.png", png)
    return records


def synthetic_sample(seg: Segmenter, out: Path, seed: int = 10_000_003) -> None:
    """A held-out scene: ground truth beside the masks from one centre click each."""
    from samstudio.core.point_eval import farthest_from_boundary
    from samstudio.training.synthetic import make_scene

    scene = make_scene(seed)
    emb = seg.encode(scene.image)
    tops = [i for i, p in enumerate(scene.parents) if p < 0][:3]
    clicks = [farthest_from_boundary(scene.masks[i]) for i in tops]
    preds = [
        seg.decode(emb, Prompts(np.array([c], np.float32), np.array([1]))).masks[0] for c in clicks
    ]
    gt = overlay(scene.image, [scene.masks[i] for i in tops], clicks)
    pr = overlay(scene.image, preds, clicks)
    sep = np.full((scene.image.shape[0], 6, 3), 255, np.uint8)
    atomic_write_bytes(
        out / "synthetic_heldout_truth_vs_prediction.png",
        small_png(np.concatenate([gt, sep, pr], axis=1), 520),
    )


def encoder_timing(model: Path, repeats: int = 5) -> dict[str, object]:
    """Median wall time of `encode` on a 1800x1200 photo-sized image, 1 and 2 threads."""
    import torch

    from samstudio.inference.torch_backend import TorchSegmenter

    seg = TorchSegmenter.from_checkpoint(model, device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (1200, 1800, 3), dtype=np.uint8)
    result: dict[str, object] = {"image": "1800x1200 RGB", "repeats": repeats}
    before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        seg.encode(image)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            seg.encode(image)
            times.append(time.perf_counter() - t)
        result[f"median_s_{threads}_threads"] = round(statistics.median(times), 4)
    torch.set_num_threads(before)
    return result


def write_sha256sums(folder: Path, names: list[str]) -> None:
    lines = []
    for name in names:
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        lines.append(f"{digest}  {name}")
    atomic_write_text(folder / "SHA256SUMS", "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--photos", default="")
    p.add_argument("--scenes", type=int, default=100, help="held-out synthetic scenes")
    p.add_argument("--skip-eval", action="store_true")
    args = p.parse_args(argv)
    from samstudio.core import point_eval
    from samstudio.inference.loader import open_model

    out = Path(args.out)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    seg = open_model(args.model, device="cpu")
    folder = Path(args.model).parent
    exported = sorted(f"onnx/{f.name}" for f in (folder / "onnx").glob("*") if f.is_file())
    write_sha256sums(folder, [Path(args.model).name, *exported])
    atomic_write_json(out / "encoder_timing.json", encoder_timing(Path(args.model)), indent=2)
    records = photo_samples(seg, Path(args.photos), out / "samples") if args.photos else []
    atomic_write_json(out / "samples" / "clicks.json", records, indent=2)
    synthetic_sample(seg, out / "samples")
    if not args.skip_eval:
        for first in ("center", "random"):
            report = point_eval.evaluate(
                seg, point_eval.synthetic_samples(args.scenes), first=first
            )
            data = report.to_json()
            data["dataset"] = {"synthetic": args.scenes, "seed": 10_000_000}
            atomic_write_json(out / f"eval_synthetic_{first}.json", data, indent=2)
            print(first)
            print(report.table(), flush=True)
    print(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
