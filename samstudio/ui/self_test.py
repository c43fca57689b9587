"""`SAM Studio --self-test REPORT.json`: check an installation end to end, as a user would.

In a temporary folder (never the user's projects or settings) it writes the sample
photos, opens them in the annotator with the default model, waits for the first image's
embedding, clicks the middle of the image with the mouse, waits for SAM's three
candidates, accepts the first with Return, checks that the store holds it, writes a JSON
report and quits: exit status 0 when every step passed, 1 otherwise (the report says
which step failed). For the desktop build (`packaging/build_desktop.sh`) this shows that
Qt, the inference thread, ONNX Runtime, the shipped model and the project store work in
the frozen app; the report says whether PyTorch was imported.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QPointF, QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from samstudio.core.atomic import atomic_write_text

POLL_MS = 50


class SelfTest(QObject):
    """Drives `window` through one click and writes `report`; quits the application."""

    def __init__(self, window: Any, report: Path, timeout_s: float = 600.0) -> None:
        super().__init__(window)
        self.window = window
        self.report = Path(report)
        self.started = time.perf_counter()
        self.result: dict[str, Any] = {"ok": False, "step": "load the model"}
        self.done = False
        window.worker.model_loaded.connect(self._model_loaded)
        window.worker.model_failed.connect(lambda label, msg: self._fail(f"{label}: {msg}"))
        window.annotator.embedding_ready.connect(self._embedding_ready)
        window.annotator.image_failed.connect(lambda _id, msg: self._fail(msg))
        QTimer.singleShot(
            int(timeout_s * 1000), lambda: self._fail(f"timed out after {timeout_s:g} s")
        )
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._check_candidates)

    def _model_loaded(self, info: Any) -> None:
        self.result.update(model=info.model_id, backend=info.backend, device=info.device)
        self.result["step"] = "compute the first image's embedding"

    def _embedding_ready(self, image_id: int) -> None:
        if self.done or self.result.get("clicked") is not None:
            return
        win = self.window
        if image_id != win.annotator.image_id or win.annotator.image_rgb is None:
            return
        h, w = win.annotator.image_rgb.shape[:2]
        self.result["image"] = win.project.image_path(image_id).name
        self.result["clicked"] = [w / 2, h / 2]
        self.result["step"] = "click and get three candidates"
        view = win.canvas.mapFromScene(QPointF(w / 2, h / 2))
        QTest.mouseClick(
            win.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view
        )
        self._poll.start()

    def _check_candidates(self) -> None:
        panel = self.window.candidates_panel
        cands = panel.candidates
        if len(cands) != 3 or not all(c.complete for c in cands):
            return
        self._poll.stop()
        win = self.window
        self.result["candidate_ious"] = [round(float(c.predicted_iou), 4) for c in cands]
        self.result["step"] = "accept the first candidate"
        chosen = panel.chosen_candidate.mask.copy()
        win.canvas.setFocus()
        QTest.keyClick(win.canvas, Qt.Key.Key_Return)
        annotations = win.project.annotations(win.annotator.image_id)
        if len(annotations) != 1 or not (win.project.mask(annotations[0].id) == chosen).all():
            self._fail("the accepted mask is not what the project store holds")
            return
        self.result.update(ok=True, step="done", accepted_area=int(chosen.sum()))
        self._finish(0)

    def _fail(self, message: str) -> None:
        if self.done:
            return
        self.result.update(ok=False, error=message)
        self._finish(1)

    def _finish(self, code: int) -> None:
        self.done = True
        self._poll.stop()
        self.result["torch_imported"] = "torch" in sys.modules
        self.result["seconds"] = round(time.perf_counter() - self.started, 2)
        atomic_write_text(self.report, json.dumps(self.result, indent=1) + "\n")
        self.window.close()
        QApplication.instance().exit(code)


def start(report: str) -> tuple[Any, SelfTest]:
    """Build the window on temporary settings and sample photos, and start the test."""
    from samstudio.core.samples import ensure_sample_images
    from samstudio.ui.main_window import MainWindow
    from samstudio.ui.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="samstudio-self-test-"))
    settings = Settings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings=settings, load_default_model=True)
    test = SelfTest(window, Path(report).resolve())
    window.resize(1200, 800)
    window.show()
    folder = ensure_sample_images(work / "images")
    QTimer.singleShot(0, lambda: window.open_path(folder))
    return window, test
