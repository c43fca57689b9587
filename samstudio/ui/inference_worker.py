"""The one thread that owns the model: loading, encoding, decoding, prefetching.

The UI thread never calls the model. It posts requests here and gets results back
through Qt signals, which Qt queues onto the main thread:

- `load_model(factory)`: the factory (e.g. `lambda: open_model(spec)`) runs here, so
  heavy imports (torch, onnxruntime) and weight loading never block the window.
  Each call starts a new `model_generation`; every decode result carries the one it was
  decoded under, so the receiver can drop results of a model the user switched away from.
- `open_image(...)`: the image the user is on. It replaces the previous one; stale
  decode requests and the prefetch queue are dropped.
- `request_decode(...)`: the latest request wins. While a decode runs, newer requests
  replace each other in a single slot, so fast clicking never queues stale work.
- `set_prefetch([...])`: when idle, embeddings of the next images are computed and put
  in the embedding cache (memory, and the disk cache when one is given).
- `submit_task(task)`: a long job that needs the model (automatic mask generation):
  `task(segmenter)` runs here after any pending encode or decode of the current image,
  before prefetching. A task reports through its own signals and polls `stopping`; it
  gets embeddings through the annotator's caches with `task_embedding`.

An encoder pass cannot be interrupted halfway; a stale one finishes into the cache.
"""

from __future__ import annotations

import hashlib
import threading
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QThread, Signal

from samstudio.core.images import file_stamp
from samstudio.inference.types import ImageEmbedding, ModelInfo, Prompts, Segmenter
from samstudio.ui.image_io import ImageReadError, load_rgb
from samstudio.ui.overlays import MaskPicture, mask_box, preview, render_mask, small_mask

PREVIEW_LONG_SIDE = 512  # previews are cut from the image reduced to this long side


class EmbeddingStore(Protocol):
    """A persistent embedding cache (the disk cache of the inference layer)."""

    def get(
        self, content_key: str, model_id: str, preprocessing_id: str
    ) -> ImageEmbedding | None: ...

    def put(self, content_key: str, embedding: ImageEmbedding) -> None: ...

    # Optional: `as_stored(embedding)`, the embedding as `get` gives it back after `put`
    # (e.g. rounded to float16); see `InferenceWorker.task_embedding`.


@dataclass(frozen=True, eq=False)
class MaskCandidate:
    """One of the model's answers to the current prompts, ready to show.

    mask: (H, W) bool, image frame, or None until the candidate is completed (the
    top-ranked one always is; the others follow a moment later, see CandidateSet).
    box: XYXY end-exclusive (None when empty or not yet known). low_res_logits:
    (256, 256) float32, fed back as the next prompt's mask input. picture: the
    translucent overlay (None until completed); preview: (h, w, 3) uint8 RGB
    thumbnail. area: pixels (exact once completed, estimated from the logits before).
    """

    rank: int
    mask: np.ndarray | None
    box: tuple[int, int, int, int] | None
    predicted_iou: float
    stability_score: float
    low_res_logits: np.ndarray
    picture: MaskPicture | None
    preview: np.ndarray | None
    area: int

    @property
    def complete(self) -> bool:
        """Full-size mask and a full-resolution overlay (not a draft)."""
        return self.mask is not None and self.picture is not None and self.picture.scale == 1


@dataclass(eq=False)
class CandidateSet:
    """The decoder's answer to one request. decode_ms: model time; total_ms: from the
    request being posted to the first candidate being ready to paint.

    `complete(i)` fills in candidate i's full-size mask and overlay (the worker does
    it for all candidates right after the first is shown; a key press that is faster
    than that does it on the spot).
    """

    image_id: int
    request: int
    prompts: Prompts
    candidates: list[MaskCandidate]
    decode_ms: float
    total_ms: float
    submitted_at: float  # time.perf_counter() when the request was posted
    prediction: Any = None
    color: tuple[int, int, int] = (30, 144, 255)
    model_generation: int = 0  # `InferenceWorker.model_generation` of the model that decoded

    def complete(self, index: int) -> MaskCandidate:
        cand = self.candidates[index]
        if cand.complete or self.prediction is None:
            return cand
        done = complete_candidate(cand, self.prediction, self.color)
        self.candidates[index] = done
        return done


DRAFT_PIXELS = 400_000  # a bigger overlay is first drawn at half or less resolution
PAINT_GRACE_S = 0.04  # pause before completing the other candidates


