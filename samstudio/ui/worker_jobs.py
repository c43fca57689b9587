"""What the model thread is asked to do (`InferenceWorker`'s requests, one job each),
and how its failures are said to the user."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from samstudio.core.images import file_stamp
from samstudio.inference.types import Prompts
from samstudio.ui.image_io import ImageReadError


@dataclass(eq=False)
class ImageJob:
    """An image to encode: the current one, or one to prefetch."""

    image_id: int
    path: Path
    generation: int = 0  # of `reset_images`: an older job's ids belong to another project
    # the file's (size, mtime) when the job was posted: another stamp than the one its
    # pixel hash was taken under means the file was replaced, so it is read and hashed again
    stamp: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.stamp is None:
            self.stamp = file_stamp(self.path)


@dataclass
class DecodeJob:
    """Prompts to decode on the current image's embedding (the latest request wins)."""

    image_id: int
    request: int
    prompts: Prompts
    multimask: bool
    color: tuple[int, int, int]
    submitted_at: float = field(default_factory=time.perf_counter)


def error_message(exc: BaseException) -> str:
    """A failure as one line for the status bar or a dialog."""
    text = str(exc).strip()
    if isinstance(exc, ImageReadError) and text:
        return text  # already names the file and the reason
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
