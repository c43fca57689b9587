"""The window's menus, keyboard shortcuts and tool bar (`MainWindow` mixes this in).

Every command is a window-wide `QAction` (its shortcut works wherever the focus is in
the window); the File, Model, Auto-segment, Study and Inspect menus are built by their
own modules.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QToolBar

from samstudio.ui.study.create_dialog import NewStudyAction
from samstudio.ui.tools import Tool


class WindowActions:
    """The menu and tool-bar building of `MainWindow`; the actions call its methods."""

    # set by MainWindow (a QMainWindow: addAction, menuBar, addToolBar are its own)
    annotator: Any
    canvas: Any
    candidates_panel: Any
    image_checks: Any
    autosegment_menu: Any
    tools: dict[str, Tool]

    def _action(
        self, text: str, slot: Any, shortcuts: list[str] | str | None = None, menu: Any = None
    ) -> QAction:
        act = QAction(text, self)
        if shortcuts:
            keys = [shortcuts] if isinstance(shortcuts, str) else shortcuts
            act.setShortcuts([QKeySequence(k) for k in keys])
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.triggered.connect(lambda _checked=False: slot())
        self.addAction(act)
        if menu is not None:
            menu.addAction(act)
        return act

    def _build_actions(self) -> None:
        from samstudio.ui.autosegment_dialog import AutoSegmentMenu
        from samstudio.ui.exchange_menu import build_file_menu
        from samstudio.ui.inspect_dialog import InspectMenu
        from samstudio.ui.model_menu import ModelMenu
        from samstudio.ui.overlay_menu import OverlayMenu

        bar = self.menuBar()
        self.file_menu = bar.addMenu("&File")
        build_file_menu(self, self.file_menu)
        edit = bar.addMenu("&Edit")
        self.undo_action = self._action("Undo", self.undo, "Ctrl+Z", edit)
        self.redo_action = self._action("Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], edit)
        edit.addSeparator()
        self.accept_action = self._action("Accept mask", self.accept, ["Return", "Enter"], edit)
        self.clear_action = self._action("Clear prompts", self.clear_prompts, "Esc", edit)
        self.delete_action = self._action("Delete instance", self.delete_selected, "Delete", edit)
        self.refine_action = self._action(  # `annotator_refine`
            "Refine the selected mask with clicks", self.annotator.start_refine, "Ctrl+E", edit
        )
        self.done_action = self._action(
            "Mark image done / not done", self.toggle_done, "Ctrl+D", edit
        )
        self.image_checks.add_action(edit)
        edit.addSeparator()
        self._action("Preferences…", self.edit_preferences, "Ctrl+,", edit)
        edit.addSeparator()
        for i in range(3):
            self._action(
                f"Choose candidate {i + 1}",
                lambda i=i: self.candidates_panel.choose(i),
                str(i + 1),
                edit,
            )
        self.cycle_action = self._action("Next candidate", self.candidates_panel.cycle, "Tab", edit)
        self._action("Smaller brush", lambda: self.change_brush(1 / 1.25), "[", edit)
        self._action("Larger brush", lambda: self.change_brush(1.25), "]", edit)
        for i in range(9):
            self._action(
                f"Category {i + 1}", lambda i=i: self.choose_category_index(i), f"Ctrl+{i + 1}"
            )

        view = bar.addMenu("&View")
        self._action("Fit", self.canvas.fit, "F", view)
        self._action("Actual size (1:1)", self.canvas.actual_size, "Ctrl+0", view)
        self._action("Zoom in", lambda: self.canvas.zoom_by(1.25), "Ctrl+=", view)
        self._action("Zoom out", lambda: self.canvas.zoom_by(0.8), "Ctrl+-", view)
        view.addSeparator()
        self._action("Next image", lambda: self.step_image(1), ["N", "Right", "PgDown"], view)
        self._action("Previous image", lambda: self.step_image(-1), ["P", "Left", "PgUp"], view)
        view.addSeparator()
        self.overlay_menu = OverlayMenu(self, view)  # hide all masks, outlines, opacity

        self.model_menu = ModelMenu(self, bar.addMenu("&Model"))
        self.autosegment_menu = AutoSegmentMenu(self, bar.addMenu("&Auto-segment"))
        self.study_menu = bar.addMenu("&Study")
        self.new_study = NewStudyAction(self, self.study_menu)
        self._action("Rate a study…", self.rate_study, None, self.study_menu)
        self.inspect_menu = InspectMenu(self, bar.addMenu("&Inspect"))

        toolbar = QToolBar("Tools", self)
        toolbar.setObjectName("tools")
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
        group = QActionGroup(self)
        self.tool_actions: dict[str, QAction] = {}
        for name, tool in self.tools.items():
            act = self._action(
                f"{tool.label} ({tool.shortcut})", lambda n=name: self.set_tool(n), tool.shortcut
            )
            act.setCheckable(True)
            group.addAction(act)
            toolbar.addAction(act)
            self.tool_actions[name] = act
        toolbar.addSeparator()
        toolbar.addAction(self._action("Fit", self.canvas.fit))
        toolbar.addAction(self._action("1:1", self.canvas.actual_size))

    # the Auto-segment menu's review cursor (`proposal_review`) follows these
    def undo(self) -> None:
        self.autosegment_menu.review.follow(self.annotator.undo)

    def redo(self) -> None:
        self.autosegment_menu.review.follow(self.annotator.redo)

    def delete_selected(self, annotation_id: int | None = None) -> None:
        """Delete (the Edit action, or the key in the Instances panel on `annotation_id`):
        the proposal under the review cursor is rejected and the cursor goes on; any
        other instance is deleted."""
        review = self.autosegment_menu.review
        current = review.current()
        if current is None or annotation_id not in (None, current.id):
            self.annotator.delete_instance(annotation_id)
        else:
            review.delete_current()
