"""The whole annotator flow with the shipped demo model on generated images.

Open a folder, wait for the embedding, click inside an object, see three candidates,
pick one by key, accept, brush a stroke, undo and redo, export COCO, and check with
pycocotools that the exported masks are exactly what the store holds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Another model (a checkpoint path or ONNX folder) can be named for a local run.
MODEL = os.environ.get("SAMSTUDIO_E2E_MODEL")


def _demo_model_present() -> bool:
    from samstudio.inference.catalog import default_model_path
    from samstudio.inference.errors import ModelLoadError

    try:
        default_model_path()
    except ModelLoadError:
        return False
    return True


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        MODEL is None and not _demo_model_present(),
        reason="the shipped demo model (resources/models/samstudio-demo) has not landed yet",
    ),
]


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """The pixel centre of the mask farthest from its border (XY)."""
    import cv2

    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x) + 0.5, float(y) + 0.5


@pytest.fixture
def scene_folder(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    from samstudio.training.synthetic import make_scene

    folder = tmp_path / "scenes"
    folder.mkdir()
    gts = []
    for i in range(3):
        scene = make_scene(1000 + i, size=512)
        Image.fromarray(scene.image).save(folder / f"scene_{i}.png")
        gts.append(scene.masks)
    return folder, gts


def test_annotator_flow_with_demo_model(qtbot, tmp_path, scene_folder, monkeypatch) -> None:  # noqa: ANN001
    from pycocotools.coco import COCO
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QMessageBox
    from ui.helpers import click_image, drag_image, key

    from samstudio.ui.exchange_menu import run_export
    from samstudio.ui.main_window import MainWindow
    from samstudio.ui.settings import Settings

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", staticmethod(lambda *a, **k: shown.append(a[2])))
    folder, gts = scene_folder
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    win = MainWindow(settings=settings)  # with the on-disk embedding cache
    qtbot.addWidget(win)
    win.resize(1300, 850)
    win.show()
    try:
        with qtbot.waitSignal(win.worker.model_loaded, timeout=120000):
            win.model_menu.load(MODEL) if MODEL else win.load_default_model()
        assert not shown, shown
        with qtbot.waitSignals(
            [win.annotator.image_opened, win.annotator.embedding_ready], timeout=120000
        ):
            win.open_path(folder)
        image_id = win.annotator.image_id
        gt = max(gts[0], key=lambda m: m.sum())
        x, y = interior_point(gt)
        click_image(qtbot, win, x, y)
        qtbot.waitUntil(lambda: len(win.candidates_panel.candidates) == 3, timeout=60000)
        qtbot.waitUntil(
            lambda: all(c.complete for c in win.candidates_panel.candidates), timeout=60000
        )
        cands = win.candidates_panel.candidates
        assert win.candidates_panel.chosen == 0
        ious = [c.predicted_iou for c in cands]
        assert ious == sorted(ious, reverse=True)
        assert any(c.mask[int(y), int(x)] for c in cands), "no candidate covers the clicked pixel"
        key(qtbot, win, Qt.Key.Key_2)
        assert win.candidates_panel.chosen == 1
        picked = win.candidates_panel.chosen_candidate.mask.copy()
        key(qtbot, win, Qt.Key.Key_Return)
        (ann,) = win.project.annotations(image_id)
        np.testing.assert_array_equal(win.project.mask(ann.id), picked)
        # Brush a stroke into the selected instance, undo it, redo it.
        win.instances_panel.select(ann.id)
        key(qtbot, win, Qt.Key.Key_R)
        win.annotator.set_brush_radius(5)
        drag_image(qtbot, win, [(20, 20), (60, 30), (100, 40)])
        painted = win.project.mask(ann.id)
        assert (painted & ~picked).any() and painted[30, 60]
        key(qtbot, win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        np.testing.assert_array_equal(win.project.mask(ann.id), picked)
        key(
            qtbot,
            win,
            Qt.Key.Key_Z,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )
        np.testing.assert_array_equal(win.project.mask(ann.id), painted)
        # Export COCO (RLE) and read it back with pycocotools.
        out = run_export(win, "coco-rle", tmp_path / "export" / "coco.json")
        assert out is not None and not shown, shown
        coco = COCO(str(out))
        doc = json.loads(Path(out).read_text())
        assert len(doc["annotations"]) == 1
        ann_json = doc["annotations"][0]
        exported = coco.annToMask(coco.loadAnns([ann_json["id"]])[0]).astype(bool)
        np.testing.assert_array_equal(exported, win.project.mask(ann.id))
        img = coco.loadImgs([ann_json["image_id"]])[0]
        assert os.path.basename(img["file_name"]) == "scene_0.png"
    finally:
        win.shutdown()
