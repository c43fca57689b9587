"""Checkpoint loading: official-format state dicts, architecture detection, and every
kind of bad file a user may point the program at (each must give a ModelLoadError
that names the file and says what is wrong)."""

from __future__ import annotations

import os
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
pytest.importorskip("segment_anything", reason="Meta's segment-anything is not installed")

from samstudio.inference.checkpoints import (  # noqa: E402
    detect_architecture,
    file_sha256,
    load_sam_checkpoint,
)
from samstudio.inference.errors import ModelLoadError  # noqa: E402


@pytest.fixture(scope="module")
def vit_b_state(random_vit_b_checkpoint: Path) -> dict[str, Any]:
    return torch.load(random_vit_b_checkpoint, map_location="cpu", weights_only=True)


def _error(path: Path, architecture: str | None = None) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_sam_checkpoint(path, architecture)
    message = str(info.value)
    assert str(path) in message, message
    return message


def test_loads_official_format_and_detects_vit_b(
    random_vit_b_checkpoint: Path, vit_b_state: dict[str, Any]
) -> None:
    sam, arch = load_sam_checkpoint(random_vit_b_checkpoint)
    assert arch == "vit_b"
    assert not sam.training
    loaded = sam.state_dict()
    for key in ("image_encoder.patch_embed.proj.weight", "mask_decoder.iou_token.weight"):
        assert torch.equal(loaded[key], vit_b_state[key])
    assert load_sam_checkpoint(random_vit_b_checkpoint, "vit_b")[1] == "vit_b"


def test_detect_architecture_from_shapes() -> None:
    def fake(width: int, depth: int) -> dict[str, Any]:
        sd: dict[str, Any] = {
            "image_encoder.patch_embed.proj.weight": torch.empty(width, 3, 16, 16)
        }
        sd.update({f"image_encoder.blocks.{i}.norm1.weight": torch.empty(1) for i in range(depth)})
        return sd

    assert detect_architecture(fake(768, 12)) == "vit_b"
    assert detect_architecture(fake(1024, 24)) == "vit_l"
    assert detect_architecture(fake(1280, 32)) == "vit_h"
    assert detect_architecture(fake(768, 24)) is None
    assert detect_architecture({"x": torch.zeros(1)}) is None


def test_missing_and_empty_files(tmp_path: Path) -> None:
    assert "does not exist" in _error(tmp_path / "nope.pth")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    assert "empty" in _error(empty)


def test_truncated_checkpoint(random_vit_b_checkpoint: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "sam_vit_b_truncated.pth"
    with open(random_vit_b_checkpoint, "rb") as f:
        truncated.write_bytes(f.read(5_000_000))
    assert "truncated or corrupt" in _error(truncated)


def test_truncated_legacy_checkpoint_and_its_import(
    vit_b_state: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A half-copied checkpoint is called truncated, in the old pickle format too, and
    importing one says the same (it used to say "not a PyTorch checkpoint")."""
    from samstudio.inference.registry import import_model

    legacy = tmp_path / "legacy.pth"
    torch.save(vit_b_state, legacy, _use_new_zipfile_serialization=False)
    data = legacy.read_bytes()
    legacy.write_bytes(data[: len(data) // 3])
    assert "truncated or corrupt" in _error(legacy)
    zipped = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save(vit_b_state, zipped)
    data = zipped.read_bytes()
    zipped.write_bytes(data[: len(data) // 3])
    monkeypatch.setenv("SAMSTUDIO_DATA_DIR", str(tmp_path / "data"))
    for path in (legacy, zipped):
        with pytest.raises(ModelLoadError, match="truncated or corrupt"):
            import_model(path, "half")


def test_files_that_are_not_checkpoints(tmp_path: Path) -> None:
    text = tmp_path / "notes.pth"
    text.write_text("these are my notes, not a model\n")
    assert "not a PyTorch checkpoint" in _error(text)

    junk_zip = tmp_path / "junk.pth"
    with zipfile.ZipFile(junk_zip, "w") as z:
        z.writestr("readme.txt", "junk")
    assert "not a PyTorch checkpoint" in _error(junk_zip)

    a_list = tmp_path / "list.pth"
    torch.save([1, 2, 3], a_list)
    assert "not a dict of weights" in _error(a_list)

    other_model = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(4, 3, 3, 3)}, other_model)
    message = _error(other_model)
    assert "not a SAM checkpoint" in message and "vit_b" in message


def test_forced_architecture_that_does_not_match(random_vit_b_checkpoint: Path) -> None:
    message = _error(random_vit_b_checkpoint, "vit_l")
    assert "is a vit_b checkpoint, not vit_l" in message
    assert "unknown architecture" in _error(random_vit_b_checkpoint, "vit_x")


def test_missing_unexpected_and_misshaped_weights(
    vit_b_state: dict[str, Any], tmp_path: Path
) -> None:
    broken = dict(vit_b_state)
    del broken["mask_decoder.iou_token.weight"]
    broken["mask_decoder.extra_head.weight"] = torch.zeros(3)
    broken["mask_decoder.mask_tokens.weight"] = torch.zeros(4, 128)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    message = _error(path)
    assert "does not match the vit_b architecture" in message
    assert "1 missing weights" in message and "mask_decoder.iou_token.weight" in message
    assert "1 unexpected weights" in message and "mask_decoder.extra_head.weight" in message
    assert "1 weights of the wrong shape" in message and "(4, 128) vs (4, 256)" in message


class _WritesMarker:
    """Unpickling this object opens (creates) the marker file: arbitrary code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


class _CallsSystem:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"\"{sys.executable}\" -c \"open(r'{self.marker}', 'w')\"",))


