"""TIFF orientation (applied exactly once, whichever Pillow/OpenCV does it) and the memory
used by the 16-bit paths (a lookup table, not float64 copies)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from samstudio.core import images
from samstudio.core.formats.image_files import attach_images
from samstudio.core.formats.records import Annotation, Category, Dataset, ImageRecord, ImportReport
from samstudio.core.images import (
    image_size,
    load_image,
    orient_array,
    stored_size_and_orientation,
)


def _stored(h: int = 7, w: int = 12) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 20, y * 30, (x * 7 + y * 11) % 256], axis=2).astype(np.uint8)


def _png_with_orientation(path: Path, arr: np.ndarray, orientation: int) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(arr).save(path, exif=exif.tobytes())
    return path


@pytest.fixture(params=["installed", "no_tiff_orientation"])
def pillow(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The installed Pillow, and (where it turns TIFFs itself, Pillow >= 13) the same
    Pillow made to behave like Pillow 10-12: stored size at open, pixels not turned."""
    if request.param == "no_tiff_orientation":
        cls = TiffImagePlugin.TiffImageFile
        if not hasattr(TiffImagePlugin, "ImageOps"):
            pytest.skip("this Pillow does not apply TIFF orientation itself")
        setup = cls._setup

        def old_setup(self: TiffImagePlugin.TiffImageFile) -> None:
            setup(self)
            self._size = self._tile_size  # type: ignore[attr-defined]

        class _NoTranspose:
            @staticmethod
            def exif_transpose(image: Image.Image, **kw: object) -> None:
                return None

        monkeypatch.setattr(cls, "_setup", old_setup)
        monkeypatch.setattr(TiffImagePlugin, "ImageOps", _NoTranspose)
    return str(request.param)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("shape", [(7, 12), (9, 9)])
def test_tiff_orientation_applied_once(
    tmp_path: Path, pillow: str, orientation: int, shape: tuple[int, int]
) -> None:
    stored = _stored(*shape)
    ref = _png_with_orientation(tmp_path / "ref.png", stored, orientation)
    tif = tmp_path / "t.tif"
    Image.fromarray(stored).save(tif, tiffinfo={274: orientation})
    raw = tmp_path / "raw.tif"  # our own baseline writer: no Pillow on the write side
    raw.write_bytes(images._baseline_tiff(stored, orientation))
    expected = orient_array(stored, orientation)
    np.testing.assert_array_equal(load_image(ref), expected)
    for p in (tif, raw):
        with Image.open(p) as im:
            assert im.getexif().get(0x0112) == orientation
        np.testing.assert_array_equal(load_image(p), expected)
        assert image_size(p) == expected.shape[:2] == image_size(ref)
        assert stored_size_and_orientation(p) == (shape, orientation)
        assert stored_size_and_orientation(p) == stored_size_and_orientation(ref)
        small = load_image(p, max_side=6)
        assert max(small.shape[:2]) == 6
        assert (small.shape[0] > small.shape[1]) == (expected.shape[0] > expected.shape[1])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_rgb_tiff_orientation_applied_once(tmp_path: Path, orientation: int) -> None:
    pytest.importorskip("cv2")
    stored8 = _stored()
    stored8[0, 1, 2] = 255  # values 0..255, so 16-bit * 257 scales back to exactly these
    stored16 = stored8.astype(np.uint16) * 257
    p = tmp_path / "t16.tif"
    p.write_bytes(images._baseline_tiff(stored16, orientation))
    ref = _png_with_orientation(tmp_path / "ref.png", stored8, orientation)
    assert images._is_16bit_color(Image.open(p))
    expected = orient_array(images._scale_to_uint8(stored16), orientation)
    np.testing.assert_array_equal(load_image(p), expected)
    np.testing.assert_array_equal(load_image(p), load_image(ref))
    assert image_size(p) == image_size(ref) == expected.shape[:2]
    assert stored_size_and_orientation(p) == ((7, 12), orientation)


def test_opencv_probe_matches_a_real_decode(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    stored = np.arange(4 * 5 * 3, dtype=np.uint16).reshape(4, 5, 3) * 900
    for o in range(2, 9):
        got = cv2.imdecode(
            np.frombuffer(images._baseline_tiff(stored, o), np.uint8), cv2.IMREAD_UNCHANGED
        )[:, :, ::-1]
        turned = got.shape == orient_array(stored, o).shape and np.array_equal(
            got, orient_array(stored, o)
        )
        assert turned == (o in images._opencv_orients_tiff())
        assert turned or np.array_equal(got, stored)


def test_convert_keeps_a_correct_displayed_frame_tiff_record(tmp_path: Path) -> None:
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:10, :20] = 255
    Image.fromarray(stored).save(tmp_path / "t6.tif", tiffinfo={274: 6})
    shown = load_image(tmp_path / "t6.tif")
    assert shown.shape[:2] == (60, 40)
    mask = shown[:, :, 0] > 0  # the block as the user sees it
    ds = Dataset(
        images=[ImageRecord(1, "t6.tif", 40, 60)],
        categories=[Category(1, "x")],
        annotations=[Annotation.from_mask(1, 1, 1, mask)],
    )
    rep = ImportReport()
    attach_images(ds, tmp_path, rep, "ann.json")
    assert rep.codes() == []
    assert [(im.width, im.height) for im in ds.images] == [(40, 60)]
    np.testing.assert_array_equal(ds.annotations[0].mask, mask)