def complete_candidate(
    cand: MaskCandidate, prediction: Any, color: tuple[int, int, int], draft: bool = False
) -> MaskCandidate:
    """The candidate with its full-size mask, box, exact area and overlay picture.

    draft: a big mask's overlay is drawn at a coarser step first (the first paint after a
    click); calling again without `draft` gives the full-resolution overlay.
    """
    from samstudio.ui.canvas import picture_qimage

    mask = (
        cand.mask if cand.mask is not None else np.asarray(prediction.mask(cand.rank), dtype=bool)
    )
    box = cand.box if cand.mask is not None else mask_box(mask)
    step = 1
    if draft and box is not None:
        pixels = (box[2] - box[0]) * (box[3] - box[1])
        step = max(1, int(np.ceil(np.sqrt(pixels / DRAFT_PIXELS))))
    picture = render_mask(
        mask, color, fill_alpha=120, box=box, outline_color=(255, 255, 255), step=step
    )
    picture_qimage(picture)  # convert here, in whichever thread completes it
    return replace(cand, mask=mask, box=box, picture=picture, area=int(np.count_nonzero(mask)))


@dataclass(eq=False)
class _ImageJob:
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
class _DecodeJob:
    image_id: int
    request: int
    prompts: Prompts
    multimask: bool
    color: tuple[int, int, int]
    submitted_at: float = field(default_factory=time.perf_counter)


def image_content_hash(image: np.ndarray) -> str:
    """The pixel hash the embedding cache is keyed by (shared with `samstudio embed`)."""
    try:
        from samstudio.inference.cache import image_content_hash as pixels_hash
    except ImportError:
        return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
    return pixels_hash(image)


class DiskEmbeddingStore:
    """The inference layer's on-disk EmbeddingCache behind the `EmbeddingStore` protocol."""

    def __init__(self, max_bytes: int = 2 << 30, root: Path | None = None) -> None:
        from samstudio.inference.cache import EmbeddingCache

        self.cache = EmbeddingCache(root=root, max_bytes=max_bytes)
        try:  # the command line shares this folder: it keeps to the user's limit too
            self.cache.save_limit()
        except OSError:
            pass  # an unwritable cache folder: puts will say so

    def get(self, content_key: str, model_id: str, preprocessing_id: str) -> ImageEmbedding | None:
        from samstudio.inference.cache import cache_key

        return self.cache.get(cache_key(content_key, model_id, preprocessing_id))

    def put(self, content_key: str, embedding: ImageEmbedding) -> None:
        from samstudio.inference.cache import cache_key

        self.cache.put(
            cache_key(content_key, embedding.model_id, embedding.preprocessing_id), embedding
        )

    def as_stored(self, embedding: ImageEmbedding) -> ImageEmbedding:
        return self.cache.as_stored(embedding)