@pytest.mark.parametrize("payload", [_WritesMarker, _CallsSystem])
def test_malicious_pickle_is_refused_without_running(payload: type, tmp_path: Path) -> None:
    marker = tmp_path / "code_ran.txt"
    evil = tmp_path / "sam_vit_b_evil.pth"
    torch.save({"image_encoder.pos_embed": torch.zeros(1), "payload": payload(marker)}, evil)

    message = _error(evil)
    assert "refused" in message and "not plain tensors" in message
    assert not marker.exists(), "loading the checkpoint executed code from it"

    # Control: the payload is live. An unsafe load really runs it.
    torch.load(evil, map_location="cpu", weights_only=False)
    assert marker.exists()


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_samstudio_model_files_use_the_demo_builder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contract with demo_arch: {"samstudio_model": config, "state_dict": ...} files
    are built by build_demo_sam(config) and loaded strictly (unknown config keys dropped)."""
    from model_fixtures import build_tiny_sam

    weights = build_tiny_sam(seed=1).state_dict()
    seen: list[dict[str, Any]] = []

    def build_demo_sam(config: dict[str, Any]) -> Any:
        seen.append(config)
        return build_tiny_sam(seed=2)

    fake = types.ModuleType("samstudio.inference.demo_arch")
    fake.build_demo_sam = build_demo_sam  # type: ignore[attr-defined]
    fake.DEFAULT_CONFIG = {"name": "x", "img_size": 256}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "samstudio.inference.demo_arch", fake)
    import samstudio.inference as inference_pkg

    monkeypatch.setattr(inference_pkg, "demo_arch", fake, raising=False)

    path = tmp_path / "demo.pth"
    config = {"name": "samstudio_demo_test", "img_size": 256, "trained_steps": 10}
    torch.save({"samstudio_model": config, "state_dict": weights}, path)
    sam, arch = load_sam_checkpoint(path)
    assert arch == "samstudio_demo_test"
    assert seen == [{"name": "samstudio_demo_test", "img_size": 256}]
    for key, value in weights.items():
        assert torch.equal(sam.state_dict()[key], value), key

    broken = dict(weights)
    del broken["mask_decoder.iou_token.weight"]
    torch.save({"samstudio_model": config, "state_dict": broken}, path)
    assert "does not match the samstudio_demo_test architecture" in _error(path)
    assert "not 'vit_b'" in _error(path, "vit_b")


def test_real_demo_architecture_round_trip(tmp_path: Path) -> None:
    demo_arch = pytest.importorskip("samstudio.inference.demo_arch")
    config = {"name": "samstudio_demo_v1"}
    torch.manual_seed(0)
    sam = demo_arch.build_demo_sam(config)
    path = tmp_path / "demo.pth"
    torch.save({"samstudio_model": config, "state_dict": sam.state_dict()}, path)
    loaded, arch = load_sam_checkpoint(path)
    assert arch == "samstudio_demo_v1"
    for key, value in sam.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
