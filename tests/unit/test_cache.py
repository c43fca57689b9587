"""The on-disk embedding cache: exact round trips, corruption, LRU eviction, two processes."""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import os
import random
import struct
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import samstudio.inference.cache as cache_module
from samstudio.core.paths import cache_dir
from samstudio.inference.cache import (
    MAGIC,
    CacheWriteWarning,
    CorruptEntry,
    EmbeddingCache,
    as_stored,
    cache_key,
    decode_entry,
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


@pytest.mark.parametrize("dtype, scale", [("float16", 1.0), ("float16", 1e5), ("float32", 1.0)])
def test_as_stored_equals_what_get_gives_back(tmp_path: Path, dtype: str, scale: float) -> None:
    cache = EmbeddingCache(tmp_path, dtype=dtype)
    emb = make_embedding(4, scale=scale)
    cache.put(key_of(4), emb)
    got = cache.get(key_of(4))
    assert got is not None
    stored = cache.as_stored(emb)
    assert_same(stored, emb, got.features)
    assert_same(as_stored(stored, dtype), emb, got.features)  # idempotent
    assert_same(as_stored(got, dtype), emb, got.features)  # a cached value is left as it is


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


def split_entry(data: bytes) -> tuple[bytes, bytes]:
    """(header JSON, payload) of an entry: magic | uint32 length | SHA-256 | header | payload."""
    (hlen,) = struct.unpack_from("<I", data, len(MAGIC))
    n0 = len(MAGIC) + 4 + 32
    return data[n0 : n0 + hlen], data[n0 + hlen :]


def sealed(head: bytes, payload: bytes) -> bytes:
    """An entry with a correct checksum around any header: what a buggy or hostile writer
    could leave, so that header validation itself is exercised."""
    length = struct.pack("<I", len(head))
    digest = hashlib.sha256(MAGIC + length + head + payload).digest()
    return MAGIC + length + digest + head + payload


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"original_size":[485,', b'"original_size":[785,'),  # 485 -> 785: one byte
        (b'"input_size":[768,', b'"input_size":[468,'),
        (b'"model_id":"sam_vit_b"', b'"model_id":"sam_vit_l"'),
        (b'"preprocessing_id":"rls1024', b'"preprocessing_id":"rls1124'),
    ],
)
def test_one_corrupted_header_byte_is_a_miss(tmp_path: Path, old: bytes, new: bytes) -> None:
    """The checksum covers the header: a flipped digit in a size or a letter of the model
    id must not come back as a hit with wrong metadata (wrong masks, no error)."""
    cache = EmbeddingCache(tmp_path, dtype="float32")
    emb = make_embedding(5)
    cache.put(key_of(5), emb)
    path = cache.path(key_of(5))
    data = path.read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    path.write_bytes(data.replace(old, new))
    assert cache.get(key_of(5)) is None
    assert not path.exists() and cache.corrupt_dropped == 1


def old_format_entry(key: str, emb: ImageEmbedding) -> bytes:
    """An entry of format version 1, whose SHA-256 covered only the payload."""
    payload = np.ascontiguousarray(emb.features, dtype=np.float16).tobytes()
    header = {
        "key": key,
        "model_id": emb.model_id,
        "preprocessing_id": emb.preprocessing_id,
        "original_size": list(emb.original_size),
        "input_size": list(emb.input_size),
        "dtype": "<f2",
        "shape": list(emb.features.shape),
        "payload_bytes": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return b"SSEMB\x00\x01\n" + struct.pack("<I", len(head)) + head + payload


def test_entry_of_the_old_format_is_recomputed(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    emb = make_embedding(6)
    path = cache.path(key_of(6))
    path.write_bytes(old_format_entry(key_of(6), emb))
    calls: list[int] = []

    def compute() -> ImageEmbedding:
        calls.append(1)
        return emb

    assert cache.get_or_compute(key_of(6), compute) is emb
    assert calls == [1]
    assert path.read_bytes().startswith(MAGIC)  # replaced by an entry of the new format
    assert cache.corrupt_dropped == 0  # outdated, not damaged
    got = cache.get(key_of(6))
    assert got is not None and got.original_size == emb.original_size


def _good_head() -> tuple[bytes, bytes]:
    return split_entry(encode_entry(key_of(7), make_embedding(7), np.dtype(np.float16)))


def _edit(field: str, value: object) -> bytes:
    head, _ = _good_head()
    header = json.loads(head)
    header[field] = value
    return json.dumps(header).encode()


BAD_HEADERS = {
    "size is 1e999": _good_head()[0].replace(b'"original_size":[487,', b'"original_size":[1e999,'),
    "deeply nested JSON": b"[" * 60000 + b"]" * 5000,
    "nested JSON within the length limit": b"[" * 30000 + b"]" * 30000,
    "not an object": b"[1, 2, 3]",
    "not UTF-8": b"\xff\xfe{}",
    "no sizes": b"{}",
    "zero width": _edit("original_size", [487, 0]),
    "negative height": _edit("input_size", [-768, 1024]),
    "float size": _edit("original_size", [487.5, 640]),
    "bool size": _edit("original_size", [True, 640]),
    "three sizes": _edit("input_size", [768, 1024, 3]),
    "size NaN": _good_head()[0].replace(b'"input_size":[768,', b'"input_size":[NaN,'),
    "shape of strings": _edit("shape", "abc"),
    "negative shape": _edit("shape", [-256, -16, 16]),
    "huge shape": _edit("shape", [2**62, 2**62, 16]),
    "dtype a list": _edit("dtype", ["<f2"]),
    "dtype object": _edit("dtype", "|O"),
    "model id a number": _edit("model_id", 7),
    "payload_bytes a string": _edit("payload_bytes", "131072"),
    "key a dict": _edit("key", {}),
}


@pytest.mark.parametrize("resealed", [False, True], ids=["as-damaged", "checksum-fixed"])
@pytest.mark.parametrize("damage", list(BAD_HEADERS))
def test_unparsable_header_is_a_miss_and_deleted(
    tmp_path: Path, damage: str, resealed: bool
) -> None:
    """Any header that fails to parse or validate is a corrupt entry: a miss, the file
    deleted (it used to raise OverflowError or RecursionError on every get). `as-damaged`
    is the reviewer's case (header bytes replaced in place); `checksum-fixed` gets past the
    checksum so that the header checks themselves run."""
    cache = EmbeddingCache(tmp_path)
    emb = make_embedding(7)
    cache.put(key_of(7), emb)
    path = cache.path(key_of(7))
    good = path.read_bytes()
    head, payload = split_entry(good)
    bad = BAD_HEADERS[damage]
    if resealed:
        data = sealed(bad, payload)
    else:
        data = good[: len(MAGIC)] + struct.pack("<I", len(bad)) + good[len(MAGIC) + 4 :]
        data = data.replace(head, bad)
    path.write_bytes(data)
    assert cache.get(key_of(7)) is None
    assert not path.exists() and cache.corrupt_dropped == 1
    assert cache.get_or_compute(key_of(7), lambda: emb) is emb
    assert cache.get(key_of(7)) is not None


def test_random_damage_never_raises_anything_but_corrupt_entry() -> None:
    """Fuzz: single-byte changes and truncations of an entry, and of its header with the
    checksum fixed; decode_entry either rejects with CorruptEntry or returns positive sizes."""
    emb = make_embedding(8, (4, 2, 2))
    good = encode_entry(key_of(8), emb, np.dtype(np.float16))
    head, payload = split_entry(good)
    rng = random.Random(0)
    accepted = 0
    for i in range(3000):
        resealed = i % 2 == 1
        b = bytearray(head if resealed else good)
        j = rng.randrange(len(b))
        b[j] = (b[j] + rng.randrange(1, 256)) % 256  # always a change
        if rng.random() < 0.3:
            b = b[: rng.randrange(len(b))]
        data = sealed(bytes(b), payload) if resealed else bytes(b)
        try:
            got = decode_entry(data, key_of(8))
        except CorruptEntry:
            continue
        accepted += 1
        assert resealed, "a damaged entry passed the checksum"
        assert min(got.original_size + got.input_size) > 0
        assert got.features.shape == (4, 2, 2)
    assert accepted < 3000


def _fail_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every entry write fail as on a full disk, through the real atomic_write."""
    real = cache_module.atomic_write

    def full_disk(path: Path, write: object) -> Path:
        def write_enospc(fh: object) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return real(path, write_enospc)

    monkeypatch.setattr(cache_module, "atomic_write", full_disk)


@pytest.mark.parametrize("failure", ["disk_full", "folder_unwritable"])
def test_full_disk_returns_the_computed_embedding_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    if failure == "disk_full":
        root = tmp_path / "embeddings"
        _fail_writes(monkeypatch)
        reason = os.strerror(errno.ENOSPC)
    else:
        (tmp_path / "a_file").write_text("")
        root = tmp_path / "a_file" / "embeddings"  # mkdir fails, even as root
        reason = os.strerror(errno.ENOTDIR)
    cache = EmbeddingCache(root)
    emb = make_embedding(9)
    with pytest.raises(OSError):
        cache.put(key_of(9), emb)  # put still tells callers that want to know
    with pytest.warns(CacheWriteWarning) as caught:
        got = cache.get_or_compute(key_of(9), lambda: emb)
    assert got is emb
    message = str(caught[0].message)
    assert str(cache.path(key_of(9))) in message and reason in message
    assert cache.get(key_of(9)) is None
    if root.is_dir():
        assert list(root.iterdir()) == []  # no temporary file left behind
    monkeypatch.undo()
    if failure == "folder_unwritable":
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.get_or_compute(key_of(9), lambda: emb) is emb  # no warning once it works


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


def test_the_size_limit_set_by_the_window_binds_command_line_runs(tmp_path: Path) -> None:
    """Found by review: the CLI used 4 GiB whatever the user set in Preferences, so a
    CLI run grew the shared cache past the limit. The limit lives in the cache folder."""
    from samstudio.inference.cache import DEFAULT_MAX_BYTES, EmbeddingCache

    root = tmp_path / "embeddings"
    assert EmbeddingCache(root).max_bytes == DEFAULT_MAX_BYTES  # nothing saved yet
    EmbeddingCache(root, max_bytes=3 << 20).save_limit()  # what the window does
    assert EmbeddingCache(root).max_bytes == 3 << 20  # what the CLI gets
    assert EmbeddingCache(root, max_bytes=5 << 20).max_bytes == 5 << 20  # explicit wins
    limit = root / "limit.json"
    stamp = limit.stat().st_mtime_ns
    time.sleep(0.01)
    EmbeddingCache(root, max_bytes=3 << 20).save_limit()  # the next start: unchanged
    assert limit.stat().st_mtime_ns == stamp  # not rewritten
    (root / "limit.json").write_text("{not json")
    assert EmbeddingCache(root).max_bytes == DEFAULT_MAX_BYTES  # damaged: the default
    assert EmbeddingCache(root).keys() == []  # the limit file is not an entry
