"""Widgets the report dialogs share (Inspect's statistics, the evaluation): a message
line and a read-only, monospace, unwrapped table for the core's `table()` text."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QLabel, QPlainTextEdit


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
