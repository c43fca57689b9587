"""Drawing a crowded image's masks, and changing how they are drawn, printed as JSON.

The real window (offscreen Qt, FakeSegmenter) shows a 2250x1500 photo with N stored
masks (random ellipses, radii 10-150 px). Measured, each as the time until every overlay
shows it and the largest gap between 10 ms ticks of a UI-thread timer (wall and
UI-thread CPU), as in `proposal_stall`:

- `open_image`: coming back to the image (every mask decoded and drawn);
- `select`: selecting one instance (it is redrawn and raised above the others);
- `ctrl_click`: picking the topmost drawn instance under a pixel (one call, ms);
- `outlines_only`, `opacity`, `hide_all`: the View menu's overlay settings (skipped
  on a version that has none), each undone again afterwards.

Usage: .venv/bin/python benchmarks/overlay_style.py [--masks 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proposal_stall import SIZE, ellipses, measure, photos_window, spin  # noqa: E402


def wait_drawn(app: Any, done: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.perf_counter() + seconds
    while not done() and time.perf_counter() < deadline:
        spin(app, 0.005)


def restyled(win: Any, n: int) -> Callable[[], bool]:
    """True once all `n` pictures are drawn, in the annotator's current style if it has
    one (the last part of their cache keys)."""
    a = win.annotator

    def done() -> bool:
        style = getattr(a, "overlay_style", None)
        return len(a._pictures) == n and (
            style is None or all(key[-1] == style for key, _ in a._pictures.values())
        )

    return done


def timed(
    app: Any, win: Any, action: Callable[[], None], done: Callable[[], bool]
) -> dict[str, float]:
    """`proposal_stall.measure` of `action`, waiting for `done()` (the UI-thread timer
    keeps ticking while it waits) instead of an overlay count."""

    def act_and_wait() -> None:
        action()
        wait_drawn(app, done)

    return measure(app, win, act_and_wait, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--masks", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from samstudio.core.document import EncodedMask

    win = photos_window("overlay_style_")
    a = win.annotator
    records = ellipses(args.masks)
    first, other = [r.id for r in win.project.images()]
    cat = win.project.categories()[0].id
    masks = [EncodedMask.from_rle(r.segmentation) for r in records]
    win.project.add_annotations(first, masks, cat, "manual")
    ids = [r.id for r in win.project.annotations(first)]
    cx, cy = records[-1].point_coords[0]
    n = args.masks
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.repeats):
        win.open_image(other)
        spin(app, 0.3)
        runs.setdefault("open_image", []).append(
            measure(app, win, lambda: win.open_image(first), n)
        )
        spin(app, 0.3)
        runs.setdefault("select", []).append(
            timed(app, win, lambda: a.select_instance(ids[n // 2]), restyled(win, n))
        )
        t = time.perf_counter()
        a.select_at(cx, cy)
        runs.setdefault("ctrl_click", []).append({"ms": round((time.perf_counter() - t) * 1e3, 2)})
        menu = getattr(win, "overlay_menu", None)
        if menu is not None:
            for name, on, off in (
                ("outlines_only", menu.outlines.trigger, menu.outlines.trigger),
                ("opacity", partial(menu.set_opacity, 70), partial(menu.set_opacity, 35)),
                ("hide_all", menu.hide_all.trigger, menu.hide_all.trigger),
            ):
                runs.setdefault(name, []).append(timed(app, win, on, restyled(win, n)))
                off()
                wait_drawn(app, restyled(win, n))
        a.select_instance(None)
        wait_drawn(app, restyled(win, n))
    win.shutdown()
    result = {
        "benchmark": "overlay_style",
        "masks": n,
        "image": f"{SIZE[1]}x{SIZE[0]}",
        "runs": runs,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
