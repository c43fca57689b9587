"""Fixtures for the window tests: generated images, a FakeSegmenter, no blocking dialogs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ui.fakes import FakeSegmenter


def make_scene(seed: int, size: tuple[int, int] = (240, 320)) -> np.ndarray:
    """(H, W, 3) uint8: a textured background with a few flat-coloured rectangles and discs."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = (rng.normal(90, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(3):
        color = rng.integers(120, 255, 3)
        cx, cy, r = rng.integers(40, w - 40), rng.integers(40, h - 40), rng.integers(15, 35)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = color
    x0, y0 = rng.integers(10, w // 2), rng.integers(10, h // 2)
    img[y0 : y0 + 50, x0 : x0 + 70] = rng.integers(120, 255, 3)
    return img


def replace_picture(path: Path, rgb: np.ndarray) -> None:
    """Another picture under the same name, as an image editor's "Save" leaves it (its
    modification time set 2 s later, as file systems with coarse clocks need)."""
    before = path.stat().st_mtime_ns
    Image.fromarray(rgb).save(path)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(make_scene(i)).save(folder / f"scene_{i}.png")
    return folder


@pytest.fixture
def dialogs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every QMessageBox shown, as (title, text); none of them blocks; questions get Yes."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[tuple[str, str]] = []

    def record(kind: str):  # noqa: ANN202
        def show(parent, title, text, *args, **kwargs):  # noqa: ANN001,ANN202
            shown.append((title, text))
            if kind == "question":
                return QMessageBox.StandardButton.Yes
            return QMessageBox.StandardButton.Ok

        return show

    for kind in ("critical", "warning", "information", "question"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(record(kind)))
    return shown


@pytest.fixture
def settings(tmp_path: Path):  # noqa: ANN201
    from PySide6.QtCore import QSettings

    from samstudio.ui.settings import Settings

    return Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def fake() -> FakeSegmenter:
    return FakeSegmenter()


@pytest.fixture
def window(qtbot, settings, dialogs, fake) -> Iterator:  # noqa: ANN001
    """A MainWindow with the FakeSegmenter loaded (in the worker thread), no disk cache."""
    from samstudio.ui.main_window import MainWindow

    win = MainWindow(settings=settings, disk_cache=None)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
        win.load_model(lambda: fake, "fake")
    yield win
    win.shutdown()


def new_window(qtbot, settings, segmenter, label: str = "fake"):  # noqa: ANN001,ANN201
    """Another MainWindow (e.g. the app started again) with `segmenter` loaded.

    The caller shuts it down (`win.shutdown()`, in a `finally`)."""
    from samstudio.ui.main_window import MainWindow

    win = MainWindow(settings=settings, disk_cache=None)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
        win.load_model(lambda: segmenter, label)
    return win


def open_folder(qtbot, win, folder: Path) -> None:  # noqa: ANN001
    """Open `folder` and wait until the first image is shown and its embedding is ready."""
    with qtbot.waitSignals(
        [win.annotator.image_opened, win.annotator.embedding_ready], timeout=20000
    ):
        assert win.open_path(folder)
