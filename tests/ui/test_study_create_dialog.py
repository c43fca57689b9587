"""Study ▸ New study…: a researcher builds a study without the command line. Fields are
filled and buttons clicked as a user would; the build runs on a worker thread with a
progress bar and Cancel, leaves nothing behind when cancelled or failed, and names the
file at fault."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog

from samstudio.core.study.model import load_study
from samstudio.inference.types import ImageEmbedding
from ui.fakes import FakeSegmenter

REPO = Path(__file__).resolve().parents[2]
DEMO_ONNX = REPO / "resources" / "models" / "samstudio-demo" / "onnx"
WAIT_MS = 60_000


@pytest.fixture
def dialog(qtbot) -> Iterator:  # noqa: ANN001
    from samstudio.ui.study.create_dialog import NewStudyDialog

    dlg = NewStudyDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    dlg.shutdown()


class GatedSegmenter(FakeSegmenter):
    """A FakeSegmenter whose encoder waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def encode(self, image: np.ndarray) -> ImageEmbedding:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return super().encode(image)


def use_models(monkeypatch: pytest.MonkeyPatch, segmenter: FakeSegmenter) -> None:
    """Every model the dialog opens is `segmenter` (no weights, no wait)."""
    import samstudio.inference.loader as loader

    monkeypatch.setattr(loader, "open_model", lambda spec, device=None: segmenter)


def fill_synthetic(qtbot, dlg, folder: Path, scenes: int = 3, items: int = 4) -> None:  # noqa: ANN001
    """Type the folder, choose generated scenes and the numbers, as a user does."""
    form = dlg.form
    form.folder_edit.clear()
    qtbot.keyClicks(form.folder_edit, str(folder))
    tick(qtbot, form.synthetic_choice)
    form.synthetic_count.setValue(scenes)
    form.items.setValue(items)


