"""Every annotation of the current image: colour, category, source, visibility.

Selecting a row selects the instance for editing (brush, eraser, category change);
Delete removes it; the check box hides or shows its overlay.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class InstanceRow:
    annotation_id: int
    category: str
    color: str  # "#rrggbb"
    source: str  # manual / auto / imported / edited
    area: int
    predicted_iou: float | None = None
    crowd: bool = False  # a COCO crowd region (iscrowd 1, from an imported file)
    aside: bool = False  # made on an earlier picture of another size: not drawn


def swatch(color: str, size: int = 14) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(color))
    return QIcon(pm)


class InstanceList(QListWidget):
    delete_requested = Signal(int)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            item = self.currentItem()
            if item is not None:
                self.delete_requested.emit(int(item.data(Qt.ItemDataRole.UserRole)))
            event.accept()
            return
        super().keyPressEvent(event)


class InstancesPanel(QWidget):
    selected = Signal(object)  # annotation id or None
    visibility_changed = Signal(int, bool)
    delete_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.summary = QLabel("No instances")
        layout.addWidget(self.summary)
        self.list = InstanceList()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        layout.addWidget(self.list)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemChanged.connect(self._item_changed)
        self.list.delete_requested.connect(self.delete_requested)
        self._updating = False

    def set_rows(self, rows: list[InstanceRow], selected: int | None, hidden: set[int]) -> None:
        self._updating = True
        try:
            self.list.clear()
            for row in rows:
                iou = "" if row.predicted_iou is None else f" · IoU {row.predicted_iou:.2f}"
                crowd = " · crowd" if row.crowd else ""
                aside = " · ⚠ made on an earlier picture, not shown" if row.aside else ""
                item = QListWidgetItem(
                    swatch(row.color),
                    f"#{row.annotation_id} {row.category}{crowd} · {row.source} · "
                    f"{row.area:,} px{iou}{aside}",
                )
                item.setData(Qt.ItemDataRole.UserRole, row.annotation_id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Unchecked
                    if row.annotation_id in hidden
                    else Qt.CheckState.Checked
                )
                item.setToolTip("Tick to show, untick to hide · Delete removes")
                if row.source == "proposal":  # auto-segment proposal, not yet reviewed
                    font = item.font()
                    font.setItalic(True)
                    item.setFont(font)
                    item.setToolTip(
                        "Auto-segment proposal: Ctrl+Return / Ctrl+Backspace accept / reject "
                        "it · J / K: next / previous proposal · Delete removes"
                    )
                self.list.addItem(item)
                if row.annotation_id == selected:
                    self.list.setCurrentItem(item)
            self.summary.setText(f"{len(rows)} instance{'s' if len(rows) != 1 else ''}")
        finally:
            self._updating = False

    def row_ids(self) -> list[int]:
        return [
            int(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())
        ]

    def select(self, annotation_id: int | None) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if int(item.data(Qt.ItemDataRole.UserRole)) == annotation_id:
                self.list.setCurrentItem(item)
                return
        self.list.setCurrentItem(None)  # type: ignore[arg-type]

    def _current_changed(
        self, current: QListWidgetItem | None, _prev: QListWidgetItem | None
    ) -> None:
        if self._updating:
            return
        self.selected.emit(None if current is None else int(current.data(Qt.ItemDataRole.UserRole)))

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self._updating:
            return
        visible = item.checkState() == Qt.CheckState.Checked
        self.visibility_changed.emit(int(item.data(Qt.ItemDataRole.UserRole)), visible)
