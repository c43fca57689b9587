"""Point prompts: left click foreground, right click or Shift+click background."""

from __future__ import annotations

from PySide6.QtCore import Qt

from samstudio.ui.tools.base import Tool, ToolEvent


class PointTool(Tool):
    name = "point"
    label = "Point"
    shortcut = "V"

    def press(self, event: ToolEvent) -> bool:
        if event.button == Qt.MouseButton.LeftButton:
            background = bool(event.modifiers & Qt.KeyboardModifier.ShiftModifier)
            self.host.add_point(event.pos.x(), event.pos.y(), foreground=not background)
            return True
        if event.button == Qt.MouseButton.RightButton:
            self.host.add_point(event.pos.x(), event.pos.y(), foreground=False)
            return True
        return False
