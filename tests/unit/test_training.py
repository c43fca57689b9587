"""Training: the 11-round simulation of §A, the losses, one training step on a tiny
model, checkpoints, resume and the `samstudio train` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")

from model_fixtures import TINY_DEMO_CONFIG  # noqa: E402

from samstudio.inference.demo_arch import build_demo_sam  # noqa: E402
from samstudio.training import simulate as sim  # noqa: E402
from samstudio.training.config import load_config, resolve  # noqa: E402
from samstudio.training.losses import dice_loss, focal_loss, round_loss  # noqa: E402
from samstudio.training.train import lr_factor, make_batch  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """Several threads spin-wait badly on a shared, busy CPU; tests use one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY_MODEL = TINY_DEMO_CONFIG


def tiny_config(out_dir: Path, **train: Any) -> dict[str, Any]:
    t = {
        "out_dir": str(out_dir),
        "batch_images": 2,
        "masks_per_image": 2,
        "iterations": 20,
        "warmup": 2,
        "decay_steps": [15, 19],
        "checkpoint_every": 1,
        "log_every": 1,
    }
    t.update(train)
    return resolve({"model": TINY_MODEL, "data": {"size": 64, "min_objects": 2}, "train": t})


def test_round_schedule_has_8_points_and_2_refinement_rounds() -> None:
    positions = set()
    for seed in range(50):
        s = sim.round_schedule(np.random.default_rng(seed))
        assert len(s) == 10 and sum(s) == 8
        assert s[-1] is False
        inner = s[:-1].index(False)
        assert inner < 8 and any(s[inner + 1 : -1])  # before at least one more point
        positions.add(inner)
    assert len(positions) >= 5  # the inserted round moves around


def test_decode_all_matches_meta_mask_decoder() -> None:
    torch.manual_seed(0)
    sam = build_demo_sam(TINY_MODEL).eval()
    emb = torch.randn(1, 32, 4, 4)
    pe = sam.prompt_encoder.get_dense_pe()
    pts = torch.rand(3, 2, 2) * 64
    labels = torch.tensor([[1, 0], [1, 1], [1, -1]]).float()
    with torch.no_grad():
        sparse, dense = sam.prompt_encoder(points=(pts, labels), boxes=None, masks=None)
        ref_multi, ref_iou_multi = sam.mask_decoder(emb, pe, sparse, dense, True)
        ref_single, ref_iou_single = sam.mask_decoder(emb, pe, sparse, dense, False)
        masks, iou = sim.decode_all(sam.mask_decoder, emb.expand(3, -1, -1, -1), pe, sparse, dense)
    torch.testing.assert_close(masks[:, 1:], ref_multi)
    torch.testing.assert_close(iou[:, 1:], ref_iou_multi)
    torch.testing.assert_close(masks[:, :1], ref_single)
    torch.testing.assert_close(iou[:, :1], ref_iou_single)


def test_error_points_come_from_the_error_region_with_the_right_label() -> None:
    gen = torch.Generator().manual_seed(0)
    gt = torch.zeros(3, 16, 16, dtype=torch.bool)
    gt[:, 4:12, 4:12] = True
    valid = torch.ones_like(gt)
    pred = torch.zeros_like(gt)
    pred[0] = gt[0]
    pred[0, 4:12, 4:6] = False  # false negatives only
    pred[1] = gt[1]
    pred[1, 0:2, 0:16] = True  # false positives only
    pred[2] = gt[2]  # exact
    for _ in range(20):
        pts, labels = sim.error_points(pred, gt, valid, gen)
        x, y = pts.long().T
        assert labels.tolist() == [1.0, 0.0, 1.0]
        assert 4 <= x[0] < 6 and 4 <= y[0] < 12
        assert y[1] < 2
        assert gt[2, y[2], x[2]]  # exact prediction: a foreground point in the mask


