"""A damaged ONNX export is refused with a clear error naming the file and the entry,
never a raw Python/onnxruntime error or an empty mask (found by review; each case failed
before). Runs on the shipped demo export, without torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samstudio.inference.errors import InferenceError, ModelLoadError
from samstudio.inference.onnx_backend import OnnxSegmenter

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "models" / "samstudio-demo" / "onnx"


def damaged(tmp_path: Path, change: Any) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(SHIPPED, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _set(key: str, value: Any) -> Any:
    return lambda m: m.__setitem__(key, value)


def _set_file(key: str, field: str, value: Any) -> Any:
    return lambda m: m["files"][key].__setitem__(field, value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("files", None), "entry 'files' must be an object"),
        (lambda m: m["files"].__setitem__("encoder", "encoder.onnx"), "'files.encoder'"),
        (_set("pixel_mean", [1.0, 2.0]), "'pixel_mean' must be 3 numbers"),
        (_set("pixel_std", "imagenet"), "'pixel_std' must be 3 numbers"),
        (_set("pixel_std", [0, 0, 0]), "'pixel_std' must be 3 positive numbers"),
        (_set("embedding_shape", [64, 16]), "'embedding_shape' must be 3 positive integers"),
        (_set("image_size", "big"), "'image_size' must be a positive integer"),
        (_set("image_size", 0), "'image_size' must be a positive integer"),
        (_set("mask_input_size", None), "'mask_input_size' must be 2 positive integers"),
        (_set("mask_threshold", "x"), "'mask_threshold' must be a number"),
        (_set("format_version", True), "format_version True"),
        (_set_file("encoder", "bytes", "4016919"), "'files.encoder.bytes' must be an integer"),
        (_set_file("encoder", "path", "../elsewhere/encoder.onnx"), "outside the export folder"),
        (_set("image_size", 128), "its input 'image' has shape"),
        (_set("mask_input_size", [32, 32]), "its input 'mask_input' has shape"),
    ],
)
def test_a_damaged_manifest_is_a_clear_model_load_error(
    tmp_path: Path, change: Any, message: str
) -> None:
    folder = damaged(tmp_path, change)
    with pytest.raises(ModelLoadError, match=message.replace("(", r"\(")) as info:
        OnnxSegmenter.from_directory(folder, ["CPUExecutionProvider"])
    assert str(folder) in str(info.value)


def test_the_shipped_export_still_opens_and_a_too_thin_image_is_a_clear_error() -> None:
    model = OnnxSegmenter.from_directory(SHIPPED, ["CPUExecutionProvider"])
    assert model.encode(np.zeros((2, 3, 3), np.uint8)).original_size == (2, 3)
    with pytest.raises(InferenceError, match="5000x1 image is too thin"):
        model.encode(np.zeros((1, 5000, 3), np.uint8))
