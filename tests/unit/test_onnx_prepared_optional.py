"""The prepared decoder pair (prepare.onnx + decoder_prepared.onnx) is optional: it only
makes first clicks faster, decoder.onnx serves every prompt. A listed pair that is
missing, damaged or from another export is dropped with a warning naming the file (the
model loads with decoder.onnx alone); a missing or damaged encoder.onnx or decoder.onnx
still refuses the model. Runs on copies of the shipped demo export, without torch."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from samstudio.inference.errors import ModelLoadError
from samstudio.inference.onnx_backend import OnnxSegmenter, PreparedDecoderWarning
from samstudio.inference.types import ImageEmbedding, Prompts

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "models" / "samstudio-demo" / "onnx"
CPU = ["CPUExecutionProvider"]
IMAGE = np.random.default_rng(0).integers(0, 256, (120, 180, 3), dtype=np.uint8)


def copy_export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(SHIPPED, folder)
    return folder


def edit_manifest(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def replace_file(folder: Path, key: str, data: bytes) -> None:
    """Write `data` as the manifest's `key` file, with the manifest updated to match (so
    that only ONNX Runtime or the graph checks can tell)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / manifest["files"][key]["path"]).write_bytes(data)

    def match(m: dict) -> None:
        m["files"][key]["bytes"] = len(data)
        m["files"][key]["sha256"] = None

    edit_manifest(folder, match)