def test_error_points_are_uniform_over_the_region() -> None:
    gen = torch.Generator().manual_seed(1)
    gt = torch.zeros(1, 8, 8, dtype=torch.bool)
    gt[0, 0, :4] = True  # 4 false-negative pixels
    pred = torch.zeros_like(gt)
    counts = np.zeros(4)
    for _ in range(400):
        pts, _ = sim.error_points(pred, gt, torch.ones_like(gt), gen)
        counts[int(pts[0, 0])] += 1
    assert counts.min() > 60  # ~100 each


def test_padding_is_never_a_false_positive_click() -> None:
    gen = torch.Generator().manual_seed(2)
    gt = torch.zeros(1, 8, 8, dtype=torch.bool)
    gt[0, 2:4, 2:4] = True
    pred = torch.ones_like(gt)
    valid = torch.zeros_like(gt)
    valid[0, :5, :5] = True
    for _ in range(30):
        pts, labels = sim.error_points(pred, gt, valid, gen)
        x, y = pts[0].long()
        assert labels[0] == 0 and x < 5 and y < 5


def test_noisy_boxes_follow_the_paper() -> None:
    gen = torch.Generator().manual_seed(0)
    one = torch.zeros(1, 200, 200, dtype=torch.bool)
    one[0, 50:100, 20:180] = True  # 160 wide (std 16), 50 high (std 5)
    gt = one.expand(2000, -1, -1)
    hw = torch.tensor([[200, 200]]).expand(2000, -1)
    boxes = sim.noisy_boxes(gt, gen, hw)
    dx0 = boxes[:, 0] - 20
    dy0 = boxes[:, 1] - 50
    assert dx0.abs().max() <= 20.0 + 1e-4  # clipped to 20 px
    assert 4.5 < float(dy0.std()) < 5.5  # 10% of the 50 px side
    assert 12.0 < float(dx0.std()) < 16.0  # 10% of 160 px, less after clipping
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    assert boxes.min() >= 0 and boxes.max() <= 199


def test_losses() -> None:
    target = torch.zeros(1, 8, 8)
    target[0, :4] = 1
    good = (target * 2 - 1) * 10
    bad = -good
    assert focal_loss(good, target) < focal_loss(bad, target)
    assert dice_loss(good, target) < 0.01 < dice_loss(bad, target)
    # three candidates: only the best one is picked; IoU head regressed to real IoU
    cands = torch.stack([bad[0], good[0], torch.zeros(8, 8)])[None]
    loss, best, ious = round_loss(cands, torch.tensor([[0.0, 1.0, 0.5]]), target)
    assert best.tolist() == [1]
    assert ious[0, 1] == 1.0 and ious[0, 0] == 0.0
    assert float(loss) < 0.2


def test_simulation_runs_11_rounds_with_the_right_tokens(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    torch.manual_seed(0)
    sam = build_demo_sam(cfg["model"]).train()
    images, targets, valid = make_batch(cfg, 0)
    schedule = sim.round_schedule(np.random.default_rng(4))
    res = sim.simulate(sam, images, targets, valid, torch.Generator().manual_seed(0), schedule)
    assert len(res.ious) == len(res.losses) == sim.N_ROUNDS == 11
    assert res.used_multimask == [True] + [False] * 10
    expected = [0]
    for add in schedule:
        expected.append(expected[-1] + int(add))
    assert res.n_points == expected and expected[-1] == 8
    assert torch.isfinite(res.loss)
    res.loss.backward()
    assert sam.image_encoder.body[0][0].weight.grad is not None
    assert sam.mask_decoder.iou_prediction_head.layers[0].weight.grad is not None


def test_make_batch_is_deterministic_and_padded(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    a = make_batch(cfg, 3)
    b = make_batch(cfg, 3)
    c = make_batch(cfg, 4)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], c[0])
    images, targets, valid = a
    assert images.shape == (2, 3, 64, 64) and targets.shape == (2, 2, 64, 64)
    for i, (h, w) in enumerate(valid.tolist()):
        assert max(h, w) == 64
        assert targets[i, :, h:, :].sum() == 0 and targets[i, :, :, w:].sum() == 0
        assert (targets[i].flatten(1).sum(1) > 0).all()


