"""Mask properties (SAM paper §5): concavity, relative size, centres, masks per image, the
stratified concavity sample, and `samstudio inspect stats`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samstudio.cli.main import main
from samstudio.core.inspect import (
    ImageMasks,
    MaskStats,
    concavity_sample,
    dataset_mask_stats,
    mask_concavity,
)
from samstudio.core.inspect.mask_stats import size_strata
from samstudio.core.masks import encode_rle


def _mask(h: int, w: int, *boxes: tuple[int, int, int, int]) -> np.ndarray:
    """(h, w) bool with the XYXY (exclusive ends) boxes filled."""
    m = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        m[y0:y1, x0:x1] = True
    return m


def test_filled_square_has_concavity_zero_even_at_the_image_edge() -> None:
    assert mask_concavity(_mask(30, 30, (5, 5, 15, 15))) == 0.0
    assert mask_concavity(_mask(10, 10, (0, 0, 10, 10))) == 0.0  # fills the whole image
    assert mask_concavity(_mask(5, 5, (2, 2, 3, 3))) == 0.0  # one pixel


def test_l_shape_concavity_is_one_seventh() -> None:
    # 10x10 square without its 5x5 lower-right corner: area 75, hull 100 - 12.5 = 87.5
    m = _mask(20, 20, (0, 0, 10, 10))
    m[5:10, 5:10] = False
    assert mask_concavity(m) == pytest.approx(1 - 75 / 87.5, abs=1e-6)


def test_ring_hull_is_the_outer_square() -> None:
    m = _mask(12, 12, (1, 1, 11, 11))
    m[4:8, 4:8] = False  # a 4x4 hole: area 84, hull still 10x10
    assert mask_concavity(m) == pytest.approx(0.16, abs=1e-6)


def test_concavity_takes_the_hull_of_all_parts_together() -> None:
    # two 2x2 squares 6 pixels apart: hull 10 x 2 = 20, area 8
    m = _mask(4, 12, (0, 0, 2, 2), (8, 0, 10, 2))
    assert mask_concavity(m) == pytest.approx(0.6, abs=1e-6)
    with pytest.raises(ValueError, match="empty"):
        mask_concavity(np.zeros((4, 4), dtype=bool))


def test_relative_size_centre_and_concavity_of_a_known_mask() -> None:
    # image 100 high, 200 wide; a 20 x 10 block spanning x 10..30, y 20..30
    rle = encode_rle(_mask(100, 200, (10, 20, 30, 30)))
    stats = dataset_mask_stats([ImageMasks("a.jpg", 100, 200, (rle,))])
    assert stats.n_images == 1 and stats.n_masks == 1
    assert stats.relative_size[0] == pytest.approx(math.sqrt(200 / 20000))
    assert stats.centres[0] == pytest.approx([20 / 200, 25 / 100])
    assert stats.concavity[0] == 0.0
    grid = stats.centre_histogram()
    assert grid.shape == (20, 20) and grid.sum() == pytest.approx(1.0)
    assert grid[5, 2] == 1.0  # row = floor(0.25 * 20), column = floor(0.1 * 20)


def test_centres_of_several_masks_share_the_grid() -> None:
    masks = (
        encode_rle(_mask(40, 40, (0, 0, 2, 2))),  # centre (1, 1) -> (0.025, 0.025)
        encode_rle(_mask(40, 40, (38, 38, 40, 40))),  # centre (39, 39) -> (0.975, 0.975)
        encode_rle(_mask(40, 40, (37, 2, 40, 4))),  # centre (38.5, 3) -> (0.9625, 0.075)
    )
    stats = dataset_mask_stats([ImageMasks("x.png", 40, 40, masks)])
    grid = stats.centre_histogram()
    assert grid[0, 0] == grid[19, 19] == grid[1, 19] == pytest.approx(1 / 3)
    assert np.count_nonzero(grid) == 3


def test_masks_per_image_bins_empty_masks_and_box_only() -> None:
    one = encode_rle(_mask(8, 8, (1, 1, 3, 3)))
    empty = encode_rle(np.zeros((8, 8), dtype=bool))
    counts = [0, 1, 2, 10, 11, 50, 51, 100, 101, 200, 201]
    images = [ImageMasks(f"{n}.jpg", 8, 8, (one,) * n) for n in counts]
    images.append(ImageMasks("e.jpg", 8, 8, (empty, one, empty), box_only=2))
    stats = dataset_mask_stats(images)
    assert stats.n_images == 12
    assert stats.n_masks == sum(counts) + 1
    assert stats.empty_masks == 2 and stats.box_only == 2
    assert stats.images_without_masks == 1
    assert stats.masks_per_image_histogram() == [
        ("1", 2),
        ("2-10", 2),
        ("11-50", 2),
        ("51-100", 2),
        ("101-200", 2),
        (">200", 1),
    ]
    assert stats.mean_masks_per_image == pytest.approx((sum(counts) + 1) / 12)
    assert stats.median_masks_per_image == pytest.approx((11 + 50) / 2)
    doc = stats.to_json()
    assert doc["empty_masks_skipped"] == 2 and doc["box_only_skipped"] == 2
    assert doc["masks_per_image"]["histogram"][">200"] == 1
    assert sum(doc["relative_size"]["histogram"]) == stats.n_masks
    assert "empty" in stats.table() and "mean 60.67" in stats.table()


def _stats_with_sizes(per_stratum: list[int]) -> MaskStats:
    mids = [0.025, 0.075, 0.15, 0.3, 0.7]  # inside the default strata
    sizes = np.concatenate([np.full(n, m) for n, m in zip(per_stratum, mids)])
    n = sizes.size
    return MaskStats(
        name="synthetic",
        n_images=1,
        masks_per_image=np.array([n]),
        relative_size=sizes,
        concavity=np.arange(n, dtype=np.float64) / n,  # identifies each mask
        centres=np.full((n, 2), 0.5),
    )


def test_stratified_sample_draws_equal_counts_from_every_size_bin() -> None:
    stats = _stats_with_sizes([30, 7, 12, 0, 3])
    sample = concavity_sample(stats, seed=1)
    assert sample.per_bin == 3
    strata = size_strata(stats.relative_size[sample.indices])
    assert np.bincount(strata, minlength=5).tolist() == [3, 3, 3, 0, 3]
    assert len(set(sample.indices.tolist())) == 12  # without replacement
    assert np.array_equal(sample.values, stats.concavity[sample.indices])
    assert concavity_sample(stats, per_bin=50, seed=1).per_bin == 3  # capped
    assert concavity_sample(stats, per_bin=2, seed=1).values.size == 8
    again = concavity_sample(stats, seed=1)
    other = concavity_sample(stats, seed=2)
    assert np.array_equal(again.indices, sample.indices)
    assert not np.array_equal(other.indices, sample.indices)


def test_size_strata_edges() -> None:
    sizes = np.array([0.0, 0.049, 0.05, 0.39, 0.4, 1.0])
    assert size_strata(sizes).tolist() == [0, 0, 1, 3, 4, 4]


def test_mask_of_the_wrong_size_is_an_error_naming_the_image() -> None:
    rle = encode_rle(np.ones((5, 10), dtype=bool))
    with pytest.raises(ValueError, match=r"image b\.jpg, annotation 0.*\[10, 5\]"):
        dataset_mask_stats([ImageMasks("b.jpg", 10, 5, (rle,))])


def test_truncated_file_is_a_value_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "cut.json"
    bad.write_text('{"images": [{"id": 1, "file_na')
    with pytest.raises(ValueError, match="cut.json.*not valid JSON"):
        dataset_mask_stats(bad)


def test_real_coco_and_sa1b_files(shared_data: Path) -> None:
    coco = dataset_mask_stats(
        shared_data / "coco_instance_seg/labelme2coco_output/annotations.json"
    )
    assert coco.n_images == 3 and coco.n_masks == 12
    assert coco.masks_per_image.sum() == 12
    assert np.all((coco.relative_size > 0) & (coco.relative_size <= 1))
    assert np.all((coco.concavity >= 0) & (coco.concavity < 1))
    assert np.all((coco.centres >= 0) & (coco.centres <= 1))
    # polygons of people and bottles are not all convex
    assert coco.concavity.max() > 0.05

    sa1b = dataset_mask_stats(shared_data / "sa1b_format/datumaro_fixture")
    assert sa1b.n_images == 2 and sa1b.n_masks == 1
    assert sa1b.import_errors == 1  # b.json's RLE size is transposed and refused
    # a.json: area 4 on a 10 x 5 image
    assert sa1b.relative_size[0] == pytest.approx(math.sqrt(4 / 50))

    results = shared_data / "coco_instance_seg/cocoapi_results"
    fake = dataset_mask_stats(results / "instances_val2014_fakesegm100_results.json")
    assert fake.n_masks + fake.empty_masks == 734
    assert fake.masks_per_image.sum() == fake.n_masks


def _not_blank(path: Path) -> None:
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 300 and im.height > 200
        pixels = np.asarray(im.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def test_cli_stats_writes_json_and_plots(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coco = shared_data / "coco_instance_seg/labelme2coco_output/annotations.json"
    sa1b = shared_data / "sa1b_format/datumaro_fixture"
    out, plots = tmp_path / "stats.json", tmp_path / "plots"
    rc = main(["inspect", "stats", str(coco), str(sa1b), "--json", str(out), "--plots", str(plots)])
    captured = capsys.readouterr()
    printed = captured.out
    assert rc == 1  # b.json's transposed RLE is not read; the figures are of the rest
    assert "1 annotation(s) could not be read" in captured.err
    assert "error: " in printed and "b.json, image 2, annotation 1: RLE size" in printed
    assert str(coco) in printed and "masks per image" in printed
    doc = json.loads(out.read_text())
    assert [d["images"] for d in doc["datasets"]] == [3, 2]
    assert [d["masks"] for d in doc["datasets"]] == [12, 1]
    assert doc["datasets"][0]["concavity"]["sampled"] > 0
    _not_blank(plots / "mask_properties.png")
    _not_blank(plots / "centres.png")


def test_cli_stats_truncated_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "truncated.json"
    bad.write_text('{"images": [{"id": 1, "width": 4, "height": 4, "file_name": "a')
    rc = main(["inspect", "stats", str(bad), "--json", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and str(bad) in err
    assert not (tmp_path / "o.json").exists()
