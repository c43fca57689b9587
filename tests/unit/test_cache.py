"""The on-disk embedding cache: exact round trips, corruption, LRU eviction, two processes."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

from samstudio.core.paths import cache_dir
from samstudio.inference.cache import (
    EmbeddingCache,
    cache_key,
    encode_entry,
    image_content_hash,
)
from samstudio.inference.types import ImageEmbedding

SHAPE = (256, 16, 16)  # small features keep the tests fast
FULL_SHAPE = (256, 64, 64)  # real SAM: 4 MiB entries make write races likely


def make_embedding(seed: int, shape: tuple[int, ...] = SHAPE, scale: float = 1.0) -> ImageEmbedding:
    rng = np.random.default_rng(seed)
    return ImageEmbedding(
        features=(rng.standard_normal(shape) * scale).astype(np.float32),
        original_size=(480 + seed, 640),
        input_size=(768, 1024),
        model_id="sam_vit_b",
        preprocessing_id="rls1024-pilbilinear-imagenet-padbr",
    )


def key_of(i: int) -> str:
    return cache_key(f"image{i}", "sam_vit_b", "rls1024-pilbilinear-imagenet-padbr")


def assert_same(a: ImageEmbedding, b: ImageEmbedding, features: np.ndarray) -> None:
    assert a.features.dtype == np.float32
    np.testing.assert_array_equal(a.features, features)
    assert a.original_size == b.original_size and a.input_size == b.input_size
    assert a.model_id == b.model_id and a.preprocessing_id == b.preprocessing_id


def test_keys_depend_on_image_model_and_preprocessing() -> None:
    base = cache_key("abc", "sam_vit_b", "p1")
    assert base == cache_key("abc", "sam_vit_b", "p1")
    others = {cache_key("abd", "sam_vit_b", "p1"), cache_key("abc", "sam_vit_l", "p1")}
    others.add(cache_key("abc", "sam_vit_b", "p2"))
    assert base not in others and len(others) == 3
    image = np.zeros((4, 5, 3), np.uint8)
    changed = image.copy()
    changed[2, 3, 1] = 1
    assert image_content_hash(image) == image_content_hash(image.copy())
    assert image_content_hash(image) != image_content_hash(changed)
    assert image_content_hash(image) != image_content_hash(image.reshape(5, 4, 3))


def test_default_location_is_the_user_cache_dir() -> None:
    assert EmbeddingCache().root == cache_dir() / "embeddings"


def test_float32_round_trip_is_exact(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, dtype="float32")
    emb = make_embedding(1)
    assert cache.get(key_of(1)) is None
    cache.put(key_of(1), emb)
    got = cache.get(key_of(1))
    assert got is not None
    assert_same(got, emb, emb.features)


def test_float16_round_trip_equals_the_rounded_features(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)  # float16 is the default
    emb = make_embedding(2)
    cache.put(key_of(2), emb)
    got = cache.get(key_of(2))
    assert got is not None
    assert_same(got, emb, emb.features.astype(np.float16).astype(np.float32))
    assert (tmp_path / f"{key_of(2)}.emb").stat().st_size < emb.features.nbytes * 0.51 + 4096


def test_features_beyond_float16_range_are_kept_as_float32(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    emb = make_embedding(3, scale=1e5)
    cache.put(key_of(3), emb)
    got = cache.get(key_of(3))
    assert got is not None and np.isfinite(got.features).all()
    assert_same(got, emb, emb.features)


@pytest.mark.parametrize(
    "damage",
    ["flip_payload_byte", "truncate", "empty", "garbage", "flip_header_byte", "trailing"],
)
def test_corrupt_entry_is_a_miss_deleted_and_recomputed(tmp_path: Path, damage: str) -> None:
    cache = EmbeddingCache(tmp_path, dtype="float32")
    emb = make_embedding(4)
    cache.put(key_of(4), emb)
    path = cache.path(key_of(4))
    data = bytearray(path.read_bytes())
    if damage == "flip_payload_byte":
        data[-100] ^= 0x40
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    elif damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    elif damage == "flip_header_byte":
        data[20] ^= 0x01
    else:
        data += b"\0"
    path.write_bytes(bytes(data))
    assert cache.get(key_of(4)) is None
    assert not path.exists()
    assert cache.corrupt_dropped == 1
    calls: list[int] = []

    def compute() -> ImageEmbedding:
        calls.append(1)
        return emb

    again = cache.get_or_compute(key_of(4), compute)
    assert calls == [1]
    assert_same(again, emb, emb.features)
    hit = cache.get_or_compute(key_of(4), compute)
    assert calls == [1]
    assert_same(hit, emb, emb.features)


def test_entry_under_another_key_is_rejected(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, dtype="float32")
    cache.put(key_of(5), make_embedding(5))
    os.replace(cache.path(key_of(5)), cache.path(key_of(6)))
    assert cache.get(key_of(6)) is None


def test_lru_eviction_by_last_access(tmp_path: Path) -> None:
    entry = len(encode_entry(key_of(0), make_embedding(0), np.dtype(np.float32)))
    cache = EmbeddingCache(tmp_path, max_bytes=3 * entry + entry // 2, dtype="float32")
    for i in (10, 11, 12):
        cache.put(key_of(i), make_embedding(i))
        time.sleep(0.002)
    assert cache.get(key_of(10)) is not None  # 10 is now the most recently used
    time.sleep(0.002)
    cache.put(key_of(13), make_embedding(13))
    assert cache.get(key_of(11)) is None, "the least recently used entry goes first"
    assert cache.keys() == [key_of(12), key_of(10), key_of(13)]
    assert cache.size_bytes() <= cache.max_bytes
    for i in (12, 10, 13):
        got = cache.get(key_of(i))
        assert got is not None
        np.testing.assert_array_equal(got.features, make_embedding(i).features)


def test_entry_larger_than_the_whole_cache_is_not_stored(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, max_bytes=1000)
    cache.put(key_of(20), make_embedding(20))
    assert cache.get(key_of(20)) is None and cache.keys() == []


def test_eviction_tolerates_entries_vanishing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = len(encode_entry(key_of(0), make_embedding(0), np.dtype(np.float16)))
    cache = EmbeddingCache(tmp_path, max_bytes=2 * entry)
    for i in (30, 31):
        cache.put(key_of(i), make_embedding(i))
    real_scan = cache._scan

    def scan_then_lose_one() -> list[tuple[int, str, int, Path]]:
        entries = real_scan()
        for e in sorted(entries)[:1]:
            e[3].unlink()  # another process evicts it between our scan and our unlink
        return entries

    monkeypatch.setattr(cache, "_scan", scan_then_lose_one)
    cache.put(key_of(32), make_embedding(32))
    monkeypatch.undo()
    assert cache.get(key_of(32)) is not None


def test_stale_temporary_files_are_cleaned(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    stale = tmp_path / ".x.emb.abc.tmp"
    stale.write_bytes(b"half")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = tmp_path / ".y.emb.def.tmp"
    fresh.write_bytes(b"being written")
    cache.put(key_of(40), make_embedding(40))
    assert not stale.exists() and fresh.exists()


def _writer(root: str, key: str, seed: int, rounds: int, start: float) -> None:
    cache = EmbeddingCache(Path(root), dtype="float32")
    emb = make_embedding(seed, FULL_SHAPE)
    while time.time() < start:
        pass
    for _ in range(rounds):
        cache.put(key, emb)
        cache.get(key)
    if cache.corrupt_dropped:
        raise SystemExit(f"read {cache.corrupt_dropped} half-written entries")


def _churn(root: str, worker: int, rounds: int, max_bytes: int, errors: str) -> None:
    cache = EmbeddingCache(Path(root), max_bytes=max_bytes, dtype="float32")
    bad = 0
    for r in range(rounds):
        i = (r * 7 + worker) % 12
        got = cache.get(key_of(i))
        if got is not None and not np.array_equal(got.features, make_embedding(i).features):
            bad += 1
        cache.put(key_of(i), make_embedding(i))
    # A reader must never meet a half-written entry (writes are atomic renames).
    Path(errors).write_text(str(bad + cache.corrupt_dropped))


def run_all(procs: list[multiprocessing.process.BaseProcess]) -> None:
    """Start the processes together and check that each exited cleanly."""
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def test_two_processes_writing_the_same_key_leave_a_valid_entry(tmp_path: Path) -> None:
    ctx = _context()
    start = time.time() + 0.5
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), key_of(50), seed, 30, start))
        for seed in (100, 200)
    ]
    run_all(procs)
    cache = EmbeddingCache(tmp_path, dtype="float32")
    got = cache.get(key_of(50))
    assert got is not None
    candidates = [make_embedding(s, FULL_SHAPE).features for s in (100, 200)]
    assert any(np.array_equal(got.features, c) for c in candidates)
    assert cache.corrupt_dropped == 0
    assert [p.name for p in tmp_path.iterdir()] == [f"{key_of(50)}.emb"]  # no temp files left


def test_two_processes_reading_writing_and_evicting_never_see_bad_data(tmp_path: Path) -> None:
    entry = len(encode_entry(key_of(0), make_embedding(0), np.dtype(np.float32)))
    ctx = _context()
    procs = [
        ctx.Process(
            target=_churn,
            args=(str(tmp_path), w, 60, 4 * entry, str(tmp_path / f"errors{w}.txt")),
        )
        for w in (0, 1)
    ]
    run_all(procs)
    assert [(tmp_path / f"errors{w}.txt").read_text() for w in (0, 1)] == ["0", "0"]
    cache = EmbeddingCache(tmp_path, max_bytes=4 * entry, dtype="float32")
    assert cache.size_bytes() <= 4 * entry