def test_the_loss_frame_of_the_input_size_scores_the_mask_the_app_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder answering with the area-averaged ground truth (the soft low-res
    target itself) looks perfect in the low-res frame, but the mask the app shows
    (logits upsampled to the input, thresholded at 0) is not: with loss_size equal
    to the input size, the IoU the loss and the IoU head see is the app's."""
    import torch.nn.functional as F

    cfg = tiny_config(tmp_path)
    sam = build_demo_sam(cfg["model"])
    images, targets, valid = make_batch(cfg, 0)
    b, k, s, _ = targets.shape
    gt = targets.reshape(b * k, s, s) > 0.5
    in_image = torch.zeros_like(gt)
    for i, (h, w) in enumerate(valid.repeat_interleave(k, 0).tolist()):
        in_image[i, :h, :w] = True
    assert not in_image.all()  # some padding
    low = F.interpolate(targets.reshape(b * k, 1, s, s), (16, 16), mode="area") - 0.5
    # in the padding (cropped away by the app) the answer says "object"
    padding = F.interpolate(in_image[:, None].float(), (16, 16), mode="area") == 0
    low = torch.where(padding, torch.full_like(low, 5.0), low)

    def answer(decoder, embeddings, pe, sparse, dense):  # noqa: ANN001, ANN202
        return low.expand(-1, 4, -1, -1).clone(), torch.full((b * k, 4), 0.5)

    monkeypatch.setattr(sim, "decode_all", answer)
    schedule = sim.round_schedule(np.random.default_rng(0))

    def first_round_iou(loss_size: int | None) -> float:
        gen = torch.Generator().manual_seed(0)
        res = sim.simulate(sam, images, targets, valid, gen, schedule, loss_size=loss_size)
        return res.ious[0]

    shown = F.interpolate(low, (s, s), mode="bilinear", align_corners=False)[:, 0] > 0
    shown &= in_image  # the app crops the padding away
    app = ((shown & gt).flatten(1).sum(1) / (shown | gt).flatten(1).sum(1)).mean()
    assert first_round_iou(16) == pytest.approx(1.0)  # the low-res frame, padding left out
    assert first_round_iou(None) < 0.9  # stages 1-5: the padding counts
    assert first_round_iou(64) == pytest.approx(float(app), abs=1e-6)
    assert float(app) < 0.97  # the soft target's answer loses pixels at the borders


def test_loss_size_is_checked(tmp_path: Path) -> None:
    for bad in (0, 8, 65, "full", 1.5, "true"):  # 8: below the 16 x 16 low-res logits
        path = tmp_path / "loss.yaml"
        path.write_text(
            f"model: {{img_size: 64}}\ndata: {{size: 64}}\ntrain: {{loss_size: {bad}}}\n"
        )
        with pytest.raises(ValueError, match="loss.yaml.*loss_size"):
            load_config(path)
    assert tiny_config(tmp_path, loss_size=64)["train"]["loss_size"] == 64
    assert tiny_config(tmp_path, loss_size=16)["train"]["loss_size"] == 16


def test_scene_size_must_divide_the_model_input(tmp_path: Path) -> None:
    path = tmp_path / "sizes.yaml"
    for bad in ("128", "48", "true", "0", "-32", "32.0"):
        path.write_text(f"model: {{img_size: 64}}\ndata: {{size: {bad}}}\n")
        with pytest.raises(ValueError, match=r"sizes.yaml: data.size .* must be model.img_size"):
            load_config(path)
    for bad in ("0", "-64", "true", "64.0", "72"):  # 72: not a multiple of the stride (16)
        path.write_text(f"model: {{img_size: {bad}}}\ndata: {{size: 8}}\n")
        with pytest.raises(ValueError, match=r"sizes.yaml: model.img_size must be a whole"):
            load_config(path)
    path.write_text("model: {img_size: 64}\ndata: {size: 32}\n")
    assert load_config(path)["data"]["size"] == 32


