"""On-disk cache of image embeddings, shared safely between processes.

An entry is one file `<key>.emb` in `cache_dir()/embeddings`:

    magic (8 bytes, ends in the format version) | header length (uint32 little-endian)
    | SHA-256 (32 bytes) | header (UTF-8 JSON) | payload

The header holds the key, model id, preprocessing id, original and input sizes (positive
integers), the payload's dtype and shape. The SHA-256 covers everything else in the file
(magic, length, header and payload), so one flipped byte anywhere, sizes and model id
included, is detected. A file whose magic, length, checksum or header is wrong (a crash
mid-write on a filesystem without atomic rename, a disk error, a stray edit) is deleted
and reported as a miss, so the caller recomputes. Entries of an older format version
(version 1 checksummed only the payload) are misses too, and are replaced on the next put.

Entries are stored as float16 by default, at half the size of float32 (2 MiB instead of
4 MiB per vit_b image). benchmarks/cache_fp16.py measured what that does to masks (seeded
random vit_b weights; sam1_truck.jpg seed 0 and sam2_cars.jpg seed 1; 50 random
single-point clicks each, multimask, 150 masks per run decoded by Meta's SamPredictor from
fp32 and from fp16-rounded features): mean mask IoU 0.99993 / 0.99984, worst 0.99988 /
0.99966, at most 0.009% of pixels flip, the top-ranked candidate never changes, low-res
logits move by at most 9.2e-5 (features: relative L2 error 2.1e-4). Features outside
float16's range are stored as float32. `get` always returns float32.

Writes go to a temporary file and are renamed into place, so a reader sees either the
old entry, the new one, or none. Size is bounded by `max_bytes` with LRU eviction by last
access (`get` touches the file's mtime). Files that vanish because another process evicted
them are simply misses. `put` raises OSError when the entry cannot be written (disk full,
read-only folder); `get_or_compute` then warns (CacheWriteWarning) and returns the
computed embedding uncached.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from samstudio.core.atomic import atomic_write, atomic_write_json
from samstudio.core.paths import cache_dir
from samstudio.inference.types import ImageEmbedding

_MAGIC_PREFIX = b"SSEMB\x00"
FORMAT_VERSION = 2
MAGIC = _MAGIC_PREFIX + bytes([FORMAT_VERSION]) + b"\n"
_LEN = struct.Struct("<I")
_DIGEST = 32  # raw SHA-256
_DTYPES: dict[str, np.dtype[Any]] = {"<f2": np.dtype("<f2"), "<f4": np.dtype("<f4")}
_MAX_HEADER = 1 << 16
SUFFIX = ".emb"
DEFAULT_MAX_BYTES = 4 << 30
# The size limit the user chose (Preferences in the window), kept in the cache folder so
# that every process sharing the cache, the command line included, keeps to it.
LIMIT_FILE = "limit.json"
_KEY = re.compile(r"^[0-9a-f]{16,64}$")
_STALE_TMP_S = 3600.0
_FP16_MAX = float(np.finfo(np.float16).max)


def cache_key(image_hash: str, model_id: str, preprocessing_id: str) -> str:
    """The cache key of one image under one model and preprocessing: 40 hex digits."""
    blob = json.dumps([image_hash, model_id, preprocessing_id], ensure_ascii=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40]


def image_content_hash(image: np.ndarray) -> str:
    """SHA-256 (hex) of an image's pixels, shape and dtype (the image as displayed, e.g.
    (H, W, 3) uint8 RGB after EXIF orientation). Independent of the file's name or format."""
    arr = np.ascontiguousarray(image)
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}:{arr.shape}".encode("ascii"))
    h.update(arr.data.cast("B") if arr.size else b"")
    return h.hexdigest()


class CorruptEntry(Exception):
    """Internal: an entry file failed validation."""


class OutdatedEntry(CorruptEntry):
    """Internal: an entry written in an older format version (not damaged, just stale)."""


