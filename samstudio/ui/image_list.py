"""The project's images: name, status, mask count, a mark for an image that needs
attention (unreadable, its file missing, masks made on an earlier picture); a status
filter ("Errors" lists the marked ones)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

STATUS_LABELS = {"new": "new", "in_progress": "in progress", "done": "done"}
FILTERS = [
    ("All images", None),
    ("New", "new"),
    ("In progress", "in_progress"),
    ("Done", "done"),
    ("Errors", "error"),
]


@dataclass(frozen=True)
class ImageRow:
    image_id: int
    name: str
    status: str
    mask_count: int
    error: str | None = None
    missing: str | None = None  # why its file cannot be used now (gone, no permission)
    unfitting: int = 0  # saved masks made on an earlier picture of another size
    proposals: int = 0  # auto-segment proposals not reviewed yet (not in mask_count)


class ImageListPanel(QWidget):
    image_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.filter = QComboBox()
        for label, _ in FILTERS:
            self.filter.addItem(label)
        layout.addWidget(self.filter)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Image", "Status", "Masks"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setColumnWidth(0, 150)
        self.tree.setColumnWidth(1, 85)
        self.tree.setColumnWidth(2, 40)
        layout.addWidget(self.tree)
        self.rows: list[ImageRow] = []
        self.current: int | None = None
        self._updating = False
        self.filter.currentIndexChanged.connect(lambda _i: self._rebuild())
        self.tree.currentItemChanged.connect(self._changed)

    @property
    def status_filter(self) -> str | None:
        return FILTERS[self.filter.currentIndex()][1]

    def set_rows(self, rows: list[ImageRow], current: int | None) -> None:
        self.rows = list(rows)
        self.current = current
        self._rebuild()

    def update_row(self, row: ImageRow) -> None:
        self.rows = [row if r.image_id == row.image_id else r for r in self.rows]
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if int(item.data(0, Qt.ItemDataRole.UserRole)) == row.image_id:
                self._fill(item, row)

    def visible_ids(self) -> list[int]:
        return [
            int(self.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole))
            for i in range(self.tree.topLevelItemCount())
        ]

    def neighbour(self, step: int) -> int | None:
        """The image `step` rows away from the current one in the filtered list."""
        ids = self.visible_ids()
        if not ids:
            return None
        if self.current not in ids:
            # the current image left the filter (e.g. "New" after its first mask): go on
            # from its place in the whole list, not from the top
            order = [r.image_id for r in self.rows]
            if self.current not in order:
                return ids[0] if step > 0 else ids[-1]
            here = order.index(self.current)
            visible = set(ids)
            side = order[here + 1 :] if step > 0 else order[:here][::-1]
            return next((i for i in side if i in visible), None)
        i = ids.index(self.current) + step
        return ids[i] if 0 <= i < len(ids) else None

    def set_current(self, image_id: int | None) -> None:
        self.current = image_id
        self._updating = True
        try:
            for i in range(self.tree.topLevelItemCount()):
                item = self.tree.topLevelItem(i)
                if int(item.data(0, Qt.ItemDataRole.UserRole)) == image_id:
                    self.tree.setCurrentItem(item)
                    self.tree.scrollToItem(item)
        finally:
            self._updating = False

    def _matches(self, row: ImageRow) -> bool:
        f = self.status_filter
        if f is None:
            return True
        if f == "error":
            return row.error is not None or row.missing is not None or row.unfitting > 0
        return row.status == f and row.error is None

    def _rebuild(self) -> None:
        self._updating = True
        try:
            self.tree.clear()
            for row in self.rows:
                if self._matches(row):
                    item = QTreeWidgetItem()
                    item.setData(0, Qt.ItemDataRole.UserRole, row.image_id)
                    self._fill(item, row)
                    self.tree.addTopLevelItem(item)
                    if row.image_id == self.current:
                        self.tree.setCurrentItem(item)
        finally:
            self._updating = False

    def _fill(self, item: QTreeWidgetItem, row: ImageRow) -> None:
        if row.error:
            self._mark(item, row, "unreadable", row.error, QColor(255, 90, 90))
        elif row.missing:
            self._mark(item, row, "missing", f"{row.name}: {row.missing}", QColor(255, 90, 90))
        elif row.unfitting:
            tip = (
                f"{row.unfitting} saved mask(s) were made on an earlier picture of another "
                "size: not shown, not exported (Edit ▸ Delete masks made on an earlier picture)"
            )
            self._mark(item, row, "check masks", tip, QColor(255, 165, 0))
        else:
            item.setText(0, row.name)
            item.setText(1, STATUS_LABELS.get(row.status, row.status))
            item.setToolTip(0, row.name)
            item.setToolTip(1, "")
            for column in (0, 1):  # a mark that is gone (the file is back)
                item.setData(column, Qt.ItemDataRole.ForegroundRole, None)
        item.setText(
            2, f"{row.mask_count} +{row.proposals}" if row.proposals else str(row.mask_count)
        )
        item.setToolTip(
            2,
            f"{row.mask_count} mask(s), {row.proposals} auto-segment proposal(s) to review"
            if row.proposals
            else f"{row.mask_count} mask(s)",
        )
        item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    @staticmethod
    def _mark(item: QTreeWidgetItem, row: ImageRow, status: str, tip: str, color: QColor) -> None:
        item.setText(0, f"⚠ {row.name}")
        item.setText(1, status)
        for column in (0, 1):
            item.setForeground(column, QBrush(color))
            item.setToolTip(column, tip)

    def _changed(self, item: QTreeWidgetItem | None, _prev: QTreeWidgetItem | None) -> None:
        if self._updating or item is None:
            return
        image_id = int(item.data(0, Qt.ItemDataRole.UserRole))
        if image_id != self.current:
            self.image_chosen.emit(image_id)
