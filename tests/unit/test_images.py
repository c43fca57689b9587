"""Image loading: formats, modes, EXIF orientation, 16-bit, sizes, hashes, errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samstudio.core import images
from samstudio.core.images import (
    ImageLoadError,
    content_hash,
    image_size,
    load_image,
    load_image_bytes,
    orient_array,
)


def _save(tmp_path: Path, name: str, img: Image.Image, **kw: object) -> Path:
    p = tmp_path / name
    img.save(p, **kw)
    return p


def _gradient(w: int = 40, h: int = 30) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 256], axis=2).astype(
        np.uint8
    )


@pytest.mark.parametrize(
    "fmt,suffix", [("PNG", ".png"), ("TIFF", ".tif"), ("BMP", ".bmp"), ("WEBP", ".webp")]
)
def test_lossless_formats_load_exactly(tmp_path: Path, fmt: str, suffix: str) -> None:
    rgb = _gradient()
    kw = {"lossless": True} if fmt == "WEBP" else {}
    p = _save(tmp_path, "img" + suffix, Image.fromarray(rgb), format=fmt, **kw)
    out = load_image(p)
    assert out.dtype == np.uint8 and out.shape == (30, 40, 3)
    np.testing.assert_array_equal(out, rgb)
    assert image_size(p) == (30, 40)


def test_jpeg_loads_close(tmp_path: Path) -> None:
    rgb = _gradient()
    p = _save(tmp_path, "img.jpg", Image.fromarray(rgb), quality=95)
    out = load_image(p)
    assert out.shape == (30, 40, 3)
    assert np.abs(out.astype(int) - rgb).mean() < 4


def test_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 6), c) for c in [(255, 0, 0), (0, 0, 255)]]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    out = load_image(p)
    assert out.shape == (6, 8, 3)
    assert tuple(out[0, 0]) == (255, 0, 0)


def test_grey_grey_alpha_rgba_palette_cmyk(tmp_path: Path) -> None:
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    out = load_image(_save(tmp_path, "l.png", Image.fromarray(grey)))
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))
    la = Image.fromarray(np.stack([grey, np.zeros_like(grey)], axis=2), "LA")
    out = load_image(_save(tmp_path, "la.png", la))
    np.testing.assert_array_equal(out[:, :, 0], grey)  # alpha dropped, colour kept as stored
    rgba = np.dstack([_gradient(8, 6), np.full((6, 8), 7, np.uint8)])
    out = load_image(_save(tmp_path, "rgba.png", Image.fromarray(rgba, "RGBA")))
    np.testing.assert_array_equal(out, rgba[:, :, :3])
    pal = Image.fromarray(_gradient(8, 6)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    out = load_image(_save(tmp_path, "p.png", pal))
    np.testing.assert_array_equal(out, np.asarray(pal.convert("RGB")))
    cmyk = Image.new("CMYK", (8, 6), (0, 255, 255, 0))  # pure red in CMYK
    out = load_image(_save(tmp_path, "c.tif", cmyk))
    assert tuple(out[0, 0]) == (255, 0, 0)


def test_16bit_grey_scaled_by_real_range(tmp_path: Path) -> None:
    values = np.linspace(1000, 3000, 48).reshape(6, 8).astype(np.uint16)
    p = _save(tmp_path, "g16.png", Image.fromarray(values))
    out = load_image(p)[:, :, 0]
    assert out.min() == 0 and out.max() == 255
    expected = np.rint((values.astype(float) - 1000) * 255 / 2000).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)


def test_16bit_rgb_keeps_low_byte_detail(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    # Values 0..255 in a 16-bit file: Pillow's 8-bit view would be all black.
    rgb16 = (_gradient(8, 6).astype(np.uint16)) + 0
    p = tmp_path / "rgb16.png"
    cv2.imwrite(str(p), rgb16[:, :, ::-1])
    out = load_image(p)
    assert out.max() == 255
    np.testing.assert_array_equal(out, images._scale_to_uint8(rgb16))


def test_constant_16bit_image(tmp_path: Path) -> None:
    out = load_image(_save(tmp_path, "c16.png", Image.fromarray(np.full((4, 5), 700, np.uint16))))
    assert (out == 255).all()
    out = load_image(_save(tmp_path, "z16.png", Image.fromarray(np.zeros((4, 5), np.uint16))))
    assert (out == 0).all()


@pytest.mark.parametrize("orientation", range(0, 9))
def test_exif_orientation_gives_displayed_frame(tmp_path: Path, orientation: int) -> None:
    stored = _gradient(12, 7)
    img = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = _save(tmp_path, f"o{orientation}.png", img, exif=exif)
    out = load_image(p)
    expected = orient_array(stored, orientation)  # 0 is invalid: treated as 1 (as stored)
    np.testing.assert_array_equal(out, expected)
    assert image_size(p) == out.shape[:2]
    assert out.shape[:2] == ((12, 7) if orientation >= 5 else (7, 12))


def test_orient_array_matches_pillow() -> None:
    a = _gradient(9, 5)
    for o, t in images._TRANSPOSE_FOR_ORIENTATION.items():
        np.testing.assert_array_equal(
            orient_array(a, o), np.asarray(Image.fromarray(a).transpose(t))
        )


def test_max_side_downscales_keeping_aspect(tmp_path: Path) -> None:
    p = _save(tmp_path, "big.jpg", Image.fromarray(_gradient(400, 300)))
    out = load_image(p, max_side=100)
    assert out.shape == (75, 100, 3)
    assert load_image(p, max_side=1000).shape == (300, 400, 3)  # never upscaled
    with pytest.raises(ValueError):
        load_image(p, max_side=0)


def test_large_jpeg_opens_only_as_downscaled_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 1600x1200 JPEG stands in for a 20000x15000 one: lower the full-decode limit so
    # that the file is "too large to decode", and check that the draft path still works.
    p = _save(tmp_path, "huge.jpg", Image.fromarray(np.tile(_gradient(160, 120), (10, 10, 1))))
    monkeypatch.setattr(images, "MAX_FULL_DECODE_PIXELS", 1600 * 1200 // 10)
    with pytest.raises(ImageLoadError, match="too large to decode at full resolution"):
        load_image(p)
    view = load_image(p, max_side=256)
    assert view.shape == (192, 256, 3)
    png = _save(tmp_path, "huge.png", Image.new("RGB", (1600, 1200)))
    with pytest.raises(ImageLoadError, match="only JPEG"):
        load_image(png, max_side=256)


def test_image_beyond_largest_supported_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = _save(tmp_path, "big.png", Image.new("RGB", (300, 200)))
    monkeypatch.setattr(images, "MAX_PIXELS", 300 * 200 - 1)
    with pytest.raises(ImageLoadError, match=r"big\.png.*largest supported image"):
        image_size(p)


def test_content_hash_ignores_name_and_folder(tmp_path: Path) -> None:
    data = io.BytesIO()
    Image.fromarray(_gradient()).save(data, format="PNG")
    a = tmp_path / "a.png"
    (tmp_path / "sub").mkdir()
    b = tmp_path / "sub" / "renamed.png"
    a.write_bytes(data.getvalue())
    b.write_bytes(data.getvalue())
    assert content_hash(a) == content_hash(b) == images.bytes_hash(data.getvalue())
    b.write_bytes(data.getvalue() + b"\0")
    assert content_hash(a) != content_hash(b)


def test_errors_name_file_and_reason(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match=r"missing\.png: no such file"):
        load_image(tmp_path / "missing.png")
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageLoadError, match=r"notes\.jpg: not an image file"):
        load_image(bad)
    with pytest.raises(ImageLoadError, match="is a folder"):
        load_image(tmp_path)
    data = io.BytesIO()
    Image.fromarray(_gradient(200, 200)).save(data, format="PNG")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    with pytest.raises(ImageLoadError, match=r"cut\.png: corrupt or truncated"):
        load_image(truncated)
    with pytest.raises(ImageLoadError, match="embedded"):
        load_image_bytes(b"\x89PNG garbage", "embedded")