class CacheWriteWarning(UserWarning):
    """An embedding was computed but could not be stored in the cache (disk full,
    read-only folder); it is used uncached."""


def _digest(head: bytes, payload: bytes | memoryview) -> bytes:
    """SHA-256 of everything in an entry but the digest itself."""
    h = hashlib.sha256(MAGIC)
    h.update(_LEN.pack(len(head)))
    h.update(head)
    h.update(payload)
    return h.digest()


def stored_dtype(features: np.ndarray, dtype: np.dtype[Any] | str) -> np.dtype[Any]:
    """The (little-endian) dtype an entry stores `features` in: `dtype`, or float32 where
    float16 would overflow to inf."""
    dt = np.dtype(dtype).newbyteorder("<")
    if dt.itemsize == 2 and np.isfinite(features).all():
        if float(np.abs(features).max(initial=0.0)) > _FP16_MAX:
            dt = np.dtype("<f4")  # would overflow to inf in float16
    return dt


def as_stored(embedding: ImageEmbedding, dtype: np.dtype[Any] | str = "float16") -> ImageEmbedding:
    """`embedding` as `EmbeddingCache.get` gives it back after a `put` with `dtype`: the
    features rounded to the stored precision, as float32 (C, h, w). Idempotent, so a value
    taken from the cache and one just computed and passed through here are equal."""
    features = np.asarray(embedding.features)
    stored = np.ascontiguousarray(features, dtype=stored_dtype(features, dtype))
    return replace(embedding, features=stored.astype(np.float32))


def encode_entry(key: str, embedding: ImageEmbedding, dtype: np.dtype[Any]) -> bytes:
    """Serialise one embedding (features (C, h, w) float) into the entry format."""
    features = np.asarray(embedding.features)
    payload_arr = np.ascontiguousarray(features, dtype=stored_dtype(features, dtype))
    payload = payload_arr.tobytes()
    header = {
        "key": key,
        "model_id": embedding.model_id,
        "preprocessing_id": embedding.preprocessing_id,
        "original_size": [int(v) for v in embedding.original_size],
        "input_size": [int(v) for v in embedding.input_size],
        "dtype": payload_arr.dtype.str,
        "shape": list(payload_arr.shape),
        "payload_bytes": len(payload),
    }
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return MAGIC + _LEN.pack(len(head)) + _digest(head, payload) + head + payload


def _positive_ints(value: object, n: int, what: str) -> tuple[int, ...]:
    """`value` as a tuple of `n` positive ints (JSON integers only: no floats, no bools)."""
    if not isinstance(value, list) or len(value) != n:
        raise CorruptEntry(f"{what} is not a list of {n} numbers")
    if not all(type(v) is int and v > 0 for v in value):
        raise CorruptEntry(f"{what} must be positive integers")
    return tuple(value)


def _string(header: dict[str, Any], name: str) -> str:
    value = header.get(name)
    if not isinstance(value, str):
        raise CorruptEntry(f"{name} is not a string")
    return value


