"""User settings kept in QSettings: recent projects, colours, brush size, cache, prefetch,
the masks' opacity and outline-only drawing, the window's size and layout, and the image
each project was left at."""

from __future__ import annotations

import json

from PySide6.QtCore import QByteArray, QSettings

from samstudio.ui.overlays import DEFAULT_OPACITY

MAX_RECENT = 10
MAX_REMEMBERED_PROJECTS = 50  # projects whose last image is remembered


class Settings:
    """Typed access to the app's QSettings (organisation/app name set by app.main)."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings or QSettings()

    def _int(self, key: str, default: int) -> int:
        try:
            return int(self.q.value(key, default))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return default

    def _bool(self, key: str, default: bool) -> bool:
        value = self.q.value(key, default)
        if isinstance(value, str):  # INI files give "true" / "false"
            return value.strip().lower() in ("true", "1", "yes")
        return bool(value)

    @property
    def recent_projects(self) -> list[str]:
        value = self.q.value("recent_projects", [])
        if isinstance(value, str):
            return [value] if value else []
        return [str(v) for v in (value or [])]

    def add_recent(self, path: str) -> None:
        items = [p for p in self.recent_projects if p != path]
        self.q.setValue("recent_projects", ([path] + items)[:MAX_RECENT])

    @property
    def brush_size(self) -> int:
        return self._int("brush_size", 8)

    @brush_size.setter
    def brush_size(self, value: int) -> None:
        self.q.setValue("brush_size", int(value))

    @property
    def prefetch_depth(self) -> int:
        return max(0, self._int("prefetch_depth", 2))

    @prefetch_depth.setter
    def prefetch_depth(self, value: int) -> None:
        self.q.setValue("prefetch_depth", int(value))

    @property
    def cache_size_mb(self) -> int:
        return max(64, self._int("cache_size_mb", 2048))

    @cache_size_mb.setter
    def cache_size_mb(self, value: int) -> None:
        self.q.setValue("cache_size_mb", int(value))

    @property
    def mask_opacity(self) -> int:
        """Fill opacity of the saved masks, percent 0-100 (View ▸ Mask opacity)."""
        return max(0, min(100, self._int("mask_opacity", DEFAULT_OPACITY)))

    @mask_opacity.setter
    def mask_opacity(self, value: int) -> None:
        self.q.setValue("mask_opacity", max(0, min(100, int(value))))

    @property
    def outlines_only(self) -> bool:
        """Draw the saved masks as outlines only (View ▸ Outlines only)."""
        return self._bool("outlines_only", False)

    @outlines_only.setter
    def outlines_only(self, value: bool) -> None:
        self.q.setValue("outlines_only", bool(value))

    @property
    def candidate_color(self) -> str:
        return str(self.q.value("candidate_color", "#1e90ff"))

    @property
    def last_model(self) -> str:
        return str(self.q.value("last_model", ""))

    @last_model.setter
    def last_model(self, value: str) -> None:
        self.q.setValue("last_model", value)

    def _bytes(self, key: str) -> QByteArray | None:
        value = self.q.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @property
    def window_geometry(self) -> QByteArray | None:
        """`QMainWindow.saveGeometry()` of the last window closed, or None."""
        return self._bytes("window/geometry")

    @window_geometry.setter
    def window_geometry(self, value: QByteArray) -> None:
        self.q.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        """`QMainWindow.saveState()` (docks and toolbars) of the last window closed, or None."""
        return self._bytes("window/state")

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self.q.setValue("window/state", value)

    def _last_images(self) -> dict[str, int]:
        try:
            value = json.loads(str(self.q.value("last_images", "{}")))
        except (TypeError, ValueError):
            return {}
        if not isinstance(value, dict):
            return {}
        return {str(k): v for k, v in value.items() if isinstance(v, int)}

    def last_image(self, project_file: str) -> int | None:
        """The id of the image the user was at in this project (its resolved file path)."""
        return self._last_images().get(project_file)

    def set_last_image(self, project_file: str, image_id: int) -> None:
        images = self._last_images()
        if images.get(project_file) == image_id:
            return
        images.pop(project_file, None)
        images[project_file] = int(image_id)  # newest last; the oldest are dropped
        kept = dict(list(images.items())[-MAX_REMEMBERED_PROJECTS:])
        self.q.setValue("last_images", json.dumps(kept))
