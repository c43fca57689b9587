"""Pan: drag the view. (Middle drag and Space+drag pan with any tool.)"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QCursor

from samstudio.ui.tools.base import Tool, ToolEvent


class PanTool(Tool):
    name = "pan"
    label = "Pan"
    shortcut = "H"

    def __init__(self, host) -> None:  # type: ignore[no-untyped-def]
        super().__init__(host)
        self._last: QPointF | None = None

    def cursor(self) -> QCursor:
        return QCursor(
            Qt.CursorShape.ClosedHandCursor if self.active else Qt.CursorShape.OpenHandCursor
        )

    def press(self, event: ToolEvent) -> bool:
        if event.button != Qt.MouseButton.LeftButton:
            return False
        self._last = QPointF(event.view_pos)
        self.active = True
        return True

    def move(self, event: ToolEvent) -> bool:
        if self._last is None:
            return False
        delta = event.view_pos - self._last
        self._last = QPointF(event.view_pos)
        self.host.pan_by(delta.x(), delta.y())
        return True

    def release(self, event: ToolEvent) -> bool:
        if self._last is None:
            return False
        self._last = None
        self.active = False
        return True

    def cancel(self) -> None:
        self._last = None
        self.active = False
