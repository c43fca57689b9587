"""Refining a saved mask with clicks (`Annotator` mixes this in).

Edit ▸ Refine the selected mask with clicks (Ctrl+E) turns the selected instance (or
proposal) back into the mask being made: its stored prompts (points, labels, box) are
drawn and decoded, and the candidate closest to the saved mask is chosen, while the
instance's own overlay is hidden. An instance without usable prompts (painted,
imported) starts from its bounding box as a box prompt. Further clicks, boxes and brush
strokes refine it as for a new mask (the chosen candidate's logits fed back; Ctrl+Z
steps back through them, and past the first one ends the refine).

Enter replaces the instance's mask (same id and category; its source follows the
brush's rules: manual, auto or imported becomes "edited", a proposal stays a proposal)
as ONE undo step labelled "Refine mask". Esc, Ctrl+Z past the start, or leaving the
image cancel it: the instance is shown again, unchanged, and nothing is recorded. A
refine is never kept as an unfinished new mask.

The refined mask's prompts and scores are saved with it in the same undo step
(`Project.set_prompts`), so refining it again, in this session or a later one, starts
from them.

Coordinates: image pixels (x right, y down), float; masks are (H, W) bool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from samstudio.core.masks import mask_iou
from samstudio.ui.image_checks import fits

REFINE_LABEL = "Refine mask"
HINT = "click to correct, Enter to save, Esc to cancel"


@dataclass(frozen=True)
class RefineStart:
    """The prompts a refine starts from. points: (N, 2) float64 image pixels; labels:
    (N,) int 1 include / 0 exclude; box: XYXY float32 or None. `note` says why the
    stored prompts were not used (then the box is the instance's bounding box)."""

    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None
    note: str | None = None


def refine_start(
    prompts: Any, bbox: tuple[int, int, int, int], size: tuple[int, int]
) -> RefineStart:
    """The prompts to refine a mask from: its stored `prompts` ({"points": [[x, y], ...],
    "labels": [...], "box": [x0, y0, x1, y1] or None}, other keys ignored) when they are
    usable on an image of `size` (H, W), else its `bbox` (XYWH) as a box prompt."""
    problem = _prompt_problem(prompts, size)
    if problem is None:
        points = np.asarray(prompts.get("points") or [], np.float64).reshape(-1, 2)
        labels = np.asarray(prompts.get("labels") or [], np.int32).reshape(-1)
        box = prompts.get("box")
        return RefineStart(points, labels, None if box is None else np.asarray(box, np.float32))
    x, y, w, h = bbox
    return RefineStart(
        np.zeros((0, 2), np.float64),
        np.zeros((0,), np.int32),
        np.asarray([x, y, x + w, y + h], np.float32),
        problem,
    )


def _prompt_problem(prompts: Any, size: tuple[int, int]) -> str | None:
    """Why `prompts` cannot start a refine on an image of `size` (H, W); None if they can."""
    if not isinstance(prompts, dict) or not (prompts.get("points") or prompts.get("box")):
        return "it has no stored prompts"
    h, w = size
    try:
        points = np.asarray(prompts.get("points") or [], np.float64).reshape(-1, 2)
        labels = np.asarray(prompts.get("labels") or [], np.float64).reshape(-1)
        box = prompts.get("box")
        box_arr = None if box is None else np.asarray(box, np.float64).reshape(4)
    except (TypeError, ValueError) as exc:
        return f"its stored prompts are not points and a box ({exc})"
    if len(labels) != len(points) or not set(labels.tolist()) <= {0.0, 1.0}:
        return "its stored point labels do not match its points"
    if not np.isfinite(points).all() or (box_arr is not None and not np.isfinite(box_arr).all()):
        return "its stored prompts hold a number that is not finite"
    inside = (points[:, 0] >= 0) & (points[:, 0] < w) & (points[:, 1] >= 0) & (points[:, 1] < h)
    if not inside.all():
        return "a stored point lies outside the image"
    if box_arr is not None and not (box_arr[0] < box_arr[2] and box_arr[1] < box_arr[3]):
        return "its stored box is empty"
    return None


class RefineEditing:
    """The refine methods of `Annotator`; they use its prompt and candidate state, its
    project, canvas, worker and undo history."""

    # set by Annotator
    project: Any
    image_id: Any
    image_rgb: Any
    canvas: Any
    worker: Any
    history: Any
    selected: Any
    hidden: set[int]
    points: list[tuple[float, float]]
    labels: list[int]
    box: Any
    previous_logits: Any
    candidate_set: Any
    candidates: list[Any]
    chosen: int
    message: Any
    error: Any
    undo_changed: Any
    refining: int | None
    _refine_image: int | None
    _refine_saved: np.ndarray | None
    _refine_match: bool
    choose: Any
    clear_prompts: Any
    forget_prompt_steps: Any
    select_instance: Any
    _prompts_changed: Any
    _prompts_of_shown: Any

    def start_refine(self) -> bool:
        """Ctrl+E: the selected instance becomes the mask being made (see module
        docstring). False, with a message saying why, when it cannot."""
        if self.project is None or self.image_id is None or self.image_rgb is None:
            return False
        ann_id = self.selected
        if self.refining is not None:
            self.message.emit(f"Already refining mask #{self.refining}: Enter saves, Esc cancels.")
            return False
        if ann_id is None:
            self.message.emit("Select a mask to refine first (Ctrl+click it).")
            return False
        if self.points or self.box is not None:
            self.message.emit(
                "A new mask is being made: accept it (Enter) or clear it (Esc) before refining."
            )
            return False
        if self.worker.model_info is None:
            self.message.emit("No model loaded: choose one in the Model menu.")
            return False
        rec = next((a for a in self.project.annotations(self.image_id) if a.id == ann_id), None)
        if rec is None or not fits(rec, self.image_rgb):
            self.message.emit(f"Mask #{ann_id} is not on this picture: it cannot be refined.")
            return False
        start = refine_start(rec.prompts, rec.bbox, self.image_rgb.shape[:2])
        self.forget_prompt_steps()
        self.refining, self._refine_image = ann_id, self.image_id
        self._refine_saved = self.project.mask(ann_id)
        self._refine_match = True
        self.select_instance(None)  # the brush works on the mask being made, not on it
        self.canvas.set_instance_visible(ann_id, False)
        self.points = [(float(x), float(y)) for x, y in start.points]
        self.labels = [int(v) for v in start.labels]
        self.box = start.box
        self.previous_logits = None
        self._prompts_changed()
        self.undo_changed.emit()
        name = self._category_name(rec.category_id)
        if start.note is None:
            self.message.emit(f"Refining mask #{ann_id} ({name}): {HINT}")
        else:
            self.message.emit(
                f"Refining mask #{ann_id} ({name}) from its bounding box ({start.note}): {HINT}"
            )
        return True

    def save_refine(self, cand: Any) -> int | None:
        """Enter while refining: `cand`'s mask replaces the instance's, one undo step."""
        from samstudio.ui.autosegment import record_steps  # it imports the annotator

        ann_id, image_id, mask = self.refining, self.image_id, cand.mask
        assert ann_id is not None
        prompts = self._prompts_of_shown()
        if self._refine_saved is not None and np.array_equal(mask, self._refine_saved):
            self.take_refine()
            self.clear_prompts()
            self._show_again(ann_id)
            self.message.emit(f"Mask #{ann_id} is unchanged: nothing to save.")
            return None
        try:
            record_steps(
                self.history,
                image_id,
                REFINE_LABEL,
                [
                    lambda: self.project.edit_mask(ann_id, mask),
                    lambda: self.project.set_prompts(
                        ann_id, prompts, cand.predicted_iou, cand.stability_score
                    ),
                ],
            )
        except Exception as exc:  # the refine stays on screen: Enter again or Esc
            self.error.emit("Could not save the change", f"{REFINE_LABEL} #{ann_id}: {exc}")
            return None
        self.take_refine()
        self.clear_prompts()
        self._show_again(ann_id)
        self.message.emit(f"Mask #{ann_id} refined (Ctrl+Z undoes).")
        return ann_id

    def take_refine(self) -> int | None:
        """End the refine, if any (before its prompts are cleared): the instance's overlay
        is shown again. Returns the instance's id."""
        ann_id = self.refining
        if ann_id is not None:
            self.refining = None
            self.canvas.set_instance_visible(ann_id, ann_id not in self.hidden)
            self.undo_changed.emit()  # Undo no longer ends the refine
        return ann_id

    def refine_cancelled(self, ann_id: int) -> None:
        """Esc (or Ctrl+Z past its start) cancelled refining `ann_id`: it is selected again."""
        self._show_again(ann_id)
        self.message.emit(f"Refining mask #{ann_id} cancelled: the mask is unchanged.")

    def leave_refine(self) -> None:
        """Another image: a refine in progress is cancelled, so it is never kept as an
        unfinished new mask (which Enter would add as a duplicate)."""
        ann_id = self.take_refine()
        if ann_id is not None:
            self.clear_prompts()
            self.message.emit(
                f"Refining mask #{ann_id} cancelled (you left its image): the mask is unchanged."
            )

    def match_saved_mask(self) -> None:
        """The first answer of a refine: choose the candidate closest to the saved mask
        (a one-click mask may have been any of the three), so that Enter without a
        correction keeps it as it was."""
        if not self._refine_match or self.refining is None:
            return
        self._refine_match = False
        cs, saved = self.candidate_set, self._refine_saved
        if cs is None or saved is None or len(self.candidates) < 2 or cs.prediction is None:
            return
        ious = []
        for cand in self.candidates:
            mask = cand.mask if cand.mask is not None else cs.prediction.mask(cand.rank)
            ious.append(mask_iou(np.asarray(mask, bool), saved))
        best = int(np.argmax(ious))
        if best != self.chosen:
            self.choose(best)

    def _show_again(self, ann_id: int) -> None:
        """Select `ann_id` again if it is still on the image the refine began on."""
        if self.image_id != self._refine_image or self.project is None:
            return
        if any(a.id == ann_id for a in self.project.annotations(self.image_id)):
            self.select_instance(ann_id)

    def _category_name(self, category_id: int | None) -> str:
        names = {c.id: c.name for c in self.project.categories()}
        return names.get(category_id, "no category")  # type: ignore[arg-type]

    def _instances_rendered(self, generation: int, done: list[Any]) -> None:
        """Overlays drawn while refining leave the refined instance's hidden."""
        super()._instances_rendered(generation, done)  # type: ignore[misc]
        if self.refining is not None:
            self.canvas.set_instance_visible(self.refining, False)
