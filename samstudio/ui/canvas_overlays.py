"""The canvas's saved-mask overlays (`Canvas` mixes this in) and the QImage helpers.

Every saved mask is a pixmap item in one layer (z `Z_INSTANCES`, under the proposal box,
the candidate, the stroke and the prompts): hiding the layer hides all masks at once
(View ▸ Hide all masks). Inside it the masks stack in `overlays.stacking_order` (the
newest on top, the selected one above all), whichever was drawn last; `drawn_instances`
gives that order for Ctrl+click. QImage helpers may be called from any thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPen, QPixmap, qRgba
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
)

from samstudio.ui.overlays import MaskPicture

Z_INSTANCES = 10


def rgb_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB -> a QImage that owns a copy of the pixels."""
    h, w = rgb.shape[:2]
    arr = np.ascontiguousarray(rgb)
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def rgba_qimage(rgba: np.ndarray) -> QImage:
    """(H, W, 4) uint8 straight-alpha RGBA -> a QImage that owns a copy."""
    h, w = rgba.shape[:2]
    arr = np.ascontiguousarray(rgba)
    return QImage(arr.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


def picture_qimage(picture: MaskPicture) -> QImage:
    """The picture as a premultiplied ARGB QImage (any thread may call this).

    The class map becomes an indexed image with a three-colour table, converted by Qt.
    The result is cached on the picture.
    """
    if picture.qimage is not None:
        return picture.qimage  # type: ignore[no-any-return]
    classes = picture.classes
    h, w = classes.shape
    indexed = QImage(classes.data, w, h, w, QImage.Format.Format_Indexed8)
    fr, fg, fb, fa = picture.fill
    er, eg, eb, ea = picture.edge
    indexed.setColorTable([qRgba(0, 0, 0, 0), qRgba(fr, fg, fb, fa), qRgba(er, eg, eb, ea)])
    image = indexed.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    picture.qimage = image
    return image


def picture_item(picture: MaskPicture, z: float) -> QGraphicsPixmapItem:
    item = QGraphicsPixmapItem(QPixmap.fromImage(picture_qimage(picture)))
    item.setPos(picture.origin[0], picture.origin[1])
    item.setScale(picture.scale)
    item.setZValue(z)
    item.setTransformationMode(Qt.TransformationMode.FastTransformation)  # crisp pixels
    return item


PROPOSAL_OPACITY = 0.55  # auto-segment proposals are drawn lighter until accepted


class InstanceLayer:
    """The saved-mask methods of `Canvas` (a QGraphicsView: `scene()` is its own)."""

    _instances: dict[int, QGraphicsPixmapItem]
    _proposals: set[int]

    scene: Any  # QGraphicsView's

    def _init_instance_layer(self) -> None:
        self._stack: dict[int, int] = {}  # annotation id -> z within the instance layer
        self._instance_layer = QGraphicsRectItem()  # draws nothing; holds the masks
        self._instance_layer.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        self._instance_layer.setPen(QPen(Qt.PenStyle.NoPen))
        self._instance_layer.setZValue(Z_INSTANCES)
        self.scene().addItem(self._instance_layer)

    def clear_instances(self) -> None:
        for item in self._instances.values():
            self.scene().removeItem(item)
        self._instances.clear()

    def set_instance(self, annotation_id: int, picture: MaskPicture | None) -> None:
        """Add, replace or (with None) remove the overlay of one annotation."""
        old = self._instances.pop(annotation_id, None)
        if old is not None:
            self.scene().removeItem(old)
        if picture is not None and not picture.is_empty:
            item = picture_item(picture, self._stack.get(annotation_id, 0))
            item.setParentItem(self._instance_layer)
            self._instances[annotation_id] = item
            self._style_instance(annotation_id)

    def set_proposals(self, annotation_ids: set[int]) -> None:
        """Draw these annotations as proposals (lighter fill, dashed box), the rest solid."""
        changed = self._proposals ^ set(annotation_ids)
        self._proposals = set(annotation_ids)
        for ann_id in changed:
            self._style_instance(ann_id)

    def is_proposal_drawn(self, annotation_id: int) -> bool:
        """True when the overlay of `annotation_id` is drawn in the proposal style."""
        item = self._instances.get(annotation_id)
        return item is not None and bool(item.childItems()) and item.opacity() < 1.0

    def _style_instance(self, annotation_id: int) -> None:
        item = self._instances.get(annotation_id)
        if item is None:
            return
        for child in item.childItems():
            self.scene().removeItem(child)
        if annotation_id in self._proposals:
            item.setOpacity(PROPOSAL_OPACITY)
            box = QGraphicsRectItem(item.boundingRect(), item)
            box.setPen(cosmetic_pen(QColor(255, 255, 255), 1.5, Qt.PenStyle.DashLine))
        else:
            item.setOpacity(1.0)

    def instance_ids(self) -> list[int]:
        return list(self._instances)

    def set_instance_visible(self, annotation_id: int, visible: bool) -> None:
        item = self._instances.get(annotation_id)
        if item is not None:
            item.setVisible(visible)

    def set_stacking(self, order: list[int]) -> None:
        """Draw the masks in this order, bottom to top (`overlays.stacking_order`); masks
        drawn later (by the loader thread) take their place in it too."""
        self._stack = {ann_id: z for z, ann_id in enumerate(order)}
        for ann_id, item in self._instances.items():
            z = self._stack.get(ann_id, 0)
            if item.zValue() != z:  # most stay where they are: no scene update
                item.setZValue(z)

    def drawn_instances(self) -> list[int]:
        """The ids of the masks drawn now, topmost first (what Ctrl+click picks from)."""
        shown = [(item.zValue(), i) for i, item in self._instances.items() if item.isVisible()]
        return [i for _z, i in sorted(shown, reverse=True)]

    def set_instances_shown(self, shown: bool) -> None:
        """Show or hide every saved mask at once (View ▸ Hide all masks); the mask being
        made, the brush stroke and the prompts stay."""
        self._instance_layer.setVisible(shown)

    def instances_shown(self) -> bool:
        return self._instance_layer.isVisible()


def cosmetic_pen(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)  # the same width on screen at every zoom
    return pen
