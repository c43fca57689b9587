"""The window's status bar (`MainWindow` mixes this in): the permanent labels (cursor
position, brush size, zoom, the embedding's state, the model) and the messages about
the model, the embedding cache and images that cannot be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QLabel

from samstudio.ui.inference_worker import describe


def short_description(info: Any) -> str:
    """The status bar's model label: the model and where it runs ("cpu", "cuda"), short
    enough to leave room for messages; the tooltip has backend and provider in full."""
    if info is None:
        return "none"
    device = str(info.device)
    device = DEVICES.get(device, device)
    return f"{info.model_id} · {device}"


# ONNX Runtime's execution providers, as the PyTorch backend names its devices
DEVICES = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda"}


def window_title(project_name: str | None, image: str | None, position: str, mode: str) -> str:
    """'scene_3.png (4 of 200, 12 done) — birds — SAM Studio': the image first (what
    the annotator looks at), then the project; `mode`: " (read-only)" or ""."""
    parts = []
    if image:
        parts.append(f"{image} ({position})" if position else image)
    if project_name:
        parts.append(f"{project_name}{mode}")
    parts.append("SAM Studio")
    return " — ".join(parts)


class StatusBarWidgets:
    """The status-bar labels of `MainWindow` and the slots that write them."""

    # set by MainWindow (a QMainWindow: statusBar is its own)
    annotator: Any
    canvas: Any
    worker: Any
    project: Any
    show_error: Any

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

    def _connect_status_bar(self) -> None:
        a = self.annotator
        a.embedding_state.connect(lambda s: self.embedding_label.setText(f"Embedding: {s}"))
        a.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        a.image_failed.connect(self._image_failed)
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

    def update_title(self, records: list[Any] | None = None) -> None:
        """The window title: image, its place in the project and the done count, project.
        `records`: `project.images()` when the caller has just read them."""
        project = self.project
        if project is None:
            self.setWindowTitle("SAM Studio")
            return
        path = getattr(self, "project_path", None)
        name = path.name if path else "project"
        mode = " (read-only)" if getattr(project, "read_only", False) else ""
        image_id = self.annotator.image_id
        image, position = None, ""
        try:
            records = project.images() if records is None else records
            ids = [r.id for r in records]
            done = sum(r.status == "done" for r in records)
            if image_id in ids:
                image = Path(str(project.image_path(image_id))).name
                position = f"{ids.index(image_id) + 1} of {len(ids)}, {done} done"
        except Exception:  # a busy or damaged store: the title without the counts
            pass
        self.setWindowTitle(window_title(name, image, position, mode))

    def _update_brush_label(self) -> None:
        tool = self.canvas.tool
        show = tool is not None and tool.shows_brush
        self.brush_label.setText(f"Brush {2 * self.annotator.brush_radius + 1} px" if show else "")

    def _image_failed(self, image_id: int, message: str) -> None:
        self.embedding_label.setText("Embedding: —")
        hint = ""
        if self.project is not None and not Path(self.project.image_path(image_id)).exists():
            hint = " — if the images moved, use File ▸ Locate moved images…"
        self.statusBar().showMessage(message + hint, 15000)

    def _model_loaded(self, info: Any) -> None:
        self.model_label.setText(f"Model: {short_description(info)}")
        notes = tuple(getattr(info, "notes", ()) or ())
        self.model_label.setToolTip("\n".join((describe(info), *notes)))
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
        self.model_label.setText(f"Model: {short_description(info)}")
        self.model_label.setToolTip(describe(info))
        self.show_error("The model could not be loaded", f"{label}\n\n{message}")
