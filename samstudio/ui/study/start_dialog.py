"""Asking a participant's name or code before a rating session."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)


class ParticipantDialog(QDialog):
    """A name or code, required: OK stays disabled while the field is blank."""

    def __init__(self, study_title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Rate masks: who is rating?")
        intro = QLabel(
            f"Study: {study_title}\n\nYour name or participant code. Use the same one "
            "again to continue where you stopped.",
            self,
        )
        intro.setWordWrap(True)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("name or code")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.name_edit.textChanged.connect(self._update_ok)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.name_edit)
        layout.addWidget(self.buttons)
        self._update_ok()

    def participant(self) -> str:
        return self.name_edit.text().strip()

    def _update_ok(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(self.participant()))

    def accept(self) -> None:
        if self.participant():
            super().accept()


def ask_participant(study_title: str, parent: QWidget | None = None) -> str | None:
    """The participant's name or code, or None when cancelled."""
    dialog = ParticipantDialog(study_title, parent)
    try:
        if dialog.exec() == QDialog.DialogCode.Accepted:
            return dialog.participant()
        return None
    finally:
        dialog.deleteLater()
