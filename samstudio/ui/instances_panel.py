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
        self._rows: list[InstanceRow] = []  # as shown, in order
        self._items: dict[int, QListWidgetItem] = {}  # annotation id -> its item

    def set_rows(self, rows: list[InstanceRow], selected: int | None, hidden: set[int]) -> None:
        """Show `rows`, `selected` current, the `hidden` ones unticked.

        Cheap when little changed (a selection moved, one proposal accepted or rejected:
        what review does hundreds of times on an image with hundreds of masks): rows
        that went are taken out and changed rows rewritten in place; only another order
        or new rows in the middle rebuild the list."""
        self._updating = True
        try:
            old = self._rows
            new_ids = [r.annotation_id for r in rows]
            wanted = set(new_ids)
            kept = [r for r in old if r.annotation_id in wanted]
            if [r.annotation_id for r in kept] == new_ids[: len(kept)]:
                self._update_in_place(rows, kept, hidden)
            else:
                self._rebuild(rows, hidden)
            self._rows = list(rows)
            self.summary.setText(f"{len(rows)} instance{'s' if len(rows) != 1 else ''}")
            item = self._items.get(selected) if selected is not None else None
            if item is not self.list.currentItem():
                self.list.setCurrentItem(item)  # type: ignore[arg-type]
        finally:
            self._updating = False

    def _update_in_place(
        self, rows: list[InstanceRow], kept: list[InstanceRow], hidden: set[int]
    ) -> None:
        """The rows kept are in the same order, new ones (if any) come after them."""
        gone = {r.annotation_id for r in self._rows} - {r.annotation_id for r in rows}
        for ann_id in gone:
            item = self._items.pop(ann_id)
            self.list.takeItem(self.list.row(item))
        before = {r.annotation_id: r for r in kept}
        for row in rows:
            item = self._items.get(row.annotation_id)
            if item is None:
                self._add(row, hidden)
                continue
            if before[row.annotation_id] != row:
                self._describe(item, row)
            state = self._check_state(row, hidden)
            if item.checkState() != state:
                item.setCheckState(state)

    def _rebuild(self, rows: list[InstanceRow], hidden: set[int]) -> None:
        self.list.clear()
        self._items = {}
        for row in rows:
            self._add(row, hidden)

    def _add(self, row: InstanceRow, hidden: set[int]) -> None:
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, row.annotation_id)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(self._check_state(row, hidden))
        self._describe(item, row)
        self.list.addItem(item)
        self._items[row.annotation_id] = item

    @staticmethod
    def _check_state(row: InstanceRow, hidden: set[int]) -> Qt.CheckState:
        return Qt.CheckState.Unchecked if row.annotation_id in hidden else Qt.CheckState.Checked

    @staticmethod
    def _describe(item: QListWidgetItem, row: InstanceRow) -> None:
        """The item's swatch, text, tooltip and font for `row`."""
        iou = "" if row.predicted_iou is None else f" · IoU {row.predicted_iou:.2f}"
        crowd = " · crowd" if row.crowd else ""
        aside = " · ⚠ made on an earlier picture, not shown" if row.aside else ""
        item.setIcon(swatch(row.color))
        item.setText(
            f"#{row.annotation_id} {row.category}{crowd} · {row.source} · "
            f"{row.area:,} px{iou}{aside}"
        )
        proposal = row.source == "proposal"  # auto-segment proposal, not yet reviewed
        font = item.font()
        font.setItalic(proposal)
        item.setFont(font)
        item.setToolTip(
            "Auto-segment proposal: Ctrl+Return / Ctrl+Backspace accept / reject it · "
            "J / K: next / previous proposal · Delete removes"
            if proposal
            else "Tick to show, untick to hide · Delete removes"
        )

    def row_ids(self) -> list[int]:
        return [
            int(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())
        ]

    def select(self, annotation_id: int | None) -> None:
        item = self._items.get(annotation_id) if annotation_id is not None else None
        self.list.setCurrentItem(item)  # type: ignore[arg-type]

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
