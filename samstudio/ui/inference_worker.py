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
- `submit_task(task)`: a step of a long job that needs the model (automatic mask
  generation, the evaluation): `task(segmenter)` runs here after any pending encode or
  decode of the current image, before prefetching. A long job runs as short tasks (one
  encoder pass or one decoder batch each), each queueing the next when it ends, so the
  annotator's requests wait for one step at most, and two jobs take turns. A task
  reports through its own signals and polls `stopping`; it gets embeddings through the
  annotator's caches with `task_embedding`.

An encoder pass cannot be interrupted halfway; a stale one finishes into the cache.

The runs themselves (encode, decode, embedding lookups) are in `worker_runs`; the
candidates they produce in `mask_candidates`; the disk store in `embedding_store`.
"""

from __future__ import annotations

import threading
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QThread, Signal

from samstudio.core.images import file_stamp
from samstudio.inference.types import ImageEmbedding, ModelInfo, Prompts, Segmenter
from samstudio.ui.embedding_store import DiskEmbeddingStore, EmbeddingStore
from samstudio.ui.mask_candidates import CandidateSet, MaskCandidate, complete_candidate
from samstudio.ui.worker_jobs import DecodeJob, ImageJob, error_message
from samstudio.ui.worker_runs import ModelRuns

__all__ = [  # the names other modules import from here (some are defined elsewhere)
    "CandidateSet",
    "DiskEmbeddingStore",
    "EmbeddingStore",
    "InferenceWorker",
    "MaskCandidate",
    "complete_candidate",
    "describe",
]


class InferenceWorker(QThread, ModelRuns):
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
        self._current: ImageJob | None = None
        self._current_failed = False
        self._current_image: np.ndarray | None = None
        self._current_small: np.ndarray | None = None
        self._decode: DecodeJob | None = None
        self._prefetch: deque[ImageJob] = deque()
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
            self._current = ImageJob(image_id, Path(path), self._generation)
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
            self._decode = DecodeJob(image_id, self._request_counter, prompts, multimask, color)
            self._cond.notify_all()
            return self._request_counter

    def set_prefetch(self, items: list[tuple[int, str | Path]]) -> None:
        """(image id, path) of the images to encode ahead, in order."""
        with self._cond:
            self._prefetch = deque(ImageJob(i, Path(p), self._generation) for i, p in items)
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

    def _key_for(self, job: ImageJob) -> str | None:
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
            self.model_failed.emit(label, error_message(exc))
            return
        with self._cond:
            self._segmenter = seg
            self._current_image = None  # re-encode the current image with the new model
            self._current_failed = False  # an image the old model could not encode: retry
        self.model_loaded.emit(info)


def describe(info: ModelInfo | None) -> str:
    """One line for the status bar: model and device."""
    if info is None:
        return "no model"
    return f"{info.model_id} · {info.backend} · {info.device}"
