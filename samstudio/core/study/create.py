"""What creating a study takes besides `build.build_study`, shared by `samstudio study
create` and the app's Study ▸ New study… (Qt-free): the models and datasets named as the
user gave them, the models opened, the COCO sources read, and, for the app, a new-or-empty
output folder and the removal of a build that was stopped or failed.

Naming: a model's condition name is the name the user gave, else its model id, else (two
models with the same id) the model as typed. A COCO dataset's name is the name the user
gave, else its annotation file's name without `.json`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from samstudio.core.study.model import StudyError
from samstudio.core.study.sources import StudySource
from samstudio.inference.types import Segmenter

ModelSpec = str | os.PathLike[str] | None  # what `open_model` takes; None: the demo model
OpenModel = Callable[..., Segmenter]  # open_model(spec, device=...)

STUDY_FILE = "study.json"
IMAGES_FOLDER = "images"


def split_model_spec(spec: str | None) -> tuple[str | None, str | None]:
    """'NAME=MODEL' -> (NAME, MODEL); a spec that is an existing path, or has no '=',
    is a model with no name."""
    if spec is None or "=" not in spec or os.path.exists(spec):
        return None, spec
    name, _, model = spec.partition("=")
    if not name.strip() or not model.strip():
        return None, spec
    return name.strip(), model.strip()


def default_dataset_name(annotations: str | os.PathLike[str]) -> str:
    """A COCO dataset's name when the user gives none: the file's name without `.json`."""
    return Path(annotations).stem


def split_coco_specs(specs: Sequence[str]) -> list[tuple[str, str]]:
    """(dataset name, annotation file) per '[NAME=]FILE': NAME, or the file's name without
    its extension. A spec that is an existing path, or has no '=', is a file. Raises
    ValueError for an empty name or file."""
    out = []
    for spec in specs:
        if "=" in spec and not os.path.exists(spec):
            name, _, path = (part.strip() for part in spec.partition("="))
            if not name or not path:
                raise ValueError(f"--coco {spec!r}: give it as NAME=ANNOTATIONS.json")
        else:
            name, path = default_dataset_name(spec), spec
        out.append((name, path))
    return out


def repeated_name(names: Sequence[str]) -> str | None:
    """The first name given more than once, or None."""
    return next((n for n in names if names.count(n) > 1), None)


def open_study_models(
    models: Sequence[tuple[str | None, ModelSpec]],
    device: str | None = None,
    open_model: OpenModel | None = None,
) -> list[tuple[str, Segmenter]]:
    """(condition name, segmenter) per (name or None, model spec), in order (see the module
    docstring for the names). `open_model` defaults to `samstudio.inference.loader`'s.
    Raises ModelLoadError naming the model that does not open, or when two would share a
    name."""
    from samstudio.inference.errors import ModelLoadError

    if open_model is None:
        from samstudio.inference import loader

        open_model = loader.open_model
    opened = [(spec, open_model(spec, device=device)) for _, spec in models]
    ids = [seg.info.model_id for _, seg in opened]
    names = [
        given or (mid if ids.count(mid) == 1 or spec is None else str(spec))
        for (given, _), mid, (spec, _) in zip(models, ids, opened)
    ]
    twice = repeated_name(names)
    if twice is not None:
        given = ", ".join("the default model" if s is None else str(s) for _, s in models)
        raise ModelLoadError(
            f"two models are named {twice!r} ({given}): give each model once, with a name "
            "of its own"
        )
    return [(name, seg) for name, (_, seg) in zip(names, opened)]


def coco_study_sources(
    datasets: Sequence[tuple[str, str | Path, str | Path]],
) -> list[StudySource]:
    """The sources of (dataset name, annotation file, image folder) triples, in order.
    Raises StudyError naming the file or folder at fault (see `sources.coco_sources`)."""
    from samstudio.core.study.sources import coco_sources

    out: list[StudySource] = []
    for name, annotation_file, images in datasets:
        out += coco_sources(annotation_file, images, dataset=name)
    return out


def check_empty_folder(root: str | os.PathLike[str]) -> bool:
    """Raise StudyError unless `root` is a new or an empty folder; returns whether it
    exists already."""
    root = Path(root)
    if not root.exists():
        return False
    if not root.is_dir():
        raise StudyError(f"{root} is a file, not a folder for a study")
    try:
        entries = sorted(p.name for p in root.iterdir())
    except OSError as exc:
        raise StudyError(f"{root}: cannot be read ({exc.strerror or exc})") from exc
    if entries:
        shown = ", ".join(entries[:3]) + (", …" if len(entries) > 3 else "")
        raise StudyError(
            f"{root} is not empty (it holds {shown}): choose a new or an empty folder for the study"
        )
    return True


def remove_unfinished_study(root: str | os.PathLike[str], existed: bool) -> None:
    """Undo a build into `root` that stopped before its study.json (cancelled or failed),
    for a folder that `check_empty_folder` found new (`existed` False: the folder goes)
    or empty (it is emptied of what `build_study` writes: images/ and study.json's
    temporary files). A finished study (study.json present) is never touched."""
    root = Path(root)
    if not root.is_dir() or (root / STUDY_FILE).exists():
        return
    if not existed:
        shutil.rmtree(root, ignore_errors=True)
        return
    shutil.rmtree(root / IMAGES_FOLDER, ignore_errors=True)
    for tmp in root.glob(f".{STUDY_FILE}.*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()
