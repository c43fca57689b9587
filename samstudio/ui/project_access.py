"""The one place where the window meets the project store (`samstudio.core.document`).

`open_project(path)` opens a project file, or a folder of images (creating its project
file the first time). A project always has at least one category to annotate with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from samstudio.core.document import PROJECT_FILE_NAME, Project

DEFAULT_CATEGORY = "object"


def open_project(path: str | Path, read_only: bool = False) -> Project:
    """Open the project at `path` (a project file or a folder of images)."""
    path = Path(path)
    if path.is_dir() and not (path / PROJECT_FILE_NAME).exists():
        project = Project.create(path)
    else:
        project = Project.open(path, read_only=read_only)
    if not project.categories() and not project.read_only:
        project.add_category(DEFAULT_CATEGORY)
    return project


def record_id(value: Any) -> int:
    """The id of a record the store returned (records have `.id`; plain ids pass through)."""
    return int(getattr(value, "id", value))


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """ "#rrggbb" -> (r, g, b)."""
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def rgb_to_hex(rgb: tuple[int, int, int]) -> str:
    """(r, g, b) -> "#rrggbb"."""
    return "#" + "".join(f"{int(c):02x}" for c in rgb)
