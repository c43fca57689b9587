"""The annotation session: current image, prompts, candidates, instances, strokes.

This module holds the session's state, the switching of images and projects, the
embedding's progress and undo; the rest is mixed in: prompts and candidates
(`annotator_candidates`), saved instances (`annotator_instances`), brush and eraser
strokes (`annotator_strokes`), undo of the mask being made (`annotator_prompts`),
refining a saved mask with clicks (`annotator_refine`).

Widgets stay thin: the window wires gestures to these methods and repaints from the
signals. Every change of the annotations goes to the project store at once, through
`UndoHistory` so that each user action is one undo step. The model is reached only
through the `InferenceWorker` (another thread); results come back as signals.

Coordinates: image pixels of the image as displayed (x right, y down), float for
prompts; masks are (H, W) bool.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from samstudio.core.store import ProjectError
from samstudio.ui.annotator_candidates import CandidateHandling
from samstudio.ui.annotator_instances import InstanceEditing
from samstudio.ui.annotator_prompts import PromptState, PromptUndo, UnfinishedMask
from samstudio.ui.annotator_refine import RefineEditing
from samstudio.ui.annotator_strokes import (  # noqa: F401  (MIN_BRUSH, MAX_BRUSH: public)
    FAILED,
    MAX_BRUSH,
    MIN_BRUSH,
    StrokeEditing,
)
from samstudio.ui.canvas import Canvas
from samstudio.ui.inference_worker import InferenceWorker
from samstudio.ui.mask_candidates import CandidateSet, MaskCandidate
from samstudio.ui.overlays import MaskPicture
from samstudio.ui.pixel_loader import PixelLoader
from samstudio.ui.project_access import hex_to_rgb
from samstudio.ui.undo import UndoHistory


class Annotator(
    QObject, StrokeEditing, PromptUndo, CandidateHandling, RefineEditing, InstanceEditing
):
    """Holds the state of annotating one image of one project (see module docstring)."""

    image_opened = Signal(int)  # image id; pixels are on the canvas
    image_failed = Signal(int, str)
    candidates_changed = Signal()
    candidates_arrived = Signal()  # a new prediction is on the canvas (the panel may follow)
    instances_changed = Signal()
    embedding_state = Signal(str)
    embedding_ready = Signal(int)
    message = Signal(str)
    error = Signal(str, str)  # title, text (the window shows a dialog)
    undo_changed = Signal()  # what Undo / Redo would do has changed

    def __init__(
        self, canvas: Canvas, worker: InferenceWorker, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.worker = worker
        self.project: Any = None
        self.image_id: int | None = None
        self.image_rgb: np.ndarray | None = None
        self.points: list[tuple[float, float]] = []
        self.labels: list[int] = []
        self.box: np.ndarray | None = None
        self.candidate_set: CandidateSet | None = None
        self.candidates: list[MaskCandidate] = []
        self.chosen = -1
        self.previous_logits: np.ndarray | None = None
        self.selected: int | None = None
        self.refining: int | None = None  # the instance being refined (`annotator_refine`)
        self._refine_image: int | None = None
        self._refine_saved: np.ndarray | None = None  # its mask when the refine began
        self._refine_match = False  # the refine's first answer is still to come
        self.category_id: int | None = None
        self.hidden: set[int] = set()  # the current image's masks hidden in the panel
        self._hidden_by_image: dict[int, set[int]] = {}  # kept for the session
        self.brush_radius = 8
        self.prefetch_depth = 2
        self.embedding_is_ready = False
        self.history = UndoHistory(self.refresh_instances, self)
        self.history.changed.connect(self.undo_changed)
        self._prompt_undo: list[PromptState] = []
        self._prompt_redo: list[PromptState] = []
        self._unfinished: dict[int, UnfinishedMask] = {}  # image id -> mask left unfinished
        self._pictures: dict[int, tuple[tuple[Any, ...], MaskPicture]] = {}
        self._latest_request = 0
        self._ticket = 0
        self._stroke: np.ndarray | None = None
        self._stroke_last: tuple[int, int] | None = None
        self._stroke_paint = True
        self._encode_started_at: float | None = None
        self._encode_timer = QTimer(self)
        self._encode_timer.setInterval(100)
        self._encode_timer.timeout.connect(self._tick_encode)
        self.loader = PixelLoader()
        self.loader.loaded.connect(self._pixels_loaded)
        self.loader.failed.connect(self._pixels_failed)
        self.loader.instances.connect(self._instances_rendered)
        self._render_generation = 0
        worker.prediction_ready.connect(self._prediction_ready)
        worker.prediction_failed.connect(self._prediction_failed)
        worker.candidates_completed.connect(self._candidates_completed)
        worker.encode_started.connect(self._encode_started)
        worker.embedding_ready.connect(self._embedding_ready)
        worker.embedding_failed.connect(self._embedding_failed)

    # ---------------------------------------------------------------------------- project
    def set_project(self, project: Any) -> None:
        # pixels and renders still on their way belong to the previous project
        self._ticket += 1
        self._render_generation += 1
        self.worker.reset_images()  # ids restart at 1 in every project
        self.project = project
        self.history.set_project(project)
        self._unfinished.clear()
        self._hidden_by_image.clear()
        self.hidden = set()
        cats = project.categories() if project is not None else []
        self.category_id = cats[0].id if cats else None
        self.image_id = None
        self.image_rgb = None
        self.canvas.set_image(None)
        self._pictures.clear()
        self.clear_prompts()

    def category_color(self, category_id: int | None) -> tuple[int, int, int]:
        if self.project is not None:
            for c in self.project.categories():
                if c.id == category_id:
                    return hex_to_rgb(c.color)
        return (30, 144, 255)

    # ----------------------------------------------------------------------------- images
    def open_image(self, image_id: int) -> None:
        """Show `image_id`; the worker starts on its embedding and prefetches the next ones."""
        if self.project is None:
            return
        if self.canvas.tool is not None:
            self.canvas.tool.cancel()
        self.cancel_stroke()
        self.leave_refine()  # never kept as an unfinished new mask
        if self.image_id not in (None, image_id):
            self.keep_unfinished()
        self.clear_prompts()
        self.selected = None
        self.hidden = self._hidden_by_image.setdefault(image_id, set())
        self._pictures.clear()
        self.image_id = image_id
        self.image_rgb = None
        self.embedding_is_ready = False
        self.history.set_image(image_id)
        path = str(self.project.image_path(image_id))
        self._ticket += 1
        self.loader.load(self._ticket, image_id, path)
        self.worker.open_image(image_id, path)
        self.worker.set_prefetch(self._prefetch_items(image_id))
        self.embedding_state.emit(
            "waiting for the model" if self.worker.model_info is None else "queued"
        )

    def _image_record(self, image_id: int) -> Any:
        for rec in self.project.images():
            if rec.id == image_id:
                return rec
        raise KeyError(f"no image {image_id} in the project")

    def _prefetch_items(self, image_id: int) -> list[tuple[int, str]]:
        ids = [r for r in self.project.images() if not getattr(r, "error", None)]
        order = [r.id for r in ids]
        if image_id not in order or self.prefetch_depth <= 0:
            return []
        i = order.index(image_id)
        nxt = ids[i + 1 : i + 1 + self.prefetch_depth]
        return [(r.id, str(self.project.image_path(r.id))) for r in nxt]

    def _pixels_loaded(self, ticket: int, image_id: int, rgb: np.ndarray, qimage: QImage) -> None:
        if ticket != self._ticket:
            return
        self.image_rgb = rgb
        self.canvas.set_image(qimage)
        self.refresh_instances()
        self.restore_unfinished()
        self.image_opened.emit(image_id)

    def _pixels_failed(self, ticket: int, image_id: int, message: str) -> None:
        if ticket != self._ticket:
            return
        self.canvas.set_image(None)
        self.image_failed.emit(image_id, message)  # the window says it in the status bar

    # ------------------------------------------------------------------------- embedding
    def _encode_started(self, image_id: int) -> None:
        if image_id == self.image_id:
            self._encode_started_at = time.perf_counter()
            self._encode_timer.start()
            self._tick_encode()

    def _tick_encode(self) -> None:
        if self._encode_started_at is not None:
            self.embedding_state.emit(
                f"computing… {time.perf_counter() - self._encode_started_at:.1f} s"
            )

    def _embedding_ready(self, image_id: int, seconds: float, cached: bool) -> None:
        if image_id != self.image_id:
            return
        self._encode_timer.stop()
        self._encode_started_at = None
        self.embedding_is_ready = True
        self.embedding_state.emit("cached" if cached else f"ready ({seconds:.1f} s)")
        self.embedding_ready.emit(image_id)

    def _embedding_failed(self, image_id: int, message: str) -> None:
        if image_id != self.image_id:
            return
        self._encode_timer.stop()
        self._encode_started_at = None
        self.embedding_state.emit("failed")
        if self.image_rgb is None:  # the file itself is the problem: one message for both
            self.image_failed.emit(image_id, message)
        else:
            self.message.emit(f"The model could not encode this image: {message}")

    # ----------------------------------------------------------------- canvas (for tools)
    def show_box_preview(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.canvas.show_box_preview(x0, y0, x1, y1)

    def hide_box_preview(self) -> None:
        self.canvas.hide_box_preview()

    def pan_by(self, dx: float, dy: float) -> None:
        self.canvas.pan_by(dx, dy)

    # ------------------------------------------------------------------------------ store
    def _store(self, label: str, action: Any) -> Any:
        """Run one store operation as one undo step; a refusal becomes an error dialog."""
        try:
            return self.history.do(label, action)
        except Exception as exc:
            self.error.emit("Could not save the change", f"{label}: {exc}")
            return FAILED

    def _mark_in_progress(self, image_id: int) -> None:
        try:
            if self._image_record(image_id).status == "new":
                self.project.set_image_status(image_id, "in_progress")
        except Exception as exc:
            self.message.emit(f"Could not update the image status: {exc}")

    def can_undo(self) -> bool:
        return self.can_undo_prompt() or self.history.can_undo()

    def can_redo(self) -> bool:
        return self.can_redo_prompt() or self.history.can_redo()

    def undo_text(self) -> str:
        """What Undo would take back: a step of the mask being made, else a saved change."""
        return self.prompt_undo_text() if self.can_undo_prompt() else self.history.undo_text()

    def redo_text(self) -> str:
        return self.prompt_redo_text() if self.can_redo_prompt() else self.history.redo_text()

    def undo(self) -> None:
        """Ctrl+Z: the last step of the mask being made (`annotator_prompts`), if there is
        one, else the image's last saved change."""
        self.cancel_stroke()
        if self.undo_prompt():
            return
        if self._prompt_redo:  # a saved change moves: the mask's steps are behind it now
            self._prompt_redo.clear()
            self.undo_changed.emit()
        try:
            done = self.history.undo()
        except ProjectError as exc:  # full disk, I/O error, busy file: nothing moved
            self.error.emit("Could not undo", str(exc))
            return
        if not done:
            self.message.emit("Nothing to undo")

    def redo(self) -> None:
        if self.redo_prompt():
            return
        try:
            done = self.history.redo()
        except ProjectError as exc:
            self.error.emit("Could not redo", str(exc))
            return
        if not done:
            self.message.emit("Nothing to redo")

    def shutdown(self) -> None:
        self._encode_timer.stop()
        # results the loader already queued on the event loop must not reach the (soon
        # closed) project: new tickets and generations make them stale
        self._ticket += 1
        self._render_generation += 1
        self.loader.shutdown()
