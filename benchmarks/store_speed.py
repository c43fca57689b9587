"""Project store speed on a generated project of 10,000 images and 1,000,000 annotations.

The project is written straight into a new project file with `executemany` in one
transaction: 10,000 images of 1500 x 2250 pixels (the displayed frame), 100 annotations
each, every mask a small ellipse (compressed COCO RLE of the full frame, drawn from a
pool of 500 pre-encoded masks). Then, through the public `Project` API:

- open: `Project.open` with the full `PRAGMA integrity_check` (and with quick_check);
- list: `annotations(image_id)` of one image (100 annotations), median of 200 images;
- brush: `paint(annotation, stroke, True)` of a 20-pixel-radius stroke, one transaction
  committed with synchronous=FULL, median of 100 strokes;
- undo: `undo(image_id)` of that stroke, median of 100;
- export: every annotation to a COCO instances JSON with RLE segmentation through
  `document.exchange.export_project` (the path `samstudio export` takes), annotations
  per second.

Each figure is printed with its target from the issue and the ratio measured/target
(below 1 is within target). Prints JSON.

    .venv/bin/python benchmarks/store_speed.py [--images 10000 --per-image 100]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from samstudio.core.document import Project  # noqa: E402
from samstudio.core.document.exchange import export_project  # noqa: E402
from samstudio.core.document.history import encode_mask_columns  # noqa: E402
from samstudio.core.store import Store  # noqa: E402

H, W = 1500, 2250
COCO_ANNOTATION = re.compile(r'"iscrowd": ')
TARGETS_MS = {"open": 2000.0, "list_one_image": 20.0, "brush_commit": 10.0, "undo": 10.0}


def _ellipse(rng: random.Random) -> np.ndarray:
    m = np.zeros((H, W), bool)
    cy, cx = rng.uniform(50, H - 50), rng.uniform(50, W - 50)
    ry, rx = rng.uniform(8, 40), rng.uniform(8, 40)
    y0, y1 = int(cy - ry), int(cy + ry) + 1
    x0, x1 = int(cx - rx), int(cx + rx) + 1
    yy, xx = np.ogrid[y0:y1, x0:x1]
    m[y0:y1, x0:x1] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    return m


def generate(path: Path, n_images: int, per_image: int, seed: int = 0) -> float:
    """Write the project file; returns seconds taken."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    pool = [encode_mask_columns(_ellipse(rng)) for _ in range(500)]
    store = Store(path, create=True)
    now = time.time()
    with store.transaction("generating") as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('root', '.')")
        conn.executemany(
            "INSERT INTO categories (id, name, color) VALUES (?, ?, ?)",
            [(i, f"category {i}", f"#{i * 20:02x}8040") for i in range(1, 11)],
        )
        conn.executemany(
            "INSERT INTO images (id, path, width, height, content_hash) VALUES (?, ?, ?, ?, ?)",
            ((i, f"images/{i:06d}.jpg", W, H, f"{i:064x}") for i in range(1, n_images + 1)),
        )

        def rows():  # type: ignore[no-untyped-def]
            for image_id in range(1, n_images + 1):
                for _ in range(per_image):
                    counts, bbox, area = pool[rng.randrange(len(pool))]
                    yield (
                        image_id,
                        rng.randint(1, 10),
                        H,
                        W,
                        counts,
                        *bbox,
                        area,
                        "auto",
                        0.9,
                        0.95,
                        "bench",
                        now,
                        now,
                    )

        conn.executemany(
            "INSERT INTO annotations (image_id, category_id, height, width, counts, bbox_x, bbox_y, "
            "bbox_w, bbox_h, area, source, predicted_iou, stability_score, author, created, modified) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )
    store.close()
    return time.perf_counter() - t0


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def measure(
    path: Path, n_images: int, seed: int = 1, skip_export: bool = False
) -> dict[str, object]:
    rng = random.Random(seed)
    out: dict[str, object] = {}
    opens, opens_cpu = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.thread_time()
        Project.open(path, check="full").close()
        opens.append(time.perf_counter() - t0)
        opens_cpu.append(time.thread_time() - c0)
    out["open_ms"] = _median_ms(opens)
    out["open_cpu_ms"] = _median_ms(opens_cpu)
    # Reference in the same run: SQLite's own integrity_check of the file, nothing else.
    refs = []
    for _ in range(3):
        t0 = time.perf_counter()
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        conn.execute("PRAGMA integrity_check").fetchall()
        conn.close()
        refs.append(time.perf_counter() - t0)
    out["reference_bare_integrity_check_ms"] = _median_ms(refs)
    t0 = time.perf_counter()
    Project.open(path, check="quick").close()
    out["open_quick_check_ms"] = round((time.perf_counter() - t0) * 1000, 3)

    with Project.open(path, check="none") as project:
        lists, n_listed = [], 0
        for _ in range(200):
            image_id = rng.randint(1, n_images)
            t0 = time.perf_counter()
            anns = project.annotations(image_id)
            lists.append(time.perf_counter() - t0)
            n_listed = len(anns)
        out["list_one_image_ms"] = _median_ms(lists)
        out["annotations_per_image"] = n_listed

        brush, undo, brush_cpu, undo_cpu = [], [], [], []
        yy, xx = np.ogrid[:H, :W]
        for _ in range(100):
            image_id = rng.randint(1, n_images)
            ann = project.annotations(image_id)[0]
            x, y, w, h = ann.bbox
            cy, cx = y + h, x + w  # a stroke over the mask's lower-right edge
            stroke = (yy - cy) ** 2 + (xx - cx) ** 2 <= 20**2
            t0, c0 = time.perf_counter(), time.thread_time()
            project.paint(ann.id, stroke, True)
            brush.append(time.perf_counter() - t0)
            brush_cpu.append(time.thread_time() - c0)
            t0, c0 = time.perf_counter(), time.thread_time()
            assert project.undo(image_id)
            undo.append(time.perf_counter() - t0)
            undo_cpu.append(time.thread_time() - c0)
        # Reference in the same run: the durable commit of one tiny row on the same
        # connection (BEGIN IMMEDIATE, UPDATE, COMMIT with the WAL fsync), the floor under
        # every edit.
        floor = []
        conn = project.store.conn
        for i in range(100):
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('bench', ?)", (str(i),))
            conn.execute("COMMIT")
            floor.append(time.perf_counter() - t0)
        out["reference_bare_commit_ms"] = _median_ms(floor)
        out["brush_commit_ms"] = _median_ms(brush)
        out["undo_ms"] = _median_ms(undo)
        out["brush_commit_p95_ms"] = round(sorted(brush)[94] * 1000, 3)
        # CPU time of the calling thread: what the code costs, without the waits for
        # fsync and for the scheduler on a shared machine.
        out["brush_commit_cpu_ms"] = _median_ms(brush_cpu)
        out["undo_cpu_ms"] = _median_ms(undo_cpu)

        if skip_export:
            return out
        export_path = path.with_suffix(".coco.json")
        t0 = time.perf_counter()
        _, problems = export_project(project, "coco-rle", export_path)
        dt = time.perf_counter() - t0
        n = len(COCO_ANNOTATION.findall(export_path.read_text()))
        out["export_problems"] = len(problems)
        out["export_annotations"] = n
        out["export_s"] = round(dt, 2)
        out["export_annotations_per_s"] = round(n / dt)
        out["export_json_mb"] = round(export_path.stat().st_size / 1e6, 1)
        export_path.unlink()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--per-image", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--skip-export", action="store_true", help="measure open/list/brush/undo only"
    )
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="samstudio-speed-"))
    path = workdir / "project.samstudio"
    try:
        if path.exists():
            gen_s = None
        else:
            gen_s = generate(path, args.images, args.per_image)
        result: dict[str, object] = {
            "benchmark": "store_speed",
            "images": args.images,
            "annotations": args.images * args.per_image,
            "image_frame": [H, W],
            "generate_s": None if gen_s is None else round(gen_s, 1),
            "file_mb": round(path.stat().st_size / 1e6, 1),
        }
        result.update(measure(path, args.images, skip_export=args.skip_export))
        result["targets_ms"] = TARGETS_MS
        result["ratio_to_target"] = {
            "open": round(float(result["open_ms"]) / TARGETS_MS["open"], 3),  # type: ignore[arg-type]
            "list_one_image": round(
                float(result["list_one_image_ms"]) / TARGETS_MS["list_one_image"], 3
            ),  # type: ignore[arg-type]
            "brush_commit": round(float(result["brush_commit_ms"]) / TARGETS_MS["brush_commit"], 3),  # type: ignore[arg-type]
            "undo": round(float(result["undo_ms"]) / TARGETS_MS["undo"], 3),  # type: ignore[arg-type]
        }
        result["ratio_to_reference"] = {
            "open_vs_bare_integrity_check": round(
                float(result["open_ms"]) / float(result["reference_bare_integrity_check_ms"]), 3
            ),  # type: ignore[arg-type]
            "brush_vs_bare_commit": round(
                float(result["brush_commit_ms"]) / float(result["reference_bare_commit_ms"]), 3
            ),  # type: ignore[arg-type]
            "undo_vs_bare_commit": round(
                float(result["undo_ms"]) / float(result["reference_bare_commit_ms"]), 3
            ),  # type: ignore[arg-type]
        }
        result["cpu_count"] = os.cpu_count()
        result["load_average_1min"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
