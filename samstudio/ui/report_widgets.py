"""Widgets the report dialogs share (Inspect's statistics, the evaluation): a message
line, a read-only, monospace, unwrapped table for the core's `table()` text, and the
Close / Save report… buttons."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton


def message_label() -> QLabel:
    """A wrapping label whose text (a file name in an error) can be selected and copied."""
    label = QLabel("")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def table_view() -> QPlainTextEdit:
    """Read-only monospace text, not wrapped, so the columns of a table stay aligned."""
    view = QPlainTextEdit()
    view.setReadOnly(True)
    view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    return view


def report_buttons(
    dialog: QDialog, save: Callable[[], object]
) -> tuple[QDialogButtonBox, QPushButton]:
    """Close (closes `dialog`) and "Save report…" (calls `save`); returns the box and the
    save button, which the dialog enables when it has a report."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    save_button = QPushButton("Save report…")
    buttons.addButton(save_button, QDialogButtonBox.ButtonRole.ActionRole)
    save_button.clicked.connect(save)
    buttons.rejected.connect(dialog.close)
    return buttons, save_button
