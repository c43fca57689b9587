"""The annotation session: current image, prompts, candidates, instances, strokes
(the brush and eraser methods are in `annotator_strokes`, mixed in).

Widgets stay thin: the window wires gestures to these methods and repaints from the
signals. Every change of the annotations goes to the project store at once, through
`UndoHistory` so that each user action is one undo step. The model is reached only
through the `InferenceWorker` (another thread); results come back as signals.

Coordinates: image pixels of the image as displayed (x right, y down), float for
prompts; masks are (H, W) bool.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from samstudio.core.store import ProjectError
from samstudio.inference.types import Prompts
from samstudio.ui.annotator_prompts import PromptState, PromptUndo, UnfinishedMask
from samstudio.ui.annotator_strokes import (  # noqa: F401  (MIN_BRUSH, MAX_BRUSH: public)
    FAILED,
    MAX_BRUSH,
    MIN_BRUSH,
    StrokeEditing,
)
from samstudio.ui.canvas import Canvas
from samstudio.ui.image_checks import fits
from samstudio.ui.inference_worker import CandidateSet, InferenceWorker, MaskCandidate
from samstudio.ui.overlays import MaskPicture, instance_color
from samstudio.ui.pixel_loader import InstanceJob, PixelLoader, render_instance
from samstudio.ui.project_access import hex_to_rgb, record_id
from samstudio.ui.tools.box import MIN_BOX_PX
from samstudio.ui.undo import UndoHistory


class Annotator(QObject, StrokeEditing, PromptUndo):
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
        self.category_id: int | None = None
        self.hidden: set[int] = set()
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
        if self.image_id not in (None, image_id):
            self.keep_unfinished()
        self.clear_prompts()
        self.selected = None
        self.hidden.clear()
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

    # ---------------------------------------------------------------------------- prompts
    def add_point(self, x: float, y: float, foreground: bool) -> None:
        if self.image_rgb is None:
            return
        h, w = self.image_rgb.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            return
        self.remember_prompts("Add point" if foreground else "Add exclude point")
        self.points.append((float(x), float(y)))
        self.labels.append(1 if foreground else 0)
        self._prompts_changed()

    def set_box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self.image_rgb is None:
            return
        h, w = self.image_rgb.shape[:2]
        x0, x1 = sorted((min(max(0.0, x0), w), min(max(0.0, x1), w)))
        y0, y1 = sorted((min(max(0.0, y0), h), min(max(0.0, y1), h)))
        if x1 - x0 < MIN_BOX_PX or y1 - y0 < MIN_BOX_PX:
            return  # what is left on the image is no box (a drag beside or along an edge)
        self.remember_prompts("Draw box")
        self.box = np.asarray([x0, y0, x1, y1], np.float32)
        self._prompts_changed()

    def show_box_preview(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.canvas.show_box_preview(x0, y0, x1, y1)

    def hide_box_preview(self) -> None:
        self.canvas.hide_box_preview()

    def pan_by(self, dx: float, dy: float) -> None:
        self.canvas.pan_by(dx, dy)

    def current_prompts(self) -> Prompts | None:
        if not self.points and self.box is None:
            return None
        return Prompts(
            points=np.asarray(self.points, np.float32).reshape(-1, 2),
            labels=np.asarray(self.labels, np.int32),
            box=self.box,
            mask_input=self.previous_logits,
        )

    def _prompts_changed(self) -> None:
        """Re-run the decoder with all points, the box and the chosen candidate's logits."""
        self.canvas.set_prompts(
            np.asarray(self.points).reshape(-1, 2), np.asarray(self.labels), self.box
        )
        prompts = self.current_prompts()
        if prompts is None or self.image_id is None:
            return
        if self.worker.model_info is None:
            self.message.emit("No model loaded: choose one in the Model menu.")
            return
        color = self.category_color(self.category_id)
        self._latest_request = self.worker.request_decode(
            self.image_id, prompts, multimask=prompts.is_ambiguous, color=color
        )

    def clear_prompts(self) -> None:
        """Esc: forget points, box, candidates and the previous logits."""
        self.forget_prompt_steps()
        self.points, self.labels, self.box = [], [], None
        self.previous_logits = None
        self.candidate_set = None
        self.candidates = []
        self.chosen = -1
        self._latest_request = -1
        self.canvas.set_prompts(np.zeros((0, 2)), np.zeros((0,)), None)
        self.canvas.set_candidate(None)
        self.candidates_changed.emit()

    def _is_stale(self, image_id: int, request: int, model_generation: int) -> bool:
        """A result for another image, an older request, or from a model the user has
        since switched away from (`InferenceWorker.model_generation`)."""
        return (
            image_id != self.image_id
            or request != self._latest_request
            or model_generation != self.worker.model_generation
        )

    def _prediction_ready(self, cs: CandidateSet) -> None:
        if self._is_stale(cs.image_id, cs.request, cs.model_generation):
            return  # the user clicked again, moved on or chose another model
        self.candidate_set = cs
        self.candidates = list(cs.candidates)
        self.chosen = -1
        self.choose(0)
        self.candidates_arrived.emit()

    def _candidates_completed(self, cs: CandidateSet) -> None:
        """The worker finished the other candidates; keep any the user already edited."""
        if (
            self.candidate_set is None
            or cs.request != self.candidate_set.request
            or cs.image_id != self.image_id
            or cs.model_generation != self.worker.model_generation
        ):
            return
        for i, cand in enumerate(cs.candidates):
            if i >= len(self.candidates):
                break
            mine = self.candidates[i]
            if not mine.complete:
                self.candidates[i] = cand
                if i == self.chosen:  # a draft overlay on the canvas: show the full one
                    self.canvas.set_candidate(cand.picture)
            elif mine.preview is None:  # completed here on a key press: take the preview
                self.candidates[i] = replace(mine, preview=cand.preview)
        self.candidates_changed.emit()

    def _prediction_failed(
        self, image_id: int, request: int, model_generation: int, message: str
    ) -> None:
        if not self._is_stale(image_id, request, model_generation):
            self.message.emit(f"The model could not decode these prompts: {message}")

    def model_changed(self) -> None:
        """A new model is loaded: the old model's candidates (and the logits that would
        steer the next prompt) go; the new model answers the prompts, which stay."""
        self.drop_answers_of_prompt_steps()
        self.previous_logits = None
        self.candidate_set = None
        self.candidates = []
        self.chosen = -1
        self._latest_request = -1
        self.canvas.set_candidate(None)
        self.candidates_changed.emit()
        self._prompts_changed()

    def model_kept(self) -> None:
        """The model the user asked for failed to load and the previous one stays: its
        answer to the prompts, dropped when the switch was asked for, is asked again; so
        is an answer on screen whose finishing (previews, full-size masks) was dropped,
        with the very prompts it came from (their mask input included)."""
        cs = self.candidate_set
        if cs is not None and cs.request == self._latest_request:
            if cs.model_generation == self.worker.model_generation and all(
                c.complete and c.preview is not None for c in self.candidates
            ):
                return  # answered and finished
            if self.image_id is not None:
                self._latest_request = self.worker.request_decode(
                    self.image_id,
                    cs.prompts,
                    multimask=cs.prompts.is_ambiguous,
                    color=self.category_color(self.category_id),
                )
            return
        if self._latest_request != -1:
            self._prompts_changed()

    def choose(self, index: int) -> None:
        """Pick candidate `index`: shown on the canvas, its logits feed the next prompt."""
        if not 0 <= index < len(self.candidates):
            return
        self.chosen = index
        cand = self.candidates[index]
        if cand.picture is None and self.candidate_set is not None:
            cand = self._complete(index)
            self.candidates_changed.emit()
        # A draft overlay (a big mask drawn coarser) is shown as it is: the worker's
        # full-resolution one replaces it a moment later (`_candidates_completed`).
        # Drawing it here instead cost the first paint ~8 ms of UI-thread work.
        self.previous_logits = cand.low_res_logits
        self.canvas.set_candidate(cand.picture)

    def look_at(self, index: int) -> None:
        """Show candidate `index` on the canvas without choosing it (-1: the chosen one)."""
        if not 0 <= index < len(self.candidates):
            cand = self.chosen_candidate
        else:
            cand = self.candidates[index]
            if cand.picture is None and self.candidate_set is not None:
                cand = self._complete(index)
        self.canvas.set_candidate(cand.picture if cand is not None else None)

    def _complete(self, index: int) -> MaskCandidate:
        """Fill in candidate `index` now (the user was quicker than the worker)."""
        assert self.candidate_set is not None
        from samstudio.ui.inference_worker import complete_candidate

        cand = complete_candidate(
            self.candidates[index], self.candidate_set.prediction, self.candidate_set.color
        )
        self.candidates[index] = cand
        return cand

    @property
    def chosen_candidate(self) -> MaskCandidate | None:
        return self.candidates[self.chosen] if 0 <= self.chosen < len(self.candidates) else None

    def accept(self) -> int | None:
        """Enter/Space: the chosen candidate becomes an instance of the current category."""
        cand = self.chosen_candidate
        if cand is None or self.project is None or self.image_id is None:
            return None
        if self.category_id is None:
            self.message.emit("Add a category first (Categories ▸ Add…).")
            return None
        if cand.mask is None or not cand.mask.any():
            self.message.emit("The chosen mask is empty: add a point or draw a box.")
            return None
        image_id, category_id = self.image_id, self.category_id
        prompts = self._prompts_of_shown()
        ann_id = self._store(
            "Accept mask",
            lambda: self.project.add_annotation(
                image_id,
                cand.mask,
                category_id,
                source="manual",
                predicted_iou=cand.predicted_iou,
                stability_score=cand.stability_score,
                prompts=prompts,
            ),
        )
        if ann_id is FAILED:
            return None
        self._mark_in_progress(image_id)
        self.clear_prompts()
        self.refresh_instances()
        return record_id(ann_id)

    def _prompts_of_shown(self) -> dict[str, Any]:
        """The prompts the mask on screen was decoded from, as saved with it: the current
        ones, unless the user has prompted again and the answer is still on its way."""
        cs = self.candidate_set
        if cs is None or cs.request == self._latest_request:
            return {
                "points": [list(p) for p in self.points],
                "labels": list(self.labels),
                "box": None if self.box is None else [float(v) for v in self.box],
            }
        return {
            "points": [[float(x), float(y)] for x, y in cs.prompts.points],
            "labels": [int(v) for v in cs.prompts.labels],
            "box": None if cs.prompts.box is None else [float(v) for v in cs.prompts.box],
        }

    # -------------------------------------------------------------------------- instances
    def select_instance(self, annotation_id: int | None) -> None:
        self.selected = annotation_id
        self.refresh_instances()

    def select_at(self, x: float, y: float) -> None:
        """Select the topmost visible instance covering pixel (x, y), or none."""
        if self.project is None or self.image_id is None:
            return
        xi, yi = math.floor(x), math.floor(y)  # int() would take -0.5 to pixel 0
        hit = None
        for rec in reversed(self.project.annotations(self.image_id)):
            bx, by, bw, bh = rec.bbox
            if rec.id in self.hidden or not (bx <= xi < bx + bw and by <= yi < by + bh):
                continue
            if not fits(rec, self.image_rgb):  # not drawn: not to be picked either
                continue
            if self.project.mask(rec.id)[yi, xi]:
                hit = rec.id
                break
        self.select_instance(hit)

    def delete_instance(self, annotation_id: int | None = None) -> None:
        ann_id = self.selected if annotation_id is None else annotation_id
        if ann_id is None or self.project is None:
            return
        if self._store("Delete mask", lambda: self.project.delete_annotation(ann_id)) is not FAILED:
            if self.selected == ann_id:
                self.selected = None
            self.refresh_instances()

    def set_instance_visible(self, annotation_id: int, visible: bool) -> None:
        (self.hidden.discard if visible else self.hidden.add)(annotation_id)
        self.canvas.set_instance_visible(annotation_id, visible)

    def set_current_category(self, category_id: int) -> None:
        """Choose the category for new masks; a selected instance changes to it too."""
        self.category_id = category_id
        if self.selected is not None and self.project is not None:
            ann_id = self.selected
            rec = next((a for a in self.project.annotations(self.image_id) if a.id == ann_id), None)
            if rec is not None and rec.category_id != category_id:
                self._store(
                    "Change category", lambda: self.project.set_category(ann_id, category_id)
                )
                self.refresh_instances()

    def refresh_instances(self) -> None:
        """Repaint the overlays of the current image from the store (cached per mask).

        A few changed masks (an accept, a stroke) are drawn at once; many (opening an
        image with hundreds of masks) are decoded and drawn by the loader thread and
        appear as they come, so the window never freezes.
        """
        if self.project is None or self.image_id is None or self.image_rgb is None:
            self.instances_changed.emit()
            return
        records = self.project.annotations(self.image_id)
        colors = {c.id: c.color for c in self.project.categories()}
        seen = set()
        jobs: list[InstanceJob] = []
        for rec in records:
            if not fits(rec, self.image_rgb):
                continue  # made on an earlier picture of another size (`image_checks`)
            seen.add(rec.id)
            selected = rec.id == self.selected
            key = (_rle_key(rec.rle), colors.get(rec.category_id), selected)
            cached = self._pictures.get(rec.id)
            if cached is None or cached[0] != key:
                rgb = instance_color(hex_to_rgb(colors.get(rec.category_id, "#1e90ff")), rec.id)
                jobs.append(InstanceJob(rec.id, key, rec.rle, rgb, selected))
        for gone in set(self._pictures) - seen:
            del self._pictures[gone]
            self.canvas.set_instance(gone, None)
        self._render_generation += 1
        if len(jobs) <= 4:
            self._instances_rendered(self._render_generation, [render_instance(j) for j in jobs])
        else:
            self.loader.render_instances(self._render_generation, jobs)
        if self.selected is not None and self.selected not in seen:
            self.selected = None
        self.canvas.raise_instance(self.selected)
        self.instances_changed.emit()

    def _instances_rendered(
        self, generation: int, done: list[tuple[InstanceJob, MaskPicture]]
    ) -> None:
        if generation != self._render_generation:
            return  # the image or its masks changed since
        for job, picture in done:
            self._pictures[job.annotation_id] = (job.key, picture)
            self.canvas.set_instance(job.annotation_id, picture)
            self.canvas.set_instance_visible(
                job.annotation_id, job.annotation_id not in self.hidden
            )
        self.canvas.raise_instance(self.selected)

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


def _rle_key(rle: Any) -> Any:
    if isinstance(rle, dict):
        counts = rle.get("counts")
        return (
            tuple(rle.get("size", ())),
            counts if isinstance(counts, (str, bytes)) else str(counts),
        )
    return rle
