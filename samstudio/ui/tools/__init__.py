"""Interaction tools (point, box, brush, eraser, pan), each an object."""
