"""The settings of Study ▸ New study…, as `samstudio study create` takes them: the
folder and title, the models to compare, the ground truth (COCO datasets or generated
scenes) and how masks are sampled, prompted and rated. Every field has a tooltip in
plain words; `StudyForm.plan()` turns the fields into a `create_job.StudyPlan`."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from samstudio.core.study.create import check_empty_folder, default_dataset_name, repeated_name
from samstudio.ui.study.create_job import StudyPlan
from samstudio.ui.study.create_lists import DatasetList, ModelList


def _spin(low: int, high: int, value: int, tip: str, suffix: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setSuffix(suffix)
    spin.setToolTip(tip)
    return spin


class StudyForm(QWidget):
    """Every setting of a new study. `default_model`: the model listed first (a
    checkpoint file or ONNX folder); None lists the shipped demo model."""

    def __init__(self, parent: QWidget | None = None, default_model: Path | None = None) -> None:
        super().__init__(parent)
        self._editable = True
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("a new or empty folder")
        self.folder_edit.setToolTip(
            "Where the study is written (study.json, images/, later ratings/). It must be a "
            "new or an empty folder; copy it to the participants' computers, or share it."
        )
        self.browse_button = QPushButton("Choose…")
        self.browse_button.setToolTip("Choose or make an empty folder for the study")
        self.browse_button.clicked.connect(self.ask_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        self.title_edit = QLineEdit()
        self.title_edit.setPlaceholderText("Mask quality (point prompts)")
        self.title_edit.setToolTip("The title participants see at the top of the rating window")
        top = QFormLayout()
        top.addRow("Study folder", folder_row)
        top.addRow("Title", self.title_edit)

        self.model_list = ModelList(self)
        self.model_list.add(default_model)
        self.single_output = QCheckBox("Also rate each model's single-mask output")
        self.single_output.setToolTip(
            "The paper's ablation: besides the model's best of three guesses for the point, "
            "rate the one mask it gives when asked for a single answer (point prompts only)"
        )
        models_box = QGroupBox("Models to compare")
        models_layout = QVBoxLayout(models_box)
        models_layout.addWidget(self.model_list.widget)
        models_layout.addWidget(self.single_output)

        self.coco_choice = QRadioButton("COCO datasets")
        self.coco_choice.setToolTip(
            "Rate masks of your own data: a COCO instances file and its image folder per dataset"
        )
        self.dataset_list = DatasetList(self)
        self.synthetic_choice = QRadioButton("Generated scenes, to try it out")
        self.synthetic_choice.setToolTip(
            "No data at hand? Simple generated pictures with exact masks, to try a study out"
        )
        self.synthetic_count = _spin(
            1, 10_000, 20, "How many generated pictures to sample the masks from", " scenes"
        )
        self.ground_truth = QCheckBox("Rate the dataset's own masks too")
        self.ground_truth.setChecked(True)
        self.ground_truth.setToolTip(
            "Mix the dataset's (human-made) masks in, blinded, as a reference for the models"
        )
        self.coco_choice.setChecked(True)
        self.coco_choice.toggled.connect(self._update_enabled)
        synthetic_row = QHBoxLayout()
        synthetic_row.addWidget(self.synthetic_choice)
        synthetic_row.addWidget(self.synthetic_count)
        synthetic_row.addStretch(1)
        truth_box = QGroupBox("Ground truth: where the masks come from")
        truth_layout = QVBoxLayout(truth_box)
        truth_layout.addWidget(self.coco_choice)
        truth_layout.addWidget(self.dataset_list.widget)
        truth_layout.addLayout(synthetic_row)
        truth_layout.addWidget(self.ground_truth)

        self.items = _spin(
            1, 1_000_000, 100, "How many masks to draw at random from each dataset", " masks"
        )
        self.prompt = QComboBox()
        self.prompt.addItem("centre point", "point")
        self.prompt.addItem("box", "box")
        self.prompt.setToolTip(
            "What each model is given: one click at the centre of the mask, or the mask's "
            "bounding box"
        )
        self.prompt.currentIndexChanged.connect(self._update_enabled)
        self.ratings_per_job = _spin(
            0,
            1000,
            0,
            "0: every participant rates every mask. K: participants sharing the study folder "
            "take masks from one queue, and a mask leaves it once K people rated it (the "
            "paper: 1)",
        )
        self.ratings_per_job.setSpecialValueText("0 (everyone rates everything)")
        self.seed = _spin(
            0, 2**31 - 1, 0, "Same seed, same masks and order: change it for another draw"
        )
        self.min_area = _spin(
            0, 10**8, 576, "Smaller masks are never drawn (576 px = 24 x 24)", " px"
        )
        self.max_side = _spin(
            64, 100_000, 2000, "Larger images are shrunk to this long side first", " px"
        )
        sampling = QFormLayout()
        sampling.addRow("Masks per dataset", self.items)
        sampling.addRow("Prompt", self.prompt)
        sampling.addRow("Ratings per mask", self.ratings_per_job)
        sampling.addRow("Random seed", self.seed)
        sampling.addRow("Smallest mask", self.min_area)
        sampling.addRow("Largest image side", self.max_side)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(models_box)
        layout.addWidget(truth_box)
        layout.addLayout(sampling)
        self._update_enabled()

    def ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a new or empty study folder")
        if folder:
            self.folder_edit.setText(folder)

    def plan(self) -> StudyPlan:
        """The study as set in the dialog; raises ValueError with a message for the user."""
        text = self.folder_edit.text().strip()
        if not text:
            raise ValueError("Choose a folder for the study (a new or an empty one).")
        folder = Path(text).expanduser()
        check_empty_folder(folder)  # StudyError, a ValueError
        coco = self.dataset_list.datasets() if self.coco_choice.isChecked() else ()
        if self.coco_choice.isChecked():
            if not coco:
                raise ValueError(
                    "Add a COCO dataset (its annotation file and image folder), or choose "
                    "generated scenes."
                )
            twice = repeated_name([d.name or default_dataset_name(d.annotations) for d in coco])
            if twice is not None:
                raise ValueError(f"Two datasets are named {twice!r}: give them different names.")
        point = self.prompt.currentData() == "point"
        return StudyPlan(
            folder=folder,
            models=self.model_list.models(),
            coco=coco,
            synthetic=0 if coco else self.synthetic_count.value(),
            title=self.title_edit.text().strip(),
            items=self.items.value(),
            prompt=str(self.prompt.currentData()),
            single_output=point and self.single_output.isChecked(),
            ground_truth=self.ground_truth.isChecked(),
            ratings_per_job=self.ratings_per_job.value(),
            seed=self.seed.value(),
            min_area=self.min_area.value(),
            max_side=self.max_side.value(),
        )

    def set_editable(self, editable: bool) -> None:
        """Lock every field while a study is being built."""
        self._editable = editable
        parts: list[QWidget] = [self.folder_edit, self.browse_button, self.title_edit]
        parts += [self.coco_choice, self.synthetic_choice, self.ground_truth, self.items]
        parts += [self.prompt, self.ratings_per_job, self.seed, self.min_area, self.max_side]
        for part in parts:
            part.setEnabled(editable)
        self.model_list.set_enabled(editable)
        self._update_enabled()

    def _update_enabled(self) -> None:
        coco = self.coco_choice.isChecked()
        self.dataset_list.set_enabled(self._editable and coco)
        self.synthetic_count.setEnabled(self._editable and not coco)
        point = self.prompt.currentData() == "point"
        self.single_output.setEnabled(self._editable and point)
        self.title_edit.setPlaceholderText(f"Mask quality ({self.prompt.currentData()} prompts)")
