"""The ONNX Runtime backend: a `Segmenter` over an exported encoder + decoder pair.

Runs without torch: images are preprocessed in numpy (`samstudio.inference.preprocess`)
and the graphs written by `samstudio.inference.onnx_export` run in ONNX Runtime. The
execution provider is CUDA when this onnxruntime build has it, else the CPU; the one in
use is reported in `ModelInfo.device`.

Decoding follows Meta's `SamPredictor` (paper §A): with `multimask` and one ambiguous
prompt (a single point and no box) the three multimask tokens are returned, ranked by
predicted IoU; otherwise the single mask of the first output token (the paper's
"4th token"). A box is encoded as two corner points with labels 2 and 3; points without
a box end with the padding point (0, 0) of label -1.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import warnings
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from samstudio.inference.errors import InferenceError, ModelLoadError, PromptError
from samstudio.inference.preprocess import (
    Preprocessing,
    check_prompts_on_image,
    image_stability_scores,
    prepare_input,
    transform_boxes,
    transform_coords,
)
from samstudio.inference.types import (
    BatchPrediction,
    ImageEmbedding,
    ModelInfo,
    Prediction,
    Prompts,
)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "samstudio-onnx"
SUPPORTED_VERSIONS = (1,)
STABILITY_OFFSET = 1.0
# Prompts per decoder run in `decode_points_batch`: bounds memory (about 16 MB per
# prompt for official SAM, mostly in the output upscaling).
BATCH_CHUNK = 16
_REQUIRED_KEYS = (
    "model_id",
    "architecture",
    "image_size",
    "pixel_mean",
    "pixel_std",
    "embedding_shape",
    "mask_input_size",
    "files",
)
PREPARED_OUTPUTS = ("image_tokens", "t2i_keys", "t2i_values", "i2t_queries")
PREPARED_KEYS = ("prepare", "decoder_prepared")


class PreparedDecoderWarning(UserWarning):
    """The export's prepared pair (prepare.onnx + decoder_prepared.onnx) is missing,
    damaged or from another export: the model runs with decoder.onnx alone (the same
    masks; first clicks slower). The message names the file; `ModelInfo.notes` has it."""


def available_providers() -> list[str]:
    """Execution providers to use, best first: CUDA when present, then the CPU."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    chosen = [p for p in ("CUDAExecutionProvider",) if p in have]
    return chosen + ["CPUExecutionProvider"]