def decode_entry(data: bytes, key: str | None = None) -> ImageEmbedding:
    """Parse and verify an entry; raises CorruptEntry on any inconsistency (OutdatedEntry
    for an entry of an older format version)."""
    n0 = len(MAGIC) + _LEN.size + _DIGEST
    if data[: len(MAGIC)] != MAGIC:
        if data.startswith(_MAGIC_PREFIX) and len(data) >= len(MAGIC):
            raise OutdatedEntry(f"entry format version {data[len(_MAGIC_PREFIX)]}")
        raise CorruptEntry("bad magic")
    if len(data) < n0:
        raise CorruptEntry("truncated header")
    (hlen,) = _LEN.unpack_from(data, len(MAGIC))
    if hlen > _MAX_HEADER or len(data) < n0 + hlen:
        raise CorruptEntry("bad header length")
    digest = data[n0 - _DIGEST : n0]
    head = data[n0 : n0 + hlen]
    payload = memoryview(data)[n0 + hlen :]
    if _digest(head, payload) != digest:
        raise CorruptEntry("checksum mismatch")
    # The checksum matched, so the header is what put() wrote; still, never let a
    # crafted or buggy header raise anything but CorruptEntry.
    try:
        header = json.loads(head.decode("utf-8"))
    except (ValueError, RecursionError, OverflowError) as exc:
        raise CorruptEntry(f"bad header: {type(exc).__name__}: {exc!s:.80}") from exc
    if not isinstance(header, dict):
        raise CorruptEntry("header is not a JSON object")
    dtype_name = header.get("dtype")
    dtype = _DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
    if dtype is None:
        raise CorruptEntry("unexpected dtype")
    shape = _positive_ints(header.get("shape"), 3, "shape")
    original_size = _positive_ints(header.get("original_size"), 2, "original_size")
    input_size = _positive_ints(header.get("input_size"), 2, "input_size")
    nbytes = header.get("payload_bytes")
    if len(payload) != nbytes or nbytes != math.prod(shape) * dtype.itemsize:
        raise CorruptEntry(f"payload is {len(payload)} bytes, not as the header says")
    model_id = _string(header, "model_id")
    preprocessing_id = _string(header, "preprocessing_id")
    stored_key = _string(header, "key")
    if key is not None and stored_key != key:
        raise CorruptEntry(f"entry holds key {stored_key:.64}, not {key}")
    features = np.frombuffer(payload, dtype=dtype).reshape(shape).astype(np.float32)
    return ImageEmbedding(
        features=features,
        original_size=(original_size[0], original_size[1]),
        input_size=(input_size[0], input_size[1]),
        model_id=model_id,
        preprocessing_id=preprocessing_id,
    )


