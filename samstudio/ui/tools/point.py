"""Point prompts: left click foreground, right click or Shift+click background;
Ctrl+click selects the instance under the cursor (for the brush, eraser, Delete)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from samstudio.ui.tools.base import Tool, ToolEvent


class PointTool(Tool):
    name = "point"
    label = "Point"
    shortcut = "V"

    def press(self, event: ToolEvent) -> bool:
        if (
            event.button == Qt.MouseButton.LeftButton
            and event.modifiers & Qt.KeyboardModifier.ControlModifier
        ):
            self.host.select_at(event.pos.x(), event.pos.y())
            return True
        if event.button == Qt.MouseButton.LeftButton:
            background = bool(event.modifiers & Qt.KeyboardModifier.ShiftModifier)
            self.host.add_point(event.pos.x(), event.pos.y(), foreground=not background)
            return True
        if event.button == Qt.MouseButton.RightButton:
            self.host.add_point(event.pos.x(), event.pos.y(), foreground=False)
            return True
        return False
