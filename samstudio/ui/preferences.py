"""Preferences: brush size, prefetch depth, embedding cache size (kept in QSettings)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QSpinBox, QWidget

from samstudio.ui.settings import Settings


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        form = QFormLayout(self)
        self.brush = QSpinBox()
        self.brush.setRange(1, 400)
        self.brush.setValue(settings.brush_size)
        self.brush.setSuffix(" px radius")
        self.prefetch = QSpinBox()
        self.prefetch.setRange(0, 10)
        self.prefetch.setValue(settings.prefetch_depth)
        self.prefetch.setSuffix(" images")
        self.cache = QSpinBox()
        self.cache.setRange(64, 1 << 20)
        self.cache.setSingleStep(256)
        self.cache.setValue(settings.cache_size_mb)
        self.cache.setSuffix(" MB")
        form.addRow("Brush size", self.brush)
        form.addRow("Prefetch the next", self.prefetch)
        form.addRow("Embedding cache on disk", self.cache)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def save(self) -> None:
        """Store the values (the cache size applies from the next start)."""
        self.settings.brush_size = self.brush.value()
        self.settings.prefetch_depth = self.prefetch.value()
        self.settings.cache_size_mb = self.cache.value()
