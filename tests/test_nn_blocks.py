"""Blocks, encoders and the small language model: shapes, cu_seqlens and caches passed through, errors."""
from __future__ import annotations

import pytest
import torch

from seqcore.nn import DropPath, SeqBlock, SeqEncoder, SeqLM


@pytest.mark.parametrize("ffn", ["glu", "mlp", None])
def test_block_shapes_and_packing(ffn):
    torch.manual_seed(0)
    block = SeqBlock(24, "gated_deltanet", 3, ffn=ffn).eval()
    a, b = torch.randn(1, 7, 24), torch.randn(1, 12, 24)
    packed = block(torch.cat([a, b], dim=1), cu_seqlens=torch.tensor([0, 7, 19]))
    assert packed.shape == (1, 19, 24)
    assert torch.allclose(packed, torch.cat([block(a), block(b)], dim=1), atol=1e-5)


def test_encoder_bidirectional_kwargs_and_drop_path_schedule():
    enc = SeqEncoder(16, 3, "retnet", 2, drop_path=0.2, mixer_kwargs={"bidirectional": True})
    assert [blk.drop_path.p for blk in enc.blocks] == pytest.approx([0.0, 0.1, 0.2])
    assert all(blk.mixer.bidirectional for blk in enc.blocks)
    assert enc(torch.randn(2, 9, 16)).shape == (2, 9, 16)


def test_lm_decoding_equals_full_forward():
    torch.manual_seed(0)
    lm = SeqLM(11, 32, 2, "mamba2", 4).eval()
    tokens = torch.randint(0, 11, (2, 15))
    full = lm(tokens)
    caches, outs = lm.init_caches(), []
    for t in range(15):
        logits, caches = lm(tokens[:, t : t + 1], caches=caches)
        outs.append(logits)
    assert torch.allclose(torch.cat(outs, dim=1), full, atol=1e-5)
    assert lm.head.weight is lm.embed.weight


def test_drop_path():
    drop = DropPath(0.5).train()
    torch.manual_seed(0)
    y = drop(torch.ones(1000, 3, 2))
    kept = y[:, 0, 0] > 0
    assert 400 < int(kept.sum()) < 600 and torch.allclose(y[kept], torch.full_like(y[kept], 2.0))
    assert torch.equal(drop.eval()(torch.ones(4, 2)), torch.ones(4, 2))


def test_errors():
    with pytest.raises(ValueError, match="ffn must be"):
        SeqBlock(16, ffn="moe")
    with pytest.raises(ValueError, match="depth must be >= 1"):
        SeqEncoder(16, 0)
    with pytest.raises(ValueError, match="drop path probability"):
        DropPath(1.0)
    enc = SeqEncoder(16, 2)
    with pytest.raises(ValueError, match="expected 2 caches"):
        enc(torch.randn(1, 3, 16), caches=[])
    with pytest.raises(ValueError, match="tokens must be an integer tensor"):
        SeqLM(5, 16, 1)(torch.randn(1, 3))
