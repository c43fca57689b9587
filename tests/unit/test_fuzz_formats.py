"""Fuzzing: mutated COCO / SA-1B / labelme documents and corrupted image bytes.

Properties, for every mutated input:
- an import returns (Dataset, ImportReport) or raises our ``FormatError``; nothing else;
- no annotation disappears silently: each input annotation is imported or named by an issue;
- whatever was imported exports to COCO that pycocotools reads, with the same masks;
- image bytes decode to (H, W, 3) uint8 or raise ``ImageLoadError``.

CI runs ``FUZZ_EXAMPLES`` examples per target (small); ``benchmarks/fuzz_formats.py``
runs the same targets with >= 10,000 documents in total.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from samstudio.core.formats.coco import coco_document, read_coco, read_coco_results
from samstudio.core.formats.labelme import read_labelme
from samstudio.core.formats.records import Dataset, FormatError, ImportReport
from samstudio.core.formats.sa1b import read_sa1b
from samstudio.core.images import ImageLoadError, load_image_bytes
from samstudio.core.masks import encode_rle

FUZZ_EXAMPLES = int(os.environ.get("SAMSTUDIO_FUZZ_EXAMPLES", "60"))

# ------------------------------------------------------------------------ seed inputs


def _mask(h: int, w: int, box: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((h, w), bool)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = True
    return m


def seed_coco() -> dict[str, Any]:
    m = _mask(12, 16, (2, 3, 9, 8))
    unc = mask_utils.frPyObjects([[1, 1, 6, 1, 6, 6, 1, 6]], 12, 16)[0]
    flat = mask_utils.decode(unc).flatten(order="F")
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return {
        "info": {"description": "seed"},
        "images": [
            {"id": 1, "file_name": "a/one.jpg", "width": 16, "height": 12},
            {"id": 2, "file_name": "two.jpg", "width": 10, "height": 8},
        ],
        "categories": [{"id": 1, "name": "a", "supercategory": ""}, {"id": 4, "name": "b"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": encode_rle(m),
                "area": 35,
                "bbox": [2, 3, 7, 5],
                "iscrowd": 0,
                "predicted_iou": 0.9,
                "point_coords": [[3, 4]],
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 4,
                "segmentation": [[1, 1, 6, 1, 6, 6, 1, 6], [8, 8, 12, 8, 12, 11]],
                "area": 30,
                "bbox": [1, 1, 11, 10],
                "iscrowd": 0,
            },
            {
                "id": 3,
                "image_id": 1,
                "category_id": 1,
                "segmentation": {"size": [12, 16], "counts": [int(r) for r in runs]},
                "iscrowd": 1,
            },
            {
                "id": 4,
                "image_id": 2,
                "category_id": 4,
                "segmentation": [],
                "bbox": [1, 1, 3, 3],
                "area": 9,
            },
        ],
    }


def seed_sa1b() -> dict[str, Any]:
    m = _mask(9, 14, (4, 1, 11, 6))
    return {
        "image": {"image_id": 5, "width": 14, "height": 9, "file_name": "sa_5.jpg"},
        "annotations": [
            {
                "id": 1,
                "segmentation": encode_rle(m),
                "bbox": [4, 1, 7, 5],
                "area": 35,
                "predicted_iou": 0.8,
                "stability_score": 0.97,
                "crop_box": [0, 0, 14, 9],
                "point_coords": [[6, 3]],
            },
            {
                "id": 2,
                "segmentation": encode_rle(~m),
                "bbox": [0, 0, 14, 9],
                "area": 91,
                "predicted_iou": 0.7,
                "stability_score": 0.9,
                "crop_box": [0, 0, 14, 9],
                "point_coords": [[0, 0]],
            },
        ],
    }


def seed_labelme() -> dict[str, Any]:
    buf = io.BytesIO()
    Image.fromarray(np.full((6, 8), 255, np.uint8)).save(buf, format="PNG")
    import base64

    patch = base64.b64encode(buf.getvalue()).decode()
    return {
        "version": "5.7.0",
        "flags": {},
        "shapes": [
            {
                "label": "poly",
                "points": [[1, 1], [15, 2], [9, 11]],
                "group_id": None,
                "shape_type": "polygon",
                "flags": {},
            },
            {
                "label": "box",
                "points": [[2, 2], [7, 9]],
                "group_id": 1,
                "shape_type": "rectangle",
                "flags": {},
            },
            {
                "label": "box",
                "points": [[10, 2], [12, 4]],
                "group_id": 1,
                "shape_type": "rectangle",
                "flags": {},
            },
            {
                "label": "round",
                "points": [[8, 6], [8, 9]],
                "group_id": None,
                "shape_type": "circle",
                "flags": {},
            },
            {
                "label": "m",
                "points": [[3, 3], [10, 8]],
                "group_id": None,
                "shape_type": "mask",
                "flags": {},
                "mask": patch,
            },
            {
                "label": "pt",
                "points": [[3, 3]],
                "group_id": None,
                "shape_type": "point",
                "flags": {},
            },
        ],
        "imagePath": "missing.jpg",
        "imageData": None,
        "imageHeight": 12,
        "imageWidth": 16,
    }


def seed_images() -> list[bytes]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    out = []
    for fmt, mode in [
        ("PNG", "RGB"),
        ("JPEG", "RGB"),
        ("GIF", "P"),
        ("TIFF", "RGB"),
        ("BMP", "RGB"),
        ("WEBP", "RGB"),
        ("PNG", "LA"),
        ("TIFF", "I;16"),
    ]:
        img = Image.fromarray(rgb)
        if mode == "P":
            img = img.convert("P")
        elif mode == "LA":
            img = img.convert("LA")
        elif mode == "I;16":
            img = Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 200)
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        out.append(buf.getvalue())
    return out


# -------------------------------------------------------------------------- mutations

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 40),
    st.sampled_from([-(2**31), 2**31, 2**63, 10**18, 0, -1, 100_001]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(
        ["", "0", "b1", "`04n0", "polygon", "mask", "circle", "line", "rectangle", "!!", "\x00"]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(
            st.sampled_from(["size", "counts", "id", "x", "points", "label"]), inner, max_size=4
        ),
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        node = node[k]
    return node


@st.composite
def mutated(draw: st.DrawFn, seed: dict[str, Any]) -> Any:
    doc: Any = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "replace", "delete", "duplicate", "numeric"]))
        if not path:
            if op == "replace":
                doc = draw(json_values)
            continue
        parent, key = _get(doc, path[:-1]), path[-1]
        if op == "delete":
            del parent[key]
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif (
            op == "numeric"
            and isinstance(parent[key], (int, float))
            and not isinstance(parent[key], bool)
        ):
            parent[key] = parent[key] * draw(st.sampled_from([-1, 0, 2, 1000, 0.5, 1.5, math.inf]))
        else:
            parent[key] = draw(json_values)
    return doc


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(seed_images())))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "zero"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            data[pos : pos + 8] = bytes(min(8, len(data) - pos))
    return bytes(data)


# ---------------------------------------------------------------------------- checks


def check_import(doc: Any, reader: str, folder: Path) -> Dataset | None:
    """Run one importer; assert the properties in the module docstring."""
    try:
        if reader == "coco":
            ds, report = read_coco(doc, "fuzz.json")
        elif reader == "coco-results":
            ds, report = read_coco_results(doc, "fuzz.json")
        elif reader == "sa1b":
            ds, report = read_sa1b(doc, "fuzz.json")
        else:
            ds, report = read_labelme(doc, folder / "fuzz.json")
    except FormatError as exc:
        assert "fuzz.json" in str(exc)
        return None
    assert isinstance(report, ImportReport)
    _check_nothing_silently_dropped(doc, reader, ds, report)
    _check_exports_through_pycocotools(ds)
    return ds


def _check_nothing_silently_dropped(
    doc: Any, reader: str, ds: Dataset, report: ImportReport
) -> None:
    if reader == "labelme":
        shapes = doc.get("shapes") if isinstance(doc, dict) else None
        if ds.images and isinstance(shapes, list):
            named = {i.annotation_id for i in report.issues}
            kept = {n for a in ds.annotations for n in a.extra.get("labelme_shapes", [])}
            for n in range(len(shapes)):
                assert n in kept or any(str(x).startswith(f"shape #{n}") for x in named), n
        return
    anns = doc.get("annotations") if isinstance(doc, dict) else doc
    if not isinstance(anns, list):
        return
    imported = {a.id for a in ds.annotations}
    mentioned = {i.annotation_id for i in report.issues}
    image_refused = any(i.code == "bad_image" and i.severity == "error" for i in report.issues)
    for raw in anns:
        if (
            isinstance(raw, dict)
            and "id" in raw
            and isinstance(raw["id"], int)
            and not isinstance(raw["id"], bool)
        ):
            assert raw["id"] in imported or raw["id"] in mentioned or image_refused, raw["id"]


def _check_exports_through_pycocotools(ds: Dataset) -> None:
    for style in ("rle", "polygon"):
        doc = coco_document(ds, style)  # type: ignore[arg-type]
        coco = COCO()
        coco.dataset = doc
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        for ann in ds.annotations:
            if ann.segmentation is None:
                continue
            back = coco.annToMask(coco.anns[ann.id]).astype(bool)
            mask = ann.mask
            assert mask is not None and back.shape == mask.shape
            if style == "rle" or ann.iscrowd:
                np.testing.assert_array_equal(back, mask)


def check_image_bytes(data: bytes) -> None:
    try:
        arr = load_image_bytes(data, "fuzz.bin")
    except ImageLoadError as exc:
        assert "fuzz.bin" in str(exc)
        return
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3


TARGETS = {
    "coco": (seed_coco, "coco"),
    "coco-results": (lambda: seed_coco()["annotations"], "coco-results"),
    "sa1b": (seed_sa1b, "sa1b"),
    "labelme": (seed_labelme, "labelme"),
}


def fuzz_settings(n: int) -> settings:
    return settings(
        max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )


def make_doc_test(target: str, n: int, folder: Path) -> Any:
    seed, reader = TARGETS[target]

    @fuzz_settings(n)
    @given(mutated(seed()))
    def run(doc: Any) -> None:
        check_import(doc, reader, folder)

    return run


def make_image_test(n: int) -> Any:
    @fuzz_settings(n)
    @given(corrupted())
    def run(data: bytes) -> None:
        check_image_bytes(data)

    return run


# ----------------------------------------------------------------------------- tests


def test_seeds_import_cleanly(tmp_path: Path) -> None:
    for target, (seed, reader) in TARGETS.items():
        ds = check_import(seed(), reader, tmp_path)
        assert ds is not None and ds.annotations, target
    for data in seed_images():
        check_image_bytes(data)


def test_fuzz_coco(tmp_path: Path) -> None:
    make_doc_test("coco", FUZZ_EXAMPLES, tmp_path)()


def test_fuzz_coco_results(tmp_path: Path) -> None:
    make_doc_test("coco-results", FUZZ_EXAMPLES // 2, tmp_path)()


def test_fuzz_sa1b(tmp_path: Path) -> None:
    make_doc_test("sa1b", FUZZ_EXAMPLES, tmp_path)()


def test_fuzz_labelme(tmp_path: Path) -> None:
    make_doc_test("labelme", FUZZ_EXAMPLES, tmp_path)()


def test_fuzz_image_bytes() -> None:
    make_image_test(FUZZ_EXAMPLES)()
