"""View ▸ Hide all masks (`M`), Outlines only (`O`) and Mask opacity: how the saved
masks are drawn over the image. The mask being made (the candidates), the brush stroke
and the prompts are never hidden, so they stay visible and stand out. The opacity and
outline choice are kept in the settings; Hide all masks lasts for the session.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction, QActionGroup

from samstudio.ui.overlays import OverlayStyle

HIDE_ALL_KEY, OUTLINES_KEY = "M", "O"
OPACITY_STEPS = (0, 10, 20, 35, 50, 70, 100)  # percent


class OverlayMenu:
    """The overlay actions of the View menu; `window` is the MainWindow (its `_action`,
    `annotator`, `canvas`, `settings` and status bar are used)."""

    def __init__(self, window: Any, menu: Any) -> None:
        self.window = window
        settings = window.settings
        self.hide_all = window._action("Hide all masks", self._hide_all_toggled, HIDE_ALL_KEY, menu)
        self.hide_all.setCheckable(True)
        self.outlines = window._action("Outlines only", self._outlines_toggled, OUTLINES_KEY, menu)
        self.outlines.setCheckable(True)
        self.outlines.setChecked(settings.outlines_only)
        self.opacity_menu = menu.addMenu("Mask opacity")
        group = QActionGroup(window)
        group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        self.opacity_actions: dict[int, QAction] = {}
        for percent in OPACITY_STEPS:
            act = window._action(
                f"{percent} %", lambda p=percent: self.set_opacity(p), None, self.opacity_menu
            )
            act.setCheckable(True)
            group.addAction(act)
            self.opacity_actions[percent] = act
        self._show_opacity(settings.mask_opacity)
        window.annotator.set_overlay_style(self.style())

    def style(self) -> OverlayStyle:
        s = self.window.settings
        return OverlayStyle(opacity=s.mask_opacity, outlines_only=s.outlines_only)

    def set_opacity(self, percent: int) -> None:
        """The saved masks' fill opacity, percent (kept in the settings)."""
        self.window.settings.mask_opacity = percent
        self._show_opacity(self.window.settings.mask_opacity)
        self.window.annotator.set_overlay_style(self.style())
        self._say(f"Mask opacity {self.window.settings.mask_opacity} %")

    def _show_opacity(self, percent: int) -> None:
        act = self.opacity_actions.get(percent)
        if act is not None:
            act.setChecked(True)
        else:  # a value set elsewhere (the settings file): no step is ticked
            for step in self.opacity_actions.values():
                step.setChecked(False)
        self.opacity_menu.setTitle(f"Mask opacity ({percent} %)")

    def _outlines_toggled(self) -> None:
        on = self.outlines.isChecked()
        self.window.settings.outlines_only = on
        self.window.annotator.set_overlay_style(self.style())
        self._say(
            f"Masks drawn as outlines only ({OUTLINES_KEY} fills them again)"
            if on
            else "Masks filled again"
        )

    def _hide_all_toggled(self) -> None:
        hidden = self.hide_all.isChecked()
        self.window.canvas.set_instances_shown(not hidden)
        self._say(
            f"All masks hidden; the mask being made still shows ({HIDE_ALL_KEY} shows them)"
            if hidden
            else "Masks shown"
        )

    def _say(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 5000)
