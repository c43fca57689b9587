"""The window's panels repainted from the project (`MainWindow` mixes this in): the
image list, the categories, the instances of the current image, the candidates, and
the texts of Undo and Redo.
"""

from __future__ import annotations

from typing import Any

from samstudio.ui.categories import CategoryRow
from samstudio.ui.image_checks import fits
from samstudio.ui.instances_panel import InstanceRow
from samstudio.ui.overlays import instance_color
from samstudio.ui.project_access import hex_to_rgb, rgb_to_hex


class PanelRefresh:
    """The panel refreshes of `MainWindow`; they read its project and annotator."""

    # set by MainWindow
    project: Any
    annotator: Any
    canvas: Any
    image_checks: Any
    images_panel: Any
    categories_panel: Any
    instances_panel: Any
    candidates_panel: Any
    undo_action: Any
    redo_action: Any

    def _refresh_all(self) -> None:
        self._refresh_image_rows()
        self._refresh_categories()
        self._refresh_instances()
        self._update_undo_actions()

    def _refresh_image_rows(self) -> None:
        if self.project is None:
            self.images_panel.set_rows([], None)
            return
        from samstudio.core.document.counts import masks_per_image

        counts = masks_per_image(self.project)  # one query, no mask read
        rows = []
        records = self.project.images()
        for rec in records:
            n, proposals = (0, 0) if getattr(rec, "error", None) else counts.get(rec.id, (0, 0))
            rows.append(self.image_checks.row(rec, n, proposals=proposals))
        self.images_panel.set_rows(rows, self.annotator.image_id)
        self.update_title(records)

    def _refresh_categories(self) -> None:
        if self.project is None:
            self.categories_panel.set_rows([], None)
            return
        rows = [CategoryRow(c.id, c.name, c.color) for c in self.project.categories()]
        self.categories_panel.set_rows(rows, self.annotator.category_id)

    def _refresh_instances(self) -> None:
        a = self.annotator
        if self.project is None or a.image_id is None:
            self.instances_panel.set_rows([], None, set())
            return
        cats = {c.id: c for c in self.project.categories()}
        rows = []
        for rec in self.project.annotations(a.image_id):
            cat = cats.get(rec.category_id)
            rows.append(
                InstanceRow(
                    rec.id,
                    cat.name if cat else "?",
                    rgb_to_hex(instance_color(hex_to_rgb(cat.color if cat else "#888888"), rec.id)),
                    rec.source,
                    int(rec.area),
                    rec.predicted_iou,
                    rec.iscrowd,
                    a.image_rgb is not None and not fits(rec, a.image_rgb),
                )
            )
        self.instances_panel.set_rows(rows, a.selected, a.hidden)
        self.canvas.set_proposals({r.annotation_id for r in rows if r.source == "proposal"})
        proposals = sum(r.source == "proposal" for r in rows)
        self._update_image_row(a.image_id, len(rows) - proposals, proposals)
        self._update_undo_actions()

    def _update_image_row(self, image_id: int, count: int, proposals: int = 0) -> None:
        records = self.project.images()
        rec = next((r for r in records if r.id == image_id), None)
        if rec is not None:
            row = self.image_checks.row(rec, count, live=True, proposals=proposals)
            self.images_panel.update_row(row)
        self.update_title(records)  # the done count

    def _show_candidates(self) -> None:
        cs = self.annotator.candidate_set
        self.candidates_panel.show_candidates(
            self.annotator.candidates, None if cs is None else cs.decode_ms, self.annotator.chosen
        )

    def _update_undo_actions(self) -> None:
        a = self.annotator  # the mask being made first, then the saved changes
        self.undo_action.setEnabled(a.can_undo())
        self.redo_action.setEnabled(a.can_redo())
        self.undo_action.setText(f"Undo {a.undo_text()}".strip())
        self.redo_action.setText(f"Redo {a.redo_text()}".strip())
