"""Open a model from what a user types: nothing, a checkpoint, an ONNX folder, or a name.

torch is imported only when a `.pth` checkpoint is opened, and onnxruntime only for
an ONNX export, so each path works with the other backend absent.
"""

from __future__ import annotations

import os
from pathlib import Path

from samstudio.inference.errors import ModelLoadError
from samstudio.inference.types import Segmenter

CHECKPOINT_SUFFIXES = (".pth", ".pt")
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
    try:
        from samstudio.inference.torch_backend import TorchSegmenter
    except ImportError as exc:  # torch or segment_anything missing
        raise ModelLoadError(
            f"cannot open {path}: the PyTorch backend is not installed ({exc}); install torch "
            "and segment-anything, or use an exported ONNX model"
        ) from None
    return TorchSegmenter.from_checkpoint(path, device=device)


def open_model(spec: str | os.PathLike[str] | None = None, device: str | None = None) -> Segmenter:
    """A ready `Segmenter` for `spec`.

    spec: None for the shipped demo model; a path to a `.pth` checkpoint (PyTorch
    backend); a folder holding `manifest.json` (ONNX Runtime backend); otherwise a
    catalog or imported model name such as "sam_vit_b" (must be downloaded).
    device: "cpu" or "cuda" to force one; None picks CUDA when available.
    Raises ModelLoadError with what to do when the model cannot be opened.
    """
    from samstudio.inference import catalog

    if spec is None:
        return _open_path(catalog.default_model_path(), device)
    text = os.fspath(spec)
    if not text.strip():
        raise ModelLoadError("no model given: pass a catalog name, a .pth file or an ONNX folder")
    path = Path(text).expanduser()
    looks_like_path = (
        isinstance(spec, os.PathLike)
        or path.exists()
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
        or path.suffix.lower() in CHECKPOINT_SUFFIXES
    )
    if looks_like_path:
        return _open_path(path, device)
    return _open_path(catalog.find_model_path(text), device)
