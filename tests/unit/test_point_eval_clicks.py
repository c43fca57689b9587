"""`point_eval` one click at a time: `first_click` / `next_click` with the clicks so far as
a plain value, and `iter_evaluate(each_click=True)`, which the window runs one step per
model-thread task. The figures must be bit-identical to the per-mask path."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from test_point_eval import RegionSegmenter
from test_point_eval_progress import _scenes

from samstudio.core import point_eval
from samstudio.inference.types import ImageEmbedding, Prediction, Prompts


class Recording:
    """Any segmenter, recording each decoder call's prompts (copies of the arrays)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: list[tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def decode(
        self, embedding: ImageEmbedding, prompts: Prompts, multimask: bool = True
    ) -> Prediction:
        mask = None if prompts.mask_input is None else prompts.mask_input.copy()
        self.calls.append((prompts.points.copy(), prompts.labels.copy(), mask, multimask))
        return self.inner.decode(embedding, prompts, multimask)  # type: ignore[attr-defined]


def same_calls(a: Recording, b: Recording) -> bool:
    if len(a.calls) != len(b.calls):
        return False
    for (pa, la, ma, xa), (pb, lb, mb, xb) in zip(a.calls, b.calls, strict=True):
        if xa != xb or not (np.array_equal(pa, pb) and np.array_equal(la, lb)):
            return False
        if (ma is None) != (mb is None) or (ma is not None and not np.array_equal(ma, mb)):
            return False
    return True


def run(seg: object, samples: list, each_click: bool, **kw: object) -> list:  # type: ignore[type-arg]
    return list(point_eval.iter_evaluate(seg, samples, each_click=each_click, **kw))  # type: ignore[arg-type]


def test_clicks_one_by_one_equal_evaluate_mask() -> None:
    labels, samples = _scenes()
    seg = RegionSegmenter(labels, rank=(1, 0, 2))  # the first pick is wrong: corrections
    emb = seg.encode(samples[0][0])
    for gt in (labels == 1, labels == 2, labels == 3):
        expected = point_eval.evaluate_mask(seg, emb, gt, 5)
        clicks = point_eval.first_click(seg, emb, gt)
        seen = [clicks]
        while len(clicks.ious) < 5:
            clicks = point_eval.next_click(seg, emb, gt, clicks)
            seen.append(clicks)
        assert clicks.result() == expected
        assert [len(c.ious) for c in seen] == [1, 2, 3, 4, 5]
        assert seen[0].ious[0] < 1 and seen[0].labels == (1,)  # the whole image: wrong
        assert seen[1].ious[1] == 1.0  # one background click fixes it
        assert [c.prediction is seen[1].prediction for c in seen[2:]] == [True] * 3  # exact
        assert len(clicks.points) == len(clicks.labels) == 2


def test_each_step_is_at_most_one_decoder_call_and_the_figures_are_the_same() -> None:
    labels, samples = _scenes()
    plain = Recording(RegionSegmenter(labels, rank=(1, 0, 2)))
    per_mask = run(plain, samples, False, points=(1, 2, 3))
    stepped = Recording(RegionSegmenter(labels, rank=(1, 0, 2)))
    per_click = []
    calls = []
    for step in point_eval.iter_evaluate(stepped, samples, points=(1, 2, 3), each_click=True):
        per_click.append(step)
        calls.append(len(stepped.calls))
    made = np.diff([0, *calls])
    assert made.max() == 1  # one decoder call per step at most
    # Per image: the encoder pass, then 3 clicks per mask (the last one ends the mask).
    kinds = [(s.clicks, s.mask_done, s.image_done) for s in per_click[:-1]]
    one_mask = [(1, False, False), (2, False, False), (3, True, False)]
    last_mask = [(1, False, False), (2, False, False), (3, True, True)]
    assert kinds == [(0, False, False), *one_mask, *last_mask] + [
        (0, False, False),
        *one_mask,
        *one_mask,
        *last_mask,
    ]
    assert [(s.images, s.masks) for s in per_click if s.mask_done] == [
        (s.images, s.masks) for s in per_mask[:-1]
    ]
    assert same_calls(plain, stepped)
    assert per_click[-1].report.to_json() == per_mask[-1].report.to_json()


def test_cancel_between_two_clicks_of_a_mask() -> None:
    labels, samples = _scenes()
    seg = RegionSegmenter(labels, rank=(1, 0, 2))
    stop = threading.Event()
    steps = []
    for step in point_eval.iter_evaluate(
        seg, samples, points=(1, 5), cancel=stop.is_set, each_click=True
    ):
        steps.append(step)
        if step.clicks == 2 and step.masks == 1:  # inside the second mask
            stop.set()
            calls = len(seg.calls)
    assert steps[-1].clicks == 2 and not steps[-1].mask_done
    assert all(s.report is None for s in steps)
    assert len(seg.calls) == calls  # nothing was decoded after the cancel


def _demo_model():  # noqa: ANN202
    from samstudio.inference.errors import ModelLoadError
    from samstudio.inference.loader import open_model

    try:
        return open_model(None)  # the shipped demo model
    except ModelLoadError as exc:
        pytest.skip(f"the shipped demo model is not in this checkout: {exc}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "seed", "mask_input"), [("center", 0, True), ("random", 3, False)]
)
def test_the_shipped_model_gives_bit_identical_figures_click_by_click(
    first: str, seed: int, mask_input: bool
) -> None:
    model = _demo_model()
    samples = list(point_eval.synthetic_samples(2, seed_base=20_000_000, size=192))
    embeddings = {id(image): model.encode(image) for image, _ in samples}

    def encode(image: np.ndarray) -> ImageEmbedding:
        return embeddings[id(image)]

    kw = {"points": (1, 3, 5), "first": first, "seed": seed, "mask_input": mask_input}
    plain, stepped = Recording(model), Recording(model)
    per_mask = run(plain, samples, False, encode=encode, **kw)[-1].report
    per_click = run(stepped, samples, True, encode=encode, **kw)[-1].report
    whole = point_eval.evaluate(model, samples, encode=encode, **kw)  # type: ignore[arg-type]
    assert per_mask.n_masks >= 4
    assert same_calls(plain, stepped)
    assert per_click.miou == per_mask.miou == whole.miou  # exact floats, not rounded
    assert per_click.oracle_miou_1 == per_mask.oracle_miou_1 == whole.oracle_miou_1
    assert per_click.to_json() == whole.to_json() and per_click.table() == whole.table()
