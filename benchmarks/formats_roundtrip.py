"""Export and re-import 1,000 masks on 2250x1500 images, as COCO RLE and as COCO polygons.

    .venv/bin/python benchmarks/formats_roundtrip.py [--images 10] [--per-image 100]

Masks are SAM-like blobs (1-3 ellipses, some with holes) of very different sizes, held as
RLE as the project store holds them. Timed, for each encoding:

- ours: ``export_coco`` (polygons: decode, exact outline, simplification checked to
  IoU >= 0.98) and ``import_coco`` (parse, validate, recompute area and box);
- reference, in the same run: bare pycocotools + json (RLE: dump the RLEs, load and
  compute area/box; polygons: ``cv2.findContours`` outer+inner contours dumped as rings,
  loaded with ``frPyObjects``), the usual hand-written converter.

Prints JSON: seconds, ms per mask, file sizes, the ratio ours/reference, and the
fidelity (RLE: exact; polygons: IoU of re-imported vs source masks, ours and reference).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from samstudio.core.formats.coco import export_coco, import_coco  # noqa: E402
from samstudio.core.formats.records import Annotation, Category, Dataset, ImageRecord  # noqa: E402
from samstudio.core.masks import decode_rle, encode_rle, rle_iou  # noqa: E402

H, W = 1500, 2250


def make_dataset(n_images: int, per_image: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    ds = Dataset(categories=[Category(1, "object")])
    for i in range(n_images):
        ds.images.append(ImageRecord(i + 1, f"img_{i:03d}.jpg", W, H))
        for _ in range(per_image):
            m = np.zeros((H, W), np.uint8)
            scale = float(rng.choice([8, 30, 120, 400]))
            cx, cy = int(rng.integers(0, W)), int(rng.integers(0, H))
            for _ in range(int(rng.integers(1, 4))):
                ax = (
                    max(2, int(scale * rng.uniform(0.5, 1.5))),
                    max(2, int(scale * rng.uniform(0.5, 1.5))),
                )
                off = (int(cx + rng.normal(0, scale)), int(cy + rng.normal(0, scale)))
                cv2.ellipse(m, off, ax, float(rng.uniform(0, 180)), 0, 360, 1, -1)
            if rng.random() < 0.4:
                cv2.circle(m, (cx, cy), max(1, int(scale / 4)), 0, -1)
            if not m.any():
                m[min(cy, H - 1), min(cx, W - 1)] = 1
            ds.annotations.append(
                Annotation(
                    len(ds.annotations) + 1,
                    i + 1,
                    1,
                    encode_rle(m.astype(bool)),
                    predicted_iou=0.9,
                    stability_score=0.95,
                )
            )
    return ds


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def reference_rle(ds: Dataset, path: Path) -> tuple[float, float]:
    def export() -> None:
        anns = [
            {"id": a.id, "image_id": a.image_id, "category_id": 1, "segmentation": a.segmentation}
            for a in ds.annotations
        ]
        path.write_text(json.dumps({"annotations": anns}))

    def load() -> None:
        for a in json.loads(path.read_text())["annotations"]:
            seg = {
                "size": a["segmentation"]["size"],
                "counts": a["segmentation"]["counts"].encode(),
            }
            mask_utils.area(seg), mask_utils.toBbox(seg)

    return timed(export)[0], timed(load)[0]


def reference_polygons(ds: Dataset, path: Path) -> tuple[float, float, list[float]]:
    def export() -> None:
        anns = []
        for a in ds.annotations:
            m = decode_rle(a.segmentation).astype(np.uint8)  # type: ignore[arg-type]
            contours, _ = cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
            rings = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
            anns.append({"id": a.id, "image_id": a.image_id, "segmentation": rings})
        path.write_text(json.dumps({"annotations": anns}))

    rles: list[Any] = []

    def load() -> None:
        for a in json.loads(path.read_text())["annotations"]:
            rings = a["segmentation"]
            rles.append(
                mask_utils.merge(mask_utils.frPyObjects(rings, H, W))
                if rings
                else mask_utils.encode(np.zeros((H, W), np.uint8, order="F"))
            )

    t_export = timed(export)[0]
    t_load = timed(load)[0]
    ious = [
        float(mask_utils.iou([r], [_coco(a.segmentation)], [0])[0][0])
        for r, a in zip(rles, ds.annotations)
    ]
    return t_export, t_load, ious


def _coco(rle: Any) -> dict[str, Any]:
    return {"size": rle["size"], "counts": rle["counts"].encode()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--per-image", type=int, default=100)
    args = parser.parse_args()
    t_make, ds = timed(lambda: make_dataset(args.images, args.per_image))
    n = len(ds.annotations)
    areas = np.array([a.area for a in ds.annotations])
    result: dict[str, Any] = {
        "masks": n,
        "image_size": [W, H],
        "mask_area_px": {
            "min": int(areas.min()),
            "median": int(np.median(areas)),
            "max": int(areas.max()),
        },
        "setup_seconds": round(t_make, 1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for style in ("rle", "polygon"):
            path = folder / f"ours_{style}.json"
            t_export, _ = timed(lambda p=path, s=style: export_coco(ds, p, s))  # type: ignore[misc]
            t_import, (back, report) = timed(lambda p=path: import_coco(p))  # type: ignore[misc]
            assert not report.errors, str(report)
            if style == "rle":
                exact = all(
                    a.segmentation == b.segmentation
                    for a, b in zip(ds.annotations, back.annotations)
                )
                ref_export, ref_import = reference_rle(ds, folder / "ref_rle.json")
                fidelity: dict[str, Any] = {"exact": exact}
            else:
                ious = [
                    float(rle_iou([a.segmentation], [b.segmentation])[0, 0])
                    for a, b in zip(ds.annotations, back.annotations)
                ]  # type: ignore[list-item]
                ref_export, ref_import, ref_ious = reference_polygons(
                    ds, folder / "ref_polygon.json"
                )
                fidelity = {
                    "iou_min": round(min(ious), 4),
                    "iou_mean": round(float(np.mean(ious)), 4),
                    "share_iou_ge_0.98": round(float(np.mean(np.array(ious) >= 0.98)), 4),
                    "reference_iou_min": round(min(ref_ious), 4),
                    "reference_iou_mean": round(float(np.mean(ref_ious)), 4),
                    "reference_share_iou_ge_0.98": round(
                        float(np.mean(np.array(ref_ious) >= 0.98)), 4
                    ),
                }
            result[style] = {
                "export_s": round(t_export, 2),
                "import_s": round(t_import, 2),
                "export_ms_per_mask": round(1000 * t_export / n, 2),
                "import_ms_per_mask": round(1000 * t_import / n, 2),
                "file_mb": round(path.stat().st_size / 1e6, 2),
                "warnings": len(report.warnings),
                "reference_export_s": round(ref_export, 2),
                "reference_import_s": round(ref_import, 2),
                "ratio_export_vs_reference": round(t_export / ref_export, 2),
                "ratio_import_vs_reference": round(t_import / ref_import, 2),
                **fidelity,
            }
            print(f"{style}: {result[style]}", file=sys.stderr)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
