"""User settings kept in QSettings: recent projects, colours, brush size, cache, prefetch."""

from __future__ import annotations

from PySide6.QtCore import QSettings

MAX_RECENT = 10


class Settings:
    """Typed access to the app's QSettings (organisation/app name set by app.main)."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings or QSettings()

    def _int(self, key: str, default: int) -> int:
        try:
            return int(self.q.value(key, default))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return default

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
    def candidate_color(self) -> str:
        return str(self.q.value("candidate_color", "#1e90ff"))

    @property
    def last_model(self) -> str:
        return str(self.q.value("last_model", ""))

    @last_model.setter
    def last_model(self, value: str) -> None:
        self.q.setValue("last_model", value)