def constant_graph(inputs: dict[str, list[int]], outputs: dict[str, list[int]]) -> bytes:
    """An ONNX graph with the given inputs whose outputs are zeros of the given shapes:
    the input/output signature of a prepared graph from another export."""
    nodes = [
        helper.make_node(
            "Constant",
            [],
            [name],
            value=helper.make_tensor(
                name + "_value",
                TensorProto.FLOAT,
                shape,
                np.zeros(shape, np.float32).ravel().tolist(),
            ),
        )
        for name, shape in outputs.items()
    ]
    graph = helper.make_graph(
        nodes,
        "other_export",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# the shipped export's sizes: embedding (C, h, w), low-res logits (r, r)
_MANIFEST = json.loads((SHIPPED / "manifest.json").read_text())
CHANNELS, GRID_H, GRID_W = _MANIFEST["embedding_shape"]
TOKENS = GRID_H * GRID_W
LOW_RES = _MANIFEST["mask_input_size"]

PREPARE_OUTPUTS = {
    "image_tokens": [1, TOKENS, CHANNELS],
    "t2i_keys": [1, 4, CHANNELS // 8, TOKENS],
    "t2i_values": [1, 4, TOKENS, CHANNELS // 8],
    "i2t_queries": [1, TOKENS, CHANNELS // 2],
}


def _missing(key: str) -> Callable[[Path], None]:
    return lambda folder: (folder / f"{key}.onnx").unlink()


def _truncated(key: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        path = folder / f"{key}.onnx"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return change


def _one_byte_flipped(key: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        path = folder / f"{key}.onnx"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    return change


def _not_onnx(key: str) -> Callable[[Path], None]:
    return lambda folder: replace_file(folder, key, b"this is not an ONNX graph" * 10)


def _unreadable(key: str) -> Callable[[Path], None]:
    """A folder where the file should be: exists, but cannot be read as a file."""

    def change(folder: Path) -> None:
        path = folder / f"{key}.onnx"
        path.unlink()
        path.mkdir()

    return change


def _other_export_prepare(folder: Path) -> None:
    """prepare.onnx of a model with half as many embedding channels as the manifest's."""
    inputs = {"image_embeddings": [1, CHANNELS // 2, GRID_H, GRID_W]}
    replace_file(folder, "prepare", constant_graph(inputs, PREPARE_OUTPUTS))


def _prepare_not_matching_decoder_prepared(folder: Path) -> None:
    """prepare.onnx takes the right embeddings but gives tokens of another width than
    decoder_prepared.onnx takes (the two halves come from different exports)."""
    outputs = {**PREPARE_OUTPUTS, "image_tokens": [1, TOKENS, CHANNELS // 2]}
    inputs = {"image_embeddings": [1, CHANNELS, GRID_H, GRID_W]}
    replace_file(folder, "prepare", constant_graph(inputs, outputs))


def _plain_decoder_as_decoder_prepared(folder: Path) -> None:
    replace_file(folder, "decoder_prepared", (folder / "decoder.onnx").read_bytes())


PREPARED_DAMAGE = {
    "prepare missing": (_missing("prepare"), "prepare.onnx"),
    "decoder_prepared missing": (_missing("decoder_prepared"), "decoder_prepared.onnx"),
    "prepare truncated": (_truncated("prepare"), "prepare.onnx"),
    "decoder_prepared checksum": (_one_byte_flipped("decoder_prepared"), "decoder_prepared.onnx"),
    "prepare not ONNX": (_not_onnx("prepare"), "prepare.onnx"),
    "decoder_prepared unreadable": (_unreadable("decoder_prepared"), "decoder_prepared.onnx"),
    "prepare from another export": (_other_export_prepare, "prepare.onnx"),
    "halves from two exports": (_prepare_not_matching_decoder_prepared, "decoder_prepared.onnx"),
    "plain decoder in its place": (_plain_decoder_as_decoder_prepared, "decoder_prepared.onnx"),
}


@pytest.fixture(scope="module")
def reference() -> tuple[OnnxSegmenter, ImageEmbedding]:
    """The intact shipped export (with the prepared pair) and an embedding of IMAGE."""
    model = OnnxSegmenter.from_directory(SHIPPED, CPU)
    assert model.has_prepared_decoder
    return model, model.encode(IMAGE)


@pytest.mark.parametrize("case", list(PREPARED_DAMAGE))
def test_a_damaged_prepared_pair_is_dropped_with_a_warning(
    tmp_path: Path, case: str, reference: tuple[OnnxSegmenter, ImageEmbedding]
) -> None:
    damage, named = PREPARED_DAMAGE[case]
    folder = copy_export(tmp_path)
    damage(folder)
    with pytest.warns(PreparedDecoderWarning) as caught:
        model = OnnxSegmenter.from_directory(folder, CPU)
    message = str(caught[0].message)
    assert named in message and str(folder) in message, message
    assert "decoder.onnx" in message and "export the model again" in message, message
    assert not model.has_prepared_decoder
    assert len(model.info.notes) == 1 and named in model.info.notes[0]
    # The plain decoder serves every prompt, with the intact export's results.
    full, full_embedding = reference
    embedding = model.encode(IMAGE)
    np.testing.assert_array_equal(embedding.features, full_embedding.features)
    for prompts, multimask in (
        (Prompts(points=[[60.0, 40.0]], labels=[1]), True),
        (Prompts(points=[[60.0, 40.0], [150.0, 100.0]], labels=[1, 0]), False),
        (Prompts(box=[20.0, 10.0, 120.0, 90.0]), False),
    ):
        ours = model.decode(embedding, prompts, multimask)
        theirs = full.decode(full_embedding, prompts, multimask)
        np.testing.assert_allclose(ours.low_res_logits, theirs.low_res_logits, atol=1e-3, rtol=0)
        np.testing.assert_allclose(ours.iou_predictions, theirs.iou_predictions, atol=1e-4, rtol=0)
    batch = model.decode_points_batch(embedding, np.array([[60.0, 40.0], [150.0, 100.0]]))
    assert batch.low_res_logits.shape == (2, 3, *LOW_RES)


def test_half_a_pair_in_the_manifest_is_dropped_with_a_warning(tmp_path: Path) -> None:
    folder = copy_export(tmp_path)
    edit_manifest(folder, lambda m: m["files"].pop("decoder_prepared"))
    with pytest.warns(PreparedDecoderWarning, match="'decoder_prepared'"):
        model = OnnxSegmenter.from_directory(folder, CPU)
    assert not model.has_prepared_decoder and model.info.notes


def test_intact_and_old_exports_load_without_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = OnnxSegmenter.from_directory(SHIPPED, CPU)
        assert model.has_prepared_decoder and model.info.notes == ()
        folder = copy_export(tmp_path)

        def old(m: dict) -> None:
            del m["files"]["prepare"], m["files"]["decoder_prepared"]

        edit_manifest(folder, old)
        model = OnnxSegmenter.from_directory(folder, CPU)
        assert not model.has_prepared_decoder and model.info.notes == ()


@pytest.mark.parametrize("key", ["encoder", "decoder"])
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_missing, r"file .*\.onnx is missing"),
        (_truncated, r"file .*\.onnx has \d+ bytes.*truncated"),
        (_one_byte_flipped, "does not match the SHA-256"),
        (_not_onnx, "could not be loaded by ONNX Runtime"),
        (_unreadable, r"file .*\.onnx is not a regular file"),
    ],
)
def test_a_damaged_encoder_or_decoder_still_refuses_the_model(
    tmp_path: Path, key: str, damage: Callable[[str], Callable[[Path], None]], message: str
) -> None:
    folder = copy_export(tmp_path)
    damage(key)(folder)
    with pytest.raises(ModelLoadError, match=message) as info:
        OnnxSegmenter.from_directory(folder, CPU)
    assert f"{key} file" in str(info.value) and str(folder) in str(info.value)


@pytest.mark.parametrize("key", ["prepare", "decoder_prepared"])
def test_a_malformed_prepared_entry_still_refuses_the_model(tmp_path: Path, key: str) -> None:
    """A manifest that names a file outside the export is not an export of ours: refused,
    as for the encoder and decoder (nothing outside the folder is opened)."""
    folder = copy_export(tmp_path)
    edit_manifest(folder, lambda m: m["files"][key].__setitem__("path", f"../{key}.onnx"))
    with pytest.raises(ModelLoadError, match="outside the export folder"):
        OnnxSegmenter.from_directory(folder, CPU)
