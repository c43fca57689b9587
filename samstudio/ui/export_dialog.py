"""File ▸ Export …: where to, which images, and whether unreviewed proposals go too.

One small dialog before anything is written: the file (or, for SA-1B, the folder),
proposed in the project's folder (not the working directory), with Browse…; which
images (all, those with masks, those marked done, each with its count); and a box for
the auto-segment proposals not reviewed yet, unticked (they are not annotations until
accepted). A COCO polygon export says that polygons approximate the masks (holes are
lost); RLE is exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

IMAGE_CHOICES = (
    ("all", "All images ({images})"),
    ("annotated", "Images with masks ({annotated})"),
    ("done", "Images marked done ({done})"),
)
POLYGON_NOTE = (
    "Polygons trace each mask's outline: they differ from the mask by a few pixels along "
    "the edge, and holes are lost. Export COCO (RLE masks) for the exact masks."
)


class ExportDialog(QDialog):
    """The export's target and scope. `counts`: `counts.export_counts(project)`;
    `default`: the proposed file (or folder) path."""

    def __init__(
        self,
        title: str,
        fmt: str,
        default: Path,
        counts: dict[str, int],
        file_filter: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title.rstrip("…"))
        self.fmt = fmt
        self.file_filter = file_filter
        layout = QVBoxLayout(self)
        form = QFormLayout()
        layout.addLayout(form)

        self.path_edit = QLineEdit(str(default))
        self.path_edit.setToolTip(
            "The folder to write one JSON per image into"
            if fmt == "sa1b"
            else "The COCO JSON file to write"
        )
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self.browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.browse_button)
        form.addRow("Folder" if fmt == "sa1b" else "File", row)

        self.images = QComboBox()
        for key, text in IMAGE_CHOICES:
            self.images.addItem(text.format(**counts), key)
        self.images.setToolTip(
            "All images: images without masks go out too (as images with no objects). "
            "Images with masks: only those with at least one exported mask. "
            "Images marked done: only those marked done (Ctrl+D)."
        )
        form.addRow("Images", self.images)

        n = counts.get("proposals", 0)
        self.proposals = QCheckBox(f"Also the {n} auto-segment proposals not reviewed yet")
        self.proposals.setToolTip(
            "Proposals are masks the model made that nobody has accepted yet; they are left "
            "out unless ticked (review them with J, Ctrl+Return, Ctrl+Backspace)."
        )
        self.proposals.setVisible(n > 0)
        layout.addWidget(self.proposals)
        if fmt == "coco-polygon":
            note = QLabel(POLYGON_NOTE)
            note.setWordWrap(True)
            layout.addWidget(note)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.path_edit.textChanged.connect(self._check)
        self._check()

    def browse(self) -> None:
        """Choose the file (or folder) with the system's dialog."""
        current = self.path_edit.text().strip()
        if self.fmt == "sa1b":
            path = QFileDialog.getExistingDirectory(self, self.windowTitle(), current)
        else:
            path, _ = QFileDialog.getSaveFileName(
                self, self.windowTitle(), current, self.file_filter
            )
        if path:
            self.path_edit.setText(path)

    def target(self) -> Path:
        return Path(self.path_edit.text().strip()).expanduser()

    def scope(self) -> Any:
        """The `exchange.ExportScope` chosen."""
        from samstudio.core.document.exchange import ExportScope

        return ExportScope(images=self.images.currentData(), proposals=self.proposals.isChecked())

    def _check(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(self.path_edit.text().strip()))

    def _accept(self) -> None:
        if self.path_edit.text().strip():
            self.accept()
