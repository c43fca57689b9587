"""What `InferenceWorker` does in its thread (mixed in): encode an image, look up and
store embeddings, decode prompts.

- `_run_encode`: the current image or one to prefetch; its embedding comes from memory,
  else the disk store, else the encoder (and then goes to the disk store); it is kept in
  memory, in a few slots (the current and the next images).
- `_run_decode`: the top-ranked candidate is shown at once (a big mask as a draft), the
  others and the previews follow after a short pause for the first paint, unless a newer
  request, another model or `stop()` comes first.
- `task_embedding`: the same lookups for a long task (automatic mask generation), which
  does not fill the memory slots.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import numpy as np

from samstudio.core.images import file_stamp
from samstudio.inference.types import ImageEmbedding, ModelInfo, Segmenter
from samstudio.ui.embedding_store import (
    EmbeddingStore,
    image_content_hash,
    safe_cache_get,
    safe_cache_put,
)
from samstudio.ui.image_io import load_rgb
from samstudio.ui.mask_candidates import (
    CandidateSet,
    MaskCandidate,
    complete_candidate,
    estimated_area,
)
from samstudio.ui.overlays import preview, small_mask
from samstudio.ui.worker_jobs import DecodeJob, ImageJob, error_message

PREVIEW_LONG_SIDE = 512  # previews are cut from the image reduced to this long side
PAINT_GRACE_S = 0.04  # pause before completing the other candidates


class ModelRuns:
    """The encode and decode runs of `InferenceWorker`; they use its state (guarded by
    `_cond`), its caches and its signals."""

    # set by InferenceWorker
    _cond: threading.Condition
    _stopping: bool
    _current: ImageJob | None
    _current_failed: bool
    _current_image: np.ndarray | None
    _current_small: np.ndarray | None
    _decode: DecodeJob | None
    _memory: OrderedDict[tuple[str, str], ImageEmbedding]
    _memory_slots: int
    _keys: dict[int, Any]
    _generation: int
    _cache_warned: bool
    _disk_cache: EmbeddingStore | None
    _model_generation: int
    busy_with: str
    encode_started: Any
    embedding_ready: Any
    embedding_failed: Any
    prediction_ready: Any
    candidates_completed: Any
    prediction_failed: Any
    prefetched: Any
    cache_failed: Any
    _key_for: Any

    def _run_encode(self, seg: Segmenter, item: ImageJob, current: bool) -> None:
        self.busy_with = "encoding" if current else "prefetching"
        info = seg.info
        started = time.perf_counter()
        try:
            stamp = file_stamp(item.path)  # before reading: a change while reading shows
            image = load_rgb(item.path)
            with self._cond:
                key = self._key_for(item) if stamp == item.stamp else None
                item.stamp = stamp  # the job is the file as read now
            key = key or image_content_hash(image)
            with self._cond:
                if item.generation == self._generation:  # else its project is gone
                    self._keys[item.image_id] = (item.path, stamp, key)
            emb = self._cached(key, info)
            from_cache = emb is not None
            if emb is None:
                if current:
                    self.encode_started.emit(item.image_id)
                emb = self._encode_and_store(seg, image, key)
        except Exception as exc:
            if current:
                with self._cond:
                    if self._current is item:
                        self._current_failed = True
                self.embedding_failed.emit(item.image_id, error_message(exc))
            return
        seconds = time.perf_counter() - started
        with self._cond:
            self._memory[(key, info.model_id)] = emb
            self._memory.move_to_end((key, info.model_id))
            while len(self._memory) > self._memory_slots:
                self._memory.popitem(last=False)
            still_current = self._current is item
            if current and still_current:
                self._current_image = image
                self._current_small = reduced(image, PREVIEW_LONG_SIDE)
        if current and still_current:
            self.embedding_ready.emit(item.image_id, seconds, from_cache)
        elif not current:
            self.prefetched.emit(item.image_id, from_cache)

    def _cached(self, key: str, info: ModelInfo) -> ImageEmbedding | None:
        """This thread: the embedding of pixel hash `key` under `info`'s model from memory,
        else from the disk cache, else None. Memory is only read here: which images stay
        in its few slots is up to `_run_encode` (the current and the next images)."""
        emb = self._memory.get((key, info.model_id))
        if emb is None and self._disk_cache is not None:
            emb = safe_cache_get(self._disk_cache, key, info)
        return emb

    def _encode_and_store(self, seg: Segmenter, image: np.ndarray, key: str) -> ImageEmbedding:
        """This thread: encode `image` and put it in the disk cache (a failed put is said
        once per session through `cache_failed`, and the embedding is used uncached)."""
        emb = seg.encode(image)
        if self._disk_cache is not None:
            problem = safe_cache_put(self._disk_cache, key, emb)
            if problem is not None and not self._cache_warned:
                self._cache_warned = True
                self.cache_failed.emit(problem)
        return emb

    def task_embedding(
        self, seg: Segmenter, image: np.ndarray, key: str | None = None
    ) -> tuple[ImageEmbedding, bool]:
        """Inside a task (this thread only): the embedding of `image` ((H, W, 3) uint8 RGB
        as `load_rgb` reads it) under `seg`, found as the annotator finds it (memory, then
        the disk cache, under the pixel hash `key`, computed here when not given) or
        encoded and then put in the disk cache, so that opening the image later is
        instant. It is not put in memory: a long task must not push the annotator's
        current and next images out of their few slots.

        Returned as the disk cache gives it back (its `as_stored`, e.g. rounded to
        float16), so that it is the same value whether it came from memory, from disk or
        from the encoder: results computed from it do not change from one run to the
        next. Second: True when it came from a cache."""
        key = key or image_content_hash(image)
        emb = self._cached(key, seg.info)
        from_cache = emb is not None
        if emb is None:
            emb = self._encode_and_store(seg, image, key)
        convert = getattr(self._disk_cache, "as_stored", None)
        return (convert(emb) if convert is not None else emb), from_cache

    def _run_decode(
        self,
        seg: Segmenter,
        emb: ImageEmbedding,
        image: np.ndarray,
        job: DecodeJob,
        generation: int,
    ) -> None:
        """Decode; show the top candidate at once, then complete the others.

        `generation`: the model generation `seg` was current in; results carry it."""
        self.busy_with = "decoding"
        small_image = self._current_small if self._current_small is not None else image
        try:
            t0 = time.perf_counter()
            pred = seg.decode(emb, job.prompts, multimask=job.multimask)
            decode_ms = (time.perf_counter() - t0) * 1000
            candidates = []
            for i in range(len(pred)):
                cand = MaskCandidate(
                    rank=i,
                    mask=None,
                    box=None,
                    predicted_iou=float(pred.iou_predictions[i]),
                    stability_score=float(pred.stability_scores[i]),
                    low_res_logits=np.asarray(pred.low_res_logits[i], np.float32),
                    picture=None,
                    preview=None,  # previews follow with the other candidates' masks
                    area=estimated_area(pred, i),
                )
                candidates.append(
                    complete_candidate(cand, pred, job.color, draft=True) if i == 0 else cand
                )
        except Exception as exc:
            self.prediction_failed.emit(job.image_id, job.request, generation, error_message(exc))
            return
        total_ms = (time.perf_counter() - job.submitted_at) * 1000
        first = CandidateSet(
            job.image_id,
            job.request,
            job.prompts,
            candidates,
            decode_ms,
            total_ms,
            job.submitted_at,
            pred,
            job.color,
            generation,
        )
        self.prediction_ready.emit(first)
        # Leave the CPU to the UI thread for its first paint (2-core machines), then do
        # the previews and the other candidates, unless the user asks for something newer.
        with self._cond:
            if self._decode is None and not self._stopping and generation == self._model_generation:
                self._cond.wait(PAINT_GRACE_S)
        rest = list(candidates)
        sh, sw = small_image.shape[:2]
        for i in range(len(rest)):
            with self._cond:
                if (
                    self._decode is not None
                    or self._stopping
                    or generation != self._model_generation  # another model was asked for
                ):
                    return
            try:
                done = rest[i] if rest[i].complete else complete_candidate(rest[i], pred, job.color)
                small = small_mask(
                    pred.low_res_logits[i], pred.input_size, pred.image_size, (sh, sw)
                )
                rest[i] = replace(done, preview=preview(small_image, small, color=job.color))
            except Exception as exc:
                self.prediction_failed.emit(
                    job.image_id, job.request, generation, error_message(exc)
                )
                return
        self.candidates_completed.emit(replace(first, candidates=rest))


def reduced(image: np.ndarray, long_side: int) -> np.ndarray:
    """(H, W, 3) uint8 scaled down so that its long side is at most `long_side`."""
    import cv2

    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(
        image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )
