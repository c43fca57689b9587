"""Eraser: the brush with the opposite value (clears pixels of the instance)."""

from __future__ import annotations

from samstudio.ui.tools.brush import BrushTool


class EraserTool(BrushTool):
    name = "eraser"
    label = "Eraser"
    shortcut = "E"
    paints = False