class EmbeddingCache:
    """Bounded on-disk embedding cache with LRU eviction, safe across processes.

    root: folder of the entries (default `cache_dir()/embeddings`, created on first put).
    max_bytes: the total size of entries is kept at or below this after every put;
    None: the limit saved in the folder by `save_limit` (the window's Preferences), else
    DEFAULT_MAX_BYTES (4 GiB).
    dtype: "float16" (default, measured safe; see module doc) or "float32".
    """

    def __init__(
        self, root: Path | None = None, max_bytes: int | None = None, dtype: str = "float16"
    ) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "embeddings"
        self.max_bytes = int(max_bytes) if max_bytes is not None else self._saved_limit()
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float16), np.dtype(np.float32)):
            raise ValueError(f"cache dtype must be float16 or float32, got {dtype}")
        self.corrupt_dropped = 0  # entries found corrupt and deleted by this instance

    def _saved_limit(self) -> int:
        """The limit saved by `save_limit` (the window's Preferences), else the default."""
        try:
            value = json.loads((self.root / LIMIT_FILE).read_text(encoding="utf-8"))
            limit = value.get("max_bytes") if isinstance(value, dict) else None
        except (OSError, ValueError):
            return DEFAULT_MAX_BYTES
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            return limit
        return DEFAULT_MAX_BYTES

    def save_limit(self) -> None:
        """Keep `max_bytes` in the cache folder for the other processes that share it
        (written atomically, and only when it changed: the window calls this at every
        start). Raises OSError when the folder cannot be written."""
        if self._saved_limit() == self.max_bytes and (self.root / LIMIT_FILE).exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.root / LIMIT_FILE, {"max_bytes": self.max_bytes})

    def as_stored(self, embedding: ImageEmbedding) -> ImageEmbedding:
        """`embedding` as `get` gives it back after `put` (see the module function)."""
        return as_stored(embedding, self.dtype)

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not a cache key (use cache_key()): {key!r}")
        return self.root / f"{key}{SUFFIX}"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> ImageEmbedding | None:
        """The cached embedding (features as float32), or None on a miss. A corrupt or
        partial entry is deleted and reported as a miss. A hit marks the entry as used."""
        path = self.path(key)
        try:
            with open(path, "rb") as fh:
                ino = os.fstat(fh.fileno()).st_ino
                data = fh.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
            return None  # absent, or a cache folder that is not one (a miss; put will say)
        try:
            embedding = decode_entry(data, key)
        except CorruptEntry as exc:
            self._drop_corrupt(path, ino, counted=not isinstance(exc, OutdatedEntry))
            return None
        now = time.time_ns()
        try:
            os.utime(path, ns=(now, now))
        except OSError:
            pass  # evicted or replaced meanwhile: the value we read is still valid
        return embedding

    def _drop_corrupt(self, path: Path, ino: int, counted: bool = True) -> None:
        """Delete a corrupt (or outdated: `counted` False) entry unless another process
        has replaced it meanwhile."""
        try:
            if os.stat(path).st_ino == ino:
                path.unlink()
                self.corrupt_dropped += counted
        except OSError:
            pass

    def put(self, key: str, embedding: ImageEmbedding) -> None:
        """Store an embedding under `key` (atomically), then evict least recently used
        entries until the cache fits in `max_bytes`. An entry larger than `max_bytes`
        on its own is not stored. Raises OSError when the entry cannot be written (any
        previous entry under `key` is left as it was)."""
        data = encode_entry(key, embedding, self.dtype)
        if len(data) > self.max_bytes:
            return
        path = self.path(key)
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: fh.write(data))
        now = time.time_ns()
        try:
            os.utime(path, ns=(now, now))
        except OSError:
            pass
        self.evict(keep=path)

    def get_or_compute(self, key: str, compute: Callable[[], ImageEmbedding]) -> ImageEmbedding:
        """`get(key)`, or `compute()` then `put` on a miss. When the entry cannot be
        stored (disk full, read-only folder), warns with CacheWriteWarning naming the
        file and the error, and returns the computed embedding anyway."""
        cached = self.get(key)
        if cached is not None:
            return cached
        embedding = compute()
        try:
            self.put(key, embedding)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            warnings.warn(
                f"embedding not cached: cannot write {self.path(key)}: {reason}",
                CacheWriteWarning,
                stacklevel=2,
            )
        return embedding

    def _scan(self) -> list[tuple[int, str, int, Path]]:
        """(mtime_ns, name, size, path) of every entry; removes stale temporary files."""
        entries: list[tuple[int, str, int, Path]] = []
        now = time.time()
        try:
            it = os.scandir(self.root)
        except FileNotFoundError:
            return entries
        with it:
            for de in it:
                try:
                    st = de.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if de.name.endswith(SUFFIX) and not de.name.startswith("."):
                    entries.append((st.st_mtime_ns, de.name, st.st_size, Path(de.path)))
                elif de.name.endswith(".tmp") and now - st.st_mtime > _STALE_TMP_S:
                    try:
                        os.unlink(de.path)  # left by a process killed mid-write
                    except OSError:
                        pass
        return entries

    def size_bytes(self) -> int:
        """Total size of the entries now on disk."""
        return sum(e[2] for e in self._scan())

    def keys(self) -> list[str]:
        """Keys of the entries now on disk, least recently used first."""
        return [e[1][: -len(SUFFIX)] for e in sorted(self._scan())]

    def evict(self, keep: Path | None = None) -> int:
        """Delete least recently used entries until the total fits in `max_bytes`.
        Returns the number of bytes freed. Entries deleted by someone else are skipped."""
        entries = sorted(self._scan())
        total = sum(e[2] for e in entries)
        freed = 0
        for _mtime, _name, size, path in entries:
            if total <= self.max_bytes:
                break
            if keep is not None and path == keep:
                continue
            try:
                path.unlink()
                freed += size
            except FileNotFoundError:
                pass  # another process evicted it first
            except OSError:
                continue
            total -= size
        return freed

    def clear(self) -> None:
        """Delete every entry."""
        for _m, _n, _s, path in self._scan():
            path.unlink(missing_ok=True)
