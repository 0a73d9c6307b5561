"""Checks of chapter13.attention against attention written out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from chapter13.attention import CrossAttention, CrossAttention2d, SelfAttention2d


def manual_attention(m: CrossAttention, x, ctx, mask):
    """Scaled dot-product attention written out with explicit exp and sums (Vaswani et al. eq. 1)."""
    B, N, _ = x.shape
    h, d = m.heads, m.head_dim
    q = (x @ m.to_q.weight.T).reshape(B, N, h, d)
    k = (ctx @ m.to_k.weight.T).reshape(B, -1, h, d)
    v = (ctx @ m.to_v.weight.T).reshape(B, -1, h, d)
    scores = torch.einsum("bnhd,blhd->bhnl", q, k) / math.sqrt(d)
    e = torch.exp(scores - scores.max(dim=-1, keepdim=True).values) * mask[:, None, None, :]
    w = e / e.sum(dim=-1, keepdim=True)
    out = torch.einsum("bhnl,blhd->bnhd", w, v).reshape(B, N, h * d)
    return out @ m.to_out.weight.T + m.to_out.bias, w


@pytest.fixture
def setup():
    torch.manual_seed(0)
    m = CrossAttention(query_dim=16, context_dim=12, heads=4)
    x = torch.randn(3, 5, 16)
    ctx = torch.randn(3, 7, 12)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2, 1:] = False
    return m, x, ctx, mask


def test_matches_manual_attention_and_weights_sum_to_one(setup):
    m, x, ctx, mask = setup
    out, w = m(x, ctx, mask, return_weights=True)
    ref_out, ref_w = manual_attention(m, x, ctx, mask.float())
    assert out.shape == (3, 5, 16) and w.shape == (3, 4, 5, 7)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 5))
    assert (w[1, :, :, 4:] == 0).all() and (w[2, :, :, 1:] == 0).all()
    # the fast path (no weights) agrees
    torch.testing.assert_close(m(x, ctx, mask), out, atol=1e-5, rtol=1e-5)


def test_padding_content_does_not_matter(setup):
    m, x, ctx, mask = setup
    garbage = ctx.clone()
    garbage[~mask] = 1e3 * torch.randn(int((~mask).sum()), 12)
    torch.testing.assert_close(m(x, ctx, mask), m(x, garbage, mask))


def test_scale_is_one_over_sqrt_head_dim():
    m = CrossAttention(8, 8, heads=2, head_dim=9)
    assert m.scale == pytest.approx(1 / 3)


def test_all_padding_sample_gets_zero_output(setup):
    m, x, ctx, mask = setup
    mask[0] = False
    out, w = m(x, ctx, mask, return_weights=True)
    assert (out[0] == 0).all() and (w[0] == 0).all()
    torch.testing.assert_close(w[1:].sum(-1), torch.ones(2, 4, 5))


def test_bad_input(setup):
    m, x, ctx, mask = setup
    with pytest.raises(TypeError, match="bool"):
        m(x, ctx, mask.long())
    with pytest.raises(ValueError, match="mask must have shape"):
        m(x, ctx, mask[:, :3])
    with pytest.raises(ValueError, match="context must have shape"):
        m(x, ctx[..., :5], mask)
    with pytest.raises(ValueError, match="divisible"):
        CrossAttention(10, 4, heads=4)


def test_self_attention_2d_starts_as_identity_and_is_permutation_equivariant():
    torch.manual_seed(1)
    blk = SelfAttention2d(8, heads=2)
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(blk(x), x)
    torch.nn.init.normal_(blk.attention.to_out.weight)
    y = blk(x)
    assert not torch.allclose(y, x)
    # permuting the positions permutes the output (no positional information inside attention)
    perm = torch.randperm(16)
    xp = x.flatten(2)[:, :, perm].reshape(2, 8, 4, 4)
    torch.testing.assert_close(blk(xp).flatten(2), y.flatten(2)[:, :, perm], atol=1e-5, rtol=1e-5)


def test_cross_attention_2d_none_context_is_identity():
    blk = CrossAttention2d(8, 6, heads=2)
    x = torch.randn(2, 8, 3, 3)
    assert blk(x, None) is x
    assert blk(x, torch.randn(2, 4, 6)).shape == x.shape