@pytest.mark.parametrize("factor", [2, 4])
def test_scenes_smaller_than_the_input_are_enlarged_as_the_app_does(factor: int) -> None:
    from samstudio.inference.preprocess import Preprocessing, prepare_input
    from samstudio.training.train import batch_scenes, finish_batch, make_raw_batch

    side = 64
    cfg = resolve(
        {
            "model": TINY_MODEL,
            "data": {"size": side // factor, "min_objects": 2},
            "train": {"batch_images": 2, "masks_per_image": 2},
        }
    )
    model = cfg["model"]
    prep = Preprocessing(side, tuple(model["pixel_mean"]), tuple(model["pixel_std"]))
    shapes = set()
    for step in range(5, 9):  # scenes of both orientations
        raw = make_raw_batch(cfg, step)
        images, _, _ = finish_batch(cfg, raw)
        assert raw.images.shape == (2, side, side, 3)
        masks = np.unpackbits(raw.packed_masks, axis=-1)[..., :side].astype(bool)
        for i, (image, targets) in enumerate(batch_scenes(cfg, step)):
            h, w = image.shape[:2]
            shapes.add(h > w)
            assert max(h, w) == side // factor
            assert tuple(raw.valid_hw[i]) == (factor * h, factor * w)
            # bit for bit the tensor the app feeds the model for this small picture
            app, _ = prepare_input(image, prep)
            assert np.array_equal(images[i].numpy(), app[0])
            # each scene pixel's label covers its factor x factor block; none in the padding
            for dy in range(factor):
                for dx in range(factor):
                    block = masks[i, :, dy : factor * h : factor, dx : factor * w : factor]
                    assert np.array_equal(block, targets)
            assert masks[i].sum() == factor * factor * targets.sum()
    assert shapes == {True, False}


def test_a_stage_can_start_from_weights_of_another_input_size(tmp_path: Path) -> None:
    from samstudio.training.train import init_weights, save_weights

    small = dict(TINY_MODEL, img_size=64)  # 4 x 4 embedding grid
    sam_small = build_demo_sam(small)
    with torch.no_grad():  # channel 0 constant along rows, the others random
        pos = sam_small.image_encoder.attn[0].pos
        pos.copy_(torch.randn(pos.shape, generator=torch.Generator().manual_seed(0)))
        pos[0, :, 0] = torch.arange(4.0).repeat_interleave(4)
    path = tmp_path / "small.pt"
    save_weights(sam_small, small, path)
    big = dict(TINY_MODEL, img_size=128)  # 8 x 8 grid
    sam_big = build_demo_sam(big)
    init_weights(sam_big, big, path)
    a, b = sam_small.state_dict(), sam_big.state_dict()
    resampled = b["image_encoder.attn.0.pos"]
    assert resampled.shape == (1, 64, a["image_encoder.attn.0.pos"].shape[-1])
    rows = resampled[0, :, 0].reshape(8, 8)
    assert torch.allclose(rows, rows[:, :1].expand(8, 8))  # still constant along rows
    assert rows[0, 0] < rows[3, 0] < rows[7, 0]  # and increasing down the grid
    # bicubic without corner alignment, as an independent interpolate of the grid gives
    grid = a["image_encoder.attn.0.pos"].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(
        grid, size=(8, 8), mode="bicubic", align_corners=False
    )
    assert torch.allclose(resampled, expected.permute(0, 2, 3, 1).reshape(1, 64, -1))
    # and back down: a 128 px checkpoint starts a 64 px stage
    back = build_demo_sam(small)
    bigpath = tmp_path / "big.pt"
    save_weights(sam_big, big, bigpath)
    init_weights(back, small, bigpath)
    assert back.state_dict()["image_encoder.attn.0.pos"].shape == pos.shape
    for name, value in a.items():
        if name != "image_encoder.attn.0.pos":
            assert torch.equal(b[name], value), name
    # anything else of another architecture is still refused
    other = dict(big, embed_dim=2 * TINY_MODEL["embed_dim"])
    with pytest.raises(ValueError, match="small.pt.*embed_dim"):
        init_weights(build_demo_sam(other), other, path)


@pytest.mark.slow
@pytest.mark.parametrize("loss_size", [None, 64])
def test_training_steps_reduce_the_loss_on_a_batch(tmp_path: Path, loss_size: int | None) -> None:
    cfg = tiny_config(tmp_path)
    torch.manual_seed(0)
    sam = build_demo_sam(cfg["model"]).train()
    opt = torch.optim.AdamW(sam.parameters(), lr=3e-3, weight_decay=0.1)
    batch = make_batch(cfg, 0)
    schedule = sim.round_schedule(np.random.default_rng(0))

    def loss() -> Any:
        gen = torch.Generator().manual_seed(0)
        return sim.simulate(sam, *batch, gen, schedule, loss_size=loss_size).loss

    first = float(loss().detach())
    for _ in range(8):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert float(loss().detach()) < 0.8 * first


def test_lr_schedule_warms_up_then_steps_down() -> None:
    t = {"warmup": 10, "decay_steps": [50, 80], "decay_factor": 0.1}
    assert lr_factor(0, t) == pytest.approx(0.1)
    assert lr_factor(9, t) == pytest.approx(1.0)
    assert lr_factor(49, t) == 1.0
    assert lr_factor(50, t) == pytest.approx(0.1)
    assert lr_factor(85, t) == pytest.approx(0.01)


def test_train_command_checkpoints_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from samstudio.cli.main import main
    from samstudio.inference.checkpoints import load_sam_checkpoint

    cfg = tiny_config(tmp_path / "run")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(path), "--max-steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "step 2/20" in out
    run = tmp_path / "run"
    assert {"state.pt", "model.pt", "config.yaml", "log.jsonl"} <= {p.name for p in run.iterdir()}
    assert main(["train", "--config", str(path), "--max-steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "resumed" in out and "at step 2" in out and "step 3/20" in out
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    # the weights file follows the shared contract and loads with weights_only
    blob = torch.load(run / "model.pt", weights_only=True)
    assert blob["samstudio_model"]["name"] == "tiny_test"
    sam, name = load_sam_checkpoint(run / "model.pt")
    assert name == "tiny_test" and sam.image_encoder.img_size == 64
    assert load_config(run / "config.yaml") == cfg


def test_bad_config_is_reported_with_the_file_name(tmp_path: Path) -> None:
    from samstudio.cli.main import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  itterations: 5\n")
    with pytest.raises(ValueError, match="bad.yaml.*itterations"):
        load_config(bad)
    assert main(["train", "--config", str(bad)]) == 2
    with pytest.raises(ValueError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")


def test_a_second_stage_starts_from_the_first_stages_weights(tmp_path: Path) -> None:
    from samstudio.training.train import init_weights, save_weights, train

    first = tiny_config(tmp_path / "stage1")
    train(first, log=lambda _: None, max_steps=1)
    stage1 = tmp_path / "stage1" / "model.pt"
    second = tiny_config(tmp_path / "stage2", init_from=str(stage1), iterations=1)
    messages: list[str] = []
    train(second, log=messages.append)
    assert any("initialised from" in m for m in messages)
    # stage 2 took one step from stage 1's weights: close to them, not a fresh init
    a = torch.load(stage1, weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "stage2" / "model.pt", weights_only=True)["state_dict"]
    fresh = build_demo_sam(TINY_MODEL).state_dict()
    key = "mask_decoder.iou_token.weight"
    assert (b[key] - a[key]).abs().max() < 0.01 < (fresh[key] - a[key]).abs().max()
    # weights of another architecture are refused with the file named
    other = dict(TINY_MODEL, embed_dim=2 * TINY_MODEL["embed_dim"])
    wrong = tmp_path / "wrong.pt"
    save_weights(build_demo_sam(other), other, wrong)
    with pytest.raises(ValueError, match="wrong.pt.*embed_dim"):
        init_weights(build_demo_sam(TINY_MODEL), second["model"], wrong)
    with pytest.raises(ValueError, match="missing.pt"):
        init_weights(build_demo_sam(TINY_MODEL), second["model"], tmp_path / "missing.pt")


def test_worker_processes_make_the_same_batches_and_the_same_run(tmp_path: Path) -> None:
    """train.workers only changes who makes the batches: the same tensors arrive in
    the same order, so a run with workers trains to the same weights."""
    from samstudio.training.train import batches, train

    cfg = tiny_config(tmp_path / "w0")
    ahead = list(batches(cfg, 1, 4, workers=1))
    assert len(ahead) == 3
    for step, got in zip(range(1, 4), ahead, strict=True):
        for a, b in zip(make_batch(cfg, step), got, strict=True):
            assert torch.equal(a, b)
    train(cfg, log=lambda _: None, max_steps=3)
    with_workers = tiny_config(tmp_path / "w1", workers=1)
    train(with_workers, log=lambda _: None, max_steps=3)
    a = torch.load(tmp_path / "w0" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "w1" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_scene_makers_send_compact_batches_that_finish_to_the_same_tensors(
    tmp_path: Path,
) -> None:
    """What a worker sends is a RawBatch (uint8 scenes, bit-packed masks), over 6x
    smaller than the float tensors (11x for 16 x 8 at 256 px), and finishing it gives
    make_batch's tensors: the normalised pixels where the scene is, zeros in the
    padding, 0/1 targets."""
    import pickle

    from samstudio.inference.preprocess import Preprocessing, prepare_input
    from samstudio.training.synthetic import make_scene
    from samstudio.training.train import finish_batch, make_raw_batch

    cfg = tiny_config(tmp_path, batch_images=3, masks_per_image=4)
    raw = make_raw_batch(cfg, 2)
    images, targets, valid = finish_batch(cfg, raw)
    floats = sum(t.numel() * t.element_size() for t in (images, targets, valid))
    assert len(pickle.dumps(raw, protocol=pickle.HIGHEST_PROTOCOL)) * 6 < floats
    assert images.shape == (3, 3, 64, 64) and targets.shape == (3, 4, 64, 64)
    assert set(torch.unique(targets).tolist()) <= {0.0, 1.0}
    # image i of batch 2 is the i-th non-empty scene from the batch's first seed on, and
    # its targets are the scene's masks picked by the scene's seed, in that order
    model = cfg["model"]
    prep = Preprocessing(64, tuple(model["pixel_mean"]), tuple(model["pixel_std"]))
    seed = cfg["data"]["train_seed_base"] + 2 * 3 * 4
    for i in range(3):
        scene = make_scene(seed, size=64, min_objects=2)
        seed += 1
        while not len(scene.masks):
            scene = make_scene(seed, size=64, min_objects=2)
            seed += 1
        expected, (h, w) = prepare_input(scene.image, prep)
        assert tuple(valid[i].tolist()) == (h, w)
        assert torch.equal(images[i], torch.from_numpy(expected[0]))
        pick = np.random.default_rng(scene.seed).choice(
            len(scene.masks), size=4, replace=len(scene.masks) < 4
        )
        assert targets[i, :, h:, :].sum() == 0 and targets[i, :, :, w:].sum() == 0
        assert np.array_equal(targets[i, :, :h, :w].numpy().astype(bool), scene.masks[pick])


def test_a_cuda_run_on_a_machine_without_cuda_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from samstudio.cli.main import main
    from samstudio.training.train import resolve_device, train

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ValueError, match="no CUDA device"):
        train(tiny_config(tmp_path / "c", device="cuda"), log=lambda _: None, max_steps=1)
    # the command says so and names the config; --device cpu runs the same config here
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path / "g", device="cuda")))
    assert main(["train", "--config", str(path), "--max-steps", "1"]) == 2
    assert "gpu.yaml" in capsys.readouterr().err
    assert main(["train", "--config", str(path), "--max-steps", "1", "--device", "cpu"]) == 0
    assert "step 1/20" in capsys.readouterr().out
