"""Prompts and the model's candidates of the annotation session (`Annotator` mixes this
in): points and a box go to the model (`InferenceWorker.request_decode`, on another
thread), its answers come back as `CandidateSet`s, the user picks one and accepts it as
an instance of the current category (or, while a saved mask is refined, replaces its
mask: `annotator_refine`).

Each further prompt is decoded with all points, the box and the chosen candidate's
low-res logits (the paper's interactive loop). An answer to an older request, another
image or a model the user has since switched away from is dropped.

Coordinates: image pixels (x right, y down), float; masks are (H, W) bool.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from samstudio.inference.types import Prompts
from samstudio.ui.annotator_strokes import FAILED
from samstudio.ui.mask_candidates import CandidateSet, MaskCandidate
from samstudio.ui.project_access import record_id
from samstudio.ui.tools.box import MIN_BOX_PX


class CandidateHandling:
    """The prompt and candidate methods of `Annotator`; they use its state (image,
    prompts, candidates, category), its worker and canvas, and its `_store`."""

    # set by Annotator
    project: Any
    image_id: Any
    image_rgb: Any
    canvas: Any
    worker: Any
    points: list[tuple[float, float]]
    labels: list[int]
    box: Any
    previous_logits: Any
    candidate_set: Any
    candidates: list[MaskCandidate]
    chosen: int
    category_id: Any
    message: Any
    candidates_changed: Any
    candidates_arrived: Any
    _latest_request: int
    remember_prompts: Any
    forget_prompt_steps: Any
    drop_answers_of_prompt_steps: Any
    category_color: Any
    refresh_instances: Any
    _store: Any
    _mark_in_progress: Any
    refining: Any
    take_refine: Any
    refine_cancelled: Any
    save_refine: Any
    match_saved_mask: Any

    def add_point(self, x: float, y: float, foreground: bool) -> None:
        if self.image_rgb is None:
            return
        h, w = self.image_rgb.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            return
        self.remember_prompts("Add point" if foreground else "Add exclude point")
        self.drop_selection()
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
        self.drop_selection()
        self.box = np.asarray([x0, y0, x1, y1], np.float32)
        self._prompts_changed()

    def drop_selection(self) -> None:
        """A click or box makes a new mask: the instance selected before is let go, so
        the category keys and the brush then work on the mask being made, not on it."""
        if self.selected is not None:
            self.select_instance(None)

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
        """Esc: forget points, box, candidates and the previous logits; a refine of a
        saved mask is cancelled (the mask shown again, unchanged)."""
        refined = self.take_refine()
        self.forget_prompt_steps()
        self.points, self.labels, self.box = [], [], None
        self.previous_logits = None
        self.canvas.set_prompts(np.zeros((0, 2)), np.zeros((0,)), None)
        self.forget_candidates()
        if refined is not None:
            self.refine_cancelled(refined)

    def forget_candidates(self) -> None:
        """No candidates shown, none chosen, no answer awaited (a late one is stale)."""
        self.candidate_set = None
        self.candidates = []
        self.chosen = -1
        self._latest_request = -1
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
        self.match_saved_mask()  # a refine's first answer: the candidate like the saved mask
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
        self.forget_candidates()
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
        from samstudio.ui.mask_candidates import complete_candidate

        cand = complete_candidate(
            self.candidates[index], self.candidate_set.prediction, self.candidate_set.color
        )
        self.candidates[index] = cand
        return cand

    @property
    def chosen_candidate(self) -> MaskCandidate | None:
        return self.candidates[self.chosen] if 0 <= self.chosen < len(self.candidates) else None

    def accept(self) -> int | None:
        """Enter/Space: the chosen candidate becomes an instance of the current category
        (while refining a saved mask: replaces that mask, `annotator_refine`)."""
        cand = self.chosen_candidate
        if cand is None or self.project is None or self.image_id is None:
            return None
        if cand.mask is None or not cand.mask.any():
            self.message.emit("The chosen mask is empty: add a point or draw a box.")
            return None
        if self.refining is not None:
            return self.save_refine(cand)
        if self.category_id is None:
            self.message.emit("Add a category first (Categories ▸ Add…).")
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
