"""The main window (a placeholder until the annotator lands)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMainWindow


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("SAM Studio")
        label = QLabel("SAM Studio — the annotator is on its way. Use `samstudio --help` meanwhile.")
        label.setMargin(24)
        self.setCentralWidget(label)
        self.resize(900, 600)
