"""What the window finds on opening a project and keeps from one session to the next.

- Image files copied into a project's folder after its project file was made join the
  project when it is opened (or on File ▸ Add new images from the folder), as new images;
  F5 also marks the images whose file has gone missing (see `image_checks`).
- The image the user was at in each project is remembered (per user, in Settings, by the
  project file's resolved path) and opened again, instead of the first image.
- The window's size, position, docks and toolbar are saved on closing and restored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def add_new_images(window: Any, project: Any) -> int:
    """Add image files under the project's folder that it does not hold yet; say how many
    in the status bar. A read-only project, or a store that refuses, adds none."""
    if project is None or getattr(project, "read_only", False):
        return 0
    try:
        added = int(project.rescan())
    except Exception as exc:  # a full disk or a busy file: the project opens as it is
        window.statusBar().showMessage(
            f"Could not add the new images of {project.root}: {exc}", 20000
        )
        return 0
    if added:
        plural = "image" if added == 1 else "images"
        window.statusBar().showMessage(
            f"{added} new {plural} found in {project.root} and added to the project", 20000
        )
    return added


def rescan_folder(window: Any) -> int:
    """File ▸ Add new images from the folder (F5); also marks again the images whose
    file is missing (and unmarks those that are back)."""
    project = window.project
    if project is None:
        return 0
    read_only = getattr(project, "read_only", False)
    added = 0 if read_only else add_new_images(window, project)
    missing = window.image_checks.scan()
    window._refresh_image_rows()
    if read_only:
        text = "The project is open read-only: no images added"
    elif added:
        text = window.statusBar().currentMessage()  # how many were added
    else:
        text = f"No new images in {project.root}"
    if missing:
        text += f"; {missing} image file(s) missing: marked ⚠ in the image list"
    window.statusBar().showMessage(text, 20000)
    return added


def _project_key(project: Any) -> str:
    return str(Path(project.path).resolve())


def image_to_open(settings: Any, project: Any) -> int | None:
    """The image the user was at in `project` last time, if its file is still there and
    readable; else the first readable image; None when there is none."""
    readable = [r.id for r in project.images() if not getattr(r, "error", None)]
    last = settings.last_image(_project_key(project))
    if last in readable and Path(project.image_path(last)).is_file():
        return int(last)
    return readable[0] if readable else None


def remember_image(settings: Any, project: Any, image_id: int) -> None:
    if project is not None:
        settings.set_last_image(_project_key(project), image_id)


def restore_layout(window: Any) -> None:
    """Size, position, docks and toolbar as the window was last closed (if it was)."""
    geometry = window.settings.window_geometry
    if geometry is not None:
        window.restoreGeometry(geometry)
    state = window.settings.window_state
    if state is not None:
        window.restoreState(state)


def save_layout(window: Any) -> None:
    """Called on closing. Written to disk at once (with the image each project was left
    at): the app may leave with `os._exit` right after, which skips QSettings' own sync."""
    window.settings.window_geometry = window.saveGeometry()
    window.settings.window_state = window.saveState()
    window.settings.q.sync()
