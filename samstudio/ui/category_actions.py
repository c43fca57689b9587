"""What the window does for Delete category… and for a rename onto another category's
name (merge): it asks, calls the store (`Project.delete_category`, one transaction) and
repaints the panels.

Deleting a category is project-wide while undo is per image, so it is not an undo
step: the dialog names what will happen first (see core/document/categories.py for
what undo can still do afterwards). The window's per-image undo stacks are rebuilt
from the store after it, since the store may have recorded steps on several images.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QDialog, QMessageBox

from samstudio.ui.categories import CategoryRow
from samstudio.ui.category_delete_dialog import DeleteCategoryDialog, plural


def delete_category(window: Any, category_id: int) -> None:
    """Delete category…: an unused category goes at once; for one in use the dialog asks
    whether its instances move (and where) or are deleted; the last one stays."""
    project = window.project
    if project is None:
        return
    cats = project.categories()
    cat = next((c for c in cats if c.id == category_id), None)
    if cat is None:
        return
    if len(cats) == 1:
        QMessageBox.information(
            window,
            "Cannot delete the category",
            f"“{cat.name}” is the only category, and new masks need one. "
            "Add another category first, then delete this one.",
        )
        return
    usage = project.category_usage(category_id)
    move_to: int | None = None
    if usage.annotations:
        others = [CategoryRow(c.id, c.name, c.color) for c in cats if c.id != category_id]
        dialog = DeleteCategoryDialog(cat.name, usage.annotations, usage.images, others, window)
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            move_to = dialog.move_to()
        finally:
            dialog.deleteLater()
    _remove(window, category_id, move_to)


def rename_category(window: Any, category_id: int, name: str) -> None:
    """Rename; onto the name of another category, offer to merge into that one."""
    project = window.project
    if project is None:
        return
    other = project.category_named(name)
    if other is not None and other.id != category_id:
        old = next(c.name for c in project.categories() if c.id == category_id)
        usage = project.category_usage(category_id)
        moved = (
            f"Its {plural(usage.annotations, 'instance')} on {plural(usage.images, 'image')} "
            f"move to “{other.name}” and “{old}” is deleted."
            if usage.annotations
            else f"“{old}” has no instances; it is deleted."
        )
        answer = QMessageBox.question(
            window,
            "Merge categories",
            f"A category named “{other.name}” already exists.\n\n"
            f"Merge “{old}” into “{other.name}”? {moved} This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            _remove(window, category_id, other.id)
        return
    try:
        project.rename_category(category_id, name)
    except Exception as exc:
        window.show_error("Could not rename the category", f"{name}: {exc}")
    window._refresh_categories()
    window._refresh_instances()


def _remove(window: Any, category_id: int, move_to: int | None) -> None:
    """Delete the category in the store, then bring the window up to date."""
    try:
        removal = window.project.delete_category(category_id, move_to=move_to)
    except Exception as exc:
        window.show_error("Could not delete the category", str(exc))
        return
    a = window.annotator
    if a.category_id == category_id:
        a.category_id = move_to if move_to is not None else window.project.categories()[0].id
    if a.image_id is not None:
        alive = {ann.id for ann in window.project.annotations(a.image_id)}
        if a.selected is not None and a.selected not in alive:
            a.selected = None
    # The store recorded steps on other images than the ones the window's stacks know:
    # start them again from the store, which holds every step.
    a.history.set_project(window.project)
    a.history.set_image(a.image_id)
    window._refresh_categories()
    a.refresh_instances()
    window._refresh_image_rows()
    window._update_undo_actions()
    where = f"{plural(removal.annotations, 'instance')} on {plural(removal.images, 'image')}"
    if removal.into is not None:
        text = f"Merged category “{removal.name}” into “{removal.into}”: {where} moved"
    elif removal.annotations:
        text = (
            f"Deleted category “{removal.name}” and its {where} (Undo on an image brings them back)"
        )
    else:
        text = f"Deleted category “{removal.name}” (it had no instances)"
    window.statusBar().showMessage(text, 15000)
