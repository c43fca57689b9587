"""Brush: paint pixels into the selected instance (or the current candidate).
Ctrl+click selects the instance under the cursor, as with the point tool, so an
annotator can go from one instance to the next without switching tools.

One press-drag-release is one stroke and one undo step. The brush size is changed
with [ and ] (the annotator owns the size; the canvas draws the size cursor).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QCursor

from samstudio.ui.tools.base import Tool, ToolEvent


class BrushTool(Tool):
    name = "brush"
    label = "Brush"
    shortcut = "R"
    shows_brush = True
    paints = True  # the eraser sets this to False

    def cursor(self) -> QCursor:
        return QCursor(Qt.CursorShape.BlankCursor)  # the canvas draws the round size cursor

    def press(self, event: ToolEvent) -> bool:
        if event.button != Qt.MouseButton.LeftButton:
            return False
        if event.modifiers & Qt.KeyboardModifier.ControlModifier:
            self.host.select_at(event.pos.x(), event.pos.y())
            return True
        self.active = True
        self.host.begin_stroke(event.pos.x(), event.pos.y(), paint=self.paints)
        return True

    def move(self, event: ToolEvent) -> bool:
        if not self.active:
            return False
        self.host.extend_stroke(event.pos.x(), event.pos.y())
        return True

    def release(self, event: ToolEvent) -> bool:
        if not self.active or event.button != Qt.MouseButton.LeftButton:
            return False
        self.active = False
        self.host.end_stroke()
        return True

    def cancel(self) -> None:
        if self.active:
            self.host.cancel_stroke()
        self.active = False
