"""Inspect ▸ Evaluate on a project of a few hundred masks: how long the annotator's clicks
wait, and how many encoder passes the evaluation makes, printed as JSON.

The real window (offscreen Qt) with the shipped demo model and the on-disk embedding
cache (in a temporary folder) opens a generated project: IMAGES photos of SIZE with
MASKS accepted ellipses each. The evaluation runs twice (the second time the embeddings
can come from the cache). Meanwhile a "user" clicks the current image again and again
(a click every CLICK_EVERY_MS, when the previous one has been answered); each click's latency is
the worker's own `total_ms` (posted -> first candidate ready). Every task the evaluation
runs on the model thread is timed: the longest is the longest a click can wait for it.

Usage: .venv/bin/python benchmarks/evaluate_stall.py [--images 15] [--masks 20]
       [--points 1,3] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZE = (1024, 1536)  # (H, W)
CLICK_EVERY_MS = 400


def make_project(folder: Path, n_images: int, n_masks: int) -> Path:
    """Generated photos (gradients, shapes, noise; JPEG) and `n_masks` accepted ellipses
    (radii 20-200 px) on each."""
    from PIL import Image

    from samstudio.core.document import Project

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    h, w = SIZE
    yy, xx = np.mgrid[:h, :w]
    for i in range(n_images):
        image = np.stack([(xx + 7 * i) % 256, (yy * 2) % 256, (xx + yy) % 256], -1).astype(float)
        image += rng.normal(0, 10, image.shape)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
            folder / f"photo_{i:03d}.jpg", quality=90
        )
    project = Project.create(folder)
    try:
        for record in project.images():
            for _ in range(n_masks):
                cx, cy = rng.uniform(100, w - 100), rng.uniform(100, h - 100)
                rx, ry = rng.uniform(20, 200, 2)
                mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
                project.add_annotation(record.id, mask, None, "manual")
    finally:
        project.close()
    return folder


class CountingSegmenter:
    """The demo model, counting encoder passes (any thread)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.encodes = 0
        self._lock = threading.Lock()

    @property
    def info(self) -> Any:
        return self.inner.info

    def encode(self, image: np.ndarray) -> Any:
        with self._lock:
            self.encodes += 1
        return self.inner.encode(image)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def spin(app: Any, until: Any, timeout: float) -> None:
    from PySide6.QtCore import QEventLoop

    deadline = time.perf_counter() + timeout
    while not until() and time.perf_counter() < deadline:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)
    if not until():
        raise TimeoutError("the benchmark timed out")


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    v = sorted(values)
    return {
        "n": len(v),
        "median": round(statistics.median(v), 1),
        "p90": round(v[int(0.9 * (len(v) - 1))], 1),
        "max": round(v[-1], 1),
    }


def evaluate_once(app: Any, win: Any, counting: CountingSegmenter, points: str) -> dict[str, Any]:
    from PySide6.QtCore import QTimer

    from samstudio.inference.types import Prompts

    worker = win.worker
    tasks: list[float] = []
    original = worker._run_task

    def timed(seg: Any, task: Any) -> None:
        t0 = time.perf_counter()
        try:
            original(seg, task)
        finally:
            tasks.append((time.perf_counter() - t0) * 1000)

    worker._run_task = timed  # instance attribute: the worker thread looks it up per task
    latencies: list[float] = []
    state = {"in_flight": False, "done": False, "x": 200.0}

    def answered(result: Any) -> None:
        if state["in_flight"]:
            latencies.append(result.total_ms)
            state["in_flight"] = False

    def click() -> None:
        if state["in_flight"] or state["done"]:
            return
        state["in_flight"] = True
        state["x"] = 200.0 + (state["x"] + 37) % 800
        prompts = Prompts(np.array([[state["x"], 300.0]], np.float32), np.array([1]))
        worker.request_decode(win.annotator.image_id, prompts)

    worker.prediction_ready.connect(answered)
    timer = QTimer()
    timer.setInterval(CLICK_EVERY_MS)
    timer.timeout.connect(click)
    dialog = win.inspect_menu.evaluate.open_dialog()
    dialog.points.setText(points)
    dialog.max_masks.setValue(100_000)
    settled: list[bool] = []
    dialog.settled.connect(settled.append)
    encodes0 = counting.encodes
    t0 = time.perf_counter()
    timer.start()
    assert dialog.start() is not None
    spin(app, lambda: bool(settled), 1800)
    wall = time.perf_counter() - t0
    state["done"] = True
    timer.stop()
    spin(app, lambda: not state["in_flight"], 60)
    worker.prediction_ready.disconnect(answered)
    del worker._run_task
    result = dialog.current
    assert result is not None, dialog.message_text()
    return {
        "wall_s": round(wall, 2),
        "encoder_passes": counting.encodes - encodes0,
        "masks": result.report.n_masks,
        "images": result.report.n_images,
        "miou": {str(k): round(v, 6) for k, v in result.report.miou.items()},
        "model_thread_task_ms": summary(tasks),
        "click_latency_ms": summary(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=15)
    parser.add_argument("--masks", type=int, default=20, help="accepted masks per image")
    parser.add_argument("--points", default="1,3")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SAMSTUDIO_CACHE_DIR"] = str(Path(tmp) / "cache")
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        from samstudio.inference.loader import open_model
        from samstudio.ui.main_window import MainWindow
        from samstudio.ui.settings import Settings

        app = QApplication.instance() or QApplication([])
        folder = make_project(Path(tmp) / "project", args.images, args.masks)
        settings = Settings(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        win = MainWindow(settings=settings)  # with the on-disk embedding cache
        win.resize(1200, 800)
        win.show()
        counting = CountingSegmenter(open_model(None))
        loaded: list[Any] = []
        win.worker.model_loaded.connect(loaded.append)
        win.load_model(lambda: counting, "demo")
        spin(app, lambda: bool(loaded), 120)
        ready: list[int] = []
        win.worker.embedding_ready.connect(lambda *a: ready.append(a[0]))
        assert win.open_path(folder)
        spin(app, lambda: bool(ready), 120)
        time.sleep(0.5)
        spin(app, lambda: win.worker.busy_with == "", 120)  # let the prefetch settle
        runs = []
        try:
            for _ in range(args.runs):
                runs.append(evaluate_once(app, win, counting, args.points))
        finally:
            win.shutdown()
        print(
            json.dumps(
                {
                    "benchmark": "evaluate_stall",
                    "image_size": list(SIZE),
                    "images": args.images,
                    "masks_per_image": args.masks,
                    "points": args.points,
                    "model": counting.info.model_id,
                    "cpus": os.cpu_count(),
                    "runs": runs,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
