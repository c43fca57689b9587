"""Brush and eraser strokes of the annotation session (`Annotator` mixes this in).

A stroke is a (H, W) uint8 mask of discs joined by lines, drawn while the mouse moves
and committed at release as one store operation (one undo step): painted into or erased
from the selected instance (a stroke that erases all of it deletes the instance),
applied to the chosen candidate (before it is accepted; Ctrl+Z takes it back, see
`annotator_prompts`), or painted as a new instance of the current category.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from samstudio.ui.overlays import mask_box, preview, render_mask
from samstudio.ui.project_access import record_id

STROKE_PAINT = (255, 255, 255)
STROKE_ERASE = (255, 60, 60)
MIN_BRUSH, MAX_BRUSH = 1, 400
FAILED = object()  # what `Annotator._store` returns when the store refused an operation


class StrokeEditing:
    """The stroke methods of `Annotator`; they use its state (image_rgb, canvas,
    project, image_id, selected, candidates, category) and its `_store`."""

    # set by Annotator
    image_rgb: Any
    canvas: Any
    project: Any
    image_id: Any
    selected: Any
    candidates: Any
    chosen: int
    category_id: Any
    brush_radius: int
    message: Any
    candidates_changed: Any
    _stroke: Any
    _stroke_paint: bool
    _stroke_last: Any
    remember_prompts: Any

    def set_brush_radius(self, radius: float) -> None:
        self.brush_radius = int(max(MIN_BRUSH, min(MAX_BRUSH, round(radius))))
        self.canvas.set_brush_radius(self.brush_radius)

    def begin_stroke(self, x: float, y: float, paint: bool) -> None:
        if self.image_rgb is None:
            return
        self._stroke = np.zeros(self.image_rgb.shape[:2], np.uint8)
        self._stroke_paint = paint
        self._stroke_last = None
        self.extend_stroke(x, y)

    def extend_stroke(self, x: float, y: float) -> None:
        """Stamp a disc of `brush_radius` at pixel (floor x, floor y), joined to the last one."""
        if self._stroke is None:
            return
        p = (int(np.floor(x)), int(np.floor(y)))
        r = int(self.brush_radius)
        if self._stroke_last is not None:
            cv2.line(
                self._stroke, self._stroke_last, p, 1, thickness=2 * r + 1, lineType=cv2.LINE_8
            )
        cv2.circle(self._stroke, p, r, 1, thickness=-1, lineType=cv2.LINE_8)
        self._stroke_last = p
        color = STROKE_PAINT if self._stroke_paint else STROKE_ERASE
        self.canvas.set_stroke(
            render_mask(self._stroke > 0, color, fill_alpha=140, outline_width=0)
        )

    def end_stroke(self) -> None:
        """Commit the stroke: one store operation, one undo step."""
        stroke = self._stroke
        self.cancel_stroke()
        if stroke is None or self.project is None or self.image_id is None:
            return
        stroke_mask = stroke > 0
        value = self._stroke_paint
        if self.selected is not None:
            ann_id = self.selected
            old = self.project.mask(ann_id)
            if not (old[stroke_mask] != value).any():
                return  # the stroke changes nothing: no store operation, no undo step
            if not value and not (old & ~stroke_mask).any():
                self._erase_whole(ann_id)
                return
            self._store(
                "Brush stroke" if value else "Eraser stroke",
                lambda: self.project.paint(ann_id, stroke_mask, value),
            )
            self.refresh_instances()
        elif self.chosen_candidate is not None:
            self._edit_candidate(stroke_mask, value)
        elif value and self.category_id is not None:
            image_id, category_id = self.image_id, self.category_id
            ann_id = self._store(
                "Paint new mask",
                lambda: self.project.add_annotation(
                    image_id, stroke_mask, category_id, source="manual"
                ),
            )
            if ann_id is not FAILED:
                self._mark_in_progress(image_id)
                self.selected = record_id(ann_id)
            self.refresh_instances()
        else:
            self.message.emit("Select an instance to erase from.")

    def _erase_whole(self, ann_id: int) -> None:
        """An eraser stroke that leaves nothing of the instance deletes it (one undo step):
        an empty mask is no instance, and would be a 0-pixel annotation in an export."""
        deleted = self._store("Erase mask", lambda: self.project.delete_annotation(ann_id))
        if deleted is not FAILED:
            self.selected = None
            self.message.emit("The eraser removed the whole mask (Ctrl+Z brings it back).")
        self.refresh_instances()

    def cancel_stroke(self) -> None:
        self._stroke = None
        self._stroke_last = None
        self.canvas.set_stroke(None)

    def _edit_candidate(self, stroke_mask: np.ndarray, value: bool) -> None:
        cand = self.chosen_candidate
        assert cand is not None and self.image_rgb is not None
        if cand.mask is None:
            cand = self._complete(self.chosen)
        assert cand.mask is not None
        if not (cand.mask[stroke_mask] != value).any():
            return  # the stroke changes nothing: no step to undo
        self.remember_prompts("Brush stroke on the mask" if value else "Eraser stroke on the mask")
        mask = cand.mask.copy()
        mask[stroke_mask] = value
        color = self.category_color(self.category_id)
        box = mask_box(mask)
        new = replace(
            cand,
            mask=mask,
            box=box,
            picture=render_mask(
                mask, color, fill_alpha=120, box=box, outline_color=(255, 255, 255)
            ),
            preview=preview(self.image_rgb, mask, box=box, color=color),
        )
        self.candidates[self.chosen] = new
        self.canvas.set_candidate(new.picture)
        self.candidates_changed.emit()
