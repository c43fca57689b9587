"""The saved instances of the current image in the annotation session (`Annotator`
mixes this in): selecting, hiding, deleting and recategorising them, and drawing their
overlays from the store (cached per mask; many masks are drawn by the loader thread).

Masks are drawn in `overlays.stacking_order` (the newest on top, the selected one above
all) and Ctrl+click picks the topmost mask drawn under the cursor, so what is seen on
top is what is picked. The View menu's `OverlayStyle` (fill opacity, outlines only) is
part of each picture's cache key; a new style re-colours the cached pictures without
decoding a mask.
"""

from __future__ import annotations

import math
from typing import Any

from samstudio.ui.annotator_strokes import FAILED
from samstudio.ui.image_checks import fits
from samstudio.ui.overlays import MaskPicture, OverlayStyle, instance_color, stacking_order
from samstudio.ui.pixel_loader import InstanceJob, render_instance
from samstudio.ui.project_access import hex_to_rgb


class InstanceEditing:
    """The instance methods of `Annotator`; they use its state (project, image,
    selection, hidden instances, overlay cache), its canvas and loader, and `_store`."""

    # set by Annotator
    project: Any
    image_id: Any
    image_rgb: Any
    canvas: Any
    loader: Any
    selected: Any
    category_id: Any
    hidden: set[int]
    instances_changed: Any
    message: Any
    overlay_style: OverlayStyle = OverlayStyle()
    _pictures: dict[int, tuple[tuple[Any, ...], MaskPicture]]
    _render_generation: int
    _store: Any

    def select_instance(self, annotation_id: int | None) -> None:
        self.selected = annotation_id
        self.refresh_instances()

    def select_at(self, x: float, y: float) -> None:
        """Select the topmost instance drawn over pixel (x, y), or none (Ctrl+click).

        The canvas's drawing order decides (`canvas.drawn_instances`): a hidden mask, or
        every mask while View ▸ Hide all masks is on, cannot be picked. Ctrl+click again
        on the selected one picks the next one under it there (wrapping round): the
        selected mask is drawn on top, and a part under its whole is reached this way.
        """
        if self.project is None or self.image_id is None:
            return
        xi, yi = math.floor(x), math.floor(y)  # int() would take -0.5 to pixel 0
        records = {rec.id: rec for rec in self.project.annotations(self.image_id)}
        hits = [
            ann_id
            for ann_id in self.canvas.drawn_instances()
            if (rec := records.get(ann_id)) is not None
            and _covers(rec, self._pictures.get(ann_id), xi, yi, self.project)
        ]
        hit = hits[0] if hits else None
        if self.selected in hits and len(hits) > 1:
            hit = hits[(hits.index(self.selected) + 1) % len(hits)]
            self.message.emit(
                f"Mask {hits.index(hit) + 1} of {len(hits)} here (Ctrl+click again: the next)"
            )
        if hit is None and not self.canvas.instances_shown():
            self.message.emit("All masks are hidden: View ▸ Hide all masks (M) shows them.")
        self.select_instance(hit)

    def set_overlay_style(self, style: OverlayStyle) -> None:
        """Draw the saved masks with this fill opacity / outlines only (View menu)."""
        if style != self.overlay_style:
            self.overlay_style = style
            self.refresh_instances()

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
        """Choose the category for new masks; a selected instance changes to it too,
        and the status bar says so (the change is one undo step)."""
        self.category_id = category_id
        if self.selected is not None and self.project is not None:
            ann_id = self.selected
            rec = next((a for a in self.project.annotations(self.image_id) if a.id == ann_id), None)
            if rec is not None and rec.category_id != category_id:
                done = self._store(
                    "Change category", lambda: self.project.set_category(ann_id, category_id)
                )
                self.refresh_instances()
                if done is not FAILED:
                    names = {c.id: c.name for c in self.project.categories()}
                    self.message.emit(
                        f"Selected mask #{ann_id}: {names.get(rec.category_id, '?')} → "
                        f"{names.get(category_id, '?')} (Ctrl+Z undoes; Esc lets the mask go)"
                    )

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
        style = self.overlay_style
        seen = set()
        jobs: list[InstanceJob] = []
        for rec in records:
            if not fits(rec, self.image_rgb):
                continue  # made on an earlier picture of another size (`image_checks`)
            seen.add(rec.id)
            selected = rec.id == self.selected
            key = (_rle_key(rec.rle), colors.get(rec.category_id), selected, style)
            cached = self._pictures.get(rec.id)
            if cached is None or cached[0] != key:
                rgb = instance_color(hex_to_rgb(colors.get(rec.category_id, "#1e90ff")), rec.id)
                # the same mask in another style: re-colour the picture, do not decode
                same = cached is not None and cached[0][:-1] == key[:-1]
                reuse = cached[1] if cached is not None and same else None
                jobs.append(InstanceJob(rec.id, key, rec.rle, rgb, selected, style, reuse))
        for gone in set(self._pictures) - seen:
            del self._pictures[gone]
            self.canvas.set_instance(gone, None)
        if self.selected is not None and self.selected not in seen:
            self.selected = None
        self.canvas.set_stacking(
            stacking_order([r.id for r in records if r.id in seen], self.selected)
        )
        self._render_generation += 1
        if len(jobs) <= 4:
            self._instances_rendered(self._render_generation, [render_instance(j) for j in jobs])
        else:
            self.loader.render_instances(self._render_generation, jobs)
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


def _covers(rec: Any, drawn: Any, x: int, y: int, project: Any) -> bool:
    """True when the mask of `rec` covers pixel (x, y): read from its drawn picture
    (`drawn`: (key, MaskPicture) or None) where it has one at full resolution, else
    from the store."""
    bx, by, bw, bh = rec.bbox
    if not (bx <= x < bx + bw and by <= y < by + bh):
        return False
    if drawn is not None and drawn[1].scale == 1:
        picture = drawn[1]
        ox, oy = picture.origin
        h, w = picture.classes.shape
        return 0 <= y - oy < h and 0 <= x - ox < w and bool(picture.classes[y - oy, x - ox])
    return bool(project.mask(rec.id)[y, x])


def _rle_key(rle: Any) -> Any:
    if isinstance(rle, dict):
        counts = rle.get("counts")
        return (
            tuple(rle.get("size", ())),
            counts if isinstance(counts, (str, bytes)) else str(counts),
        )
    return rle
