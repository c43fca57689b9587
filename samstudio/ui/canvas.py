"""The image canvas: a QGraphicsView whose scene coordinates are image pixels.

Layers (z order): image, instance overlays (`canvas_overlays.InstanceLayer`), the box
around the proposal under review, candidate overlay, brush stroke, prompts, box preview,
brush size cursor. Overlays are RGBA pictures cropped to each mask's box
(`overlays.MaskPicture`), so a small object on a large photo costs little.
Zoom with the wheel (towards the cursor), pan with the middle button or Space+drag,
`fit()` and `actual_size()` for Fit and 1:1. Mouse events go to the active Tool.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from samstudio.ui.canvas_overlays import (  # noqa: F401  (picture helpers: public here)
    PROPOSAL_OPACITY,
    Z_INSTANCES,
    InstanceLayer,
    cosmetic_pen,
    picture_item,
    picture_qimage,
    rgb_qimage,
    rgba_qimage,
)
from samstudio.ui.overlays import MaskPicture
from samstudio.ui.tools.base import Tool, ToolEvent

Z_IMAGE, Z_CANDIDATE, Z_STROKE, Z_PROMPTS, Z_CURSOR = 0, 20, 30, 40, 50
FG_COLOR, BG_COLOR, BOX_COLOR = QColor(40, 220, 90), QColor(235, 50, 50), QColor(255, 210, 40)
Z_FOCUS = Z_INSTANCES + 5  # the box around the proposal under review, above every mask
MIN_ZOOM, MAX_ZOOM = 0.02, 64.0


class Canvas(QGraphicsView, InstanceLayer):
    """Shows one image with its overlays and passes gestures to the active tool."""

    cursor_moved = Signal(float, float)  # image pixels
    zoom_changed = Signal(float)
    space_tapped = Signal()  # Space pressed and released without dragging (Accept)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setBackgroundBrush(QBrush(QColor(38, 38, 42)))
        self.setMouseTracking(True)
        # Pan with the mouse (middle drag, Space+drag, the Pan tool); no scroll bars.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._image_item: QGraphicsPixmapItem | None = None
        self._instances: dict[int, QGraphicsPixmapItem] = {}
        self._init_instance_layer()
        self._proposals: set[int] = set()  # drawn lighter, with a dashed box
        self._candidate: QGraphicsPixmapItem | None = None
        self._stroke: QGraphicsPixmapItem | None = None
        self._prompt_items: list[QGraphicsItem] = []
        self._box_preview = QGraphicsRectItem()
        self._box_preview.setPen(cosmetic_pen(BOX_COLOR, 2, Qt.PenStyle.DashLine))
        self._box_preview.setZValue(Z_PROMPTS + 1)
        self._box_preview.setVisible(False)
        self.scene().addItem(self._box_preview)
        self._brush_cursor = QGraphicsEllipseItem()
        self._brush_cursor.setPen(cosmetic_pen(QColor(255, 255, 255), 1.5))
        self._brush_cursor.setZValue(Z_CURSOR)
        self._brush_cursor.setVisible(False)
        self.scene().addItem(self._brush_cursor)
        self._focus_box = QGraphicsRectItem()
        self._focus_box.setPen(cosmetic_pen(BOX_COLOR, 2.5))
        self._focus_box.setZValue(Z_FOCUS)
        self._focus_box.setVisible(False)
        self.scene().addItem(self._focus_box)
        self.tool: Tool | None = None
        self.brush_radius = 8.0
        self._space_down = False
        self._space_used = False
        self._pan_from: QPointF | None = None
        self._last_scene_pos = QPointF(-1, -1)

    # --------------------------------------------------------------------------- content
    @property
    def image_size(self) -> tuple[int, int] | None:
        """(W, H) of the shown image, or None."""
        if self._image_item is None:
            return None
        pm = self._image_item.pixmap()
        return pm.width(), pm.height()

    def set_image(self, image: QImage | None) -> None:
        """Show `image` (or nothing); clears every overlay and fits the view."""
        self.clear_instances()
        self.set_candidate(None)
        self.set_stroke(None)
        self.set_prompts(np.zeros((0, 2)), np.zeros((0,)), None)
        self.set_focus_box(None)
        if self._image_item is not None:
            self.scene().removeItem(self._image_item)
            self._image_item = None
        if image is None or image.isNull():
            self.scene().setSceneRect(QRectF(0, 0, 1, 1))
            return
        self._image_item = QGraphicsPixmapItem(QPixmap.fromImage(image))
        self._image_item.setZValue(Z_IMAGE)
        self._image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        # Keep the scaled photo rendered at screen resolution: repaints for overlays,
        # prompts and the brush cursor then cost a copy, not a smooth rescale.
        self._image_item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.scene().addItem(self._image_item)
        w, h = image.width(), image.height()
        margin = max(w, h) * 0.05
        self.scene().setSceneRect(QRectF(-margin, -margin, w + 2 * margin, h + 2 * margin))
        self.fit()

    def set_candidate(self, picture: MaskPicture | None) -> None:
        if self._candidate is not None:
            self.scene().removeItem(self._candidate)
            self._candidate = None
        if picture is not None and not picture.is_empty:
            self._candidate = picture_item(picture, Z_CANDIDATE)
            self.scene().addItem(self._candidate)

    def has_candidate_overlay(self) -> bool:
        return self._candidate is not None

    def set_stroke(self, picture: MaskPicture | None) -> None:
        """The stroke being drawn (before it reaches the store)."""
        if self._stroke is not None:
            self.scene().removeItem(self._stroke)
            self._stroke = None
        if picture is not None and not picture.is_empty:
            self._stroke = picture_item(picture, Z_STROKE)
            self.scene().addItem(self._stroke)

    def set_prompts(self, points: np.ndarray, labels: np.ndarray, box: np.ndarray | None) -> None:
        """Draw points (green foreground, red background; fixed screen size) and the box."""
        for item in self._prompt_items:
            self.scene().removeItem(item)
        self._prompt_items.clear()
        if box is not None:
            rect = QGraphicsRectItem(QRectF(box[0], box[1], box[2] - box[0], box[3] - box[1]))
            rect.setPen(cosmetic_pen(BOX_COLOR, 2))
            rect.setZValue(Z_PROMPTS)
            self.scene().addItem(rect)
            self._prompt_items.append(rect)
        for (x, y), label in zip(points, labels):
            dot = QGraphicsEllipseItem(-6, -6, 12, 12)
            dot.setPos(float(x), float(y))
            dot.setBrush(QBrush(FG_COLOR if label == 1 else BG_COLOR))
            dot.setPen(QPen(QColor(255, 255, 255), 2))
            dot.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            dot.setZValue(Z_PROMPTS)
            self.scene().addItem(dot)
            self._prompt_items.append(dot)

    def prompt_item_count(self) -> int:
        return len(self._prompt_items)

    def show_box_preview(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self._box_preview.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self._box_preview.setVisible(True)

    def hide_box_preview(self) -> None:
        self._box_preview.setVisible(False)

    def set_focus_box(self, bbox: tuple[float, float, float, float] | None) -> None:
        """Frame `bbox` (XYWH, image pixels) in a solid box, e.g. the proposal under
        review; None hides it."""
        if bbox is None:
            self._focus_box.setVisible(False)
            return
        x, y, w, h = bbox
        self._focus_box.setRect(QRectF(x, y, w, h))
        self._focus_box.setVisible(True)

    def focus_box(self) -> tuple[float, float, float, float] | None:
        """The framed box (XYWH, image pixels), or None."""
        if not self._focus_box.isVisible():
            return None
        r = self._focus_box.rect()
        return r.x(), r.y(), r.width(), r.height()

    # ------------------------------------------------------------------------------ view
    def visible_rect(self) -> QRectF:
        """The part of the scene (image pixels) that the viewport shows."""
        return self.mapToScene(self.viewport().rect()).boundingRect()

    def bring_into_view(self, bbox: tuple[float, float, float, float], margin: int = 24) -> None:
        """Show all of `bbox` (XYWH, image pixels): nothing moves when it is on screen
        already; otherwise the view is centred on it, at the same zoom unless the box
        is too big for the window at that zoom (then zoomed out just enough)."""
        if self._image_item is None:
            return
        x, y, w, h = bbox
        rect = QRectF(x, y, max(w, 1.0), max(h, 1.0))
        if self.visible_rect().contains(rect):
            return
        view = self.viewport().rect()
        room = min(
            max(view.width() - 2 * margin, 1) / rect.width(),
            max(view.height() - 2 * margin, 1) / rect.height(),
        )
        if room < self.zoom:
            self.zoom_by(room / self.zoom)
        self.centerOn(rect.center())

    @property
    def zoom(self) -> float:
        return float(self.transform().m11())

    def fit(self) -> None:
        if self._image_item is not None:
            self.fitInView(self._image_item, Qt.AspectRatioMode.KeepAspectRatio)
            self.zoom_changed.emit(self.zoom)

    def actual_size(self) -> None:
        """1:1: one image pixel per screen pixel, centred where the view was."""
        center = self.mapToScene(self.viewport().rect().center())
        self.resetTransform()
        self.centerOn(center)
        self.zoom_changed.emit(self.zoom)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Multiply the zoom by `factor`, keeping the scene point under `anchor` (view px) still."""
        factor = max(MIN_ZOOM / self.zoom, min(MAX_ZOOM / self.zoom, factor))
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        before = self.mapToScene(anchor.toPoint())
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.scale(factor, factor)
        after = self.mapToScene(anchor.toPoint())
        delta = after - before
        self.translate(delta.x(), delta.y())
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.zoom_changed.emit(self.zoom)

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the picture by (dx, dy) viewport pixels."""
        self.horizontalScrollBar().setValue(int(self.horizontalScrollBar().value() - dx))
        self.verticalScrollBar().setValue(int(self.verticalScrollBar().value() - dy))

    def set_brush_radius(self, radius: float) -> None:
        self.brush_radius = radius
        self._update_brush_cursor(self._last_scene_pos)

    def set_tool(self, tool: Tool | None) -> None:
        if self.tool is not None and self.tool is not tool:
            self.tool.cancel()
        self.tool = tool
        self.viewport().setCursor(tool.cursor() if tool else Qt.CursorShape.ArrowCursor)
        self._update_brush_cursor(self._last_scene_pos)

    def _update_brush_cursor(self, pos: QPointF) -> None:
        show = bool(
            self.tool and self.tool.shows_brush and self._image_item is not None and pos.x() >= 0
        )
        self._brush_cursor.setVisible(show)
        if show:
            r = self.brush_radius
            self._brush_cursor.setRect(QRectF(pos.x() - r, pos.y() - r, 2 * r, 2 * r))

    def brush_cursor_rect(self) -> QRectF | None:
        return self._brush_cursor.rect() if self._brush_cursor.isVisible() else None

    empty_text = "Open a folder of images: File ▸ Open folder… (Ctrl+O)"

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        """With no image, say how to get one."""
        super().drawForeground(painter, rect)
        if self._image_item is not None:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor(170, 173, 180))
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        painter.setFont(font)
        painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, self.empty_text)
        painter.restore()

    # ---------------------------------------------------------------------------- events
    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.2**steps, event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self._space_used = False
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            used = self._space_used
            self._pan_from = None
            if not used:
                self.space_tapped.emit()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def _tool_event(self, event: QMouseEvent) -> ToolEvent:
        return ToolEvent(
            pos=self.mapToScene(event.position().toPoint()),
            view_pos=QPointF(event.position()),
            button=event.button(),
            buttons=event.buttons(),
            modifiers=event.modifiers(),
        )

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.MiddleButton or (
            self._space_down and event.button() == Qt.MouseButton.LeftButton
        ):
            self._pan_from = QPointF(event.position())
            self._space_used = True
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if (
            self.tool is not None
            and self._image_item is not None
            and self.tool.press(self._tool_event(event))
        ):
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = self.mapToScene(event.position().toPoint())
        self._last_scene_pos = pos
        self._update_brush_cursor(pos)
        self.cursor_moved.emit(pos.x(), pos.y())
        if self._pan_from is not None:
            delta = QPointF(event.position()) - self._pan_from
            self._pan_from = QPointF(event.position())
            self.pan_by(delta.x(), delta.y())
            event.accept()
            return
        if self.tool is not None and self.tool.move(self._tool_event(event)):
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            self.viewport().setCursor(
                self.tool.cursor() if self.tool else Qt.CursorShape.ArrowCursor
            )
            event.accept()
            return
        if self.tool is not None and self.tool.release(self._tool_event(event)):
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802
        self._last_scene_pos = QPointF(-1, -1)
        self._brush_cursor.setVisible(False)
        super().leaveEvent(event)
