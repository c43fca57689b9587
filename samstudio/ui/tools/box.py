"""Box prompt: drag a rectangle; it combines with the points already placed."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt

from samstudio.ui.tools.base import Tool, ToolEvent

MIN_BOX_PX = 3.0  # a drag shorter than this (in image pixels) is not a box


class BoxTool(Tool):
    name = "box"
    label = "Box"
    shortcut = "B"

    def __init__(self, host) -> None:  # type: ignore[no-untyped-def]
        super().__init__(host)
        self._start: QPointF | None = None

    def press(self, event: ToolEvent) -> bool:
        if event.button != Qt.MouseButton.LeftButton:
            return False
        self._start = QPointF(event.pos)
        self.active = True
        return True

    def move(self, event: ToolEvent) -> bool:
        if self._start is None:
            return False
        x0, y0, x1, y1 = self._corners(event.pos)
        self.host.show_box_preview(x0, y0, x1, y1)
        return True

    def release(self, event: ToolEvent) -> bool:
        if self._start is None or event.button != Qt.MouseButton.LeftButton:
            return False
        x0, y0, x1, y1 = self._corners(event.pos)
        self._start = None
        self.active = False
        self.host.hide_box_preview()
        if x1 - x0 >= MIN_BOX_PX and y1 - y0 >= MIN_BOX_PX:
            self.host.set_box(x0, y0, x1, y1)
        return True

    def cancel(self) -> None:
        if self._start is not None:
            self.host.hide_box_preview()
        self._start = None
        self.active = False

    def _corners(self, pos: QPointF) -> tuple[float, float, float, float]:
        assert self._start is not None
        a, b = self._start, pos
        return min(a.x(), b.x()), min(a.y(), b.y()), max(a.x(), b.x()), max(a.y(), b.y())
