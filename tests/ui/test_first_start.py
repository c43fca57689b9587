"""A first start with nothing configured opens scikit-image's sample photos; a later
start reopens the most recent project."""

from __future__ import annotations

from pathlib import Path

from samstudio.ui.app import first_start_folder
from ui.conftest import open_folder


def test_first_start_opens_the_sample_photos(qtbot, window) -> None:  # noqa: ANN001
    folder = Path(first_start_folder(window))
    assert folder.name == "sample-images"
    open_folder(qtbot, window, folder)
    names = sorted(Path(img.path).name for img in window.project.images())
    assert names == sorted(p.name for p in folder.glob("*.png"))
    assert "astronaut.png" in names
    assert all(img.error is None for img in window.project.images())


def test_a_later_start_reopens_the_most_recent_project(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    assert Path(first_start_folder(window)).resolve() == image_folder.resolve()
