"""Sample photos for a first start: scikit-image's bundled images, written to a folder.

Nothing is downloaded: these images ship inside the scikit-image wheel. The app opens
this folder when it is started with no folder and no recent project.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from samstudio.core.atomic import atomic_write
from samstudio.core.paths import data_dir

# (file name, skimage.data function): colour photos with clear objects
SAMPLES = (
    ("astronaut.png", "astronaut"),
    ("coffee.png", "coffee"),
    ("chelsea.png", "chelsea"),
    ("rocket.png", "rocket"),
    ("coins.png", "coins"),
    ("immunohistochemistry.png", "immunohistochemistry"),
)


def _png_writer(image: Image.Image) -> Callable[[IO[bytes]], None]:
    def write(fh: IO[bytes]) -> None:
        image.save(fh, format="PNG")

    return write


def sample_folder() -> Path:
    """Where the sample photos are written (in the per-user data folder)."""
    return data_dir() / "sample-images"


def ensure_sample_images(folder: Path | None = None) -> Path:
    """Write the sample photos into `folder` (default `sample_folder()`) unless they are
    there already, and return the folder. Existing files are never overwritten."""
    import skimage.data

    target = Path(folder) if folder is not None else sample_folder()
    target.mkdir(parents=True, exist_ok=True)
    for name, function in SAMPLES:
        path = target / name
        if path.is_file():
            continue
        pixels = np.asarray(getattr(skimage.data, function)())
        atomic_write(path, _png_writer(Image.fromarray(pixels)))
    return target
