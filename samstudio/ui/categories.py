"""Categories: add, rename (onto another's name: merge), recolour, delete, choose the
current one (Ctrl+1..9).

Delete… is a button, an entry of the list's context menu and the Delete key on the
list; the window asks what happens to the category's instances (`category_actions`).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPoint, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent
from PySide6.QtWidgets import (
    QColorDialog,
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMenu,
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


_DELETE_KEYS = (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)


class CategoryList(QListWidget):
    """The list of categories; Delete (or Backspace) on it asks to delete the current
    one, before the window's own Delete shortcut (delete the selected instance) can."""

    delete_pressed = Signal()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            if event.key() in _DELETE_KEYS and event.modifiers() == Qt.KeyboardModifier.NoModifier:
                event.accept()
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in _DELETE_KEYS and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            self.delete_pressed.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class CategoriesPanel(QWidget):
    current_changed = Signal(int)
    add_requested = Signal(str)  # name
    rename_requested = Signal(int, str)
    recolor_requested = Signal(int, str)
    delete_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.list = CategoryList()
        layout.addWidget(self.list)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add…")
        self.rename_button = QPushButton("Rename…")
        self.color_button = QPushButton("Colour…")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip(
            "Delete the category; its instances move to another category or are deleted"
        )
        for b in (self.add_button, self.rename_button, self.color_button, self.delete_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.add_button.clicked.connect(self._ask_add)
        self.rename_button.clicked.connect(lambda: self._ask_rename(self.current_id()))
        self.color_button.clicked.connect(lambda: self._ask_color(self.current_id()))
        self.delete_button.clicked.connect(lambda: self._ask_delete(self.current_id()))
        self.list.delete_pressed.connect(lambda: self._ask_delete(self.current_id()))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.currentItemChanged.connect(self._current)
        self._updating = False
        self.rows: list[CategoryRow] = []

    def context_menu(self, category_id: int) -> QMenu:
        """The menu of one category: Rename…, Colour…, Delete… (the current category,
        the one new masks take, stays as it is)."""
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self._ask_rename(category_id))
        menu.addAction("Colour…", lambda: self._ask_color(category_id))
        menu.addSeparator()
        menu.addAction("Delete…", lambda: self._ask_delete(category_id))
        return menu

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        menu = self.context_menu(int(item.data(Qt.ItemDataRole.UserRole)))
        menu.exec(self.list.viewport().mapToGlobal(pos))
        menu.deleteLater()

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

    def _ask_rename(self, cid: int | None) -> None:
        if cid is None:
            return
        old = next(r.name for r in self.rows if r.category_id == cid)
        name, ok = QInputDialog.getText(self, "Rename category", "Name:", text=old)
        if ok and name.strip():
            self.rename_requested.emit(cid, name.strip())

    def _ask_color(self, cid: int | None) -> None:
        if cid is None:
            return
        old = next(r.color for r in self.rows if r.category_id == cid)
        color = QColorDialog.getColor(QColor(old), self, "Category colour")
        if color.isValid():
            self.recolor_requested.emit(cid, color.name())

    def _ask_delete(self, cid: int | None) -> None:
        if cid is not None:
            self.delete_requested.emit(cid)
