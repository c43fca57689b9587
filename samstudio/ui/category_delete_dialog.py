"""The dialog of Delete category… for a category in use: move its instances to another
category (chosen here) or delete them."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from samstudio.ui.categories import CategoryRow
from samstudio.ui.instances_panel import swatch


def plural(n: int, word: str) -> str:
    """'1 instance', '3 instances'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class DeleteCategoryDialog(QDialog):
    """Asks what happens to the `instances` on `images` images of category `name`.

    `others` are the categories they can move to; the one of the same name but for
    case ("Dog" → "dog") is offered first. After `exec`, `move_to()` is the chosen
    category id, or None for "delete them".
    """

    def __init__(
        self,
        name: str,
        instances: int,
        images: int,
        others: list[CategoryRow],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Delete category")
        layout = QVBoxLayout(self)
        self.question = QLabel(
            f"“{name}” is used by {plural(instances, 'instance')} on "
            f"{plural(images, 'image')}. What should happen to them?"
        )
        self.question.setWordWrap(True)
        layout.addWidget(self.question)
        move_row = QHBoxLayout()
        self.move_button = QRadioButton("Move them to")
        self.target = QComboBox()
        alike = [r for r in others if r.name.casefold() == name.casefold()]
        for row in alike + [r for r in others if r not in alike]:
            self.target.addItem(swatch(row.color), row.name, row.category_id)
        move_row.addWidget(self.move_button)
        move_row.addWidget(self.target, 1)
        layout.addLayout(move_row)
        self.delete_button = QRadioButton(f"Delete the {plural(instances, 'instance')}")
        self.delete_button.setToolTip(
            "Undo on an image brings its instances back, without a category"
        )
        layout.addWidget(self.delete_button)
        self.move_button.toggled.connect(self.target.setEnabled)
        self.move_button.setChecked(bool(others))
        self.move_button.setEnabled(bool(others))
        self.delete_button.setChecked(not others)
        note = QLabel(f"“{name}” itself is deleted; that cannot be undone.")
        note.setWordWrap(True)
        layout.addWidget(note)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Delete category")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def move_to(self) -> int | None:
        """The category the instances move to; None when they are to be deleted."""
        if self.delete_button.isChecked():
            return None
        data = self.target.currentData()
        return None if data is None else int(data)
