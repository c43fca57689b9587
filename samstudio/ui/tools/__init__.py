"""Interaction tools (point, box, brush, eraser, pan), each an object."""

from samstudio.ui.tools.base import Tool, ToolEvent, ToolHost
from samstudio.ui.tools.box import BoxTool
from samstudio.ui.tools.brush import BrushTool
from samstudio.ui.tools.eraser import EraserTool
from samstudio.ui.tools.pan import PanTool
from samstudio.ui.tools.point import PointTool

ALL_TOOLS = (PointTool, BoxTool, BrushTool, EraserTool, PanTool)

__all__ = [
    "Tool",
    "ToolEvent",
    "ToolHost",
    "PointTool",
    "BoxTool",
    "BrushTool",
    "EraserTool",
    "PanTool",
    "ALL_TOOLS",
]
