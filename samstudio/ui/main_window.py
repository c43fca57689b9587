"""The annotator window: image list, canvas, candidates, instances, categories.

The window only wires widgets to the `Annotator` (state and store operations) and the
`InferenceWorker` (the thread that owns the model). Menus for models and for
import/export live in `model_menu.py` and `exchange_menu.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QToolBar,
    QWidget,
)

from samstudio.ui.annotator import Annotator
from samstudio.ui.candidates_panel import CandidatesPanel
from samstudio.ui.canvas import Canvas
from samstudio.ui.categories import CategoriesPanel, CategoryRow
from samstudio.ui.image_checks import ImageChecks, fits
from samstudio.ui.image_list import ImageListPanel
from samstudio.ui.inference_worker import (
    DiskEmbeddingStore,
    EmbeddingStore,
    InferenceWorker,
    describe,
)
from samstudio.ui.instances_panel import InstanceRow, InstancesPanel
from samstudio.ui.overlays import instance_color
from samstudio.ui.project_access import hex_to_rgb, open_project, record_id, rgb_to_hex
from samstudio.ui.project_session import (
    add_new_images,
    image_to_open,
    remember_image,
    restore_layout,
    save_layout,
)
from samstudio.ui.settings import Settings
from samstudio.ui.study.create_dialog import NewStudyAction
from samstudio.ui.tools import ALL_TOOLS, Tool

PANEL_DELAY_MS = 12  # the candidates panel follows the canvas by this much


class MainWindow(QMainWindow):
    """SAM Studio's main window. `worker` and `disk_cache` may be injected by tests."""

    def __init__(
        self,
        worker: InferenceWorker | None = None,
        settings: Settings | None = None,
        disk_cache: EmbeddingStore | None | bool = True,
        load_default_model: bool = False,
    ) -> None:
        super().__init__()
        self.setWindowTitle("SAM Studio")
        self.resize(1400, 860)
        self.settings = settings or Settings()
        if worker is None:
            cache: EmbeddingStore | None
            if disk_cache is True:
                cache = _disk_cache(self.settings.cache_size_mb)
            else:
                cache = disk_cache or None
            worker = InferenceWorker(disk_cache=cache)
        self.worker = worker
        if not self.worker.isRunning():
            self.worker.start()
        self.project: Any = None
        self.project_path: Path | None = None

        self.canvas = Canvas()
        self.setCentralWidget(self.canvas)
        self.annotator = Annotator(self.canvas, self.worker, self)
        self.annotator.prefetch_depth = self.settings.prefetch_depth
        self.annotator.set_brush_radius(self.settings.brush_size)
        self.image_checks = ImageChecks(self)  # files missing or replaced on disk

        self.images_panel = ImageListPanel()
        self.candidates_panel = CandidatesPanel()
        self.instances_panel = InstancesPanel()
        self.categories_panel = CategoriesPanel()
        images = self._dock("Images", self.images_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        cands = self._dock(
            "Candidates", self.candidates_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        insts = self._dock("Instances", self.instances_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        cats = self._dock(
            "Categories", self.categories_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        # Fixed widths so the panels do not jump when candidates come and go.
        images.setMinimumWidth(290)
        for dock in (cands, insts, cats):
            dock.setMinimumWidth(430)
        self.candidates_panel.setMinimumHeight(3 * 150 + 60)
        self.resizeDocks([cands, insts, cats], [520, 220, 150], Qt.Orientation.Vertical)

        self.tools: dict[str, Tool] = {cls.name: cls(self.annotator) for cls in ALL_TOOLS}
        self._build_status_bar()
        self._build_actions()
        self._connect()
        self.set_tool("point")
        restore_layout(self)
        self._refresh_all()
        if load_default_model:
            QTimer.singleShot(0, self.load_startup_model)

    # ------------------------------------------------------------------------- building
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.model_label = QLabel("Model: none")
        self.embedding_label = QLabel("Embedding: —")
        self.zoom_label = QLabel("100%")
        self.position_label = QLabel("")
        self.brush_label = QLabel("")
        for w in (
            self.position_label,
            self.brush_label,
            self.zoom_label,
            self.embedding_label,
            self.model_label,
        ):
            bar.addPermanentWidget(w)

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

        bar = self.menuBar()
        self.file_menu = bar.addMenu("&File")
        build_file_menu(self, self.file_menu)
        edit = bar.addMenu("&Edit")
        self.undo_action = self._action("Undo", self.annotator.undo, "Ctrl+Z", edit)
        self.redo_action = self._action(
            "Redo", self.annotator.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], edit
        )
        edit.addSeparator()
        self.accept_action = self._action("Accept mask", self.accept, ["Return", "Enter"], edit)
        self.clear_action = self._action("Clear prompts", self.clear_prompts, "Esc", edit)
        self.delete_action = self._action(
            "Delete instance", self.annotator.delete_instance, "Delete", edit
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

    def _connect(self) -> None:
        a = self.annotator
        a.candidates_changed.connect(self._show_candidates)
        # A new answer: let the canvas paint its overlay first, the panel right after
        # (or at once when a key or the mouse acts on the panel before that).
        a.candidates_arrived.connect(
            lambda: self.candidates_panel.follow_soon(self._show_candidates, PANEL_DELAY_MS)
        )
        a.instances_changed.connect(self._refresh_instances)
        a.embedding_state.connect(lambda s: self.embedding_label.setText(f"Embedding: {s}"))
        a.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        a.error.connect(self.show_error)
        a.image_failed.connect(self._image_failed)
        a.undo_changed.connect(self._update_undo_actions)
        self.candidates_panel.chosen_changed.connect(a.choose)
        self.candidates_panel.hovered.connect(a.look_at)
        self.instances_panel.selected.connect(a.select_instance)
        self.instances_panel.visibility_changed.connect(a.set_instance_visible)
        self.instances_panel.delete_requested.connect(a.delete_instance)
        self.categories_panel.current_changed.connect(self._category_chosen)
        self.categories_panel.add_requested.connect(self.add_category)
        self.categories_panel.rename_requested.connect(self._rename_category)
        self.categories_panel.recolor_requested.connect(self._recolor_category)
        self.images_panel.image_chosen.connect(self.open_image)
        self.canvas.space_tapped.connect(self.accept)
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        self.canvas.cursor_moved.connect(
            lambda x, y: self.position_label.setText(f"x {x:.0f}  y {y:.0f}")
        )
        self.worker.model_loading.connect(
            lambda label: self.model_label.setText(f"Model: loading {label}…")
        )
        self.worker.model_loaded.connect(self._model_loaded)
        self.worker.model_failed.connect(self._model_failed)
        self.worker.cache_failed.connect(
            lambda m: self.statusBar().showMessage(
                f"Embedding cache not written ({m}); embeddings are kept in memory only", 20000
            )
        )
        # The canvas wants Space (pan / accept) and Tab (next candidate) for itself.
        self.canvas.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if obj is self.canvas and event.type() == QEvent.Type.ShortcutOverride:
            if event.key() == Qt.Key.Key_Space:  # type: ignore[attr-defined]
                event.accept()
                return True
        return super().eventFilter(obj, event)

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: N802,A002
        return False  # Tab picks the next candidate instead of moving the focus

    # --------------------------------------------------------------------------- project
    def open_path(self, path: str | Path) -> bool:
        """Open a project file or a folder of images. Returns False (after a dialog) on error.

        The project already open here is left as it is. Another one is opened only
        after the current one is closed (its lock released, so reopening a project
        never finds it locked by this very window); if the new one cannot be opened,
        the current one is opened again, at the image that was on screen.
        """
        current = self.project
        if (
            current is not None
            and not getattr(current, "read_only", False)
            and _project_file(path) == _project_file(current.path)
        ):
            self.statusBar().showMessage(f"{_project_file(path)} is already open", 5000)
            self.settings.add_recent(str(Path(path).resolve()))
            return True
        previous = self._close_project()
        project = self._open_project(path)
        if project is None:
            if previous is not None:
                self._reopen(*previous)
            return False
        add_new_images(self, project)
        self.set_project(project, Path(path))
        self.settings.add_recent(str(Path(path).resolve()))
        return True

    def _open_project(self, path: str | Path) -> Any:
        """The project at `path`, or None after a dialog that names the file."""
        from samstudio.core.document import CorruptProjectError, ProjectLockedError

        try:
            return open_project(path)
        except (ProjectLockedError, CorruptProjectError) as exc:
            answer = QMessageBox.question(
                self,
                "Open read-only?",
                f"{exc}\n\nOpen the project read-only (look and export, no edits)?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return None
            try:
                return open_project(path, read_only=True)
            except Exception as exc2:
                self.show_error("Could not open the project", f"{path}: {exc2}")
                return None
        except Exception as exc:
            self.show_error("Could not open the project", f"{path}: {exc}")
            return None

    def _close_project(self) -> tuple[Path, bool, int | None] | None:
        """Close the open project; returns (path, read-only, image on screen) to reopen it."""
        project = self.project
        if project is None:
            return None
        previous = (
            self.project_path or Path(project.path),
            bool(getattr(project, "read_only", False)),
            self.annotator.image_id,
        )
        self.annotator.set_project(None)
        self.project = None
        try:
            project.close()
        except Exception:
            pass
        return previous

    def _reopen(self, path: Path, read_only: bool, image_id: int | None) -> None:
        """Open the project that `_close_project` closed again (nothing of it was lost)."""
        try:
            project = open_project(path, read_only=read_only)
        except Exception as exc:
            self.show_error("Could not reopen the project", f"{path}: {exc}")
            self._refresh_all()
            return
        self.set_project(project, path)
        if image_id is not None and image_id != self.annotator.image_id:
            if any(r.id == image_id for r in project.images()):
                self.open_image(image_id)

    def set_project(self, project: Any, path: Path | None = None) -> None:
        if self.project is not None and self.project is not project:
            try:
                self.project.close()
            except Exception:
                pass
        self.project = project
        self.project_path = path
        self.annotator.set_project(project)
        mode = " (read-only)" if getattr(project, "read_only", False) else ""
        self.setWindowTitle(f"SAM Studio — {path.name if path else 'project'}{mode}")
        problems = list(getattr(project, "problems", []) or [])
        if problems:  # only a read-only open gets this far with problems
            more = f"\n… and {len(problems) - 20} more" if len(problems) > 20 else ""
            QMessageBox.warning(
                self,
                "Opened read-only: some of it cannot be read",
                f"{getattr(project, 'path', path)}\n\n"
                + "\n".join(problems[:20])
                + more
                + "\n\nWhat is shown can be exported (File ▸ Export).",
            )
        missing = self.image_checks.scan()
        if missing:
            self.statusBar().showMessage(f"{missing} image file(s) missing: marked ⚠", 20000)
        self._refresh_all()
        first = image_to_open(self.settings, project)  # where the user was, else the first
        if first is not None:
            self.open_image(first)

    def open_image(self, image_id: int) -> None:
        note = self.image_checks.check(image_id)  # the file replaced on disk?
        self.annotator.open_image(image_id)
        remember_image(self.settings, self.project, image_id)
        self.images_panel.set_current(image_id)
        self.candidates_panel.clear()
        self._refresh_instances()
        if note:
            self.statusBar().showMessage(note, 20000)

    def step_image(self, step: int) -> None:
        nxt = self.images_panel.neighbour(step)
        if nxt is not None:
            self.open_image(nxt)

    def toggle_done(self) -> None:
        if self.project is None or self.annotator.image_id is None:
            return
        image_id = self.annotator.image_id
        rec = next(r for r in self.project.images() if r.id == image_id)
        status = "in_progress" if rec.status == "done" else "done"
        try:
            self.project.set_image_status(image_id, status)
        except Exception as exc:
            self.show_error("Could not save the change", str(exc))
        self._refresh_image_rows()

    # ----------------------------------------------------------------------- annotation
    def set_tool(self, name: str) -> None:
        tool = self.tools[name]
        self.canvas.set_tool(tool)
        self.tool_actions[name].setChecked(True)
        self._update_brush_label()

    def accept(self) -> None:
        # a new prediction the panel has not shown yet: show it, with the candidate that
        # is accepted marked, before accepting (Enter accepts what is shown as chosen)
        self.candidates_panel.catch_up()
        if self.annotator.accept() is not None:
            self._refresh_image_rows()

    def clear_prompts(self) -> None:
        if self.canvas.tool is not None:
            self.canvas.tool.cancel()
        self.annotator.cancel_stroke()
        self.annotator.clear_prompts()

    def change_brush(self, factor: float) -> None:
        r = self.annotator.brush_radius
        new = max(r + 1, round(r * factor)) if factor > 1 else min(r - 1, round(r * factor))
        self.annotator.set_brush_radius(new)
        self.settings.brush_size = self.annotator.brush_radius
        self._update_brush_label()

    def _update_brush_label(self) -> None:
        tool = self.canvas.tool
        show = tool is not None and tool.shows_brush
        self.brush_label.setText(f"Brush {2 * self.annotator.brush_radius + 1} px" if show else "")

    def choose_category_index(self, index: int) -> None:
        rows = self.categories_panel.rows
        if 0 <= index < len(rows):
            self._category_chosen(rows[index].category_id)

    def _category_chosen(self, category_id: int) -> None:
        self.annotator.set_current_category(category_id)
        self._refresh_categories()

    def add_category(self, name: str) -> None:
        if self.project is None:
            return
        try:
            new = self.project.add_category(name)
        except Exception as exc:
            self.show_error("Could not add the category", f"{name}: {exc}")
            return
        self.annotator.category_id = record_id(new)
        self._refresh_categories()

    def _rename_category(self, category_id: int, name: str) -> None:
        try:
            self.project.rename_category(category_id, name)
        except Exception as exc:
            self.show_error("Could not rename the category", f"{name}: {exc}")
        self._refresh_categories()
        self._refresh_instances()

    def _recolor_category(self, category_id: int, color: str) -> None:
        try:
            self.project.recolor_category(category_id, color)
        except Exception as exc:
            self.show_error("Could not change the colour", str(exc))
        self._refresh_categories()
        self.annotator.refresh_instances()

    # -------------------------------------------------------------------------- refresh
    def _refresh_all(self) -> None:
        self._refresh_image_rows()
        self._refresh_categories()
        self._refresh_instances()
        self._update_undo_actions()

    def _refresh_image_rows(self) -> None:
        if self.project is None:
            self.images_panel.set_rows([], None)
            return
        rows = []
        for rec in self.project.images():
            n = len(self.project.annotations(rec.id)) if not getattr(rec, "error", None) else 0
            rows.append(self.image_checks.row(rec, n))
        self.images_panel.set_rows(rows, self.annotator.image_id)

    def _refresh_categories(self) -> None:
        if self.project is None:
            self.categories_panel.set_rows([], None)
            return
        rows = [CategoryRow(c.id, c.name, c.color) for c in self.project.categories()]
        self.categories_panel.set_rows(rows, self.annotator.category_id)

    def _refresh_instances(self) -> None:
        a = self.annotator
        if self.project is None or a.image_id is None:
            self.instances_panel.set_rows([], None, set())
            return
        cats = {c.id: c for c in self.project.categories()}
        rows = []
        for rec in self.project.annotations(a.image_id):
            cat = cats.get(rec.category_id)
            rows.append(
                InstanceRow(
                    rec.id,
                    cat.name if cat else "?",
                    rgb_to_hex(instance_color(hex_to_rgb(cat.color if cat else "#888888"), rec.id)),
                    rec.source,
                    int(rec.area),
                    rec.predicted_iou,
                    rec.iscrowd,
                    a.image_rgb is not None and not fits(rec, a.image_rgb),
                )
            )
        self.instances_panel.set_rows(rows, a.selected, a.hidden)
        self.canvas.set_proposals({r.annotation_id for r in rows if r.source == "proposal"})
        self._update_image_row(a.image_id, len(rows))
        self._update_undo_actions()

    def _update_image_row(self, image_id: int, count: int) -> None:
        rec = next((r for r in self.project.images() if r.id == image_id), None)
        if rec is not None:
            self.images_panel.update_row(self.image_checks.row(rec, count, live=True))

    def _show_candidates(self) -> None:
        cs = self.annotator.candidate_set
        self.candidates_panel.show_candidates(
            self.annotator.candidates, None if cs is None else cs.decode_ms, self.annotator.chosen
        )

    def _update_undo_actions(self) -> None:
        a = self.annotator  # the mask being made first, then the saved changes
        self.undo_action.setEnabled(a.can_undo())
        self.redo_action.setEnabled(a.can_redo())
        self.undo_action.setText(f"Undo {a.undo_text()}".strip())
        self.redo_action.setText(f"Redo {a.redo_text()}".strip())

    def _image_failed(self, image_id: int, message: str) -> None:
        self.embedding_label.setText("Embedding: —")
        hint = ""
        if self.project is not None and not Path(self.project.image_path(image_id)).exists():
            hint = " — if the images moved, use File ▸ Locate moved images…"
        self.statusBar().showMessage(message + hint, 15000)

    # --------------------------------------------------------------------------- models
    def load_model(self, factory: Any, label: str) -> None:
        self.worker.load_model(factory, label)

    def load_default_model(self) -> None:
        self.model_menu.load_default()

    def load_startup_model(self) -> None:
        """The model used last time (Settings), else the shipped default."""
        last = self.settings.last_model
        self.model_menu.load(last or None, last or "the default model")

    def _model_loaded(self, info: Any) -> None:
        self.model_label.setText(f"Model: {describe(info)}")
        notes = tuple(getattr(info, "notes", ()) or ())
        self.model_label.setToolTip("\n".join(notes))
        ready = f"Model {info.model_id} ready on {info.device}"
        if notes:  # e.g. an ONNX export running without its damaged prepared decoder
            self.statusBar().showMessage(f"{ready}. Note: {' '.join(notes)}", 30000)
        else:
            self.statusBar().showMessage(ready, 5000)
        # the previous model's candidates and logits go; the new model answers the prompts
        self.annotator.model_changed()

    def _model_failed(self, label: str, message: str) -> None:
        self.annotator.model_kept()
        info = self.worker.model_info
        self.model_label.setText(f"Model: {describe(info)}")
        self.show_error("The model could not be loaded", f"{label}\n\n{message}")

    def edit_preferences(self) -> None:
        from samstudio.ui.preferences import PreferencesDialog

        dialog = PreferencesDialog(self.settings, self)
        if dialog.exec():
            dialog.save()
            self.apply_settings()

    def apply_settings(self) -> None:
        self.annotator.prefetch_depth = self.settings.prefetch_depth
        self.annotator.set_brush_radius(self.settings.brush_size)
        self._update_brush_label()

    # ---------------------------------------------------------------------------- misc
    def show_error(self, title: str, text: str) -> None:
        QMessageBox.critical(self, title, text)

    def ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_path(folder)

    def rate_study(self) -> None:
        """Study → Rate a study…: a study folder, the participant, their rating window."""
        from samstudio.ui.study.launch import choose_and_open_study

        choose_and_open_study(self)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        save_layout(self)
        self.shutdown(wait_ms=3000)  # app.main leaves without waiting for a long encode
        super().closeEvent(event)

    def shutdown(self, wait_ms: int = 120000) -> None:
        """Close the store and stop the worker thread (waiting up to `wait_ms`)."""
        self.annotator.shutdown()
        self.inspect_menu.shutdown()
        self.new_study.shutdown()
        if self.worker.isRunning():
            self.worker.stop(wait_ms)
        if self.project is not None:
            try:
                self.project.close()
            except Exception:
                pass
            self.project = None


def _project_file(path: str | Path) -> Path:
    """The project file that opening `path` (a project file or a folder) reaches."""
    from samstudio.core.document import PROJECT_FILE_NAME

    path = Path(path)
    if path.is_dir():
        path = path / PROJECT_FILE_NAME
    return path.resolve()


def _disk_cache(size_mb: int) -> EmbeddingStore | None:
    try:
        return DiskEmbeddingStore(max_bytes=size_mb << 20)
    except Exception:  # no cache module or an unusable cache folder: memory only
        return None


def app_instance() -> QApplication:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    return app
