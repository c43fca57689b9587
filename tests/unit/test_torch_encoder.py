"""The chunked global attention of `torch_encoder` against Meta's encoder.

vit_b itself is compared bit for bit in test_torch_backend (features identical to
SamPredictor's) and in test_onnx_backend (the exported graph); these cases use small
encoders so that chunk sizes which do not divide the grid, several global blocks,
encoders without relative positions and batches are covered in a second.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
pytest.importorskip("segment_anything", reason="Meta's segment-anything is not installed")

from model_fixtures import build_tiny_vit_encoder  # noqa: E402

from samstudio.inference.torch_encoder import (  # noqa: E402
    FastImageEncoder,
    chunked_global_attention,
    fast_encoder,
)


def _encoder(img_size: int, use_rel_pos: bool, seed: int = 0) -> Any:
    torch.manual_seed(seed)
    enc = build_tiny_vit_encoder(
        img_size,
        embed_dim=48,
        depth=3,
        num_heads=3,
        out_chans=16,
        use_rel_pos=use_rel_pos,
        global_attn_indexes=(0, 2),
    ).eval()
    if use_rel_pos:  # Meta initialises them to zero: give them values that matter
        with torch.no_grad():
            for blk in enc.blocks:
                blk.attn.rel_pos_h.normal_(0, 0.5)
                blk.attn.rel_pos_w.normal_(0, 0.5)
    return enc


@pytest.mark.parametrize(
    ("chunk_rows", "windows", "mlp_rows"),
    [(1, 1, 1), (2, 5, 16), (3, 2, 4), (7, 3, 2), (100, 100, 100)],
)
@pytest.mark.parametrize("use_rel_pos", [True, False])
def test_encoder_equals_metas(
    chunk_rows: int, windows: int, mlp_rows: int, use_rel_pos: bool
) -> None:
    # A 15 x 15 grid (16 windows of 4 x 4 after padding): most chunk sizes leave a remainder.
    enc = _encoder(240, use_rel_pos)
    x = torch.randn(2, 3, 240, 240, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = enc(x)
        fast = FastImageEncoder(
            enc, chunk_rows=chunk_rows, windows_per_chunk=windows, mlp_rows=mlp_rows
        )
        ours = fast(x)
    assert ours.shape == ref.shape == (2, 16, 15, 15)
    assert float(ref.abs().max()) > 0.1
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_global_attention_block_equals_metas() -> None:
    """One global attention with relative positions that change the scores a lot."""
    attn = _encoder(256, True).blocks[0].attn
    x = torch.randn(1, 16, 16, 48, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ref = attn(x)
        ours = chunked_global_attention(attn, x, chunk_rows=3)
        without_rel = attn.use_rel_pos
        attn.use_rel_pos = False
        plain = attn(x)
        attn.use_rel_pos = without_rel
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=1e-5)
    assert float((ref - plain).abs().max()) > 1e-2  # the relative positions mattered


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_traced_graph_equals_eager() -> None:
    """The ONNX export traces the allocation-per-chunk path; both give Meta's result."""
    enc = _encoder(240, True)
    fast = FastImageEncoder(enc, chunk_rows=2, windows_per_chunk=3, mlp_rows=4)
    x = torch.randn(1, 3, 240, 240, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        traced = torch.jit.trace(fast, (x,), check_trace=False)
        ref = enc(x)
        torch.testing.assert_close(traced(x), ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast(x), ref, atol=1e-5, rtol=1e-5)
    assert "aten::_softmax.out" not in str(traced.graph)


def test_other_encoders_are_left_as_they_are() -> None:
    conv = torch.nn.Conv2d(3, 8, 3)
    assert fast_encoder(conv) is conv
    enc = _encoder(64, True)
    assert isinstance(fast_encoder(enc), FastImageEncoder)


def test_with_autograd_on_it_gives_metas_result_and_gradients() -> None:
    """Found by review: out= buffers cannot be differentiated; with autograd recording
    the chunks allocate (as when traced), and gradients flow."""
    enc = _encoder(128, True)
    fast = FastImageEncoder(enc, chunk_rows=3, windows_per_chunk=2, mlp_rows=3)
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(4))
    ref = enc(x)
    ours = fast(x)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    ours.square().mean().backward()
    grad = enc.blocks[0].attn.qkv.weight.grad
    assert grad is not None and float(grad.abs().max()) > 0