class InferenceWorker(QThread):
    """Owns the Segmenter. Create it, `start()` it, and `stop()` it before exit."""

    model_loading = Signal(str)  # label
    model_loaded = Signal(object)  # ModelInfo
    model_failed = Signal(str, str)  # label, message
    encode_started = Signal(int)  # image id
    embedding_ready = Signal(int, float, bool)  # image id, seconds, came from a cache
    embedding_failed = Signal(int, str)  # image id, message
    prediction_ready = Signal(object)  # CandidateSet, the top-ranked candidate complete
    candidates_completed = Signal(object)  # the same request, every candidate complete
    prediction_failed = Signal(int, int, int, str)  # image id, request, model generation, message
    prefetched = Signal(int, bool)  # image id, came from a cache
    cache_failed = Signal(str)  # the disk cache could not be written (once per session)

    def __init__(self, disk_cache: EmbeddingStore | None = None, memory_slots: int = 6) -> None:
        super().__init__()
        self.setObjectName("samstudio-inference")
        self._cond = threading.Condition()
        self._stopping = False
        self._segmenter: Segmenter | None = None
        self._model_job: tuple[Callable[[], Segmenter], str] | None = None
        self._current: _ImageJob | None = None
        self._current_failed = False
        self._current_image: np.ndarray | None = None
        self._current_small: np.ndarray | None = None
        self._decode: _DecodeJob | None = None
        self._prefetch: deque[_ImageJob] = deque()
        self._tasks: deque[Callable[[Segmenter], None]] = deque()
        self._memory: OrderedDict[tuple[str, str], ImageEmbedding] = OrderedDict()
        self._memory_slots = max(1, memory_slots)
        # image id -> (path, file stamp, pixel hash); ids are only unique within one project
        self._keys: dict[int, tuple[Path, tuple[int, int] | None, str]] = {}
        self._generation = 0
        self._cache_warned = False
        self._disk_cache = disk_cache
        self._request_counter = 0
        self._model_generation = 0  # one more for every model asked for (`load_model`)
        self.busy_with: str = ""  # what the thread is doing now, for tests and the UI

    # ----------------------------------------------------------------- requests (any thread)
    def load_model(self, factory: Callable[[], Segmenter], label: str) -> None:
        """Load a model in this thread. The previous model stays until the new one works.

        From this call on, results of decodes that started before it carry an older
        `model_generation` than the worker's: the receiver drops them (the user asked for
        another model; if it fails to load, the prompts are decoded again)."""
        with self._cond:
            self._model_generation += 1
            self._model_job = (factory, label)
            self._decode = None
            self._cond.notify_all()

    def open_image(self, image_id: int, path: str | Path) -> None:
        """Make `image_id` the current image; drops stale decodes and the prefetch queue."""
        with self._cond:
            self._current = _ImageJob(image_id, Path(path), self._generation)
            self._current_failed = False
            self._current_image = None
            self._decode = None
            self._prefetch.clear()
            self._cond.notify_all()

    def request_decode(
        self,
        image_id: int,
        prompts: Prompts,
        multimask: bool = True,
        color: tuple[int, int, int] = (30, 144, 255),
    ) -> int:
        """Post a decode; it replaces any decode not yet started. Returns its number."""
        with self._cond:
            self._request_counter += 1
            self._decode = _DecodeJob(image_id, self._request_counter, prompts, multimask, color)
            self._cond.notify_all()
            return self._request_counter

    def set_prefetch(self, items: list[tuple[int, str | Path]]) -> None:
        """(image id, path) of the images to encode ahead, in order."""
        with self._cond:
            self._prefetch = deque(_ImageJob(i, Path(p), self._generation) for i, p in items)
            self._cond.notify_all()

    def reset_images(self) -> None:
        """Forget every image of the project (it was closed or another was opened): the
        current image, the prefetch queue, pending decodes and which id is which file.
        Image ids start at 1 in every project, so an old id must never find its old
        embedding; work already running finishes but cannot record its id."""
        with self._cond:
            self._generation += 1
            self._keys.clear()
            self._current = None
            self._current_failed = False
            self._current_image = None
            self._current_small = None
            self._decode = None
            self._prefetch.clear()
            self._cond.notify_all()

    def _key_for(self, job: _ImageJob) -> str | None:
        """The pixel hash recorded for `job`'s id, if it was recorded for the same file
        with the same stamp (a file replaced on disk is hashed again)."""
        entry = self._keys.get(job.image_id)
        return entry[2] if entry is not None and entry[:2] == (job.path, job.stamp) else None

    def submit_task(self, task: Callable[[Segmenter], None]) -> None:
        """Queue `task(segmenter)` to run in this thread once a model is loaded."""
        with self._cond:
            self._tasks.append(task)
            self._cond.notify_all()

    @property
    def stopping(self) -> bool:
        """True once `stop()` was asked: long tasks should return soon."""
        return self._stopping

    def stop(self, wait_ms: int = 60000) -> None:
        """Ask the thread to finish after its current step and wait for it."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.wait(wait_ms)

    @property
    def model_generation(self) -> int:
        """How many models were asked for so far; a result stamped with a smaller number
        came from a model the user has since switched away from."""
        return self._model_generation

    @property
    def model_info(self) -> ModelInfo | None:
        seg = self._segmenter
        return None if seg is None else seg.info

    @property
    def segmenter(self) -> Segmenter | None:
        """The loaded model (decode is stateless: benchmarks may call it while idle)."""
        return self._segmenter

    def embedding_for(self, image_id: int) -> ImageEmbedding | None:
        """The in-memory embedding of `image_id` under the current model, or None."""
        with self._cond:
            entry = self._keys.get(image_id)
            seg = self._segmenter
            if entry is None or seg is None or file_stamp(entry[0]) != entry[1]:
                return None  # not encoded, or its file has changed since
            return self._memory.get((entry[2], seg.info.model_id))

    def has_embedding(self, image_id: int) -> bool:
        """True when the embedding of `image_id` is in memory for the current model."""
        with self._cond:
            entry = self._keys.get(image_id)
            seg = self._segmenter
            return (
                entry is not None
                and seg is not None
                and (entry[2], seg.info.model_id) in self._memory
            )

    # ------------------------------------------------------------------------- the thread
    def run(self) -> None:
        while True:
            with self._cond:
                job = self._next_job_locked()
                while job is None and not self._stopping:
                    self._cond.wait()
                    job = self._next_job_locked()
                if self._stopping:
                    return
            try:
                job()
            except Exception:  # a bug here must not kill the thread that owns the model
                traceback.print_exc()
            finally:
                self.busy_with = ""

    def _next_job_locked(self) -> Callable[[], None] | None:
        if self._model_job is not None:
            factory, label = self._model_job
            self._model_job = None
            return lambda: self._run_load(factory, label)
        seg = self._segmenter
        if seg is None:
            return None
        model_id = seg.info.model_id
        cur = self._current
        if cur is not None and not self._current_failed:
            key = self._key_for(cur)
            if key is None or (key, model_id) not in self._memory or self._current_image is None:
                return lambda: self._run_encode(seg, cur, current=True)
        dec = self._decode
        if dec is not None and cur is not None and dec.image_id == cur.image_id:
            key = self._key_for(cur)
            emb = self._memory.get((key, model_id)) if key else None
            if emb is not None and self._current_image is not None:
                self._decode = None
                image = self._current_image
                generation = self._model_generation
                return lambda: self._run_decode(seg, emb, image, dec, generation)
        if self._tasks:
            task = self._tasks.popleft()
            return lambda: self._run_task(seg, task)
        while self._prefetch:
            item = self._prefetch.popleft()
            key = self._key_for(item)
            if key is not None and (key, model_id) in self._memory:
                continue
            return lambda: self._run_encode(seg, item, current=False)
        return None

    def _run_task(self, seg: Segmenter, task: Callable[[Segmenter], None]) -> None:
        self.busy_with = "task"
        task(seg)

    def _run_load(self, factory: Callable[[], Segmenter], label: str) -> None:
        self.busy_with = "loading"
        self.model_loading.emit(label)
        try:
            seg = factory()
            info = seg.info
        except Exception as exc:
            self.model_failed.emit(label, _message(exc))
            return
        with self._cond:
            self._segmenter = seg
            self._current_image = None  # re-encode the current image with the new model
            self._current_failed = False  # an image the old model could not encode: retry
        self.model_loaded.emit(info)

    def _run_encode(self, seg: Segmenter, item: _ImageJob, current: bool) -> None:
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
                self.embedding_failed.emit(item.image_id, _message(exc))
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
            emb = _safe_cache_get(self._disk_cache, key, info)
        return emb

    def _encode_and_store(self, seg: Segmenter, image: np.ndarray, key: str) -> ImageEmbedding:
        """This thread: encode `image` and put it in the disk cache (a failed put is said
        once per session through `cache_failed`, and the embedding is used uncached)."""
        emb = seg.encode(image)
        if self._disk_cache is not None:
            problem = _safe_cache_put(self._disk_cache, key, emb)
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
        job: _DecodeJob,
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
            self.prediction_failed.emit(job.image_id, job.request, generation, _message(exc))
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
                self.prediction_failed.emit(job.image_id, job.request, generation, _message(exc))
                return
        self.candidates_completed.emit(
            CandidateSet(
                job.image_id,
                job.request,
                job.prompts,
                rest,
                decode_ms,
                total_ms,
                job.submitted_at,
                pred,
                job.color,
                generation,
            )
        )


def estimated_area(pred: Any, index: int) -> int:
    """Pixels of candidate `index` estimated from its low-res logits (before upscaling)."""
    low = pred.low_res_logits[index]
    scale = low.shape[0] / float(pred.image_size)
    vh = max(1, int(np.ceil(pred.input_size[0] * scale)))
    vw = max(1, int(np.ceil(pred.input_size[1] * scale)))
    h, w = pred.original_size
    return int(round(np.count_nonzero(low[:vh, :vw] > 0) * (h * w) / float(vh * vw)))


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


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, ImageReadError) and text:
        return text  # already names the file and the reason
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _safe_cache_get(cache: EmbeddingStore, key: str, info: ModelInfo) -> ImageEmbedding | None:
    try:
        return cache.get(key, info.model_id, info.preprocessing_id)
    except Exception:  # a broken cache entry is recomputed, never fatal
        traceback.print_exc()
        return None


def _safe_cache_put(cache: EmbeddingStore, key: str, emb: ImageEmbedding) -> str | None:
    """Store `emb`; on failure (a full disk must not stop annotation) the reason, naming
    the file where the error does."""
    try:
        cache.put(key, emb)
    except Exception as exc:
        return _message(exc)
    return None


def describe(info: ModelInfo | None) -> str:
    """One line for the status bar: model and device."""
    if info is None:
        return "no model"
    return f"{info.model_id} · {info.backend} · {info.device}"
