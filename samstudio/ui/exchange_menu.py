"""The File menu: open folder / project, recent projects, import and export.

Import and export go through the store and the core's formats; errors become dialogs
that name the file and the problem.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication, QFileDialog, QMenu, QMessageBox

from samstudio.ui.project_session import rescan_folder

EXPORT_FORMATS = {
    "coco-rle": ("Export COCO (RLE masks)…", "COCO JSON (*.json)", "annotations_coco.json"),
    "coco-polygon": (
        "Export COCO (polygons)…",
        "COCO JSON (*.json)",
        "annotations_coco_polygons.json",
    ),
    "sa1b": ("Export SA-1B (one JSON per image)…", "", "sa1b"),
}


class ExportError(Exception):
    """An export could not be written. The message names the path and the reason."""


def export_project(project: Any, fmt: str, out: Path, scope: Any = None) -> tuple[Path, Any]:
    """Write the project's annotations in `fmt` ("coco-rle", "coco-polygon", "sa1b") to
    `out` through the store's export, taking `scope` (`exchange.ExportScope`; default:
    every image, no unreviewed proposal). Returns (what was written, the store's
    `ExportResult`). Raises ExportError naming the path and the reason."""
    from samstudio.core.document.exchange import ExportScope
    from samstudio.core.document.exchange import export_project as store_export

    out = Path(out)
    target_dir = out if fmt == "sa1b" else out.parent
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"{target_dir}: cannot create the folder ({exc.strerror or exc})"
        ) from exc
    if not _writable(target_dir):
        raise ExportError(
            f"{target_dir}: the folder is read-only; choose another place to export to"
        )
    try:
        result = store_export(project, fmt, out, scope=scope or ExportScope())
    except OSError as exc:
        raise ExportError(_write_failure(out, exc)) from exc
    return (out if fmt == "sa1b" else Path(result.files[0])), result


def _write_failure(out: Path, exc: OSError) -> str:
    """One sentence naming the path once and the problem. The core's atomic writes
    already say "cannot write FILE: reason" (FILE may be one file of an SA-1B folder)."""
    text = str(exc.strerror or exc)
    if not text.startswith("cannot write "):
        text = f"cannot write {out}: {text}"
    text = "C" + text[1:]
    if exc.errno == errno.ENOSPC:
        return f"{text}. The disk is full: free some space or export to another disk"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{text}. Export to a folder you can write to"
    return text


def import_file(project: Any, path: Path) -> Any:
    """Merge the annotations of `path` (COCO, SA-1B, labelme...) into the project."""
    from samstudio.core.document.exchange import import_file as store_import

    return store_import(project, path)


def _writable(folder: Path) -> bool:
    import os

    return os.access(folder, os.W_OK | os.X_OK)


def build_file_menu(window: Any, menu: QMenu) -> None:
    menu.addAction(window._action("Open folder of images…", window.ask_open_folder, "Ctrl+O"))
    open_project = window._action(
        "Open project file…", lambda: _ask_open_project(window), "Ctrl+Shift+O"
    )
    menu.addAction(open_project)
    recent = menu.addMenu("Recent projects")

    def fill_recent() -> None:
        recent.clear()
        paths = window.settings.recent_projects
        if not paths:
            recent.addAction("(none yet)").setEnabled(False)
        for p in paths:
            recent.addAction(p).triggered.connect(lambda _c=False, p=p: window.open_path(p))

    recent.aboutToShow.connect(fill_recent)
    fill_recent()
    menu.addAction(window._action("Locate moved images…", lambda: ask_relocate(window)))
    menu.addAction(
        window._action("Add new images from the folder", lambda: rescan_folder(window), "F5")
    )
    menu.addSeparator()
    menu.addAction(
        window._action("Import annotations (COCO, SA-1B, labelme)…", lambda: ask_import(window))
    )
    for fmt, (label, _filt, _default) in EXPORT_FORMATS.items():
        menu.addAction(window._action(label, lambda f=fmt: ask_export(window, f)))
    menu.addSeparator()
    menu.addAction(window._action("Quit", window.close, "Ctrl+Q"))


def _ask_open_project(window: Any) -> None:
    path, _ = QFileDialog.getOpenFileName(window, "Open a SAM Studio project", "", "All files (*)")
    if path:
        window.open_path(path)


def ask_relocate(window: Any) -> None:
    if window.project is None:
        return
    folder = QFileDialog.getExistingDirectory(window, "Where are the project's images now?")
    if folder:
        relocate(window, Path(folder))


def relocate(window: Any, folder: Path) -> int | None:
    """Point the project at `folder`, matching images by content; reopen the current one."""
    try:
        found = int(window.project.relocate_images(folder))
    except Exception as exc:
        window.show_error("Could not locate the images", f"{folder}: {exc}")
        return None
    total = len(window.project.images())
    window.image_checks.scan()  # the files found there are no longer missing
    window._refresh_all()
    if window.annotator.image_id is not None:
        window.open_image(window.annotator.image_id)
    window.statusBar().showMessage(f"Found {found} of {total} images in {folder}", 10000)
    return found


def ask_import(window: Any) -> None:
    if window.project is None:
        QMessageBox.information(window, "Import", "Open a folder of images first.")
        return
    path, _ = QFileDialog.getOpenFileName(
        window, "Import annotations", "", "JSON (*.json);;All files (*)"
    )
    if path:
        run_import(window, Path(path))


def run_import(window: Any, path: Path) -> Any:
    """Import and report; returns the store's ImportSummary, or None after an error dialog."""
    try:
        summary = import_file(window.project, path)
    except Exception as exc:
        window.show_error("Import failed", f"{path}: {exc}")
        return None
    # The import is one store operation per image: undo reaches it through the store.
    window.annotator.history.set_project(window.project)
    window.annotator.history.set_image(window.annotator.image_id)
    window._refresh_all()
    window.annotator.refresh_instances()
    text = (
        f"{summary.annotations_added} masks on {summary.images_matched} images from {path.name} "
        f"({summary.format})"
    )
    skipped = int(getattr(summary, "annotations_skipped", 0))
    if skipped:
        text = (
            f"{summary.annotations_added} added, {skipped} already in the project (skipped), "
            f"on {summary.images_matched} images from {path.name} ({summary.format})"
        )
    notes = list(summary.conflicts) + list(summary.format_issues)
    if notes:
        QMessageBox.warning(window, "Imported with notes", text + "\n\n" + "\n".join(notes[:30]))
    window.statusBar().showMessage("Imported " + text, 10000)
    return summary


