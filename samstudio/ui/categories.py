"""Categories: add, rename, recolour, choose the current one (Ctrl+1..9)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QColorDialog,
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from samstudio.ui.instances_panel import swatch


@dataclass(frozen=True)
class CategoryRow:
    category_id: int
    name: str
    color: str


class CategoriesPanel(QWidget):
    current_changed = Signal(int)
    add_requested = Signal(str)  # name
    rename_requested = Signal(int, str)
    recolor_requested = Signal(int, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.list = QListWidget()
        layout.addWidget(self.list)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add…")
        self.rename_button = QPushButton("Rename…")
        self.color_button = QPushButton("Colour…")
        for b in (self.add_button, self.rename_button, self.color_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.add_button.clicked.connect(self._ask_add)
        self.rename_button.clicked.connect(self._ask_rename)
        self.color_button.clicked.connect(self._ask_color)
        self.list.currentItemChanged.connect(self._current)
        self._updating = False
        self.rows: list[CategoryRow] = []

    def set_rows(self, rows: list[CategoryRow], current: int | None) -> None:
        self._updating = True
        try:
            self.rows = list(rows)
            self.list.clear()
            for i, row in enumerate(rows):
                key = f"   Ctrl+{i + 1}" if i < 9 else ""
                item = QListWidgetItem(swatch(row.color), f"{row.name}{key}")
                item.setData(Qt.ItemDataRole.UserRole, row.category_id)
                self.list.addItem(item)
                if row.category_id == current:
                    self.list.setCurrentItem(item)
        finally:
            self._updating = False

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def _current(self, item: QListWidgetItem | None, _prev: QListWidgetItem | None) -> None:
        if not self._updating and item is not None:
            self.current_changed.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _ask_add(self) -> None:
        name, ok = QInputDialog.getText(self, "New category", "Name:")
        if ok and name.strip():
            self.add_requested.emit(name.strip())

    def _ask_rename(self) -> None:
        cid = self.current_id()
        if cid is None:
            return
        old = next(r.name for r in self.rows if r.category_id == cid)
        name, ok = QInputDialog.getText(self, "Rename category", "Name:", text=old)
        if ok and name.strip():
            self.rename_requested.emit(cid, name.strip())

    def _ask_color(self) -> None:
        cid = self.current_id()
        if cid is None:
            return
        old = next(r.color for r in self.rows if r.category_id == cid)
        color = QColorDialog.getColor(QColor(old), self, "Category colour")
        if color.isValid():
            self.recolor_requested.emit(cid, color.name())