def default_session_options(threads: int | None = None, memory_arena: bool = True) -> Any:
    """ONNX Runtime session options: all graph optimisations, one intra-op thread per
    core this process may use (`threads` overrides), sequential execution.

    memory_arena=False returns memory to the system after each run: for the encoder,
    whose peak (the global-attention maps, several GB for vit_h) would otherwise stay
    allocated for the life of the session.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.enable_cpu_mem_arena = memory_arena
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or cpu_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


def cpu_threads() -> int:
    """SAMSTUDIO_THREADS when set (`samstudio --threads N`), else the cores this
    process may run on."""
    wanted = os.environ.get("SAMSTUDIO_THREADS", "")
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check `directory/manifest.json`; ModelLoadError naming the file if bad."""
    folder = Path(directory)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise ModelLoadError(f"ONNX model directory {folder} does not exist")
    if not path.is_file():
        raise ModelLoadError(
            f"{folder} is not an exported ONNX model: {MANIFEST_NAME} is missing "
            "(export one with `samstudio model export --checkpoint FILE --out DIR`)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not a readable JSON manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ModelLoadError(
            f"{path} is not a SAM Studio ONNX manifest (format != {MANIFEST_FORMAT!r})"
        )
    version = manifest.get("format_version")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise ModelLoadError(
            f"{path} has manifest format_version {version!r}; this SAM Studio reads "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}. Export the model again with this version."
        )
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ModelLoadError(f"{path}: entry 'files' must be an object naming the .onnx files")
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    missing += [f"files.{k}" for k in ("encoder", "decoder") if k not in files]
    if missing:
        raise ModelLoadError(f"{path} lacks the entries {missing}")
    _check_values(path, manifest)
    return manifest


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _check_values(path: Path, manifest: dict[str, Any]) -> None:
    """Types and ranges of the manifest's entries, before any session is built: a wrong
    value is a ModelLoadError naming the entry, never a raw error or an empty mask."""

    def bad(key: str, want: str) -> ModelLoadError:
        return ModelLoadError(f"{path}: entry {key!r} must be {want}, got {manifest.get(key)!r}")

    for key, entry in manifest["files"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ModelLoadError(f"{path}: entry 'files.{key}' must be an object with a 'path'")
        if "bytes" in entry and not _is_int(entry["bytes"]):
            raise ModelLoadError(f"{path}: entry 'files.{key}.bytes' must be an integer")
    size = manifest["image_size"]
    if not _is_int(size) or size <= 0:
        raise bad("image_size", "a positive integer")
    for key in ("pixel_mean", "pixel_std"):
        values = manifest[key]
        if not isinstance(values, list) or len(values) != 3 or not all(map(_is_number, values)):
            raise bad(key, "3 numbers")
    if not all(v > 0 for v in manifest["pixel_std"]):
        raise bad("pixel_std", "3 positive numbers")
    for key, n in (("embedding_shape", 3), ("mask_input_size", 2)):
        values = manifest[key]
        if not isinstance(values, list) or len(values) != n:
            raise bad(key, f"{n} positive integers")
        if not all(_is_int(v) and v > 0 for v in values):
            raise bad(key, f"{n} positive integers")
    if "mask_threshold" in manifest and not _is_number(manifest["mask_threshold"]):
        raise bad("mask_threshold", "a number")


def _file_path(folder: Path, entry: dict[str, Any], what: str) -> Path:
    """The path of a manifest file entry; ModelLoadError when it leaves the folder."""
    relative = Path(str(entry.get("path", "")))
    if relative.is_absolute() or ".." in relative.parts:
        raise ModelLoadError(
            f"{folder / MANIFEST_NAME}: the {what} file {entry.get('path')!r} is outside the "
            "export folder; an export names only files inside it"
        )
    return folder / relative


def _check_file(folder: Path, entry: dict[str, Any], what: str, verify: bool) -> Path:
    """The file of a manifest entry, present with its size and SHA-256 (when `verify`);
    ModelLoadError naming the file otherwise."""
    path = _file_path(folder, entry, what)
    if not path.exists():
        raise ModelLoadError(
            f"the {what} file {path} is missing (named in {folder / MANIFEST_NAME})"
        )
    if not path.is_file():
        raise ModelLoadError(
            f"the {what} file {path} is not a regular file (named in {folder / MANIFEST_NAME})"
        )
    try:
        size = path.stat().st_size
        expected_bytes = entry.get("bytes")
        if expected_bytes is not None and size != expected_bytes:
            raise ModelLoadError(
                f"the {what} file {path} has {size} bytes, the manifest says "
                f"{expected_bytes}: it is truncated or was replaced; export the model again"
            )
        if verify and entry.get("sha256") and _sha256(path) != entry["sha256"]:
            raise ModelLoadError(
                f"the {what} file {path} does not match the SHA-256 in "
                f"{folder / MANIFEST_NAME}: it is corrupt or was replaced; export the model again"
            )
    except OSError as exc:
        raise ModelLoadError(
            f"the {what} file {path} cannot be read: {exc.strerror or exc}"
        ) from None
    return path


def _open_session(what: str, file: Path, threads: int | None, providers: list[str]) -> Any:
    """An ONNX Runtime session for `file`; ModelLoadError naming it when it cannot load."""
    import onnxruntime as ort

    options = default_session_options(threads, memory_arena=what != "encoder")
    try:
        return ort.InferenceSession(str(file), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"the {what} file {file} could not be loaded by ONNX Runtime: {first}"
        ) from None


class OnnxSegmenter:
    """A `Segmenter` over an exported ONNX pair. Create with `from_directory`.

    `encode` holds a lock (one encoder run at a time); `decode` and
    `decode_points_batch` may run concurrently (ONNX Runtime sessions are thread-safe).
    """

    def __init__(
        self,
        encoder: Any,
        decoder: Any,
        manifest: dict[str, Any],
        source: str = "",
        prepared: tuple[Any, Any] | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        """prepared: optional (prepare, decoder_prepared) sessions for prompts without
        a mask input (see the module docstring). notes: for `ModelInfo.notes`."""
        self._encoder = encoder
        self._decoder = decoder
        self._prepared_pair = prepared
        # embedding -> prepare's outputs; entries go when the embedding is collected.
        self._prepared: weakref.WeakKeyDictionary[ImageEmbedding, dict[str, np.ndarray]] = (
            weakref.WeakKeyDictionary()
        )
        self._prepared_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        mean = tuple(float(v) for v in manifest["pixel_mean"])
        std = tuple(float(v) for v in manifest["pixel_std"])
        self.preprocessing = Preprocessing(
            image_size=int(manifest["image_size"]),
            pixel_mean=(mean[0], mean[1], mean[2]),
            pixel_std=(std[0], std[1], std[2]),
        )
        c, h, w = (int(v) for v in manifest["embedding_shape"])
        self.embedding_shape = (c, h, w)
        mh, mw = (int(v) for v in manifest["mask_input_size"])
        self.mask_input_size = (mh, mw)
        self.mask_threshold = float(manifest.get("mask_threshold", 0.0))
        self._info = ModelInfo(
            model_id=str(manifest["model_id"]),
            architecture=str(manifest["architecture"]),
            backend="onnxruntime",
            device=str(encoder.get_providers()[0]),
            image_size=self.preprocessing.image_size,
            preprocessing_id=self.preprocessing.id,
            source=source,
            notes=tuple(notes),
        )
        self._no_mask = np.zeros((1, 1, mh, mw), np.float32)

    @classmethod
    def from_directory(
        cls,
        path: str | os.PathLike[str],
        providers: list[str] | None = None,
        *,
        threads: int | None = None,
        verify_checksums: bool = True,
    ) -> OnnxSegmenter:
        """Open `path/manifest.json` with its encoder and decoder, and the prepared pair
        (prepare + decoder_prepared) when the manifest lists it.

        providers: ONNX Runtime execution providers, best first; None picks CUDA when
        available, else the CPU. threads: intra-op threads (default: usable cores).
        Raises ModelLoadError naming the directory or file for a missing or malformed
        manifest (an unknown version, a file named outside the folder), and for a
        missing, truncated, corrupt or mismatched encoder or decoder .onnx file.

        The prepared pair only makes first clicks faster: when one of its files is
        missing, damaged or does not fit the manifest or the decoder, the model loads
        with decoder.onnx alone (the same masks), warns with a PreparedDecoderWarning
        naming the file, and says so in `info.notes`.
        """
        folder = Path(path)
        manifest = read_manifest(folder)
        files = manifest["files"]
        enc_path = _check_file(folder, files["encoder"], "encoder", verify_checksums)
        dec_path = _check_file(folder, files["decoder"], "decoder", verify_checksums)
        for key in ("encoder", "decoder"):
            data = files[key].get("data")
            if data:
                _check_file(folder, data, f"{key} weights", verify_checksums)
        # A manifest naming prepared files outside the folder is refused like any other.
        for key in PREPARED_KEYS:
            if key in files:
                _file_path(folder, files[key], key)
                if files[key].get("data"):
                    _file_path(folder, files[key]["data"], f"{key} weights")
        chosen = list(providers) if providers else available_providers()
        encoder = _open_session("encoder", enc_path, threads, chosen)
        decoder = _open_session("decoder", dec_path, threads, chosen)
        _check_io(encoder, ("image",), enc_path)
        size = manifest["image_size"]
        mh, mw = manifest["mask_input_size"]
        c, h, w = manifest["embedding_shape"]
        _check_shape(encoder, "image", (1, 3, size, size), enc_path, folder)
        _check_shape(decoder, "image_embeddings", (1, c, h, w), dec_path, folder)
        _check_shape(decoder, "mask_input", (1, 1, mh, mw), dec_path, folder)
        _check_io(
            decoder,
            ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"),
            dec_path,
        )
        prepared = None
        notes: list[str] = []
        listed = [key for key in PREPARED_KEYS if key in files]
        if len(listed) == 2:
            try:
                prepared = _open_prepared(
                    folder, manifest, decoder, threads, chosen, verify_checksums
                )
            except ModelLoadError as exc:
                reason = str(exc).rstrip(".")
                advice = "" if "export the model again" in reason else "; export the model again"
                notes.append(
                    f"{folder}: using {dec_path.name} alone, without the prepared decoder "
                    f"(same masks, slower first clicks): {reason}{advice}"
                )
        elif listed:
            absent = next(k for k in PREPARED_KEYS if k not in files)
            notes.append(
                f"{folder / MANIFEST_NAME} names the prepared graph {listed[0]!r} but not "
                f"{absent!r}: using {dec_path.name} alone (same masks, slower first clicks); "
                "export the model again"
            )
        for note in notes:
            warnings.warn(note, PreparedDecoderWarning, stacklevel=2)
        return cls(
            encoder, decoder, manifest, source=str(folder), prepared=prepared, notes=tuple(notes)
        )

    @property
    def has_prepared_decoder(self) -> bool:
        """True when prompts without a mask input use the prepared decoder."""
        return self._prepared_pair is not None

    @property
    def info(self) -> ModelInfo:
        return self._info

    # -- encoding -----------------------------------------------------------------

    def encode(self, image: np.ndarray) -> ImageEmbedding:
        """image: (H, W, 3) uint8 RGB as displayed -> embedding with (C, h, w) float32
        features. Raises InferenceError for an image of the wrong shape or dtype."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InferenceError(
                f"encode expects an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}"
            )
        if min(image.shape[:2]) < 1:
            raise InferenceError(f"cannot encode an empty image of shape {image.shape}")
        x, input_size = prepare_input(image, self.preprocessing)
        with self._encode_lock:
            (features,) = self._encoder.run(["image_embeddings"], {"image": x})
        embedding = ImageEmbedding(
            features=np.ascontiguousarray(features[0], dtype=np.float32),
            original_size=(int(image.shape[0]), int(image.shape[1])),
            input_size=input_size,
            model_id=self._info.model_id,
            preprocessing_id=self.preprocessing.id,
        )
        if self._prepared_pair is not None:
            self._prepared_inputs(embedding, features)
        return embedding

    def prepare(self, embedding: ImageEmbedding) -> None:
        """Run prepare.onnx for `embedding` now (e.g. for one read from the disk cache),
        so that its first click does not pay for it. `encode` does this itself; a no-op
        for exports without the prepared pair."""
        if self._prepared_pair is not None:
            self._prepared_inputs(embedding, self._check_embedding(embedding))

    def _prepared_inputs(
        self, embedding: ImageEmbedding, features: np.ndarray
    ) -> dict[str, np.ndarray]:
        """prepare.onnx's outputs for `embedding` (features (1, C, h, w)), computed on the
        first call and then kept as long as the embedding lives."""
        with self._prepared_lock:
            found = self._prepared.get(embedding)
        if found is not None:
            return found
        assert self._prepared_pair is not None
        outputs = self._prepared_pair[0].run(list(PREPARED_OUTPUTS), {"image_embeddings": features})
        found = dict(zip(PREPARED_OUTPUTS, outputs, strict=True))
        with self._prepared_lock:
            return self._prepared.setdefault(embedding, found)

    # -- decoding -----------------------------------------------------------------

    def _check_embedding(self, embedding: ImageEmbedding) -> np.ndarray:
        features = np.asarray(embedding.features, dtype=np.float32)
        if features.shape != self.embedding_shape:
            raise InferenceError(
                f"embedding features have shape {features.shape}, model {self._info.model_id} "
                f"expects {self.embedding_shape}"
            )
        if embedding.preprocessing_id != self.preprocessing.id:
            raise InferenceError(
                f"embedding was made with preprocessing {embedding.preprocessing_id!r}, "
                f"model {self._info.model_id} uses {self.preprocessing.id!r}"
            )
        return features[None]

    def _prompt_arrays(
        self, embedding: ImageEmbedding, prompts: Prompts
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Decoder inputs (coords (1,N,2), labels (1,N), mask (1,1,m,m), has_mask (1,))."""
        size = self.preprocessing.image_size
        coords = [transform_coords(prompts.points, embedding.original_size, size)]
        labels = [prompts.labels.astype(np.float32)]
        if prompts.box is not None:
            corners = transform_boxes(prompts.box, embedding.original_size, size).reshape(2, 2)
            coords.append(corners)
            labels.append(np.array([2.0, 3.0], np.float32))
        elif len(prompts.points):
            coords.append(np.zeros((1, 2), np.float32))
            labels.append(np.array([-1.0], np.float32))
        point_coords = np.concatenate(coords).astype(np.float32)[None]
        point_labels = np.concatenate(labels).astype(np.float32)[None]
        if prompts.mask_input is None:
            return point_coords, point_labels, self._no_mask, np.zeros((1,), np.float32)
        mask = prompts.mask_input
        if mask.shape != self.mask_input_size:
            raise PromptError(
                f"mask input must be {self.mask_input_size[0]}x{self.mask_input_size[1]} "
                f"low-res logits for this model, got {mask.shape}"
            )
        return (
            point_coords,
            point_labels,
            np.ascontiguousarray(mask, np.float32)[None, None],
            np.ones((1,), np.float32),
        )

    def _run_decoder(
        self,
        embedding: ImageEmbedding,
        features: np.ndarray,
        coords: np.ndarray,
        labels: np.ndarray,
        mask: np.ndarray,
        has_mask: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        if self._prepared_pair is not None and not has_mask.any():
            feeds = dict(self._prepared_inputs(embedding, features))
            feeds["point_coords"] = coords
            feeds["point_labels"] = labels
            logits, iou = self._prepared_pair[1].run(["low_res_logits", "iou_predictions"], feeds)
            return logits, iou
        logits, iou = self._decoder.run(
            ["low_res_logits", "iou_predictions"],
            {
                "image_embeddings": features,
                "point_coords": coords,
                "point_labels": labels,
                "mask_input": mask,
                "has_mask_input": has_mask,
            },
        )
        return logits, iou

    def decode(
        self, embedding: ImageEmbedding, prompts: Prompts, multimask: bool = True
    ) -> Prediction:
        """Masks for `prompts` (see the module docstring for which tokens are returned).
        Returns low-res logits (N, m, m), IoU predictions and stability scores (offset
        1.0), best first; masks are upscaled on access. Raises PromptError, naming the
        image size, for a point outside the image or a box with no part on it
        (`preprocess.check_prompts_on_image`)."""
        features = self._check_embedding(embedding)
        check_prompts_on_image(prompts, embedding.original_size)
        arrays = self._prompt_arrays(embedding, prompts)
        logits, iou = self._run_decoder(embedding, features, *arrays)
        logits, iou = logits[0], iou[0]
        if multimask and prompts.is_ambiguous:
            order = 1 + np.argsort(-iou[1:], kind="stable")
        else:
            order = np.array([0])
        chosen = np.ascontiguousarray(logits[order], dtype=np.float32)
        return Prediction(
            low_res_logits=chosen,
            iou_predictions=np.ascontiguousarray(iou[order], dtype=np.float32),
            stability_scores=image_stability_scores(
                chosen,
                embedding.input_size,
                self.preprocessing.image_size,
                self.mask_threshold,
                STABILITY_OFFSET,
            ),
            original_size=embedding.original_size,
            input_size=embedding.input_size,
            image_size=self.preprocessing.image_size,
            mask_threshold=self.mask_threshold,
        )

    def decode_points_batch(
        self, embedding: ImageEmbedding, points: np.ndarray, multimask: bool = True
    ) -> BatchPrediction:
        """B single foreground points at once. points: (B, 2) XY original frame.
        low_res_logits (B, M, m, m): with multimask the three multimask tokens in the
        decoder's order (M = 3, not re-ranked), else token 0 (M = 1)."""
        features = self._check_embedding(embedding)
        pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        if not np.isfinite(pts).all():
            raise PromptError("point coordinates must be finite numbers")
        size = self.preprocessing.image_size
        tokens = slice(1, None) if multimask else slice(0, 1)
        all_logits: list[np.ndarray] = []
        all_iou: list[np.ndarray] = []
        for start in range(0, len(pts), BATCH_CHUNK):
            chunk = transform_coords(
                pts[start : start + BATCH_CHUNK], embedding.original_size, size
            )
            b = len(chunk)
            coords = np.zeros((b, 2, 2), np.float32)
            coords[:, 0] = chunk
            labels = np.tile(np.array([[1.0, -1.0]], np.float32), (b, 1))
            logits, iou = self._run_decoder(
                embedding, features, coords, labels, self._no_mask, np.zeros((1,), np.float32)
            )
            all_logits.append(logits[:, tokens])
            all_iou.append(iou[:, tokens])
        m = 3 if multimask else 1
        mh, mw = self.mask_input_size
        return BatchPrediction(
            points=pts,
            low_res_logits=(
                np.concatenate(all_logits).astype(np.float32, copy=False)
                if all_logits
                else np.zeros((0, m, mh, mw), np.float32)
            ),
            iou_predictions=(
                np.concatenate(all_iou).astype(np.float32, copy=False)
                if all_iou
                else np.zeros((0, m), np.float32)
            ),
            original_size=embedding.original_size,
            input_size=embedding.input_size,
            image_size=self.preprocessing.image_size,
        )


def _check_shape(session: Any, name: str, want: tuple[int, ...], path: Path, folder: Path) -> None:
    """The graph's input `name` must accept `want` (the manifest's sizes); symbolic
    dimensions accept anything."""
    shape = next((i.shape for i in session.get_inputs() if i.name == name), None)
    if shape is None:
        return
    fits = len(shape) == len(want) and all(
        not isinstance(d, int) or d == v for d, v in zip(shape, want, strict=True)
    )
    if not fits:
        raise ModelLoadError(
            f"{path}: its input {name!r} has shape {list(shape)}, but "
            f"{folder / MANIFEST_NAME} says {list(want)}: the graph and the manifest come "
            "from different exports; export the model again"
        )


def _check_io(session: Any, names: tuple[str, ...], path: Path, kind: str = "inputs") -> None:
    """The graph must have the inputs (or, kind="outputs", the outputs) `names`."""
    have = {i.name for i in (session.get_outputs() if kind == "outputs" else session.get_inputs())}
    missing = [n for n in names if n not in have]
    if missing:
        raise ModelLoadError(f"{path} is not a SAM Studio graph: it lacks the {kind} {missing}")


def _fits(a: Any, b: Any) -> bool:
    """Two ONNX shapes can hold the same tensor (symbolic dimensions fit any size)."""
    return len(a) == len(b) and all(
        not isinstance(x, int) or not isinstance(y, int) or x == y
        for x, y in zip(a, b, strict=True)
    )


def _open_prepared(
    folder: Path,
    manifest: dict[str, Any],
    decoder: Any,
    threads: int | None,
    providers: list[str],
    verify: bool,
) -> tuple[Any, Any]:
    """The (prepare, decoder_prepared) sessions of an export, checked against the
    manifest, each other and the plain decoder; ModelLoadError naming the file that
    is missing, damaged or from another export."""
    files = manifest["files"]
    paths = {key: _check_file(folder, files[key], key, verify) for key in PREPARED_KEYS}
    for key in PREPARED_KEYS:
        if files[key].get("data"):
            _check_file(folder, files[key]["data"], f"{key} weights", verify)
    prepare = _open_session("prepare", paths["prepare"], threads, providers)
    decoder_prepared = _open_session(
        "decoder_prepared", paths["decoder_prepared"], threads, providers
    )
    _check_io(prepare, ("image_embeddings",), paths["prepare"])
    _check_io(prepare, PREPARED_OUTPUTS, paths["prepare"], "outputs")
    _check_io(
        decoder_prepared,
        (*PREPARED_OUTPUTS, "point_coords", "point_labels"),
        paths["decoder_prepared"],
    )
    _check_io(
        decoder_prepared,
        ("low_res_logits", "iou_predictions"),
        paths["decoder_prepared"],
        "outputs",
    )
    c, h, w = manifest["embedding_shape"]
    _check_shape(prepare, "image_embeddings", (1, c, h, w), paths["prepare"], folder)
    given = {o.name: o.shape for o in prepare.get_outputs()}
    for i in decoder_prepared.get_inputs():
        if i.name in given and not _fits(i.shape, given[i.name]):
            raise ModelLoadError(
                f"{paths['decoder_prepared']}: its input {i.name!r} has shape {list(i.shape)}, "
                f"but {paths['prepare']} gives {list(given[i.name])}: the two prepared graphs "
                "come from different exports; export the model again"
            )
    plain = {o.name: o.shape for o in decoder.get_outputs()}
    for o in decoder_prepared.get_outputs():
        if o.name in plain and not _fits(o.shape, plain[o.name]):
            raise ModelLoadError(
                f"{paths['decoder_prepared']}: its output {o.name!r} has shape {list(o.shape)}, "
                f"but the decoder gives {list(plain[o.name])}: it comes from another export; "
                "export the model again"
            )
    return prepare, decoder_prepared
