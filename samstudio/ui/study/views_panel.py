"""The right side of the rating window: five thumbnails (3 + 2) and a large preview.

Hovering a thumbnail shows its view in the preview; clicking one makes it full size
(`full_size_changed(True)`), and clicking the full-size view (or Esc) returns. While
full size, the arrow keys cycle through the views, as in the paper's interface (§G).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QEnterEvent, QMouseEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from samstudio.core.study.views import VIEW_KEYS

# the captions of §G, in the order of VIEW_KEYS
CAPTIONS = {
    "image": "Image without the mask",
    "overlay": "Mask in red",
    "mask": "Mask only (yellow on purple)",
    "zoom_image": "Zoomed in, without the mask",
    "zoom_overlay": "Zoomed in, mask in red",
}
THUMB_SIZE = QSize(200, 150)


class ScaledPicture(QLabel):
    """A label that shows its pixmap as large as fits, keeping the aspect ratio
    (enlarged pixel by pixel, so a small mask's pixels stay visible)."""

    clicked = Signal()
    hovered = Signal()

    def __init__(self, minimum: QSize, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap = QPixmap()
        self.setMinimumSize(minimum)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_picture(self, pixmap: QPixmap) -> None:
        self._pixmap = pixmap
        self._rescale()

    def full_pixmap(self) -> QPixmap:
        """The full-resolution pixmap shown (scaled on screen)."""
        return self._pixmap

    def _rescale(self) -> None:
        if self._pixmap.isNull():
            super().setPixmap(QPixmap())
            return
        size = self.contentsRect().size()
        enlarging = size.width() > self._pixmap.width() and size.height() > self._pixmap.height()
        mode = (
            Qt.TransformationMode.FastTransformation
            if enlarging
            else Qt.TransformationMode.SmoothTransformation
        )
        super().setPixmap(self._pixmap.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, mode))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._rescale()

    def enterEvent(self, event: QEnterEvent) -> None:  # noqa: N802
        super().enterEvent(event)
        self.hovered.emit()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
            event.accept()
            return
        super().mousePressEvent(event)


class ViewsPanel(QWidget):
    """Five thumbnails over a preview of the hovered one; a click toggles full size."""

    full_size_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pixmaps: dict[str, QPixmap] = {}
        self.current = "overlay"
        self.full_size = False

        self.thumbs: dict[str, ScaledPicture] = {}
        self.captions: dict[str, QLabel] = {}
        self.thumb_area = QWidget(self)
        grid = QGridLayout(self.thumb_area)
        grid.setContentsMargins(0, 0, 0, 0)
        for i, key in enumerate(VIEW_KEYS):
            row, col = (0, i) if i < 3 else (2, i - 3)
            thumb = ScaledPicture(QSize(120, 90), self.thumb_area)
            thumb.setFixedHeight(THUMB_SIZE.height())
            thumb.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            thumb.setToolTip(f"{CAPTIONS[key]}: hover to enlarge, click for full size")
            thumb.hovered.connect(lambda k=key: self.show_view(k))
            thumb.clicked.connect(lambda k=key: self.toggle_full_size(k))
            caption = QLabel(f"{i + 1}. {CAPTIONS[key]}", self.thumb_area)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            grid.addWidget(thumb, row, col)
            grid.addWidget(caption, row + 1, col)
            self.thumbs[key] = thumb
            self.captions[key] = caption

        self.preview_caption = QLabel(self)
        self.preview_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_caption.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.preview = ScaledPicture(QSize(320, 240), self)
        self.preview.setToolTip("Click for full size; click again to return")
        self.preview.clicked.connect(lambda: self.toggle_full_size(self.current))
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.hide()

        layout = QVBoxLayout(self)
        layout.addWidget(self.thumb_area)
        layout.addWidget(self.preview_caption)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.message, 1)

    def set_views(self, pixmaps: dict[str, QPixmap]) -> None:
        """Show a job's five views ({key of VIEW_KEYS: pixmap})."""
        self.pixmaps = dict(pixmaps)
        self.message.hide()
        self.thumb_area.setEnabled(True)
        for key, thumb in self.thumbs.items():
            thumb.set_picture(self.pixmaps.get(key, QPixmap()))
        self.preview.show()
        self.show_view(self.current)

    def show_message(self, text: str) -> None:
        """Show `text` instead of the views (e.g. an image that cannot be read)."""
        self.set_full_size(False)
        self.pixmaps = {}
        for thumb in self.thumbs.values():
            thumb.set_picture(QPixmap())
        self.thumb_area.setEnabled(False)
        self.preview.set_picture(QPixmap())
        self.preview.hide()
        self.preview_caption.setText("")
        self.message.setText(text)
        self.message.show()

    def show_view(self, key: str) -> None:
        """Show view `key` in the preview (what hovering its thumbnail does)."""
        self.current = key
        number = VIEW_KEYS.index(key) + 1
        self.preview_caption.setText(f"{number}. {CAPTIONS[key]}")
        self.preview.set_picture(self.pixmaps.get(key, QPixmap()))

    def toggle_full_size(self, key: str) -> None:
        """A click: view `key` full size, or back to the thumbnails when it already is."""
        if self.full_size:
            self.set_full_size(False)
        elif key in self.pixmaps:
            self.show_view(key)
            self.set_full_size(True)

    def set_full_size(self, full: bool) -> None:
        if full == self.full_size:
            return
        self.full_size = full
        self.thumb_area.setVisible(not full)
        self.full_size_changed.emit(full)

    def cycle(self, step: int) -> None:
        """Show the next (step 1) or previous (-1) view, as the arrows do at full size."""
        at = VIEW_KEYS.index(self.current)
        self.show_view(VIEW_KEYS[(at + step) % len(VIEW_KEYS)])