def ask_export(window: Any, fmt: str) -> None:
    if window.project is None:
        QMessageBox.information(window, "Export", "Open a folder of images first.")
        return
    from samstudio.core.document.counts import export_counts
    from samstudio.ui.export_dialog import ExportDialog

    label, filt, default = EXPORT_FORMATS[fmt]
    folder = Path(window.project.root)  # beside the images, not the working directory
    try:
        counts = export_counts(window.project)
    except Exception as exc:
        window.show_error("Export failed", f"{window.project.path}: {exc}")
        return
    dialog = ExportDialog(label, fmt, folder / default, counts, filt, window)
    try:
        if dialog.exec():
            run_export(window, fmt, dialog.target(), dialog.scope())
    finally:
        dialog.deleteLater()


def run_export(window: Any, fmt: str, path: Path, scope: Any = None) -> Path | None:
    """Export and report what went out; a failure gives a dialog naming the path and
    the problem. `scope`: `exchange.ExportScope` (default: all images, no proposals)."""
    QApplication.setOverrideCursor(window.cursor())
    try:
        out, result = export_project(window.project, fmt, path, scope)
    except Exception as exc:
        window.show_error("Export failed", str(exc))
        return None
    finally:
        QApplication.restoreOverrideCursor()
    text = f"Exported {result.annotations} masks on {result.images} images to {out}"
    notes = result.notes()
    if result.problems:
        lines = list(result.problems[:30]) + notes
        QMessageBox.warning(window, "Exported with notes", f"{text}\n\n" + "\n".join(lines))
    window.statusBar().showMessage("; ".join([text, *notes]), 15000)
    return out
