"""The saved instances of the current image in the annotation session (`Annotator`
mixes this in): selecting, hiding, deleting and recategorising them, and drawing their
overlays from the store (cached per mask; many masks are drawn by the loader thread).
"""

from __future__ import annotations

import math
from typing import Any

from samstudio.ui.annotator_strokes import FAILED
from samstudio.ui.image_checks import fits
from samstudio.ui.overlays import MaskPicture, instance_color
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
    _pictures: dict[int, tuple[tuple[Any, ...], MaskPicture]]
    _render_generation: int
    _store: Any

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


def _rle_key(rle: Any) -> Any:
    if isinstance(rle, dict):
        counts = rle.get("counts")
        return (
            tuple(rle.get("size", ())),
            counts if isinstance(counts, (str, bytes)) else str(counts),
        )
    return rle
