"""Auto-segment ▸ Accept proposals above…: the dialog with two thresholds (predicted IoU
and stability) and how many of the image's proposals reach both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

SCORE_SLACK = 1e-6  # scores are stored as float32: 0.95 reads back as 0.94999999


def passes(rec: Any, min_iou: float, min_stability: float) -> bool:
    """Whether a proposal's predicted IoU and stability reach both thresholds."""
    return (
        score(rec.predicted_iou) + SCORE_SLACK >= min_iou
        and score(rec.stability_score) + SCORE_SLACK >= min_stability
    )


def score(value: float | None) -> float:
    """A score for comparing; a missing one is below any threshold."""
    return -1.0 if value is None else float(value)


class AcceptAboveDialog(QDialog):
    """Two thresholds and how many of the image's proposals reach both."""

    def __init__(
        self,
        records: Sequence[Any],
        min_iou: float,
        min_stability: float,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Accept proposals above…")
        self.records = list(records)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        layout.addLayout(form)
        self.iou = self._box(min_iou, "The model's own estimate of the mask's quality (IoU).")
        self.stability = self._box(
            min_stability, "How little the mask changes when its logit threshold moves."
        )
        form.addRow("Predicted IoU at least", self.iou)
        form.addRow("Stability at least", self.stability)
        self.count_label = QLabel()
        layout.addWidget(self.count_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.iou.valueChanged.connect(self._count)
        self.stability.valueChanged.connect(self._count)
        self._count()

    def _box(self, value: float, tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setDecimals(2)
        box.setRange(0.0, 1.0)
        box.setSingleStep(0.01)
        box.setValue(value)
        box.setToolTip(tip)
        return box

    def thresholds(self) -> tuple[float, float]:
        """(minimum predicted IoU, minimum stability) as shown."""
        return self.iou.value(), self.stability.value()

    def passing(self) -> list[Any]:
        return [r for r in self.records if passes(r, *self.thresholds())]

    def _count(self) -> None:
        n = len(self.passing())
        self.count_label.setText(f"{n} of {len(self.records)} proposals of this image pass")
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText(f"Accept {n}")
        ok.setEnabled(n > 0)
