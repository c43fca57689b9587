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

The export's files (manifest, graph checks, sessions, thread settings) are read by
`samstudio.inference.onnx_files`; its public names are re-exported here.
"""

from __future__ import annotations

import os
import threading
import warnings
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from samstudio.inference.errors import InferenceError, ModelLoadError, PromptError
from samstudio.inference.onnx_files import (  # noqa: F401  (re-exported: public API)
    MANIFEST_NAME,
    PREPARED_KEYS,
    PREPARED_OUTPUTS,
    PreparedDecoderWarning,
    available_providers,
    check_file,
    check_io,
    check_shape,
    cpu_threads,
    default_session_options,
    file_path,
    open_prepared,
    open_session,
    read_manifest,
)
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

STABILITY_OFFSET = 1.0
# Prompts per decoder run in `decode_points_batch`: bounds memory (about 16 MB per
# prompt for official SAM, mostly in the output upscaling).
BATCH_CHUNK = 16


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
        enc_path = check_file(folder, files["encoder"], "encoder", verify_checksums)
        dec_path = check_file(folder, files["decoder"], "decoder", verify_checksums)
        for key in ("encoder", "decoder"):
            data = files[key].get("data")
            if data:
                check_file(folder, data, f"{key} weights", verify_checksums)
        # A manifest naming prepared files outside the folder is refused like any other.
        for key in PREPARED_KEYS:
            if key in files:
                file_path(folder, files[key], key)
                if files[key].get("data"):
                    file_path(folder, files[key]["data"], f"{key} weights")
        chosen = list(providers) if providers else available_providers()
        encoder = open_session("encoder", enc_path, threads, chosen)
        decoder = open_session("decoder", dec_path, threads, chosen)
        check_io(encoder, ("image",), enc_path)
        size = manifest["image_size"]
        mh, mw = manifest["mask_input_size"]
        c, h, w = manifest["embedding_shape"]
        check_shape(encoder, "image", (1, 3, size, size), enc_path, folder)
        check_shape(decoder, "image_embeddings", (1, c, h, w), dec_path, folder)
        check_shape(decoder, "mask_input", (1, 1, mh, mw), dec_path, folder)
        check_io(
            decoder,
            ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"),
            dec_path,
        )
        prepared = None
        notes: list[str] = []
        listed = [key for key in PREPARED_KEYS if key in files]
        if len(listed) == 2:
            try:
                prepared = open_prepared(
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
