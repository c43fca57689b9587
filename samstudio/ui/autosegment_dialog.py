"""The Auto-segment menu, its parameter dialog and the progress bar with Cancel.

Presets come from `samstudio.core.amg_params.AmgParams`: "paper" (the SA-1B settings of
the paper, §B: 32x32 grid, two crop layers, small regions cleaned), "default" (Meta's
`SamAutomaticMaskGenerator` defaults: 32x32 grid, whole image only) and "fast" (whole
image, adaptive grid). Every field has a tooltip saying what it does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from samstudio.core.amg_params import AmgParams, AmgParamsError
from samstudio.ui.autosegment import AutoSegmenter
from samstudio.ui.proposal_review import ProposalReview

PRESETS: dict[str, Callable[[], AmgParams]] = {
    "fast": AmgParams.fast,
    "default": AmgParams,
    "paper": AmgParams.paper,
}
PRESET_HELP = {
    "fast": "Whole image only, adaptive grid: every other point of the 32x32 grid first, "
    "then only the points near a kept mask that the masks found so far leave open. About "
    "2x fewer decoder calls for nearly all of the full grid's masks.",
    "default": "Meta's SamAutomaticMaskGenerator defaults: a 32x32 grid on the whole image.",
    "paper": "The paper's SA-1B settings (§B): a 32x32 grid on the whole image, plus 2x2 and "
    "4x4 zoomed-in crops with 16x16 and 8x8 grids; small islands and holes cleaned. "
    "Slow on a CPU (21 encoder passes).",
}

# (field, label, tooltip, kind, low, high, step)
FIELDS: list[tuple[str, str, str, str, float, float, float]] = [
    (
        "points_per_side",
        "Points per side",
        "The image is prompted with a regular grid of N x N single foreground points; "
        "each point gives up to three masks. More points find smaller objects, and cost "
        "more decoder time (grows with N²).",
        "int",
        1,
        128,
        1,
    ),
    (
        "points_per_batch",
        "Points per batch",
        "Prompts decoded together in one decoder call. Larger batches use more memory; "
        "speed stops improving past a few dozen.",
        "int",
        1,
        1024,
        8,
    ),
    (
        "pred_iou_thresh",
        "Predicted IoU threshold",
        "Keep only masks whose own predicted quality (IoU) is above this (paper: 0.88). "
        "Lower it to get more, less certain masks; 0 disables the filter.",
        "float",
        0.0,
        1.0,
        0.01,
    ),
    (
        "stability_score_thresh",
        "Stability threshold",
        "Keep only masks that barely change when the mask's logit threshold moves by "
        "±offset (IoU of the two, paper: 0.95). 0 disables the filter.",
        "float",
        0.0,
        1.0,
        0.01,
    ),
    (
        "stability_score_offset",
        "Stability offset",
        "How far (in logits) the threshold is moved for the stability score (SAM: 1.0).",
        "float",
        0.01,
        10.0,
        0.1,
    ),
    (
        "box_nms_thresh",
        "Duplicate overlap (box NMS)",
        "Two masks whose boxes overlap by more than this IoU are duplicates; the one with "
        "the lower predicted IoU is dropped (paper: 0.7).",
        "float",
        0.0,
        1.0,
        0.05,
    ),
    (
        "crop_n_layers",
        "Crop layers",
        "Extra passes on zoomed-in crops: layer i cuts the image into 2^i x 2^i overlapping "
        "crops, each encoded again. Finds small objects; each layer costs many encoder "
        "passes (paper: 2).",
        "int",
        0,
        4,
        1,
    ),
    (
        "crop_n_points_downscale_factor",
        "Crop grid downscale",
        "Crops of layer i use points_per_side / factor^i points per side (paper: 2).",
        "int",
        1,
        16,
        1,
    ),
    (
        "min_mask_region_area",
        "Min region area (px)",
        "Fill holes and remove islands smaller than this many pixels, then remove "
        "duplicates again (paper: 100). 0 disables the cleaning.",
        "int",
        0,
        1_000_000,
        10,
    ),
    (
        "max_mask_area_fraction",
        "Max mask area (fraction)",
        "Drop masks that cover at least this fraction of the image, e.g. the whole "
        "background (paper: 0.95). 1.0 keeps all.",
        "float",
        0.01,
        1.0,
        0.01,
    ),
]


class AutoSegmentDialog(QDialog):
    """Choose a preset, adjust its parameters, and start auto-segmenting."""

    def __init__(self, scope_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Auto-segment {scope_text}")
        layout = QVBoxLayout(self)
        form = QFormLayout()
        layout.addLayout(form)
        self.preset = QComboBox()
        for name in PRESETS:
            self.preset.addItem(name)
            self.preset.setItemData(
                self.preset.count() - 1, PRESET_HELP[name], Qt.ItemDataRole.ToolTipRole
            )
        self.preset.setToolTip(
            "Starting values for every parameter below:\n"
            + "\n".join(f"{k}: {v}" for k, v in PRESET_HELP.items())
        )
        form.addRow("Preset", self.preset)
        self.preset_help = QLabel()
        self.preset_help.setWordWrap(True)
        form.addRow(self.preset_help)
        self.inputs: dict[str, QSpinBox | QDoubleSpinBox] = {}
        for name, label, tip, kind, low, high, step in FIELDS:
            box: QSpinBox | QDoubleSpinBox
            if kind == "int":
                box = QSpinBox()
                box.setRange(int(low), int(high))
                box.setSingleStep(int(step))
            else:
                box = QDoubleSpinBox()
                box.setDecimals(2)
                box.setRange(low, high)
                box.setSingleStep(step)
            box.setToolTip(tip)
            caption = QLabel(label)
            caption.setToolTip(tip)
            form.addRow(caption, box)
            self.inputs[name] = box
        self.adaptive = QCheckBox("Adaptive grid")
        self.adaptive.setToolTip(
            "First prompt every other point of the grid, then only the points near a kept "
            "(or nearly kept) mask where the finest masks of their neighbours disagree: "
            "about 2x fewer decoder calls for 99% of the full grid's masks, measured with "
            "the demo model (SAM Studio, not in the paper)."
        )
        form.addRow(self.adaptive)
        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.preset.currentTextChanged.connect(self.apply_preset)
        self.apply_preset("fast")

    def apply_preset(self, name: str) -> None:
        """Fill every field from preset `name` ("fast", "default" or "paper")."""
        if self.preset.currentText() != name:
            self.preset.setCurrentText(name)  # comes back here through the signal
            return
        self.set_params(PRESETS[name]())
        self.preset_help.setText(PRESET_HELP[name])

    def set_params(self, params: AmgParams) -> None:
        for name, box in self.inputs.items():
            value = getattr(params, name)
            if name == "max_mask_area_fraction" and value is None:
                value = 1.0
            box.setValue(value)
        self.adaptive.setChecked(params.adaptive)
        self._base = params

    def params(self) -> AmgParams:
        """The parameters as shown; raises AmgParamsError (naming the field) when invalid."""
        values: dict[str, Any] = {name: box.value() for name, box in self.inputs.items()}
        if values["max_mask_area_fraction"] >= 1.0:
            values["max_mask_area_fraction"] = None
        values["adaptive"] = self.adaptive.isChecked()
        known = {f.name for f in fields(AmgParams)}
        base = {k: v for k, v in self._base.to_dict().items() if k in known}
        base.update(values)
        if base.get("adaptive_points_per_side") is not None:
            base["adaptive_points_per_side"] = min(
                base["adaptive_points_per_side"], base["points_per_side"]
            )
        return AmgParams.from_dict(base)

    def accept(self) -> None:
        try:
            self.params()
        except AmgParamsError as exc:
            self.error.setText(str(exc))
            return
        super().accept()


class AutoSegmentProgress(QWidget):
    """Status-bar widget: what is running, a progress bar, and Cancel."""

    def __init__(self, auto: AutoSegmenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("Auto-segment")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setMaximumWidth(180)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop auto-segmenting; nothing more is added")
        for w in (self.label, self.bar, self.cancel_button):
            row.addWidget(w)
        self.cancel_button.clicked.connect(auto.cancel)
        auto.progress.connect(self._progress)
        auto.running_changed.connect(self._running)
        self.setVisible(False)

    def _progress(self, fraction: float, text: str) -> None:
        self.label.setText(text)
        if fraction < 0:
            self.cancel_button.setEnabled(False)
            return
        self.bar.setValue(round(fraction * 1000))

    def _running(self, running: bool) -> None:
        self.setVisible(running)
        self.cancel_button.setEnabled(running)
        if running:
            self.bar.setValue(0)


class AutoSegmentMenu:
    """The Auto-segment menu of the main window and its status-bar progress."""

    def __init__(self, window: Any, menu: QMenu) -> None:
        self.window = window
        self.auto = AutoSegmenter(window.annotator, window)
        self.progress = AutoSegmentProgress(self.auto)
        window.statusBar().addPermanentWidget(self.progress)
        act = window._action
        self.current_action = act("Auto-segment current image…", self.run_current, None, menu)
        self.all_action = act("Auto-segment all images…", self.run_all, None, menu)
        menu.addSeparator()
        self.review = review = ProposalReview(window, self.auto)  # J / K, the status line
        self.next_action, self.previous_action = review.step_actions(menu)
        self.accept_one_action = act(
            "Accept proposal, go to the next", review.accept_current, "Ctrl+Return", menu
        )
        self.reject_one_action = act(
            "Reject proposal, go to the next", review.reject_current, "Ctrl+Backspace", menu
        )
        menu.addSeparator()
        self.accept_above_action = act(
            "Accept proposals above…", review.ask_accept_above, None, menu
        )
        self.accept_all_action = act("Accept all proposals", review.accept_all, None, menu)
        self.reject_all_action = act("Reject all proposals", review.reject_all, None, menu)
        menu.addSeparator()
        self.cancel_action = act("Cancel auto-segment", self.auto.cancel, None, menu)
        self.cancel_action.setEnabled(False)
        self.auto.running_changed.connect(self._running)
        self.auto.failed.connect(lambda m: window.statusBar().showMessage(m, 10000))
        self.auto.proposals_added.connect(self._added)

    def _running(self, running: bool) -> None:
        self.cancel_action.setEnabled(running)
        self.current_action.setEnabled(not running)
        self.all_action.setEnabled(not running)
        if not running and self.auto.last_cancelled:
            self.window.statusBar().showMessage("Auto-segment cancelled", 8000)

    def _added(self, image_id: int, count: int) -> None:
        self.window.statusBar().showMessage(self.added_message(image_id, count), 15000)
        self.window._refresh_image_rows()

    def added_message(self, image_id: int, count: int) -> str:
        """The status line after an image's proposals arrived; with none, which filters
        the masks had to pass and what to change."""
        project = self.window.project
        name = project.image_path(image_id).name if project is not None else f"image {image_id}"
        if count:
            return (
                f"Auto-segment: {count} proposal{'s' if count != 1 else ''} on {name} "
                "— review them: J next, Ctrl+Return accept, Ctrl+Backspace reject"
            )
        p = self.auto.last_params
        filters = (
            f" (predicted IoU > {p.pred_iou_thresh:g}, stability ≥ "
            f"{p.stability_score_thresh:g}, area < {p.max_mask_area_fraction:.0%} of the image)"
            if p is not None
            else ""
        )
        return (
            f"Auto-segment: no mask on {name} passed the filters{filters}. Lower the "
            "thresholds in the Auto-segment dialog; a weak model, such as the shipped demo "
            "model, predicts low IoUs."
        )

    def ask(self, scope_text: str) -> AmgParams | None:
        dialog = AutoSegmentDialog(scope_text, self.window)
        try:
            return dialog.params() if dialog.exec() else None
        finally:
            dialog.deleteLater()

    def run_current(self) -> None:
        image_id = self.window.annotator.image_id
        if image_id is None:
            self.window.statusBar().showMessage("Open an image first.", 8000)
            return
        params = self.ask("the current image")
        if params is not None:
            self.auto.start([image_id], params)

    def run_all(self) -> None:
        project = self.window.project
        if project is None:
            self.window.statusBar().showMessage("Open a project first.", 8000)
            return
        ids = [r.id for r in project.images() if not getattr(r, "error", None)]
        params = self.ask(f"all {len(ids)} images")
        if params is not None:
            self.auto.start(ids, params)
