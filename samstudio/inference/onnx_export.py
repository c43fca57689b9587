"""Export a SAM model to an ONNX encoder + decoder pair with a JSON manifest.

The pair runs in ONNX Runtime without torch (`samstudio.inference.onnx_backend`).
This module itself needs torch and segment_anything; they are imported inside the
functions so that importing it stays cheap.

Files written into the output directory (each atomically, the manifest last, so a
directory with a manifest is complete):

- ``encoder.onnx``: input ``image`` (1, 3, S, S) float32, already resized so that the
  long side is S, normalised with the pixel mean/std and zero-padded at the bottom and
  right (`samstudio.inference.preprocess.prepare_input`). Output ``image_embeddings``
  (1, C, h, w) float32 (C=256, h=w=64 for official SAM).
- ``decoder.onnx``: inputs

  - ``image_embeddings`` (1, C, h, w) float32,
  - ``point_coords`` (B, N, 2) float32, XY in the resized model-input frame (not the
    original image frame), padded as Meta's `SamPredictor` does: a box is two corner
    points with labels 2 and 3; points without a box end with the point (0, 0) of
    label -1,
  - ``point_labels`` (B, N) float32: -1 padding, 0 background, 1 foreground,
    2 box top-left, 3 box bottom-right,
  - ``mask_input`` (1, 1, 4h, 4w) float32 low-resolution logits of a previous mask,
  - ``has_mask_input`` (1,) float32, 1 when ``mask_input`` is to be used else 0;

  outputs ``low_res_logits`` (B, 4, 4h, 4w) float32 for all four output tokens (token 0
  is the single-mask token, 1..3 the multimask tokens) and ``iou_predictions`` (B, 4)
  float32. Nothing is upscaled in the graph: the caller upscales only the mask it shows.
  B (a batch of prompts on one image) and N (points per prompt) are dynamic.
- ``prepare.onnx`` and ``decoder_prepared.onnx`` (optional in a manifest; older
  exports lack them): for prompts without a mask input, ``prepare`` computes once per
  embedding what the decoder's first layer derives from the image alone
  (`onnx_graphs.PrepareGraph`: ``image_embeddings`` -> ``image_tokens``, ``t2i_keys``,
  ``t2i_values``, ``i2t_queries``), and ``decoder_prepared`` takes those four with
  ``point_coords`` and ``point_labels`` and gives the same outputs as ``decoder``.
- ``manifest.json``: see `MANIFEST_FORMAT` and `build_manifest`.

Prompt-independent work is folded into constants at export time (the dense positional
encoding of the image grid, the point-label embedding table) and the decoder's attention
is rearranged so that the image tokens are never projected; see
`samstudio.inference.onnx_graphs`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from samstudio.core.atomic import atomic_write, atomic_write_bytes, atomic_write_json
from samstudio.inference.checkpoints import file_sha256
from samstudio.inference.errors import ModelLoadError
from samstudio.inference.preprocess import Preprocessing

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

MANIFEST_NAME = "manifest.json"
ENCODER_NAME = "encoder.onnx"
DECODER_NAME = "decoder.onnx"
PREPARE_NAME = "prepare.onnx"
PREPARED_DECODER_NAME = "decoder_prepared.onnx"
MANIFEST_FORMAT = "samstudio-onnx"
MANIFEST_VERSION = 1
EXPORTER_VERSION = "samstudio-onnx-export/1"
ENCODER_INPUTS = ("image",)
ENCODER_OUTPUTS = ("image_embeddings",)
DECODER_INPUTS = (
    "image_embeddings",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
)
DECODER_OUTPUTS = ("low_res_logits", "iou_predictions")
PREPARE_INPUTS = ("image_embeddings",)
PREPARE_OUTPUTS = ("image_tokens", "t2i_keys", "t2i_values", "i2t_queries")
PREPARED_DECODER_INPUTS = (*PREPARE_OUTPUTS, "point_coords", "point_labels")
# ONNX protobuf files cannot exceed 2 GiB; bigger graphs keep weights in a side file.
_PROTOBUF_LIMIT = 2**31 - 2**20


def export_onnx(
    source: str | os.PathLike[str] | Sam,
    out_dir: str | os.PathLike[str],
    *,
    model_id: str | None = None,
    architecture: str | None = None,
    opset: int = 17,
) -> Path:
    """Write encoder.onnx, decoder.onnx and manifest.json for `source` into `out_dir`.

    source: a checkpoint file (anything `load_sam_checkpoint` reads: official SAM
    vit_b/l/h or a SAM Studio model) or a `segment_anything` `Sam` module of any size
    (its image encoder must have an `img_size` attribute). architecture: a name to
    record when `source` is a module (detected for official sizes, else "custom");
    for a file it is passed to `load_sam_checkpoint`. model_id: defaults to the
    PyTorch backend's "sam_vit_b-<first 12 hex of the checkpoint file's SHA-256>" (for a
    module: of the SHA-256 of its state dict; no "sam_" for non-official architectures).
    Returns the output directory. Raises ModelLoadError for unreadable checkpoints and
    OSError (naming the file) when a file cannot be written.
    """
    import torch
    from segment_anything.modeling import Sam

    from samstudio.inference.checkpoints import ARCHITECTURE_NAMES

    if isinstance(source, Sam):
        sam = source
        arch = architecture or _guess_architecture(sam)
        digest = None
    else:
        from samstudio.inference.checkpoints import load_sam_checkpoint

        sam, arch = load_sam_checkpoint(source, architecture)
        digest = file_sha256(source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sam = sam.eval()
    if model_id is None:
        # The PyTorch backend's convention, so both backends share embedding caches.
        prefix = f"sam_{arch}" if arch in ARCHITECTURE_NAMES else arch
        model_id = f"{prefix}-{(digest or weights_digest(sam))[:12]}"
    prep = preprocessing_of(sam)
    embed_shape = embedding_shape(sam)
    mask_size = tuple(int(v) for v in sam.prompt_encoder.mask_input_size)
    # Without its manifest an old export in `out` reads as incomplete until the new
    # one is in place: a crash half-way never leaves a mix that looks valid.
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The encoder is traced at its one fixed input size: the tracer's warnings
            # about shape-dependent Python branches do not apply.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # The legacy exporter is chosen on purpose (the new one needs onnxscript).
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
            # nn.MultiheadAttention's fused inference kernel has no ONNX export.
            fastpath = torch.backends.mha.get_fastpath_enabled()
            torch.backends.mha.set_fastpath_enabled(False)
            try:
                _export_encoder(sam, work / ENCODER_NAME, opset)
                _export_decoder(sam, work / DECODER_NAME, opset)
                _export_prepared(sam, work, opset)
            finally:
                torch.backends.mha.set_fastpath_enabled(fastpath)
        names = {
            "encoder": ENCODER_NAME,
            "decoder": DECODER_NAME,
            "prepare": PREPARE_NAME,
            "decoder_prepared": PREPARED_DECODER_NAME,
        }
        files = {key: _install(work / name, out / name) for key, name in names.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    manifest = build_manifest(
        model_id=model_id,
        architecture=arch,
        prep=prep,
        embedding_shape=embed_shape,
        mask_input_size=(mask_size[0], mask_size[1]),
        files=files,
        opset=opset,
        mask_threshold=float(sam.mask_threshold),
    )
    atomic_write_json(out / MANIFEST_NAME, manifest, indent=2)
    return out


def build_manifest(
    *,
    model_id: str,
    architecture: str,
    prep: Preprocessing,
    embedding_shape: tuple[int, int, int],
    mask_input_size: tuple[int, int],
    files: dict[str, dict[str, Any]],
    opset: int,
    mask_threshold: float = 0.0,
) -> dict[str, Any]:
    """The manifest as a JSON-ready dict. `files` maps "encoder", "decoder" and
    optionally "prepare" and "decoder_prepared" to {"path", "sha256", "bytes"} (plus
    "data" for weights kept in a side file)."""
    import onnx
    import torch

    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "model_id": model_id,
        "architecture": architecture,
        "image_size": prep.image_size,
        "pixel_mean": list(prep.pixel_mean),
        "pixel_std": list(prep.pixel_std),
        "preprocessing_id": prep.id,
        "embedding_shape": list(embedding_shape),
        "mask_input_size": list(mask_input_size),
        "mask_threshold": mask_threshold,
        "files": files,
        "opset": opset,
        "encoder_io": {"inputs": list(ENCODER_INPUTS), "outputs": list(ENCODER_OUTPUTS)},
        "decoder_io": {"inputs": list(DECODER_INPUTS), "outputs": list(DECODER_OUTPUTS)},
        "prepare_io": {"inputs": list(PREPARE_INPUTS), "outputs": list(PREPARE_OUTPUTS)},
        "decoder_prepared_io": {
            "inputs": list(PREPARED_DECODER_INPUTS),
            "outputs": list(DECODER_OUTPUTS),
        },
        "exporter": {
            "name": EXPORTER_VERSION,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "method": "torch.onnx.export (TorchScript, dynamo=False)",
        },
    }


def preprocessing_of(sam: Sam) -> Preprocessing:
    """The numpy preprocessing that matches `sam` (input size, pixel mean and std)."""
    # The buffers are float32: round to 6 significant digits so that 123.675 stays
    # 123.675 (and the preprocessing id stays "imagenet" for official SAM).
    mean = tuple(float(f"{v:.6g}") for v in sam.pixel_mean.flatten().tolist())
    std = tuple(float(f"{v:.6g}") for v in sam.pixel_std.flatten().tolist())
    if len(mean) != 3 or len(std) != 3:
        raise ModelLoadError(f"pixel mean/std must have 3 values, got {mean} and {std}")
    return Preprocessing(
        image_size=int(sam.image_encoder.img_size),
        pixel_mean=(mean[0], mean[1], mean[2]),
        pixel_std=(std[0], std[1], std[2]),
    )


def embedding_shape(sam: Sam) -> tuple[int, int, int]:
    """(C, h, w) of the image embedding that `sam`'s decoder expects."""
    h, w = (int(v) for v in sam.prompt_encoder.image_embedding_size)
    return int(sam.prompt_encoder.embed_dim), h, w


