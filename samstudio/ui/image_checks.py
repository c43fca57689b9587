"""The project's image files as the window sees them (the core: `document.image_files`).

- On opening a project and on F5, every image file is looked up (one `stat` each,
  nothing decoded): files that are gone or cannot be read are marked in the image list.
- When an image is opened, its file is compared with its record (size and modification
  time, then the SHA-256 when those differ). A file replaced by another picture gets its
  record updated (size, hash); the worker computes its embedding again (it hashes the
  pixels of a file whose stamp changed, and the disk cache is keyed by those pixels), and
  an unfinished mask kept for it loses the old picture's answer.
- Saved masks are never changed by this. Same size: they are kept and shown (the picture
  was retouched, recompressed, re-exported). Another size: they were made on the old
  picture and do not fit the new one, so a dialog names the file and says so; they are
  kept, not drawn, left out of exports, and the image is marked in the list, until the
  user deletes them (Edit ▸ Delete masks made on an earlier picture, one undo step) or
  puts the old file back (then they fit again). Not rescaled: a crop cannot be told
  from a resize, and a mask moved onto the wrong pixels is worse than one set aside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtWidgets import QMessageBox

from samstudio.core.document.image_files import (
    ImageFileCheck,
    check_image_file,
    fits_image,
    missing_images,
    unfitting_masks,
)
from samstudio.ui.image_list import ImageRow

DELETE_LABEL = "Delete masks made on an earlier picture"


def fits(rec: Any, image_rgb: np.ndarray | None) -> bool:
    """Whether annotation `rec`'s mask has the size of the image on screen."""
    return image_rgb is not None and fits_image(rec.rle, *image_rgb.shape[:2])


class ImageChecks:
    """What the window knows about its project's image files (see module docstring)."""

    def __init__(self, window: Any) -> None:
        self.window = window
        self.missing: dict[int, str] = {}  # image id -> why its file cannot be used
        self.unfitting: dict[int, int] = {}  # image id -> masks of an earlier picture

    def add_action(self, menu: Any) -> None:
        self.window._action(DELETE_LABEL, self.delete_unfitting, None, menu)

    def scan(self) -> int:
        """Look up every image file of the open project; returns how many are missing."""
        project = self.window.project
        self.missing, self.unfitting = {}, {}
        if project is None:
            return 0
        try:
            self.missing = missing_images(project)
            self.unfitting = {i: len(ids) for i, ids in unfitting_masks(project).items()}
        except Exception as exc:  # a busy or damaged project file: no marks, it opens
            self._say(f"Could not check the image files: {exc}")
        return len(self.missing)

    def row(self, rec: Any, count: int, live: bool = False, proposals: int = 0) -> ImageRow:
        """The image list's row of image record `rec` with `count` reviewed masks and
        `proposals` unreviewed ones; `live`: count its masks of an earlier picture again
        (they may have been deleted or undone)."""
        if live and not rec.error:
            try:
                n = len(unfitting_masks(self.window.project, rec.id).get(rec.id, []))
            except Exception:
                n = self.unfitting.get(rec.id, 0)
            self._set(self.unfitting, rec.id, n or None)
        return ImageRow(
            rec.id,
            Path(str(rec.path)).name,
            rec.status,
            count,
            getattr(rec, "error", None),
            self.missing.get(rec.id),
            self.unfitting.get(rec.id, 0),
            proposals,
        )

    def check(self, image_id: int) -> str:
        """Before image `image_id` is opened: compare its file with its record (see the
        module docstring); a dialog when masks no longer fit. Returns the status bar's
        line about it ('' when there is nothing to say)."""
        project = self.window.project
        if project is None:
            return ""
        try:
            found = check_image_file(project, image_id)
            kept = 0
            if found.state == "changed":
                kept = len(project.annotations(image_id)) - found.unfitting
        except Exception as exc:  # the record could not be updated (full disk, busy file)
            return f"Could not check whether the image file changed: {exc}"
        if found.state in ("missing", "unreadable"):
            self._set(self.missing, image_id, found.reason or "cannot be read")
            return ""  # the loader's failure says it in the status bar
        self._set(self.missing, image_id, None)
        self._set(self.unfitting, image_id, found.unfitting or None)
        if found.state == "changed":
            self.window.annotator.drop_unfinished(image_id, keep_prompts=not found.size_changed)
            if found.unfitting:
                QMessageBox.warning(self.window, "Image changed on disk", _dialog_text(found))
        return _note(found, kept)

    def delete_unfitting(self) -> None:
        """Edit ▸ Delete masks made on an earlier picture: of the image on screen, as one
        undo step."""
        window, annotator = self.window, self.window.annotator
        project, image_id = window.project, annotator.image_id
        if project is None or image_id is None:
            return
        ids = unfitting_masks(project, image_id).get(image_id, [])
        if not ids:
            self._say("This image has no masks made on an earlier picture")
            return
        label = f"Delete {len(ids)} mask{'s' if len(ids) > 1 else ''} of an earlier picture"
        try:
            annotator.history.do(label, lambda: project.delete_annotations(ids))
        except Exception as exc:
            window.show_error("Could not save the change", f"{label}: {exc}")
            return
        annotator.refresh_instances()
        self._say(
            f"Deleted {len(ids)} mask(s) made on an earlier picture (Ctrl+Z brings them back)"
        )

    def _say(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 20000)

    @staticmethod
    def _set(table: dict[int, Any], image_id: int, value: Any) -> None:
        if value:
            table[image_id] = value
        else:
            table.pop(image_id, None)


def _size(size: tuple[int, int]) -> str:
    return f"{size[1]} x {size[0]}"


def _note(found: ImageFileCheck, kept: int) -> str:
    """The status bar's line for what `check_image_file` found (`kept`: the image's
    masks that fit it); '' for nothing to say."""
    name = found.path.name
    n = found.unfitting
    if found.state == "unchanged":
        if not n:
            return ""
        return (
            f"{name}: {n} mask(s) were made on an earlier picture of another size: not shown, "
            f"not exported (Edit ▸ {DELETE_LABEL})"
        )
    if found.old_size == (0, 0):
        return f"{name} can be read now ({_size(found.new_size)})"
    if found.size_changed:
        return (
            f"{name} changed on disk (now {_size(found.new_size)}, was {_size(found.old_size)}): "
            "its embedding is computed again"
            + (f"; its {n} mask(s) of the old picture are kept aside" if n else "")
        )
    masks = f"; its {kept} mask{'s are' if kept > 1 else ' is'} kept" if kept else ""
    return f"{name} changed on disk (same size): its embedding is computed again{masks}"


def _dialog_text(found: ImageFileCheck) -> str:
    n = found.unfitting
    if n == 1:
        masks = (
            "Its 1 saved mask was made on the old picture and does not fit the new one. It is "
            "kept as it is: not drawn, left out of exports, and the image is marked ⚠ in the "
            "image list. If the old file is put back, it fits again.\n\nTo remove it"
        )
    else:
        masks = (
            f"Its {n} saved masks were made on the old picture and do not fit the new one. "
            "They are kept as they are: not drawn, left out of exports, and the image is "
            "marked ⚠ in the image list. If the old file is put back, they fit again.\n\n"
            "To remove them"
        )
    return (
        f"{found.path}\n\nThis image file was replaced by a picture of another size: it is "
        f"now {_size(found.new_size)} pixels, it was {_size(found.old_size)}.\n\n"
        f"{masks}: Edit ▸ {DELETE_LABEL} (one step, Ctrl+Z undoes it)."
    )
