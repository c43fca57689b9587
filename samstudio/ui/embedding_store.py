"""The embedding caches' keys and the disk store behind the worker's memory cache.

Embeddings are keyed by the pixel hash of the image (`image_content_hash`, shared with
`samstudio embed`), the model id and its preprocessing. The disk store is the inference
layer's `EmbeddingCache`; reading or writing it never stops annotation: a broken entry
is computed again, a failed write is reported once and the embedding used uncached.
"""

from __future__ import annotations

import hashlib
import traceback
from pathlib import Path
from typing import Protocol

import numpy as np

from samstudio.inference.types import ImageEmbedding, ModelInfo
from samstudio.ui.worker_jobs import error_message


class EmbeddingStore(Protocol):
    """A persistent embedding cache (the disk cache of the inference layer)."""

    def get(
        self, content_key: str, model_id: str, preprocessing_id: str
    ) -> ImageEmbedding | None: ...

    def put(self, content_key: str, embedding: ImageEmbedding) -> None: ...

    # Optional: `as_stored(embedding)`, the embedding as `get` gives it back after `put`
    # (e.g. rounded to float16); see `InferenceWorker.task_embedding`.


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


def safe_cache_get(cache: EmbeddingStore, key: str, info: ModelInfo) -> ImageEmbedding | None:
    try:
        return cache.get(key, info.model_id, info.preprocessing_id)
    except Exception:  # a broken cache entry is recomputed, never fatal
        traceback.print_exc()
        return None


def safe_cache_put(cache: EmbeddingStore, key: str, emb: ImageEmbedding) -> str | None:
    """Store `emb`; on failure (a full disk must not stop annotation) the reason, naming
    the file where the error does."""
    try:
        cache.put(key, emb)
    except Exception as exc:
        return error_message(exc)
    return None
