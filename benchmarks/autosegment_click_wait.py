"""How long a click waits for its candidates while Auto-segment ▸ All images runs,
printed as JSON.

The model thread runs auto-segment one step (one encoder pass or one decoder batch) per
task, and the annotator's decodes and the current image's encode go first. For
comparison, the same run with the earlier scheduling (one task per image: a click waits
for the rest of that image's mask generation) is timed in the same process, on the
same images and model, through the same worker and `AutoSegmentRun`.

For each scheme: a user clicks every `--think` seconds on the image on screen (one
point, three candidates; the wait is from posting the request to the candidates
arriving on the UI thread) and moves to the next image every `--clicks-per-image`
clicks (the wait is until its embedding is ready), until the run ends. Reference: the
same clicks with the model thread idle. The masks of both schemes are compared with
those of a run nobody interrupts (same masks, same order).

Usage: .venv/bin/python benchmarks/autosegment_click_wait.py [--model SPEC] [--images 4]
  [--preset default] [--size 1024]
SPEC: a checkpoint, an ONNX folder or a catalog name; default: the shipped demo model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from ui_latency import wait as spin  # noqa: E402  (the same event-loop wait)

from samstudio.ui.autosegment_run import AutoSegmentRun  # noqa: E402


class PerImageRun(AutoSegmentRun):
    """The earlier scheduling: one worker task runs a whole image's mask generation."""

    def _step(self, segmenter: Any) -> None:
        index = self._index
        more = self.advance(segmenter)
        while more and self._index == index:
            more = self.advance(segmenter)
        if more:
            self.worker.submit_task(self._step)


def scenes(folder: Path, count: int, size: int) -> list[tuple[int, str]]:
    """`count` generated scenes (long side `size` px) saved as PNG: (image id, path) pairs."""
    from samstudio.training.synthetic import make_scene

    images = []
    for i in range(count):
        path = folder / f"scene_{i}.png"
        Image.fromarray(make_scene(100 + i, size=size).image).save(path)
        images.append((i + 1, str(path)))
    return images


class User:
    """Clicks and moves to other images through the worker, as the annotator does."""

    def __init__(self, app: Any, worker: Any, images: list[tuple[int, str]]) -> None:
        self.app, self.worker, self.images = app, worker, images
        self.ready: set[int] = set()
        self.answers: dict[int, float] = {}
        self.rng = np.random.default_rng(0)
        worker.embedding_ready.connect(lambda image_id, *_: self.ready.add(image_id))
        worker.prediction_ready.connect(
            lambda cs: self.answers.setdefault(cs.request, time.perf_counter())
        )
        self.failures: list[str] = []
        worker.prediction_failed.connect(lambda *a: self.failures.append(f"decode {a}"))
        worker.embedding_failed.connect(lambda *a: self.failures.append(f"encode {a}"))

    def open(self, index: int) -> float:
        """Seconds until image `index`'s embedding is ready."""
        image_id, path = self.images[index]
        self.ready.discard(image_id)
        started = time.perf_counter()
        self.worker.open_image(image_id, path)
        spin(self.app, lambda: image_id in self.ready)
        return time.perf_counter() - started

    def click(self, index: int) -> float:
        """Milliseconds from posting a one-point request to its candidates arriving."""
        from samstudio.inference.types import Prompts

        image_id, path = self.images[index]
        with Image.open(path) as picture:
            width, height = picture.size
        x, y = self.rng.uniform(0.1, 0.9, 2) * (width, height)
        started = time.perf_counter()
        request = self.worker.request_decode(image_id, Prompts([[x, y]], [1]))
        spin(self.app, lambda: request in self.answers or bool(self.failures))
        if self.failures:
            raise RuntimeError(self.failures)
        return (self.answers[request] - started) * 1000


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
    }


def run_scheme(app: Any, user: User, cls: type, params: Any, args: Any) -> dict[str, Any]:
    """One auto-segment run over all images while the user clicks and moves on."""
    user.open(0)
    masks: dict[int, Any] = {}
    ended: list[bool] = []
    run = cls(user.worker, user.images, params)
    run.image_done.connect(lambda image_id, batch: masks.setdefault(image_id, batch))
    run.finished.connect(ended.append)
    clicks: list[float] = []
    moves: list[float] = []
    index = 0
    started = time.perf_counter()
    run.start()
    while not ended:
        deadline = time.perf_counter() + args.think
        spin(user.app, lambda d=deadline: bool(ended) or time.perf_counter() > d)
        if ended:
            break
        if len(clicks) % args.clicks_per_image == args.clicks_per_image - 1:
            index = (index + 1) % len(user.images)
            moves.append(user.open(index) * 1000)
        clicks.append(user.click(index))
    seconds = time.perf_counter() - started
    return {
        "click_wait_ms": summary(clicks),
        "next_image_wait_ms": summary(moves),
        "run_s": round(seconds, 2),
        "_masks": masks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model spec; default: the shipped demo model")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--preset", default="default", choices=["fast", "default", "paper"])
    parser.add_argument("--size", type=int, default=1024, help="long side of the generated scenes")
    parser.add_argument("--think", type=float, default=0.3, help="seconds between clicks")
    parser.add_argument("--clicks-per-image", type=int, default=3)
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    from samstudio.core.amg_params import AmgParams
    from samstudio.ui.inference_worker import InferenceWorker
    from samstudio.ui.model_menu import model_factory

    app = QApplication.instance() or QApplication([])
    params = {"fast": AmgParams.fast, "default": AmgParams, "paper": AmgParams.paper}[args.preset]()
    worker = InferenceWorker(disk_cache=None)
    worker.start()
    failed: list[str] = []
    worker.model_failed.connect(lambda label, message: failed.append(message))
    worker.load_model(model_factory(args.model), args.model or "demo")
    spin(app, lambda: worker.model_info is not None or bool(failed), 600)
    if failed:
        raise SystemExit(f"model {args.model or 'demo'}: {failed[0]}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            user = User(app, worker, scenes(Path(tmp), args.images, args.size))
            user.open(0)
            idle = [user.click(0) for _ in range(10)]
            # the masks of a run nobody interrupts
            alone = run_scheme(
                app,
                user,
                AutoSegmentRun,
                params,
                argparse.Namespace(think=1e9, clicks_per_image=args.clicks_per_image),
            )
            before = run_scheme(app, user, PerImageRun, params, args)
            after = run_scheme(app, user, AutoSegmentRun, params, args)
    finally:
        worker.stop()
    info = worker.model_info
    result = {
        "model": f"{info.model_id} · {info.backend} · {info.device}" if info else None,
        "preset": args.preset,
        "images": f"{args.images} generated scenes, long side {args.size} px",
        "click_wait_idle_ms": summary(idle),
        "uninterrupted_run_s": alone["run_s"],
    }
    for name, res in (("before_one_task_per_image", before), ("after_one_step_per_task", after)):
        res["same_masks_as_uninterrupted"] = same_masks(res.pop("_masks"), alone["_masks"])
        result[name] = res
    print(json.dumps(result, indent=2))


def same_masks(got: dict[int, Any], expected: dict[int, Any]) -> bool:
    """True when every image has the same masks, scores and prompts, in the same order."""
    return got.keys() == expected.keys() and all(
        (got[i].masks, got[i].predicted_ious, got[i].prompts)
        == (expected[i].masks, expected[i].predicted_ious, expected[i].prompts)
        for i in expected
    )


if __name__ == "__main__":
    main()
