"""Open a model from what a user types: nothing, a checkpoint, an ONNX folder, or a name.

torch is imported only when a `.pth` checkpoint is opened, and onnxruntime only for
an ONNX export, so each path works with the other backend absent.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from samstudio.inference.errors import ModelLoadError
from samstudio.inference.types import Segmenter

CHECKPOINT_SUFFIXES = (".pth", ".pt")
PYTORCH_MODULES = ("torch", "segment_anything")  # what a .pth checkpoint needs


def missing_pytorch_modules() -> list[str]:
    """What of PyTorch and Meta's segment-anything, which `.pth` checkpoints need, is not
    installed (the desktop build has neither). Imports nothing."""
    return [m for m in PYTORCH_MODULES if importlib.util.find_spec(m) is None]


def pytorch_available() -> bool:
    """Whether this installation can open `.pth` checkpoints."""
    return not missing_pytorch_modules()


def needs_pytorch(path: Path | None, catalog_name: str | None = None) -> bool:
    """Whether the model at `path` (or catalog model `catalog_name`, not downloaded yet)
    is a PyTorch checkpoint rather than an ONNX export folder."""
    if path is not None:
        return path.suffix.lower() in CHECKPOINT_SUFFIXES and not path.is_dir()
    if catalog_name is None:
        return False
    from samstudio.inference.catalog import CATALOG

    entry = CATALOG.get(catalog_name)
    return entry is not None and Path(entry.filename).suffix.lower() in CHECKPOINT_SUFFIXES


ONNX_MANIFEST = "manifest.json"


def _open_path(path: Path, device: str | None) -> Segmenter:
    if path.is_dir():
        if not (path / ONNX_MANIFEST).is_file():
            raise ModelLoadError(
                f"model folder {path} has no {ONNX_MANIFEST}: it is not an exported ONNX "
                "model (create one with `samstudio model export`)"
            )
        from samstudio.inference.onnx_backend import OnnxSegmenter

        if device is None:
            return OnnxSegmenter.from_directory(path)
        providers = (
            ["CUDAExecutionProvider", "CPUExecutionProvider"]
            if device.startswith("cuda")
            else ["CPUExecutionProvider"]
        )
        return OnnxSegmenter.from_directory(path, providers=providers)
    if not path.exists():
        raise ModelLoadError(f"model file {path} does not exist")
    if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise ModelLoadError(
            f"model file {path} is neither a PyTorch checkpoint (.pth) nor an ONNX export "
            f"folder with {ONNX_MANIFEST}"
        )
    missing = missing_pytorch_modules()
    try:
        if missing:  # torch_backend imports them only when a checkpoint is read
            raise ImportError(f"no module named {', '.join(missing)}")
        from samstudio.inference.torch_backend import TorchSegmenter
    except ImportError as exc:  # torch or segment_anything missing (the desktop build)
        raise ModelLoadError(
            f"cannot open {path}: the PyTorch backend is not installed ({exc}); install torch "
            "and segment-anything, or use an exported ONNX model"
        ) from None
    return TorchSegmenter.from_checkpoint(path, device=device)


def is_model_name(text: str) -> bool:
    """Whether `text`, as typed by a user, names a known model rather than a path: a bare
    word (no path separator, no `.pth`/`.pt` suffix, not starting with `.` or `~`) that is
    a catalog name, an alias or an imported model's name. Such a name wins over a file or
    folder of the same name in the current directory (write `./NAME` for that)."""
    from samstudio.inference import catalog, registry

    if (
        not text
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
        or text.startswith((".", "~"))
        or Path(text).suffix.lower() in CHECKPOINT_SUFFIXES
    ):
        return False
    canon = catalog.canonical_name(text)
    if canon == catalog.DEMO_MODEL or canon in catalog.CATALOG:
        return True
    try:
        return text in registry.load_registry()
    except ModelLoadError:  # an unreadable registry: find_model_path reports it if needed
        return False


def model_path(spec: str | os.PathLike[str] | None) -> Path:
    """The checkpoint file or ONNX folder that `open_model(spec)` opens, without opening
    it: the shipped demo model for None; for a known model name (see `is_model_name`) its
    file; otherwise `spec` as a path when it exists or looks like one (a separator, a
    `.pth`/`.pt` suffix, a `PathLike`), else a catalog or imported name. Raises
    ModelLoadError for an unknown or not downloaded name; a path is returned unchecked."""
    from samstudio.inference import catalog

    if spec is None:
        return catalog.default_model_path()
    text = os.fspath(spec)
    if not text.strip():
        raise ModelLoadError("no model given: pass a catalog name, a .pth file or an ONNX folder")
    if not isinstance(spec, os.PathLike) and is_model_name(text):
        return catalog.find_model_path(text)
    path = Path(text).expanduser()
    looks_like_path = (
        isinstance(spec, os.PathLike)
        or path.exists()
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
        or path.suffix.lower() in CHECKPOINT_SUFFIXES
    )
    return path if looks_like_path else catalog.find_model_path(text)


def open_model(spec: str | os.PathLike[str] | None = None, device: str | None = None) -> Segmenter:
    """A ready `Segmenter` for `spec`.

    spec: None for the shipped demo model; a catalog or imported model name such as
    "sam_vit_b" (must be downloaded), which wins over a same-named file or folder in the
    current directory (write `./NAME` for that); a path to a `.pth` checkpoint (PyTorch
    backend); a folder holding `manifest.json` (ONNX Runtime backend). A `PathLike` spec
    is always a path. See `model_path`.
    device: "cpu" or "cuda" to force one; None picks CUDA when available.
    Raises ModelLoadError with what to do when the model cannot be opened.
    """
    return _open_path(model_path(spec), device)