# --------------------------------------------------------------------------- 16-bit memory


def _old_scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """The float64 implementation this module used before the lookup table."""
    v = values.astype(np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return np.zeros(values.shape, dtype=np.uint8)
    lo, hi = float(finite.min()), float(finite.max())
    if hi == lo:
        return np.full(values.shape, 0 if hi == 0 else 255, dtype=np.uint8)
    scaled = np.nan_to_num((v - lo) * (255.0 / (hi - lo)), nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def test_scale_to_uint8_same_result_as_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "_SCALE_CHUNK", 1000)  # several blocks in the float path
    rng = np.random.default_rng(7)
    cases: list[np.ndarray] = [
        rng.integers(0, 65536, (61, 47, 3), dtype=np.uint16),
        rng.integers(1000, 1511, (33, 20), dtype=np.uint16),  # halves: 255/510 * odd
        rng.integers(0, 65536, (40, 30, 4), dtype=np.uint16)[:, :, 2::-1],  # strided view
        np.array([[0, 65535]], np.uint16),
        np.full((3, 4), 9, np.uint16),
        np.zeros((3, 4), np.uint16),
        rng.integers(0, 256, (10, 9), dtype=np.uint8),
        rng.integers(-70000, 90000, (50, 41), dtype=np.int32),
        rng.integers(0, 40000, (50, 41), dtype=np.int32),
        rng.normal(0, 1e3, (57, 43)).astype(np.float32),
    ]
    f = rng.normal(0, 1, (45, 37))
    f[3, 4], f[5, 6], f[7, 8] = np.nan, np.inf, -np.inf
    cases += [f, np.full((2, 3), np.nan)]
    for a in cases:
        got = images._scale_to_uint8(a)
        assert got.dtype == np.uint8 and got.shape == a.shape
        np.testing.assert_array_equal(got, _old_scale_to_uint8(a))


def test_scale_to_uint8_same_result_on_shared_16bit_images(shared_data: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    d = shared_data / "image_edge_cases"
    for name in ("pillow_tiff_16bit_RGB.tiff", "pillow_tiff_16bit_RGBa.tiff"):
        raw = cv2.imread(str(d / name), cv2.IMREAD_UNCHANGED)[:, :, 2::-1]
        assert raw.dtype == np.uint16
        np.testing.assert_array_equal(images._scale_to_uint8(raw), _old_scale_to_uint8(raw))
    grey = np.asarray(Image.open(d / "pillow_16bit.cropped.tif"))
    np.testing.assert_array_equal(images._scale_to_uint8(grey), _old_scale_to_uint8(grey))


def _peak_bytes_per_pixel(path: Path) -> tuple[float, float]:
    """(peak traced bytes per pixel during load_image, of which the result's share)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = load_image(path)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    px = out.shape[0] * out.shape[1]
    return peak / px, out.nbytes / px


@pytest.mark.parametrize("kind", ["grey16", "rgb16"])
def test_16bit_decode_memory_per_pixel(tmp_path: Path, kind: str) -> None:
    """NumPy's and Python's allocations are traced (OpenCV's decoded array is a NumPy one).
    The result itself is 3 bytes/pixel; a 16-bit RGB decode is 6 more. Before the lookup
    table this was ~44 (grey) and ~127 (RGB) bytes/pixel."""
    cv2 = pytest.importorskip("cv2")
    h, w = 1000, 1500
    rng = np.random.default_rng(0)
    base = rng.integers(0, 65535, (h // 10, w // 10, 3), dtype=np.uint16)
    img16 = cv2.resize(base, (w, h), interpolation=cv2.INTER_NEAREST)
    p = tmp_path / f"{kind}.png"
    cv2.imwrite(str(p), img16 if kind == "rgb16" else img16[:, :, 0])
    load_image(p)  # imports and one-off probes outside the measurement
    peak, result = _peak_bytes_per_pixel(p)
    assert result == 3
    limit = 11 if kind == "rgb16" else 8
    assert peak < limit, f"{kind}: {peak:.1f} bytes/pixel at peak"
