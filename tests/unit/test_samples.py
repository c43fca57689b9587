"""The first-start sample folder: real photos that a package ships, written once."""

from __future__ import annotations

from pathlib import Path

from samstudio.core.images import load_image
from samstudio.core.samples import SAMPLES, ensure_sample_images


def test_sample_images_are_written_once_and_load(tmp_path: Path) -> None:
    folder = ensure_sample_images(tmp_path / "samples")
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(name for name, _ in SAMPLES)
    rgb = load_image(folder / "astronaut.png")
    assert rgb.shape == (512, 512, 3) and rgb.std() > 10  # a real photo, not a blank
    grey = load_image(folder / "coins.png")
    assert grey.shape == (303, 384, 3)
    before = (folder / "coffee.png").stat().st_mtime_ns
    ensure_sample_images(folder)
    assert (folder / "coffee.png").stat().st_mtime_ns == before  # not rewritten
