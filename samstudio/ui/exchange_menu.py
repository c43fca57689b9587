"""The File menu: open folder / project, recent projects, import and export.

Import and export go through the store and the core's formats; errors become dialogs
that name the file and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication, QFileDialog, QMenu, QMessageBox

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


def export_project(project: Any, fmt: str, out: Path) -> Path:
    """Write the project's annotations in `fmt` ("coco-rle", "coco-polygon", "sa1b") to `out`.

    Uses the store's own export when it has one, else the core's format writers on a
    Dataset read from the store. Raises ExportError naming the path and the reason.
    """
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
        if hasattr(project, "export"):
            result = project.export(out, format=fmt)
            return Path(result) if isinstance(result, (str, Path)) else out
        dataset = project_dataset(project)
        if fmt == "sa1b":
            from samstudio.core.formats.sa1b import export_sa1b

            export_sa1b(dataset, out)
            return out
        from samstudio.core.formats.coco import export_coco

        return Path(export_coco(dataset, out, "polygon" if fmt == "coco-polygon" else "rle"))
    except PermissionError as exc:
        raise ExportError(f"{out}: permission denied ({exc.strerror or exc})") from exc
    except OSError as exc:
        raise ExportError(f"{out}: {exc.strerror or exc}") from exc


def project_dataset(project: Any) -> Any:
    """The project's images, categories and annotations as a formats `Dataset`.

    A small bridge kept here until the store offers its own export (see the report).
    Unreadable images are left out; masks keep their RLE as stored.
    """
    from samstudio.core.formats.records import Annotation, Category, Dataset, ImageRecord

    ds = Dataset()
    for c in project.categories():
        ds.categories.append(Category(c.id, c.name, c.supercategory or ""))
    for im in project.images():
        if im.error:
            continue
        ds.images.append(ImageRecord(im.id, im.path, im.width, im.height))
        for a in project.annotations(im.id):
            points = (a.prompts or {}).get("points") if isinstance(a.prompts, dict) else None
            ds.annotations.append(
                Annotation(
                    id=a.id,
                    image_id=a.image_id,
                    category_id=a.category_id,
                    segmentation=dict(a.rle),
                    bbox=[float(v) for v in a.bbox],
                    predicted_iou=a.predicted_iou,
                    stability_score=a.stability_score,
                    point_coords=points,
                )
            )
    return ds


def import_file(project: Any, path: Path) -> Any:
    """Merge the annotations of `path` (COCO, SA-1B or labelme JSON) into the project."""
    if hasattr(project, "import_annotations"):
        return project.import_annotations(path)
    raise ExportError(f"{path}: this version of the project store cannot import annotations yet")


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


def ask_import(window: Any) -> None:
    if window.project is None:
        QMessageBox.information(window, "Import", "Open a folder of images first.")
        return
    path, _ = QFileDialog.getOpenFileName(
        window, "Import annotations", "", "JSON (*.json);;All files (*)"
    )
    if path:
        run_import(window, Path(path))


def run_import(window: Any, path: Path) -> bool:
    try:
        report = import_file(window.project, path)
    except Exception as exc:
        window.show_error("Import failed", f"{path}: {exc}")
        return False
    window._refresh_all()
    window.annotator.refresh_instances()
    window.statusBar().showMessage(f"Imported {path.name}: {report}", 10000)
    return True


def ask_export(window: Any, fmt: str) -> None:
    if window.project is None:
        QMessageBox.information(window, "Export", "Open a folder of images first.")
        return
    label, filt, default = EXPORT_FORMATS[fmt]
    if fmt == "sa1b":
        path = QFileDialog.getExistingDirectory(window, label.rstrip("…"))
    else:
        path, _ = QFileDialog.getSaveFileName(window, label.rstrip("…"), default, filt)
    if path:
        run_export(window, fmt, Path(path))


def run_export(window: Any, fmt: str, path: Path) -> Path | None:
    """Export and report; a failure gives a dialog naming the path and the problem."""
    QApplication.setOverrideCursor(window.cursor())
    try:
        out = export_project(window.project, fmt, path)
    except Exception as exc:
        window.show_error("Export failed", str(exc))
        return None
    finally:
        QApplication.restoreOverrideCursor()
    window.statusBar().showMessage(f"Exported to {out}", 10000)
    return out