def tick(qtbot, box) -> None:  # noqa: ANN001
    """Click a check box or radio button on its indicator, as a user does."""
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(6, box.height() // 2))


def create(qtbot, dlg) -> bool:  # noqa: ANN001
    """Click Create and wait until the build has ended; True when a study was made."""
    with qtbot.waitSignal(dlg.settled, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(dlg.create_button, Qt.MouseButton.LeftButton)
    return bool(blocker.args[0])


@pytest.mark.skipif(
    not (DEMO_ONNX / "manifest.json").is_file(), reason="the shipped demo model is absent"
)
def test_a_synthetic_study_with_the_demo_model_is_built_and_rated(
    qtbot,  # noqa: ANN001
    dialog,  # noqa: ANN001
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "my study"
    assert dialog.form.model_list.models() == ((None, None),)  # the shipped demo model
    fill_synthetic(qtbot, dialog, folder)
    qtbot.keyClicks(dialog.form.title_edit, "Try-out")
    tick(qtbot, dialog.form.single_output)
    dialog.form.ratings_per_job.setValue(1)
    seen: list[str] = []
    dialog.runner.progress.connect(lambda text, done, total: seen.append(text))

    assert create(qtbot, dialog)
    study = load_study(folder)
    assert study.title == "Try-out" and study.ratings_per_job == 1
    assert len(study.items) == 4
    assert [c.kind for c in study.conditions] == ["model", "single-output", "ground-truth"]
    assert study.conditions[0].name.startswith("samstudio_demo")
    assert len(study.jobs) == 4 * 3
    assert any(text.startswith("Predicting masks") for text in seen)
    assert str(folder) in dialog.message.text() and "12" in dialog.message.text()
    assert dialog.rate_button.isVisible() and dialog.create_button.isEnabled()

    # Rate it now: who rates, then the participant's rating window
    import samstudio.ui.study.start_dialog as start_dialog

    monkeypatch.setattr(start_dialog, "ask_participant", lambda title, parent=None: "P01")
    qtbot.mouseClick(dialog.rate_button, Qt.MouseButton.LeftButton)
    window = dialog.rating_window
    assert window is not None and window.isVisible()
    assert not dialog.isVisible()
    window.close()


@pytest.mark.parametrize("existed", [False, True], ids=["new folder", "empty folder"])
def test_cancel_leaves_no_study_behind(
    qtbot,  # noqa: ANN001
    dialog,  # noqa: ANN001
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    existed: bool,
) -> None:
    model = GatedSegmenter()
    use_models(monkeypatch, model)
    folder = tmp_path / "study"
    if existed:
        folder.mkdir()
    fill_synthetic(qtbot, dialog, folder)
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(model.entered.is_set, timeout=WAIT_MS)  # the first image is written
    assert any((folder / "images").iterdir())
    assert dialog.progress_bar.isVisible() and not dialog.create_button.isEnabled()

    with qtbot.waitSignal(dialog.settled, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        assert dialog.progress_label.text() == "Cancelling…"
        model.gate.set()
    assert blocker.args == [False]
    if existed:
        assert folder.is_dir() and not any(folder.iterdir())
    else:
        assert not folder.exists()
    assert "Cancelled" in dialog.message.text()
    assert dialog.create_button.isEnabled() and not dialog.rate_button.isVisible()


def write_coco(folder: Path, n_images: int = 2) -> Path:
    """instances.json and PNGs in `folder`: 120x160 images, each with 2 rectangles."""
    from PIL import Image

    folder.mkdir(parents=True)
    images, anns = [], []
    for k in range(n_images):
        picture = np.full((120, 160, 3), 60 + 20 * k, np.uint8)
        for j, (x0, y0, x1, y1) in enumerate([(10, 10, 60, 50), (80, 40, 150, 110)]):
            picture[y0:y1, x0:x1] = (200, 40 * j, 90)
            anns.append(
                {
                    "id": 10 * k + j + 1,
                    "image_id": k + 1,
                    "category_id": 1,
                    "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
                    "area": (x1 - x0) * (y1 - y0),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "iscrowd": 0,
                }
            )
        Image.fromarray(picture).save(folder / f"p{k}.png")
        images.append({"id": k + 1, "file_name": f"p{k}.png", "height": 120, "width": 160})
    doc = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}
    path = folder / "instances.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def add_dataset(qtbot, dlg, monkeypatch, annotations: Path, images: Path) -> None:  # noqa: ANN001
    """Click "Add dataset…" and answer its two file dialogs."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(annotations), ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(images))
    qtbot.mouseClick(dlg.form.dataset_list.add_button, Qt.MouseButton.LeftButton)


def test_two_coco_datasets_with_box_prompts(
    qtbot,  # noqa: ANN001
    dialog,  # noqa: ANN001
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_models(monkeypatch, FakeSegmenter())
    a, b = write_coco(tmp_path / "a"), write_coco(tmp_path / "b", 3)
    add_dataset(qtbot, dialog, monkeypatch, a, a.parent)
    add_dataset(qtbot, dialog, monkeypatch, b, b.parent)
    form = dialog.form
    form.dataset_list.table.item(0, 0).setText("Kitchen")  # as typed in the name cell
    assert [d.name for d in form.dataset_list.datasets()] == ["Kitchen", "instances"]
    form.prompt.setCurrentIndex(form.prompt.findData("box"))
    assert not form.single_output.isEnabled()
    tick(qtbot, form.ground_truth)
    form.items.setValue(2)
    folder = tmp_path / "study"
    qtbot.keyClicks(form.folder_edit, str(folder))

    assert create(qtbot, dialog)
    study = load_study(folder)
    assert study.datasets() == ["Kitchen", "instances"]
    assert [c.kind for c in study.conditions] == ["model"] and len(study.jobs) == 4
    assert all(item.box is not None for item in study.items)

    form.dataset_list.table.item(1, 0).setText("Kitchen")
    shutil.rmtree(folder)
    assert not create(qtbot, dialog)
    assert "Two datasets are named 'Kitchen'" in dialog.message.text()


@pytest.mark.parametrize("problem", ["malformed file", "missing image folder"])
def test_a_bad_coco_dataset_is_named_and_the_dialog_stays_usable(
    qtbot,  # noqa: ANN001
    dialog,  # noqa: ANN001
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    problem: str,
) -> None:
    use_models(monkeypatch, FakeSegmenter())
    annotations = write_coco(tmp_path / "data")
    images = annotations.parent
    if problem == "malformed file":
        annotations = tmp_path / "broken_instances.json"
        annotations.write_text('{"images": [{"id": 1,', encoding="utf-8")
        culprit = annotations
    else:
        images = culprit = tmp_path / "moved away"
    add_dataset(qtbot, dialog, monkeypatch, annotations, images)
    folder = tmp_path / "study"
    qtbot.keyClicks(dialog.form.folder_edit, str(folder))

    assert not create(qtbot, dialog)
    assert str(culprit) in dialog.message.text()
    assert not folder.exists()
    assert dialog.create_button.isEnabled() and dialog.form.folder_edit.isEnabled()

    # the same dialog, generated scenes instead: it works
    fill_synthetic(qtbot, dialog, folder, scenes=2, items=2)
    assert create(qtbot, dialog)
    assert len(load_study(folder).jobs) == 2 * 2


def test_a_model_folder_that_is_not_a_model_is_named(
    qtbot,  # noqa: ANN001
    dialog,  # noqa: ANN001
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    not_a_model = tmp_path / "holiday photos"
    not_a_model.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(not_a_model))
    form = dialog.form
    form.model_list.table.selectRow(0)
    qtbot.mouseClick(form.model_list.remove_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(form.model_list.add_folder_button, Qt.MouseButton.LeftButton)
    assert form.model_list.models() == ((None, not_a_model),)
    folder = tmp_path / "study"
    fill_synthetic(qtbot, dialog, folder, scenes=1, items=1)

    assert not create(qtbot, dialog)
    assert str(not_a_model) in dialog.message.text()
    assert "manifest.json" in dialog.message.text()
    assert not folder.exists()


def test_a_folder_that_is_not_empty_is_refused(
    qtbot,  # noqa: ANN001
    dialog,  # noqa: ANN001
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_models(monkeypatch, FakeSegmenter())
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    fill_synthetic(qtbot, dialog, folder)

    assert not create(qtbot, dialog)
    text = dialog.message.text()
    assert str(folder) in text and "not empty" in text and "notes.txt" in text
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert not dialog.runner.running and dialog.create_button.isEnabled()

    dialog.form.folder_edit.clear()
    assert not create(qtbot, dialog)
    assert "Choose a folder" in dialog.message.text()


def test_the_study_menu_opens_the_dialog(qtbot, window) -> None:  # noqa: ANN001
    texts = [a.text() for a in window.study_menu.actions()]
    assert texts[:2] == ["New study…", "Rate a study…"]
    window.new_study.action.trigger()
    dlg = window.new_study.dialog
    assert dlg is not None and dlg.isVisible()
    assert dlg.form.model_list.models() == ((None, None),)  # the fake model has no file
    assert dlg.form.folder_edit.toolTip() and dlg.form.ratings_per_job.toolTip()
    dlg.close()


def test_the_annotators_model_file_is_listed_first(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from samstudio.inference.types import ModelInfo
    from samstudio.ui.study.create_dialog import _loaded_model

    def window(source: str) -> SimpleNamespace:
        info = ModelInfo("m", "vit_b", "torch", "cpu", 1024, "p", source)
        return SimpleNamespace(worker=SimpleNamespace(model_info=info))

    checkpoint = tmp_path / "sam_finetuned.pth"
    checkpoint.write_bytes(b"weights")
    assert _loaded_model(window(str(checkpoint))) == checkpoint
    assert _loaded_model(window(str(tmp_path))) is None  # a folder, not a model
    assert _loaded_model(SimpleNamespace(worker=SimpleNamespace(model_info=None))) is None
    if (DEMO_ONNX / "manifest.json").is_file():
        assert _loaded_model(window(str(DEMO_ONNX))) is None  # the demo model: its label


def test_add_my_model_lists_downloaded_and_imported_models_by_name(
    qtbot,  # noqa: ANN001
    dialog,  # noqa: ANN001
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import samstudio.inference.catalog as catalog
    from samstudio.inference.catalog import ModelStatus

    vit_b = tmp_path / "sam_vit_b_01ec64.pth"
    mine = tmp_path / "finetuned"
    rows = [
        ModelStatus("samstudio-demo", "demo", "shipped", tmp_path / "demo.pt", 6, ""),
        ModelStatus("sam_vit_b", "vit_b", "downloaded", vit_b, 375 * 2**20, ""),
        ModelStatus("sam_vit_h", "vit_h", "not downloaded", None, 2564 * 2**20, ""),
        ModelStatus("sam_vit_l", "vit_l", "partial 40%", None, 1250 * 2**20, ""),
        ModelStatus("my-sam", "vit_b", "imported", mine, None, ""),
        ModelStatus("gone", "vit_b", "missing", tmp_path / "gone.pth", None, ""),
    ]
    monkeypatch.setattr(catalog, "list_models", lambda: rows)
    models = dialog.form.model_list
    models.known_menu.aboutToShow.emit()  # the menu is filled when it opens
    texts = [a.text() for a in models.known_menu.actions()]
    assert texts == ["sam_vit_b (downloaded · 375 MB)", "my-sam (imported)"]
    models.known_menu.actions()[1].trigger()
    models.known_menu.actions()[0].trigger()
    assert models.models() == ((None, None), ("my-sam", mine), ("sam_vit_b", vit_b))
    shown = [models.table.item(r, 1).text() for r in range(models.table.rowCount())]
    assert shown[1:] == ["finetuned", "sam_vit_b_01ec64.pth"]

    # nothing downloaded or imported: one line that says where to get models
    monkeypatch.setattr(catalog, "list_models", lambda: rows[:1])
    models.known_menu.aboutToShow.emit()
    (only,) = models.known_menu.actions()
    assert not only.isEnabled() and "Model menu" in only.text()
