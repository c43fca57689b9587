"""Opening and closing projects in the window, and moving between their images
(`MainWindow` mixes this in).

One project is open at a time. Another is opened only after the current one is closed
(its lock released); if it cannot be opened, the current one is opened again at the
image that was on screen. A locked or damaged project can be opened read-only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QMessageBox

from samstudio.ui.project_access import open_project
from samstudio.ui.project_session import add_new_images, image_to_open, remember_image


class ProjectHandling:
    """The project and image commands of `MainWindow`."""

    # set by MainWindow (a QMainWindow)
    project: Any
    project_path: Path | None
    settings: Any
    annotator: Any
    image_checks: Any
    images_panel: Any
    candidates_panel: Any
    show_error: Any
    _refresh_all: Any
    _refresh_image_rows: Any
    _refresh_instances: Any

    def open_path(self, path: str | Path) -> bool:
        """Open a project file or a folder of images. Returns False (after a dialog) on error.

        The project already open here is left as it is. Another one is opened only
        after the current one is closed (its lock released, so reopening a project
        never finds it locked by this very window); if the new one cannot be opened,
        the current one is opened again, at the image that was on screen.
        """
        current = self.project
        if (
            current is not None
            and not getattr(current, "read_only", False)
            and _project_file(path) == _project_file(current.path)
        ):
            self.statusBar().showMessage(f"{_project_file(path)} is already open", 5000)
            self.settings.add_recent(str(Path(path).resolve()))
            return True
        previous = self._close_project()
        project = self._open_project(path)
        if project is None:
            if previous is not None:
                self._reopen(*previous)
            return False
        add_new_images(self, project)
        self.set_project(project, Path(path))
        self.settings.add_recent(str(Path(path).resolve()))
        return True

    def _open_project(self, path: str | Path) -> Any:
        """The project at `path`, or None after a dialog that names the file."""
        from samstudio.core.document import CorruptProjectError, ProjectLockedError

        try:
            return open_project(path)
        except (ProjectLockedError, CorruptProjectError) as exc:
            answer = QMessageBox.question(
                self,
                "Open read-only?",
                f"{exc}\n\nOpen the project read-only (look and export, no edits)?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return None
            try:
                return open_project(path, read_only=True)
            except Exception as exc2:
                self.show_error("Could not open the project", f"{path}: {exc2}")
                return None
        except Exception as exc:
            self.show_error("Could not open the project", f"{path}: {exc}")
            return None

    def _close_project(self) -> tuple[Path, bool, int | None] | None:
        """Close the open project; returns (path, read-only, image on screen) to reopen it."""
        project = self.project
        if project is None:
            return None
        previous = (
            self.project_path or Path(project.path),
            bool(getattr(project, "read_only", False)),
            self.annotator.image_id,
        )
        self._stop_auto_segment()
        self.annotator.set_project(None)
        self.project = None
        try:
            project.close()
        except Exception:
            pass
        return previous

    def _reopen(self, path: Path, read_only: bool, image_id: int | None) -> None:
        """Open the project that `_close_project` closed again (nothing of it was lost)."""
        try:
            project = open_project(path, read_only=read_only)
        except Exception as exc:
            self.show_error("Could not reopen the project", f"{path}: {exc}")
            self._refresh_all()
            return
        self.set_project(project, path)
        if image_id is not None and image_id != self.annotator.image_id:
            if any(r.id == image_id for r in project.images()):
                self.open_image(image_id)

    def _stop_auto_segment(self) -> None:
        """A run of the project being closed stops (its images are not the next one's)."""
        menu = getattr(self, "autosegment_menu", None)  # built after the first open?
        if menu is not None:
            menu.auto.project_closing()

    def set_project(self, project: Any, path: Path | None = None) -> None:
        if self.project is not project:
            self._stop_auto_segment()
        if self.project is not None and self.project is not project:
            try:
                self.project.close()
            except Exception:
                pass
        self.project = project
        self.project_path = path
        self.annotator.set_project(project)
        self.update_title()
        problems = list(getattr(project, "problems", []) or [])
        if problems:  # only a read-only open gets this far with problems
            more = f"\n… and {len(problems) - 20} more" if len(problems) > 20 else ""
            QMessageBox.warning(
                self,
                "Opened read-only: some of it cannot be read",
                f"{getattr(project, 'path', path)}\n\n"
                + "\n".join(problems[:20])
                + more
                + "\n\nWhat is shown can be exported (File ▸ Export).",
            )
        missing = self.image_checks.scan()
        if missing:
            self.statusBar().showMessage(f"{missing} image file(s) missing: marked ⚠", 20000)
        self._refresh_all()
        first = image_to_open(self.settings, project)  # where the user was, else the first
        if first is not None:
            self.open_image(first)

    def open_image(self, image_id: int) -> None:
        note = self.image_checks.check(image_id)  # the file replaced on disk?
        self.annotator.open_image(image_id)
        remember_image(self.settings, self.project, image_id)
        self.images_panel.set_current(image_id)
        self.candidates_panel.clear()
        self._refresh_instances()
        if note:
            self.statusBar().showMessage(note, 20000)

    def step_image(self, step: int) -> None:
        nxt = self.images_panel.neighbour(step)
        if nxt is not None:
            self.open_image(nxt)

    def toggle_done(self) -> None:
        if self.project is None or self.annotator.image_id is None:
            return
        image_id = self.annotator.image_id
        rec = next(r for r in self.project.images() if r.id == image_id)
        status = "in_progress" if rec.status == "done" else "done"
        try:
            self.project.set_image_status(image_id, status)
        except Exception as exc:
            self.show_error("Could not save the change", str(exc))
        self._refresh_image_rows()

    def ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_path(folder)


def _project_file(path: str | Path) -> Path:
    """The project file that opening `path` (a project file or a folder) reaches."""
    from samstudio.core.document import PROJECT_FILE_NAME

    path = Path(path)
    if path.is_dir():
        path = path / PROJECT_FILE_NAME
    return path.resolve()
