"""Render the annotator's main states into docs/*.png (offscreen Qt, no display needed).

States: the empty window, three candidates after one click, instances listed, the
brush in use; Study ▸ New study… filled in; Inspect ▸ Compare with an annotation file
(the model's masks against the scenes' exact masks); and the rating study's window (a
study built from generated scenes). Images are generated scenes (no third-party photos
in the repository).

Usage: .venv/bin/python benchmarks/screenshots.py [--model SPEC] [--out docs]
SPEC: a checkpoint, an ONNX folder or a catalog name; default: the shipped demo model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from ui_latency import wait  # noqa: E402  (the same event-loop wait as the latency script)


def settle(app: Any, seconds: float = 0.3) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def interior(mask: np.ndarray) -> tuple[float, float]:
    import cv2

    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x) + 0.5, float(y) + 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="samstudio-shots-"))
    os.environ["SAMSTUDIO_CACHE_DIR"] = str(tmp / "cache")
    os.environ.setdefault("SAMSTUDIO_DATA_DIR", str(tmp / "data"))

    from PySide6.QtCore import QPointF, QSettings, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from samstudio.training.synthetic import make_scene
    from samstudio.ui.main_window import MainWindow
    from samstudio.ui.model_menu import model_factory
    from samstudio.ui.settings import Settings

    app = QApplication.instance() or QApplication([])
    app.setStyle("Fusion")
    folder = tmp / "scenes"
    folder.mkdir()
    scenes = []
    for i, seed in enumerate((7, 21, 33, 48, 52, 64)):
        scene = make_scene(seed, size=900, min_objects=5, max_objects=8)
        Image.fromarray(scene.image).save(folder / f"scene_{i:02d}.png")
        scenes.append(scene)
    settings = Settings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    win = MainWindow(settings=settings)
    win.resize(1500, 900)
    win.show()
    args.out.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> None:
        settle(app)
        path = args.out / name
        win.grab().save(str(path))
        print(path)

    loaded: list[Any] = []
    failed: list[str] = []
    win.worker.model_loaded.connect(loaded.append)
    win.worker.model_failed.connect(lambda _l, m: failed.append(m))
    win.load_model(model_factory(args.model), args.model or "the default model")
    wait(app, lambda: bool(loaded or failed))
    if failed:
        raise SystemExit(failed[0])
    shot("annotator_empty.png")

    ready: list[int] = []
    win.annotator.embedding_ready.connect(ready.append)
    win.open_path(folder)
    wait(app, lambda: bool(ready) and win.annotator.image_rgb is not None)
    win.add_category("part")
    win.choose_category_index(0)
    scene = scenes[0]
    order = sorted(range(len(scene.masks)), key=lambda i: -int(scene.masks[i].sum()))

    def click(x: float, y: float, button: Qt.MouseButton = Qt.MouseButton.LeftButton) -> None:
        vp = win.canvas.viewport()
        pos = QPointF(win.canvas.mapFromScene(QPointF(x, y)))
        for kind, buttons in (
            (QMouseEvent.Type.MouseButtonPress, button),
            (QMouseEvent.Type.MouseButtonRelease, Qt.MouseButton.NoButton),
        ):
            ev = QMouseEvent(
                kind, pos, vp.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier
            )
            QApplication.sendEvent(vp, ev)

    def accept_at(mask: np.ndarray) -> None:
        win.annotator.candidate_set = None
        click(*interior(mask))
        wait(app, lambda: win.annotator.candidate_set is not None)
        settle(app, 0.4)
        win.accept()

    # Instances: the three largest objects.
    for i in order[1:4]:
        accept_at(scene.masks[i])
    # Candidates: one click on a composite object, if any, else the largest object.
    target = next((i for i in order if scene.kinds[i] != "object"), order[0])
    win.annotator.candidate_set = None
    click(*interior(scene.masks[target]))
    wait(app, lambda: win.annotator.candidate_set is not None)
    settle(app, 0.6)
    shot("annotator_candidates.png")

    win.accept()
    anns = win.project.annotations(win.annotator.image_id)
    win.instances_panel.select(anns[1].id)
    shot("annotator_instances.png")

    win.set_tool("brush")
    win.annotator.set_brush_radius(14)
    win._update_brush_label()
    ys, xs = np.nonzero(win.project.mask(anns[1].id))
    cx, cy = float(xs.mean()), float(ys.mean())
    vp = win.canvas.viewport()
    pts = [QPointF(win.canvas.mapFromScene(QPointF(cx + dx, cy + 40))) for dx in range(-60, 61, 20)]
    press = QMouseEvent(
        QMouseEvent.Type.MouseButtonPress,
        pts[0],
        vp.mapToGlobal(pts[0]),
        Qt.MouseButton.LeftButton,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(vp, press)
    for p in pts[1:]:
        QApplication.sendEvent(
            vp,
            QMouseEvent(
                QMouseEvent.Type.MouseMove,
                p,
                vp.mapToGlobal(p),
                Qt.MouseButton.NoButton,
                Qt.MouseButton.LeftButton,
                Qt.KeyboardModifier.NoModifier,
            ),
        )
    shot("annotator_brush.png")
    QApplication.sendEvent(
        vp,
        QMouseEvent(
            QMouseEvent.Type.MouseButtonRelease,
            pts[-1],
            vp.mapToGlobal(pts[-1]),
            Qt.MouseButton.LeftButton,
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
        ),
    )
    new_study_shot(app, win, args)
    inspect_shot(app, win, scenes, args, tmp)
    win.shutdown()
    study_shot(app, args, tmp)


def grab(app: Any, widget: Any, path: Path, seconds: float = 0.5) -> None:
    settle(app, seconds)
    widget.grab().save(str(path))
    print(path)


def new_study_shot(app: Any, win: Any, args: argparse.Namespace) -> None:
    """Study ▸ New study… filled in: the demo model twice (its ONNX export and its PyTorch
    weights), generated scenes, centre-point prompts -> study_new.png."""
    from samstudio.inference.catalog import shipped_model_dir

    demo = shipped_model_dir()
    dialog = win.new_study.open_dialog()
    form = dialog.form
    form.folder_edit.setText("~/studies/demo-onnx-vs-pytorch")
    form.title_edit.setText("Mask quality: the demo model, ONNX and PyTorch")
    form.model_list.table.setRowCount(0)
    form.model_list.add(demo / "onnx", "Demo (ONNX)")
    form.model_list.add(demo / "model.pt", "Demo (PyTorch)")
    form.single_output.setChecked(True)
    form.synthetic_choice.setChecked(True)
    form.synthetic_count.setValue(40)
    form.items.setValue(60)
    form.prompt.setCurrentIndex(form.prompt.findData("point"))
    dialog.adjustSize()
    grab(app, dialog, args.out / "study_new.png")
    dialog.close()


def inspect_shot(
    app: Any, win: Any, scenes: list[Any], args: argparse.Namespace, tmp: Path
) -> None:
    """Inspect ▸ Compare with an annotation file: the project's masks (one click of the
    model on each object of the other scenes, the best-ranked candidate accepted) against
    the scenes' exact masks as a COCO file -> inspect_compare.png (the IoU histogram)."""
    from samstudio.core.masks import encode_rle
    from samstudio.inference.loader import open_model
    from samstudio.inference.types import Prompts

    segmenter = open_model(args.model)
    project = win.project
    records = sorted(project.images(), key=lambda r: Path(r.path).name)
    images, annotations = [], []
    for n, (record, scene) in enumerate(zip(records, scenes, strict=True)):
        h, w = scene.image.shape[:2]
        images.append({"id": n + 1, "file_name": Path(record.path).name, "width": w, "height": h})
        embedding = segmenter.encode(scene.image) if n else None
        for mask in scene.masks:
            ys, xs = np.nonzero(mask)
            box = [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
            annotations.append({"id": len(annotations) + 1, "image_id": n + 1,
                                "category_id": 1, "segmentation": encode_rle(mask),
                                "area": int(mask.sum()), "bbox": box, "iscrowd": 0})  # fmt: skip
            if embedding is not None:  # the first scene keeps its annotator's masks
                prompts = Prompts(np.array([interior(mask)], np.float32), np.array([1]))
                pred = segmenter.decode(embedding, prompts)
                project.add_annotation(record.id, pred.masks[0], win.annotator.category_id)
    reference = tmp / "ground_truth.json"
    reference.write_text(
        json.dumps(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 1, "name": "object"}],
            }
        )
    )
    dialog = win.inspect_menu.open_dialog()
    settled: list[bool] = []
    dialog.settled.connect(settled.append)
    win.inspect_menu.compare_with(reference)
    wait(app, lambda: bool(settled))
    dialog.resize(760, 540)
    dialog.tabs.setCurrentIndex(1)  # the IoU histogram
    grab(app, dialog, args.out / "inspect_compare.png", 1.0)
    dialog.close()


def study_shot(app: Any, args: argparse.Namespace, tmp: Path) -> None:
    """The rating window on the first job of a small study (demo model, single-output
    ablation and ground truth on generated scenes) -> study_rating.png."""
    from samstudio.core.study.build import build_study
    from samstudio.core.study.sources import synthetic_sources
    from samstudio.inference.loader import open_model
    from samstudio.ui.study.rating_window import RatingWindow

    segmenter = open_model(args.model)
    steps = build_study(
        synthetic_sources(3, seed_base=7, size=900),
        [("demo", segmenter)],
        tmp / "study",
        n_items=3,
        single_output=True,
        seed=1,
    )
    study = [s.study for s in steps if s.stage == "done"][0]
    assert study is not None
    win = RatingWindow(study, "P01")
    win.resize(1400, 900)
    win.show()
    settle(app, 0.5)
    path = args.out / "study_rating.png"
    win.grab().save(str(path))
    print(path)
    win.close()


if __name__ == "__main__":
    main()
