"""The Tool base: one object per interaction mode, with press / move / release / cancel.

The canvas turns mouse events into `ToolEvent`s in image pixels (scene coordinates:
pixel (i, j) covers x in [i, i+1), y in [j, j+1)) and hands them to the active tool.
Tools call the `ToolHost` (the annotator) for everything that changes state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QCursor


@dataclass(frozen=True)
class ToolEvent:
    """A mouse event. pos: image pixels (float XY); view_pos: viewport pixels."""

    pos: QPointF
    view_pos: QPointF
    button: Qt.MouseButton
    buttons: Qt.MouseButton
    modifiers: Qt.KeyboardModifier


class ToolHost(Protocol):
    """What tools may ask of the annotator and the canvas."""

    def add_point(self, x: float, y: float, foreground: bool) -> None: ...

    def set_box(self, x0: float, y0: float, x1: float, y1: float) -> None: ...

    def show_box_preview(self, x0: float, y0: float, x1: float, y1: float) -> None: ...

    def hide_box_preview(self) -> None: ...

    def begin_stroke(self, x: float, y: float, paint: bool) -> None: ...

    def extend_stroke(self, x: float, y: float) -> None: ...

    def end_stroke(self) -> None: ...

    def cancel_stroke(self) -> None: ...

    def pan_by(self, dx: float, dy: float) -> None: ...

    def select_at(self, x: float, y: float) -> None: ...


class Tool:
    """Base class. Subclasses override what they need; each returns True if it used the event."""

    name = "tool"
    label = "Tool"
    shortcut = ""
    shows_brush = False

    def __init__(self, host: ToolHost) -> None:
        self.host = host
        self.active = False  # a gesture is in progress

    def cursor(self) -> QCursor:
        return QCursor(Qt.CursorShape.CrossCursor)

    def press(self, event: ToolEvent) -> bool:
        return False

    def move(self, event: ToolEvent) -> bool:
        return False

    def release(self, event: ToolEvent) -> bool:
        return False

    def cancel(self) -> None:
        """Abandon the gesture in progress (Esc, tool switch, image switch)."""
        self.active = False
