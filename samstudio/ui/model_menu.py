"""The Model menu: the shipped model, catalog models (download with progress and
cancel), imported files. Loading always happens in the inference thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMenu, QProgressDialog, QWidget


def model_factory(spec: str | None) -> Callable[[], Any]:
    """A callable that opens model `spec` (catalog name, file, ONNX folder; None = default).

    It is run by the inference thread, so torch / onnxruntime are imported there.
    """

    def make() -> Any:
        from samstudio.inference.loader import open_model

        return open_model(spec)

    return make


def import_and_open_factory(path: str, names: list[str] | None = None) -> Callable[[], Any]:
    """Validate and register a model file or ONNX folder, then open it (in the inference
    thread); the name it was registered under is appended to `names`."""

    def make() -> Any:
        from samstudio.inference.loader import open_model
        from samstudio.inference.registry import import_model

        item = import_model(path, unique=True)  # no name asked: NAME-2 when NAME is taken
        if names is not None:
            names.append(item.name)
        return open_model(item.name)

    return make


NO_PYTORCH = "not in this installation; import its ONNX export instead"


class _DownloadBridge(QObject):
    progress = Signal(object, object)  # bytes done, total or None
    finished = Signal(str)  # path
    failed = Signal(str)


class ModelMenu:
    """Builds and serves the Model menu of `window` (a MainWindow)."""

    def __init__(self, window: Any, menu: QMenu) -> None:
        self.window = window
        self.menu = menu
        self._pending: str | None = None
        self._imported: list[str] = []  # filled by an import's factory in the worker
        window.worker.model_loaded.connect(self._loaded)
        window.worker.model_failed.connect(self._failed)
        menu.aboutToShow.connect(self.rebuild)
        self.rebuild()
        self._download: tuple[threading.Thread, threading.Event, QProgressDialog] | None = None

    def rebuild(self) -> None:
        m = self.menu
        m.clear()
        m.addAction("Load the default model").triggered.connect(lambda: self.load_default())
        catalog = m.addMenu("Catalog")
        try:
            from samstudio.inference.catalog import list_models

            rows = list_models()
        except Exception as exc:
            catalog.addAction(f"(catalog unavailable: {exc})").setEnabled(False)
            rows = []
        from samstudio.inference.loader import needs_pytorch, pytorch_available

        torch_ok = pytorch_available()
        for row in rows:
            size = f" · {row.size / 2**20:.0f} MB" if row.size else ""
            if not torch_ok and needs_pytorch(row.path, row.name):
                # the desktop build cannot open it: no download it could not use
                act = catalog.addAction(f"{row.name}{size} (needs PyTorch: {NO_PYTORCH})")
                act.setEnabled(False)
            elif row.status in ("shipped", "downloaded", "imported"):
                act = catalog.addAction(f"Load {row.name} ({row.status}{size})")
                act.triggered.connect(lambda _c=False, n=row.name: self.load(n))
            elif row.status == "not downloaded":
                act = catalog.addAction(f"Download {row.name}{size}…")
                act.triggered.connect(lambda _c=False, n=row.name: self.download(n))
            elif row.status.startswith("partial"):  # a cancelled or failed download
                act = catalog.addAction(f"Resume the download of {row.name} ({row.status})…")
                act.triggered.connect(lambda _c=False, n=row.name: self.download(n))
            else:
                act = catalog.addAction(f"{row.name} ({row.status})")
                act.setEnabled(False)
            act.setToolTip(row.description)
        m.addSeparator()
        m.addAction("Import an ONNX model folder…").triggered.connect(
            lambda: self.ask_import_onnx()
        )
        pth = [
            m.addAction("Import a model file…"),
            m.addAction("Open a model file without importing…"),
        ]
        pth[0].triggered.connect(lambda: self.ask_import())
        pth[1].triggered.connect(lambda: self.ask_open())
        if not torch_ok:
            for act in pth:
                act.setText(act.text().rstrip("…") + f" (.pth; needs PyTorch: {NO_PYTORCH})")
                act.setEnabled(False)

    def load(self, spec: str | None, label: str | None = None) -> None:
        """Load `spec` in the inference thread; remembered for the next start once it works."""
        self._pending, self._imported = spec or "", []
        self.window.load_model(model_factory(spec), label or (spec or "the default model"))

    def _loaded(self, _info: Any) -> None:
        if self._pending is None and self._imported:  # remembered under its registered name
            self._pending = self._imported[-1]
        self._imported = []
        if self._pending is not None:
            self.window.settings.last_model = self._pending
            self._pending = None

    def _failed(self, *_: Any) -> None:
        self._pending, self._imported = None, []

    def _import(self, path: str) -> None:
        """Register and open `path`; once it is open it is the model of the next start."""
        self._pending, self._imported = None, []
        self.window.load_model(import_and_open_factory(path, self._imported), Path(path).name)

    def load_default(self) -> None:
        self.load(None, "the default model")

    def ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Import a SAM checkpoint", "", "Checkpoints (*.pth *.pt);;All files (*)"
        )
        if path:
            self._import(path)

    def ask_import_onnx(self) -> None:
        """Register and open a folder made by `samstudio model export` (manifest.json and
        the .onnx files): the way to official SAM weights in the desktop build."""
        folder = QFileDialog.getExistingDirectory(self.window, "Import an ONNX model folder")
        if folder:
            self._import(folder)

    def ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Open a SAM checkpoint", "", "Checkpoints (*.pth *.pt);;All files (*)"
        )
        if path:
            self.load(path, Path(path).name)

    def download(self, name: str, parent: QWidget | None = None) -> None:
        """Download catalog model `name` with a progress dialog; load it when done."""
        from samstudio.inference.catalog import catalog_entry, download_path

        if self._download is not None:
            return
        entry = catalog_entry(name)
        dest = download_path(entry)
        cancel = threading.Event()
        dialog = QProgressDialog(f"Downloading {name}…", "Cancel", 0, 1000, parent or self.window)
        dialog.setWindowTitle("Download a model")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        bridge = _DownloadBridge()

        def on_progress(done: int, total: int | None) -> None:
            if total:
                dialog.setValue(int(1000 * done / total))
                dialog.setLabelText(
                    f"Downloading {name}… {done / 2**20:.0f} of {total / 2**20:.0f} MB"
                )
            else:
                dialog.setLabelText(f"Downloading {name}… {done / 2**20:.0f} MB")

        def on_finished(path: str) -> None:
            self._download = None
            dialog.reset()
            self.load(name)

        def on_failed(message: str) -> None:
            self._download = None
            dialog.reset()
            if not cancel.is_set():
                self.window.show_error("The download failed", message)

        bridge.progress.connect(on_progress)
        bridge.finished.connect(on_finished)
        bridge.failed.connect(on_failed)
        dialog.canceled.connect(cancel.set)

        def run() -> None:
            from samstudio.inference.download import download

            try:
                path = download(
                    entry, dest, progress=lambda d, t: bridge.progress.emit(d, t), cancel=cancel
                )
            except Exception as exc:
                bridge.failed.emit(f"{name}: {exc}")
            else:
                bridge.finished.emit(str(path))

        thread = threading.Thread(target=run, name="samstudio-download", daemon=True)
        self._download = (thread, cancel, dialog)
        self._bridge = bridge
        thread.start()
