"""Images in natural order (as labelme and CVAT list them): numbers by value, case
ignored, per path component, ties by the raw path; the project lists and scans so."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from samstudio.core.document import Project
from samstudio.core.document.project import scan_images
from samstudio.core.natural_order import natural_key

EXPECTED = [
    "Beach.png",
    "beach_2.png",
    "img7/a.png",
    "img10/a.png",
    "img10/b2.png",
    "img10/b10.png",
    "img_1.png",
    "img_2.png",
    "img_10.png",
    "img_100.png",
    "IMG_101.png",
]


def test_natural_key_orders_numbers_by_value_and_ignores_case() -> None:
    shuffled = list(EXPECTED)
    random.Random(3).shuffle(shuffled)
    assert sorted(shuffled, key=natural_key) == EXPECTED


def test_ties_are_broken_by_the_raw_path() -> None:
    tied = ["img7.png", "a.png", "img007.png", "A.png", "img07.png"]
    assert sorted(tied, key=natural_key) == [
        "A.png",
        "a.png",
        "img007.png",
        "img07.png",
        "img7.png",
    ]
    assert sorted(reversed(tied), key=natural_key) == sorted(tied, key=natural_key)


def _reference_key(path: str) -> tuple:
    """The rule as stated: per component, case-folded text and numbers by value
    alternating; then the raw path."""
    return (
        tuple(
            tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(re.split("([0-9]+)", c)))
            for c in path.split("/")
        ),
        path,
    )


@given(st.lists(st.text("aB_.-0123456789/é", min_size=1, max_size=10), max_size=8))
def test_the_key_sorts_as_the_rule_says(paths: list[str]) -> None:
    assert sorted(paths, key=natural_key) == sorted(paths, key=_reference_key)


def test_a_component_is_compared_before_the_next() -> None:
    # "a/z" before "a_b/a": the folder "a" sorts before the name "a_b"
    assert sorted(["a_b/a.png", "a/z.png", "a2/a.png"], key=natural_key) == [
        "a/z.png",
        "a2/a.png",
        "a_b/a.png",
    ]


def test_project_scan_and_images_list_in_natural_order(tmp_path: Path) -> None:
    folder = tmp_path / "camera"
    pixels = np.zeros((8, 8, 3), np.uint8)
    for name in reversed(EXPECTED):  # created out of order
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / name)
    assert [p.as_posix() for p in scan_images(folder)] == EXPECTED
    with Project.create(folder) as project:
        assert [img.path for img in project.images()] == EXPECTED
        # a status filter keeps the order; images added later take their place in it
        project.set_image_status(project.images()[8].id, "done")
        project.set_image_status(project.images()[1].id, "done")
        assert [img.path for img in project.images(status="done")] == [
            "beach_2.png",
            "img_10.png",
        ]
        Image.fromarray(pixels).save(folder / "img_3.png")
        assert project.rescan() == 1
        paths = [img.path for img in project.images()]
        assert paths.index("img_3.png") == paths.index("img_2.png") + 1
