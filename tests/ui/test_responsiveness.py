"""The UI thread never blocks: an event-loop watchdog while the model encodes and decodes.

A QTimer ticks every 10 ms on the UI thread; the largest gap between ticks is the
longest stall a user would feel. The model work here is real CPU work (numpy matrix
products, which release the GIL like torch and ONNX Runtime do) on a 2250x1500 photo.

Two measures per gap: wall-clock time, and the CPU time the UI thread itself spent
(`time.thread_time`). The CPU measure catches any work we do on the UI thread whatever
the machine's load, and is asserted. Wall-clock gaps also include time the OS gave to
other processes, so they say as much about the neighbours as about us: they are printed,
not asserted (gating them on the load average failed CI once, the average lagging behind
a busy machine); `benchmarks/ui_latency.py` measures wall-clock latency.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QObject, Qt, QTimer

from ui.fakes import FakeSegmenter
from ui.helpers import click_image, key

STALL_LIMIT_MS = 100.0


class Watchdog(QObject):
    def __init__(self, interval_ms: int = 10) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.gaps: list[float] = []
        self.cpu_gaps: list[float] = []
        self.last_cpu = 0.0
        self.phase = ""
        self.events: list[tuple[float, str]] = []

    def start(self) -> None:
        self.last = time.perf_counter()
        self.last_cpu = time.thread_time()
        self.timer.start()

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.gaps.append((now - self.last) * 1000)
        self.cpu_gaps.append((cpu - self.last_cpu) * 1000)
        if self.gaps[-1] > 40:
            self.events.append((round(self.gaps[-1]), round(self.cpu_gaps[-1]), self.phase))
        self.last, self.last_cpu = now, cpu

    def stop(self) -> float:
        self.timer.stop()
        return max(self.gaps, default=0.0)


class BusySegmenter(FakeSegmenter):
    """FakeSegmenter whose encode and decode burn real CPU time in numpy."""

    def __init__(self, encode_ms: float, decode_ms: float) -> None:
        super().__init__()
        self.encode_ms, self.decode_ms = encode_ms, decode_ms
        self._a = np.random.default_rng(0).random((384, 384), np.float32)

    def _burn(self, ms: float) -> None:
        end = time.perf_counter() + ms / 1000
        x = self._a
        while time.perf_counter() < end:
            x = np.tanh(x @ self._a)

    def encode(self, image):  # noqa: ANN001,ANN201
        self._burn(self.encode_ms)
        return super().encode(image)

    def decode(self, embedding, prompts, multimask=True):  # noqa: ANN001,ANN201
        self._burn(self.decode_ms)
        return super().decode(embedding, prompts, multimask)


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    from ui.conftest import make_scene

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(make_scene(i, (1500, 2250))).save(folder / f"photo_{i}.jpg", quality=90)
    return folder


@pytest.mark.slow
def test_no_event_loop_stall_while_encoding_and_decoding(
    qtbot, settings, dialogs, photo_folder
) -> None:  # noqa: ANN001
    from samstudio.ui.main_window import MainWindow

    seg = BusySegmenter(encode_ms=1500, decode_ms=60)
    win = MainWindow(settings=settings, disk_cache=None)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    win.annotator.prefetch_depth = 1
    dog = Watchdog()
    try:
        with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
            win.load_model(lambda: seg, "busy")
        win.open_path(photo_folder)  # project creation scans the folder before we start
        qtbot.wait(50)
        dog.start()
        dog.phase = "open"
        with qtbot.waitSignals(
            [win.annotator.image_opened, win.annotator.embedding_ready], timeout=20000
        ):
            win.open_image(win.project.images()[1].id)  # an image not yet encoded
        for i in range(8):
            dog.phase = f"click {i}"
            click_image(qtbot, win, 600 + 100 * i, 700)
            qtbot.waitUntil(
                lambda i=i: (
                    win.annotator.candidate_set is not None
                    and len(win.annotator.candidate_set.prompts.points) == i + 1
                ),
                timeout=15000,
            )
        dog.phase = "accept"
        key(qtbot, win, Qt.Key.Key_Return)
        dog.phase = "next"
        with qtbot.waitSignals(
            [win.annotator.image_opened, win.annotator.embedding_ready], timeout=20000
        ):
            key(qtbot, win, Qt.Key.Key_N)
        worst = dog.stop()
    finally:
        win.shutdown()
    assert len(dog.gaps) > 50, "the watchdog did not run"
    worst_cpu = max(dog.cpu_gaps)
    load = os.getloadavg()[0]
    print(
        f"watchdog: worst gap {worst:.0f} ms wall, {worst_cpu:.0f} ms UI-thread CPU; load {load:.1f}"
    )
    # Only the UI thread's own CPU time between ticks is asserted: wall-clock gaps also
    # count other processes' time (a load average that lags behind missed a busy machine
    # and failed CI once), so they are printed, and benchmarks/ui_latency.py measures them.
    assert worst_cpu < STALL_LIMIT_MS, (
        f"the UI thread worked {worst_cpu:.0f} ms without a break ({dog.events})"
    )
