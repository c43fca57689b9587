"""What an export takes (`ExportScope`): unreviewed auto-segment proposals stay out unless
asked for; every image, the images with masks, or the images marked done; the result
counts what went out and what the scope left out (review of 2026-12-07: 620 unreviewed
proposals went into a COCO file as annotations, and images nobody opened became empty
negatives)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from samstudio.core.document import Project
from samstudio.core.document.counts import export_counts
from samstudio.core.document.exchange import ExportScope, export_project


@pytest.fixture
def project(tmp_path: Path):  # noqa: ANN201
    """Four images: a (2 masks, done), b (1 mask + 2 proposals), c (1 proposal only), d
    (nothing)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name in "abcd":
        Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(folder / f"{name}.png")
    mask = np.zeros((40, 60), bool)
    mask[5:20, 10:30] = True
    with Project.create(folder) as p:
        cat = p.add_category("cell").id
        a, b, c, _ = (im.id for im in p.images())
        p.add_annotation(a, mask, cat)
        p.add_annotation(a, ~mask, cat)
        p.set_image_status(a, "done")
        p.add_annotation(b, mask, cat)
        for image in (b, b, c):
            p.add_annotation(image, mask, cat, source="proposal")
        yield p


def load(path: Path) -> COCO:
    coco = COCO(str(path))
    for ann in coco.dataset["annotations"]:
        assert coco.annToMask(ann).sum() == ann["area"]
    return coco


def test_counts_for_the_dialog(project) -> None:  # noqa: ANN001
    assert export_counts(project) == {"images": 4, "annotated": 2, "done": 1, "proposals": 3}


def test_proposals_stay_out_unless_asked_for(project, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "coco.json"
    result = export_project(project, "coco-rle", out)
    coco = load(out)
    assert len(coco.dataset["annotations"]) == 3 and len(coco.dataset["images"]) == 4
    assert {a["samstudio_source"] for a in coco.dataset["annotations"]} == {"manual"}
    assert (result.images, result.annotations, result.proposals_left_out) == (4, 3, 3)
    assert result.problems == [] and "3 auto-segment proposal(s)" in result.notes()[0]
    files, problems = result  # unpacks as before
    assert files == [out] and problems == []

    result = export_project(project, "coco-rle", out, scope=ExportScope(proposals=True))
    assert len(load(out).dataset["annotations"]) == 6 and result.proposals_left_out == 0
    assert result.notes() == []


@pytest.mark.parametrize("fmt", ["coco-rle", "coco-polygon", "sa1b"])
def test_only_the_images_with_masks_or_marked_done(project, tmp_path: Path, fmt: str) -> None:  # noqa: ANN001
    def names(out: Path) -> list[str]:
        if fmt == "sa1b":
            return sorted(
                json.loads(f.read_text())["image"]["file_name"] for f in out.glob("*.json")
            )
        return sorted(im["file_name"] for im in load(out).dataset["images"])

    out = tmp_path / ("out" if fmt == "sa1b" else "out.json")
    result = export_project(project, fmt, out, scope=ExportScope(images="annotated"))
    assert names(out) == ["a.png", "b.png"]  # c has only a proposal: not annotated
    assert (result.images, result.annotations, result.images_left_out) == (2, 3, 2)
    assert "2 image(s) outside the chosen images" in result.notes()[-1]

    out = tmp_path / ("done" if fmt == "sa1b" else "done.json")
    result = export_project(project, fmt, out, scope=ExportScope(images="done"))
    assert names(out) == ["a.png"]
    assert (result.images, result.annotations, result.images_left_out) == (1, 2, 3)
    assert result.problems == []  # b's mask is outside the scope, not a problem

    # with proposals, c is an image with masks
    out = tmp_path / ("all" if fmt == "sa1b" else "all.json")
    scope = ExportScope(images="annotated", proposals=True)
    assert export_project(project, fmt, out, scope=scope).images == 3
    assert names(out) == ["a.png", "b.png", "c.png"]


def test_a_scope_that_is_not_one(project, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="all, annotated or done"):
        export_project(project, "coco-rle", tmp_path / "x.json", scope=ExportScope(images="new"))  # type: ignore[arg-type]
