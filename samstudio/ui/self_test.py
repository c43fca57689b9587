"""`SAM Studio --self-test REPORT.json`: check an installation end to end, as a user would.

In a temporary folder, which is removed afterwards, it writes the sample photos and opens
them in the annotator with the default model. The user's projects, settings, data and
embedding cache are never touched: the settings, the data folder and the cache live in
that folder too. It waits for the first image's embedding, clicks the middle of the image
with the mouse, waits for SAM's three candidates and accepts the first with Return. It
then checks that the project store holds the mask, writes a JSON report and quits: exit
status 0 when every step passed, 1 otherwise (the report's `step` and `error` say what
failed), 2 when the report cannot be written.

For the desktop build (`packaging/build_desktop.sh`) this shows that the frozen app works
without PyTorch: Qt, the inference thread, ONNX Runtime, the shipped model, the embedding
cache and the project store. The report says whether PyTorch was imported.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QPointF, QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from samstudio.core.atomic import atomic_write_text

POLL_MS = 50
TIMEOUT_S = 300.0


def _guarded(slot: Callable[..., None]) -> Callable[..., None]:
    """An exception in a step ends the test with it (a slot's exception would only be
    printed, and the test would wait for its timeout)."""

    @functools.wraps(slot)
    def run(self: SelfTest, *args: Any) -> None:
        try:
            slot(self, *args)
        except Exception as exc:  # noqa: BLE001 - any failure is the test's result
            self._fail(f"{type(exc).__name__}: {exc}")

    return run


class SelfTest(QObject):
    """Drives `window` through one click and writes `report`; quits the application."""

    def __init__(
        self, window: Any, report: Path, work: Path | None = None, timeout_s: float = TIMEOUT_S
    ) -> None:
        super().__init__(window)
        self.window = window
        self.report = Path(report)
        self.work = work
        self.started = time.perf_counter()
        self.result: dict[str, Any] = {"ok": False, "step": "load the model"}
        self.done = False
        self.clicked = False
        # a message box (an error, a warning, a question) ends the test instead: it would
        # wait, unseen, for a user who is not there
        for name in ("critical", "warning", "question", "information"):
            setattr(QMessageBox, name, staticmethod(self._dialog))
        window.worker.model_loaded.connect(self._model_loaded)
        window.worker.model_failed.connect(lambda label, msg: self._fail(f"{label}: {msg}"))
        window.worker.embedding_ready.connect(self._embedding_done)
        window.worker.embedding_failed.connect(lambda _id, msg: self._fail(msg))
        window.annotator.embedding_ready.connect(self._embedding_ready)
        window.annotator.image_failed.connect(lambda _id, msg: self._fail(msg))
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(lambda: self._fail(f"timed out after {timeout_s:g} s"))
        self._timer.start(int(timeout_s * 1000))
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._check_candidates)

    def _dialog(self, _parent: Any, title: str, text: str, *_args: Any, **_kw: Any) -> Any:
        self._fail(f"a dialog appeared: {title}: {text}")
        return QMessageBox.StandardButton.No

    @_guarded
    def _model_loaded(self, info: Any) -> None:
        self.result.update(model=info.model_id, backend=info.backend, device=info.device)
        self.result["step"] = "compute the first image's embedding"

    @_guarded
    def _embedding_done(self, _image_id: int, seconds: float, cached: bool) -> None:
        self.result.setdefault("embedding_seconds", round(seconds, 3))
        self.result.setdefault("embedding_from_cache", cached)

    @_guarded
    def _embedding_ready(self, image_id: int) -> None:
        win = self.window
        if self.done or self.clicked or win.annotator.image_rgb is None:
            return
        if image_id != win.annotator.image_id:
            return
        self.clicked = True
        h, w = win.annotator.image_rgb.shape[:2]
        self.result["image"] = win.project.image_path(image_id).name
        self.result["clicked"] = [w / 2, h / 2]
        self.result["step"] = "click and get three candidates"
        view = win.canvas.mapFromScene(QPointF(w / 2, h / 2))
        QTest.mouseClick(
            win.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view
        )
        self._poll.start()

    @_guarded
    def _check_candidates(self) -> None:
        panel = self.window.candidates_panel
        cands = panel.candidates
        if self.done or len(cands) != 3 or not all(c.complete for c in cands):
            return
        self._poll.stop()
        win = self.window
        self.result["candidate_ious"] = [round(float(c.predicted_iou), 4) for c in cands]
        self.result["step"] = "accept the first candidate with Return"
        chosen = panel.chosen_candidate.mask.copy()
        win.raise_()
        win.activateWindow()  # the accept shortcut fires in the active window
        win.canvas.setFocus()
        QTest.keyClick(win.canvas, Qt.Key.Key_Return)
        annotations = win.project.annotations(win.annotator.image_id)
        if not annotations:
            self._fail("Return did not accept the candidate (was the window active?)")
            return
        self.result["step"] = "find the accepted mask in the project store"
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
        self._timer.stop()
        self.result["torch_imported"] = "torch" in sys.modules
        self.result["seconds"] = round(time.perf_counter() - self.started, 2)
        try:
            atomic_write_text(self.report, json.dumps(self.result, indent=1) + "\n")
        except OSError as exc:
            print(f"cannot write the self-test report {self.report}: {exc}", file=sys.stderr)
            code = 2
        finally:
            try:
                self.window.close()
            finally:
                if self.work is not None:
                    shutil.rmtree(self.work, ignore_errors=True)
                QApplication.instance().exit(code)


def report_problem(report: Path) -> str | None:
    """Why `report` cannot be written (its folder missing or not writable), or None."""
    folder = report.parent
    if not folder.is_dir():
        return f"the folder of the report {report} does not exist"
    if not os.access(folder, os.W_OK):
        return f"the folder of the report {report} is not writable"
    return None


def start(report: str) -> tuple[Any, SelfTest]:
    """Build the window in a temporary folder (settings, data, cache, sample photos) and
    start the test. The caller checks `report_problem` first."""
    work = Path(tempfile.mkdtemp(prefix="samstudio-self-test-"))
    # this process's data folder and embedding cache: the user's are left alone
    os.environ["SAMSTUDIO_DATA_DIR"] = str(work / "data")
    os.environ["SAMSTUDIO_CACHE_DIR"] = str(work / "cache")
    from samstudio.core.samples import ensure_sample_images
    from samstudio.ui.main_window import MainWindow
    from samstudio.ui.settings import Settings

    settings = Settings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings=settings, load_default_model=True)
    test = SelfTest(window, Path(report).resolve(), work)
    window.resize(1200, 800)
    window.show()
    folder = ensure_sample_images(work / "images")
    QTimer.singleShot(0, lambda: window.open_path(folder))
    return window, test
