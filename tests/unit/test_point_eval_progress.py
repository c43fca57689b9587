"""`point_eval.iter_evaluate`: the §D.1 evaluation step by step, with progress and stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
from test_point_eval import RegionSegmenter

from samstudio.core import point_eval


def _scenes() -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """A label image and three samples: two masks, none (skipped), then three masks."""
    labels = np.zeros((40, 60), np.int32)
    labels[5:25, 5:30] = 1
    labels[10:35, 35:55] = 2
    labels[28:38, 2:20] = 3
    image = np.zeros((40, 60, 3), np.uint8)
    empty = np.zeros((0, 40, 60), bool)
    return labels, [
        (image, np.stack([labels == 1, labels == 2])),
        (image, empty),
        (image, np.stack([labels == 3, labels == 2, labels == 1])),
    ]


def test_progress_after_each_mask_and_each_image() -> None:
    labels, samples = _scenes()
    steps = list(point_eval.iter_evaluate(RegionSegmenter(labels), samples, points=(1, 2)))
    assert [(s.images, s.masks, s.image_done) for s in steps[:-1]] == [
        (0, 1, False),
        (1, 2, True),
        (1, 3, False),
        (1, 4, False),
        (2, 5, True),
    ]
    assert all(s.total_images == 3 and s.report is None for s in steps[:-1])
    last = steps[-1]
    assert last.report is not None and (last.images, last.masks) == (2, 5)
    assert (last.report.n_images, last.report.n_masks) == (2, 5)


def test_total_is_unknown_for_a_generator_of_samples() -> None:
    labels, samples = _scenes()

    def lazily() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield from samples

    steps = list(point_eval.iter_evaluate(RegionSegmenter(labels), lazily(), points=(1,)))
    assert {s.total_images for s in steps} == {None}
    assert steps[-1].report is not None


@pytest.mark.parametrize(("first", "seed"), [("center", 0), ("random", 7)])
def test_same_figures_and_progress_as_evaluate(first: str, seed: int) -> None:
    labels, samples = _scenes()
    calls: list[tuple[int, int]] = []
    expected = point_eval.evaluate(
        RegionSegmenter(labels, rank=(1, 0, 2)),
        samples,
        first=first,
        seed=seed,
        progress=lambda i, m: calls.append((i, m)),
    )
    steps = list(
        point_eval.iter_evaluate(
            RegionSegmenter(labels, rank=(1, 0, 2)), samples, first=first, seed=seed
        )
    )
    report = steps[-1].report
    assert report is not None
    assert report.to_json() == expected.to_json()
    assert report.table() == expected.table()
    assert [(s.images, s.masks) for s in steps if s.image_done] == calls == [(1, 2), (2, 5)]


def test_cancel_stops_before_the_next_mask_without_a_report() -> None:
    labels, samples = _scenes()
    seg = RegionSegmenter(labels)
    stop = threading.Event()
    steps = []
    calls = -1
    for step in point_eval.iter_evaluate(seg, samples, points=(1, 3), cancel=stop.is_set):
        steps.append(step)
        if step.masks == 3:
            stop.set()
            calls = len(seg.calls)
    assert [s.masks for s in steps] == [1, 2, 3]  # no half result: no report step
    assert all(s.report is None for s in steps)
    assert len(seg.calls) == calls  # nothing was decoded after the cancel


def test_cancel_before_the_start_encodes_nothing() -> None:
    labels, samples = _scenes()
    seg = RegionSegmenter(labels)
    encoded: list[tuple[int, int]] = []
    real_encode = seg.encode
    seg.encode = lambda image: encoded.append(image.shape[:2]) or real_encode(image)  # type: ignore[method-assign]
    assert list(point_eval.iter_evaluate(seg, samples, cancel=lambda: True)) == []
    assert encoded == [] and seg.calls == []


def test_embeddings_come_from_the_given_encode() -> None:
    labels, samples = _scenes()
    seg = RegionSegmenter(labels)
    plain = list(point_eval.iter_evaluate(seg, samples, points=(1, 2)))[-1].report
    seg.encode = lambda image: pytest.fail("segmenter.encode was called")  # type: ignore[method-assign]
    given: list[np.ndarray] = []

    def encode(image: np.ndarray) -> object:
        given.append(image)
        return RegionSegmenter(labels).encode(image)

    steps = list(point_eval.iter_evaluate(seg, samples, points=(1, 2), encode=encode))
    assert [g is s[0] for g, s in zip(given, (samples[0], samples[2]))] == [True, True]
    assert len(given) == 2  # once per image with masks
    assert steps[-1].report is not None and plain is not None
    assert steps[-1].report.to_json() == plain.to_json()


def test_closing_the_generator_stops_it() -> None:
    labels, samples = _scenes()
    seg = RegionSegmenter(labels)
    steps = point_eval.iter_evaluate(seg, samples, points=(1,))
    first = next(steps)
    assert first.masks == 1 and first.report is None
    steps.close()
    assert list(steps) == []
    assert len(seg.calls) == 1


def test_bad_arguments_are_refused_before_anything_runs() -> None:
    labels, samples = _scenes()
    seg = RegionSegmenter(labels)
    with pytest.raises(ValueError, match=">= 1"):
        point_eval.iter_evaluate(seg, samples, points=(0, 1))
    with pytest.raises(ValueError, match="center"):
        point_eval.iter_evaluate(seg, samples, first="middle")
    assert seg.calls == []
