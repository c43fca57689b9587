"""The two lists of the New study dialog: the models to compare and the COCO datasets
whose masks are rated. Each is a table with Add… and Remove buttons; the first column
(the name shown in the analysis) can be edited."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from samstudio.core.study.create import default_dataset_name
from samstudio.ui.study.create_job import CocoDataset

DEMO_LABEL = "the shipped demo model (samstudio-demo)"
PATH_ROLE = Qt.ItemDataRole.UserRole
KNOWN = ("downloaded", "imported")  # `catalog.ModelStatus.status` of models on this disk


def _table(headers: list[str], tooltips: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    for column, tip in enumerate(tooltips):
        header = table.horizontalHeaderItem(column)
        if header is not None:
            header.setToolTip(tip)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.setMinimumHeight(80)
    table.setMaximumHeight(140)
    return table


def _fixed(text: str, path: Path | None) -> QTableWidgetItem:
    """A cell that cannot be edited, holding `path` and showing it in full as a tooltip."""
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    item.setData(PATH_ROLE, None if path is None else str(path))
    item.setToolTip(DEMO_LABEL if path is None else str(path))
    return item


def _buttons(table: QTableWidget, *buttons: QPushButton) -> QWidget:
    """The table with its buttons in a row below it; the last button removes the
    selected rows."""
    box = QWidget()
    row = QHBoxLayout()
    for button in buttons:
        row.addWidget(button)
    row.addStretch(1)
    buttons[-1].clicked.connect(lambda: _remove_selected(table))
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(table)
    layout.addLayout(row)
    return box


def _remove_selected(table: QTableWidget) -> None:
    for row in sorted({i.row() for i in table.selectedIndexes()}, reverse=True):
        table.removeRow(row)


class ModelList:
    """The models to compare: (name for the analysis, checkpoint / ONNX folder or None for
    the shipped demo model)."""

    def __init__(self, parent: QWidget) -> None:
        self.parent = parent
        self.table = _table(
            ["Name in the analysis (optional)", "Model"],
            [
                "What this model is called in the results. Left empty, its model id is used.",
                "The model's file: a PyTorch checkpoint (.pth) or an exported ONNX folder.",
            ],
        )
        self.add_file_button = QPushButton("Add checkpoint…")
        self.add_file_button.setToolTip("Compare a PyTorch SAM checkpoint (.pth) too")
        self.add_folder_button = QPushButton("Add ONNX folder…")
        self.add_folder_button.setToolTip(
            "Compare a model exported with `samstudio model export` (a folder holding "
            "manifest.json) too"
        )
        self.add_demo_button = QPushButton("Add demo model")
        self.add_demo_button.setToolTip("Compare the small demo model shipped with SAM Studio")
        self.add_known_button = QPushButton("Add my model")
        self.add_known_button.setToolTip(
            "Compare a model downloaded or imported before (Model menu, or `samstudio "
            "model download` / `model import`), by its name"
        )
        self.known_menu = QMenu(self.add_known_button)
        self.known_menu.aboutToShow.connect(self.list_known)
        self.add_known_button.setMenu(self.known_menu)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Leave the selected models out of the study")
        self.add_file_button.clicked.connect(self.ask_file)
        self.add_folder_button.clicked.connect(self.ask_folder)
        self.add_demo_button.clicked.connect(lambda: self.add(None))
        self.widget = _buttons(
            self.table,
            self.add_file_button,
            self.add_folder_button,
            self.add_demo_button,
            self.add_known_button,
            self.remove_button,
        )

    def add(self, path: Path | None, name: str = "") -> None:
        """Add a model: a checkpoint file or an ONNX folder, or None for the demo model."""
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(name))
        shown = DEMO_LABEL if path is None else path.name or str(path)
        self.table.setItem(row, 1, _fixed(shown, path))

    def list_known(self) -> None:
        """Fill the "Add my model" menu: the downloaded and imported models, by name."""
        from samstudio.inference.catalog import list_models

        self.known_menu.clear()
        rows = [r for r in list_models() if r.status in KNOWN and r.path is not None]
        for row in rows:
            size = f" · {row.size / 2**20:.0f} MB" if row.size else ""
            action = self.known_menu.addAction(f"{row.name} ({row.status}{size})")
            action.setToolTip(str(row.path))
            action.triggered.connect(
                lambda _checked=False, r=row: self.add(Path(r.path), name=r.name)
            )
        if not rows:
            none = self.known_menu.addAction(
                "No model downloaded or imported yet (see the Model menu)"
            )
            none.setEnabled(False)

    def ask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.parent, "Add a model checkpoint", "", "Checkpoints (*.pth *.pt);;All files (*)"
        )
        if path:
            self.add(Path(path))

    def ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.parent, "Add an exported ONNX model folder")
        if folder:
            self.add(Path(folder))

    def models(self) -> tuple[tuple[str | None, Path | None], ...]:
        out = []
        for row in range(self.table.rowCount()):
            name_item, model_item = self.table.item(row, 0), self.table.item(row, 1)
            name = name_item.text().strip() if name_item is not None else ""
            value = model_item.data(PATH_ROLE) if model_item is not None else None
            out.append((name or None, None if value is None else Path(value)))
        return tuple(out)

    def set_enabled(self, enabled: bool) -> None:
        self.widget.setEnabled(enabled)


class DatasetList:
    """The COCO datasets: (name, annotation file, image folder) per row."""

    def __init__(self, parent: QWidget) -> None:
        self.parent = parent
        self.table = _table(
            ["Dataset name", "Annotation file", "Image folder"],
            [
                "What the dataset is called in the results (figures are given per dataset)",
                "The COCO instances file (.json) with the ground-truth masks",
                "The folder holding the dataset's images",
            ],
        )
        self.add_button = QPushButton("Add dataset…")
        self.add_button.setToolTip(
            "Choose a COCO annotation file, then the folder of its images. Masks are sampled "
            "from each dataset separately."
        )
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Leave the selected datasets out")
        self.add_button.clicked.connect(self.ask_dataset)
        self.widget = _buttons(self.table, self.add_button, self.remove_button)

    def add(self, annotations: Path, images: Path, name: str = "") -> None:
        """Add a dataset; its name defaults to the annotation file's name without .json."""
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(name or default_dataset_name(annotations)))
        self.table.setItem(row, 1, _fixed(annotations.name, annotations))
        self.table.setItem(row, 2, _fixed(images.name or str(images), images))

    def ask_dataset(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.parent, "Choose a COCO annotation file", "", "COCO JSON (*.json);;All files (*)"
        )
        if not path:
            return
        folder = QFileDialog.getExistingDirectory(
            self.parent,
            f"Choose the folder of the images of {Path(path).name}",
            str(Path(path).parent),
        )
        if folder:
            self.add(Path(path), Path(folder))

    def datasets(self) -> tuple[CocoDataset, ...]:
        out = []
        for row in range(self.table.rowCount()):
            cells = [self.table.item(row, c) for c in range(3)]
            name = cells[0].text().strip() if cells[0] is not None else ""
            ann, images = (c.data(PATH_ROLE) if c is not None else "" for c in cells[1:])
            out.append(CocoDataset(name, Path(ann), Path(images)))
        return tuple(out)

    def set_enabled(self, enabled: bool) -> None:
        self.widget.setEnabled(enabled)