def weights_digest(sam: Sam) -> str:
    """Hex SHA-256 over the names, shapes and bytes of every tensor in the state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(sam.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def _guess_architecture(sam: Sam) -> str:
    from samstudio.inference.checkpoints import detect_architecture

    return detect_architecture(sam.state_dict()) or "custom"


def _install(tmp_file: Path, target: Path) -> dict[str, Any]:
    """Re-save an exported graph as one self-contained file (or graph + one side file
    for graphs over 2 GiB) atomically at `target`; return its manifest entry."""
    import onnx

    model = onnx.load(str(tmp_file), load_external_data=True)
    # Weights dominate; ByteSize() itself may fail beyond 2 GiB.
    size = sum(len(t.raw_data) + 4 * len(t.float_data) for t in model.graph.initializer)
    size += sum(n.ByteSize() for n in model.graph.node)
    entry: dict[str, Any] = {"path": target.name}
    if size < _PROTOBUF_LIMIT:
        atomic_write_bytes(target, model.SerializeToString())
    else:
        data_name = target.name + ".data"
        side = tmp_file.parent / "side"
        side.mkdir(exist_ok=True)
        onnx.save_model(
            model,
            str(side / target.name),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data_name,
        )
        _copy_atomically(side / data_name, target.parent / data_name)
        _copy_atomically(side / target.name, target)
        entry["data"] = {
            "path": data_name,
            "sha256": file_sha256(target.parent / data_name),
            "bytes": (target.parent / data_name).stat().st_size,
        }
    entry["sha256"] = file_sha256(target)
    entry["bytes"] = target.stat().st_size
    return entry


def _copy_atomically(src: Path, target: Path) -> None:
    with open(src, "rb") as fh_in:
        atomic_write(target, lambda fh: shutil.copyfileobj(fh_in, fh, 1 << 22))


def _export_encoder(sam: Sam, path: Path, opset: int) -> None:
    import torch

    from samstudio.inference.onnx_graphs import EncoderGraph

    size = int(sam.image_encoder.img_size)
    dummy = torch.zeros((1, 3, size, size), dtype=torch.float32)
    torch.onnx.export(
        EncoderGraph(sam),
        (dummy,),
        str(path),
        input_names=list(ENCODER_INPUTS),
        output_names=list(ENCODER_OUTPUTS),
        opset_version=opset,
        do_constant_folding=True,
        dynamo=False,
    )


def _export_decoder(sam: Sam, path: Path, opset: int) -> None:
    import torch

    from samstudio.inference.onnx_graphs import DecoderGraph

    c, h, w = embedding_shape(sam)
    mh, mw = (int(v) for v in sam.prompt_encoder.mask_input_size)
    size = float(sam.image_encoder.img_size)
    example = (
        torch.randn((1, c, h, w), dtype=torch.float32),
        torch.tensor([[[0.3 * size, 0.4 * size], [0.0, 0.0]]], dtype=torch.float32),
        torch.tensor([[1.0, -1.0]], dtype=torch.float32),
        torch.zeros((1, 1, mh, mw), dtype=torch.float32),
        torch.zeros((1,), dtype=torch.float32),
    )
    _export_prompt_graph(DecoderGraph(sam), example, path, DECODER_INPUTS, opset)


def _export_prepared(sam: Sam, work: Path, opset: int) -> None:
    """prepare.onnx and decoder_prepared.onnx (see the module docstring)."""
    import torch

    from samstudio.inference.onnx_graphs import PreparedDecoderGraph, PrepareGraph

    c, h, w = embedding_shape(sam)
    prepare = PrepareGraph(sam)
    embeddings = torch.randn((1, c, h, w), dtype=torch.float32)
    torch.onnx.export(
        prepare,
        (embeddings,),
        str(work / PREPARE_NAME),
        input_names=list(PREPARE_INPUTS),
        output_names=list(PREPARE_OUTPUTS),
        opset_version=opset,
        do_constant_folding=True,
        dynamo=False,
    )
    size = float(sam.image_encoder.img_size)
    example = (
        *prepare(embeddings),
        torch.tensor([[[0.3 * size, 0.4 * size], [0.0, 0.0]]], dtype=torch.float32),
        torch.tensor([[1.0, -1.0]], dtype=torch.float32),
    )
    _export_prompt_graph(
        PreparedDecoderGraph(sam),
        example,
        work / PREPARED_DECODER_NAME,
        PREPARED_DECODER_INPUTS,
        opset,
    )


def _export_prompt_graph(
    module: Any, example: tuple[Any, ...], path: Path, inputs: tuple[str, ...], opset: int
) -> None:
    """A decoder graph with B (prompts) and N (points per prompt) dynamic."""
    import torch

    torch.onnx.export(
        module,
        example,
        str(path),
        input_names=list(inputs),
        output_names=list(DECODER_OUTPUTS),
        dynamic_axes={
            "point_coords": {0: "batch", 1: "num_points"},
            "point_labels": {0: "batch", 1: "num_points"},
            "low_res_logits": {0: "batch"},
            "iou_predictions": {0: "batch"},
        },
        opset_version=opset,
        do_constant_folding=True,
        dynamo=False,
    )
