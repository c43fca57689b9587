"""Reading image files off the UI thread for the canvas."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from samstudio.ui.canvas import rgb_qimage
from samstudio.ui.image_io import ImageReadError, load_rgb


class PixelLoader(QObject):
    """Reads image files off the UI thread; results come back as signals."""

    loaded = Signal(int, int, object, object)  # ticket, image id, (H, W, 3) uint8, QImage
    failed = Signal(int, int, str)  # ticket, image id, message

    def __init__(self) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="samstudio-io")

    def load(self, ticket: int, image_id: int, path: str) -> None:
        self._pool.submit(self._run, ticket, image_id, path)

    def _run(self, ticket: int, image_id: int, path: str) -> None:
        try:
            rgb = load_rgb(path)
            # QImage work is thread-safe: convert here so the UI thread only wraps it.
            qimage = rgb_qimage(rgb).convertToFormat(QImage.Format.Format_RGB32)
            self.loaded.emit(ticket, image_id, rgb, qimage)
        except ImageReadError as exc:
            self.failed.emit(ticket, image_id, str(exc))
        except Exception as exc:  # a decoder bug must not kill the reader thread
            self.failed.emit(ticket, image_id, f"{path}: {type(exc).__name__}: {exc}")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
