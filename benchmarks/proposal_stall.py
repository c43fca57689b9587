"""UI-thread stall while auto-segment's proposals enter the document, printed as JSON.

The real window (offscreen Qt, FakeSegmenter) shows a 2250x1500 photo; N generated masks
(random ellipses, compressed RLE as `core.amg` gives them) are added as proposals. A
QTimer ticks every 10 ms on the UI thread; the largest gap between ticks, in wall time
and in UI-thread CPU time (`time.thread_time`), is the stall a user would feel, from
the call until every overlay is drawn.

- `proposal_batch`: what the app does (`AutoSegmenter.add_proposals` with the
  `ProposalBatch` the worker thread builds; the store takes the RLE as it is, the
  redraw follows in later event-loop turns).
- `reference_decode_on_ui`: the same proposals added as the app did before (each mask
  decoded to full size on the UI thread and re-encoded by the store, redraw in the same
  turn), on a second image of the same size, in the same run.

Usage: .venv/bin/python benchmarks/proposal_stall.py [--masks 365] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

SIZE = (1500, 2250)  # (H, W)


def ellipses(count: int, seed: int = 0) -> list[Any]:
    """`count` MaskRecords of random ellipses (radii 10-150 px) on a SIZE image."""
    from samstudio.core.amg import MaskRecord
    from samstudio.core.masks import encode_rle, rle_area_bbox

    rng = np.random.default_rng(seed)
    h, w = SIZE
    out = []
    for _ in range(count):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(10, 150, 2)
        x0, x1 = max(0, int(cx - rx)), min(w, int(cx + rx) + 1)
        y0, y1 = max(0, int(cy - ry)), min(h, int(cy + ry) + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        m = np.zeros(SIZE, bool)
        m[y0:y1, x0:x1] = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
        rle = encode_rle(m)
        area, bbox = rle_area_bbox(rle)
        out.append(MaskRecord(rle, tuple(bbox), area, 0.9, 0.96, ((cx, cy),), (0, 0, w, h)))
    return out


class LazyMasks:
    """The records' full-size masks, decoded one at a time when read (as before)."""

    def __init__(self, records: list[Any]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.records[index].mask()


def add_decoding_on_ui(auto: Any, image_id: int, records: list[Any]) -> None:
    """The earlier `add_proposals`: one store operation fed full-size masks, then redraw."""
    from samstudio.ui.autosegment import PROPOSAL, proposal_prompts, record_steps

    a = auto.annotator
    record_steps(
        a.history,
        image_id,
        "Auto-segment",
        [
            lambda: a.project.add_annotations(
                image_id,
                LazyMasks(records),
                a.category_id,
                PROPOSAL,
                predicted_ious=[r.predicted_iou for r in records],
                stability_scores=[r.stability_score for r in records],
                prompts=[proposal_prompts(r) for r in records],
            )
        ],
    )
    a.refresh_instances()
    auto.proposals_added.emit(image_id, len(records))


def measure(app: Any, win: Any, add: Callable[[], None], count: int) -> dict[str, float]:
    """Largest tick gaps (wall, UI-thread CPU) from `add()` until `count` overlays show."""
    from PySide6.QtCore import QEventLoop, QTimer

    gaps: list[float] = []
    cpu_gaps: list[float] = []
    last = [time.perf_counter(), time.thread_time()]

    def tick() -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        gaps.append((now - last[0]) * 1000)
        cpu_gaps.append((cpu - last[1]) * 1000)
        last[0], last[1] = now, cpu

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    spin(app, 0.1)
    last[0], last[1] = time.perf_counter(), time.thread_time()
    timer.start()
    spin(app, 0.05)
    start = time.perf_counter()
    add()
    deadline = time.perf_counter() + 120
    while len(win.canvas.instance_ids()) < count and time.perf_counter() < deadline:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
    drawn = time.perf_counter() - start
    spin(app, 0.05)
    timer.stop()
    return {
        "worst_gap_ms": round(max(gaps), 1),
        "worst_cpu_ms": round(max(cpu_gaps), 1),
        "all_drawn_s": round(drawn, 3),
    }


def spin(app: Any, seconds: float) -> None:
    from PySide6.QtCore import QEventLoop

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)


def photos_window(prefix: str) -> Any:
    """The real window (FakeSegmenter, own settings) on a new folder of two SIZE photos."""
    from PySide6.QtCore import QSettings
    from ui.conftest import make_scene
    from ui.fakes import FakeSegmenter

    from samstudio.ui.main_window import MainWindow
    from samstudio.ui.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    (tmp / "photos").mkdir()
    for i in range(2):
        Image.fromarray(make_scene(i, SIZE)).save(tmp / "photos" / f"photo_{i}.png")
    settings = Settings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    win = MainWindow(settings=settings, disk_cache=None)
    win.resize(1400, 900)
    win.show()
    fake = FakeSegmenter()
    win.load_model(lambda: fake, "fake")
    win.open_path(tmp / "photos")
    return win


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--masks", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from samstudio.ui.autosegment import ProposalBatch

    win = photos_window("proposal_stall_")
    auto = win.autosegment_menu.auto
    records = ellipses(args.masks)
    t = time.perf_counter()
    batch = ProposalBatch.from_records(records)  # on the worker thread in the app
    batch_s = time.perf_counter() - t
    runs: dict[str, list[dict[str, float]]] = {"proposal_batch": [], "reference_decode_on_ui": []}
    images = [r.id for r in win.project.images()]
    for _ in range(args.repeats):
        for name, image_id in zip(runs, images):
            win.open_image(image_id)
            deadline = time.perf_counter() + 30
            while win.annotator.image_rgb is None and time.perf_counter() < deadline:
                spin(app, 0.02)
            spin(app, 0.3)
            if name == "proposal_batch":
                add = lambda i=image_id: auto.add_proposals(i, batch)  # noqa: E731
            else:
                add = lambda i=image_id: add_decoding_on_ui(auto, i, records)  # noqa: E731
            runs[name].append(measure(app, win, add, args.masks))
            win.annotator.undo()  # the next repeat adds the same proposals again
            spin(app, 0.2)
    win.shutdown()

    def worst(name: str, key: str) -> float:
        return max(r[key] for r in runs[name])

    result = {
        "benchmark": "proposal_stall",
        "masks": args.masks,
        "image": f"{SIZE[1]}x{SIZE[0]}",
        "batch_build_off_ui_s": round(batch_s, 3),
        "runs": runs,
        "worst_cpu_ms": {n: worst(n, "worst_cpu_ms") for n in runs},
        "worst_gap_ms": {n: worst(n, "worst_gap_ms") for n in runs},
        "cpu_stall_ratio": round(
            worst("reference_decode_on_ui", "worst_cpu_ms")
            / worst("proposal_batch", "worst_cpu_ms"),
            1,
        ),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
