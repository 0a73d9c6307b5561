"""Attention blocks: multi-head cross-attention (the chapter's 13.3.4) and 2-D self-attention.

Scaled dot-product attention (Vaswani et al. 2017, "Attention Is All You Need", eq. 1):
``Attention(Q, K, V) = softmax(Q Kᵀ / sqrt(d_k)) V``, with the h heads of §3.2.2 concatenated and
projected back. In cross-attention (as in Rombach et al. 2022, "High-Resolution Image Synthesis with
Latent Diffusion Models", eq. 3) the queries come from the image features and the keys and values
from a conditioning sequence (text tokens); a padding mask keeps padded tokens out of the softmax, so
the weights over the real tokens sum to one.

This module imports nothing from the package; ``chapter13.unet`` builds on it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CrossAttention",
    "CrossAttention2d",
    "SelfAttention2d",
    "norm_groups",
    "regroup_norms",
    "zero_init",
]


def norm_groups(channels: int, max_groups: int = 32) -> int:
    """The largest number of GroupNorm groups <= ``max_groups`` that divides ``channels``."""
    for groups in range(min(max_groups, channels), 0, -1):
        if channels % groups == 0:
            return groups
    raise ValueError(f"channels must be positive, got {channels}")


def regroup_norms(module: nn.Module, max_groups: int) -> nn.Module:
    """Rebuild every ``nn.GroupNorm`` in ``module`` with at most ``max_groups`` groups (in place).

    ``chapter13.unet`` picks the largest divisor of C up to 32 groups (Wu & He 2018's default), which
    for the narrow layers of a CPU-sized U-Net (16 or 32 channels) means one channel per group, i.e.
    instance normalisation: every feature map is re-centred and re-scaled on its own, and the network
    loses how bright or how large a stroke is. Wu & He (2018, Table 3) find 1 channel per group the
    worst setting; with 8 groups each group spans 2-8 channels here. Parameters keep their shapes.

    One channel per group also **erases conditioning added as a per-channel bias**: a ResBlock adds
    ``Linear(emb)`` (the time, label or text embedding) to each channel before its second GroupNorm,
    and normalising each channel over its own H×W subtracts exactly that constant. At 16 or 32
    channels the block then cannot tell t or the label at all; with 2 channels per group only the
    difference of the two channels' biases survives. ``tests/test_temporal.py`` shows both.
    """
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.GroupNorm):
                groups = norm_groups(child.num_channels, max_groups)
                if groups != child.num_groups:
                    setattr(parent, name, nn.GroupNorm(groups, child.num_channels, eps=child.eps))
    return module


def zero_init(layer: nn.Module) -> nn.Module:
    """``layer`` with its weight and bias set to zero, returned for chaining.

    The last layer of every residual branch and of every denoiser starts at zero, so that a new block
    is the identity and a new network predicts 0 (DDPM's reference code, Ho et al. 2020; Goyal et al.
    2017 §5.1 for the residual case). Draws no random numbers.
    """
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class CrossAttention(nn.Module):
    """Multi-head cross-attention of queries ``x`` over a context sequence (Vaswani et al. 2017, eq. 1).

    ``Q = x W_Q``, ``K = c W_K``, ``V = c W_V`` split into ``heads`` heads of ``head_dim``;
    ``weights = softmax(Q Kᵀ / sqrt(head_dim))`` over the context positions, with padded positions
    (``mask`` False) set to -inf before the softmax; output ``concat_h(weights V) W_O``.

    Args:
        query_dim: D_q, the feature size of ``x`` (and of the output).
        context_dim: D_c, the feature size of the context tokens.
        heads: number of heads h.
        head_dim: size per head (default ``query_dim // heads``, which must then divide exactly).

    A sample whose mask is all False (no real token, e.g. a dropped caption for classifier-free
    guidance) attends to nothing: its weights are all zero and its output is exactly zero.
    """

    def __init__(self, query_dim: int, context_dim: int, heads: int = 4, head_dim: int | None = None):
        super().__init__()
        for name, value in (("query_dim", query_dim), ("context_dim", context_dim), ("heads", heads)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if head_dim is None:
            if query_dim % heads:
                raise ValueError(
                    f"query_dim={query_dim} is not divisible by heads={heads}; choose heads that divide "
                    "it or pass head_dim explicitly"
                )
            head_dim = query_dim // heads
        if not isinstance(head_dim, int) or head_dim < 1:
            raise ValueError(f"head_dim must be a positive int, got {head_dim!r}")
        self.query_dim, self.context_dim, self.heads, self.head_dim = query_dim, context_dim, heads, head_dim
        inner = heads * head_dim
        self.scale = 1.0 / math.sqrt(head_dim)
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Linear(inner, query_dim)

    def _split(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)  # (B, h, n, d)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        mask: Tensor | None = None,
        return_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend from ``x`` to ``context``.

        Args:
            x: (B, N, D_q) queries (e.g. flattened image features).
            context: (B, L, D_c) keys/values (e.g. text tokens); ``None`` means self-attention over x
                (then D_c must equal D_q).
            mask: (B, L) bool, True = real token, False = padding (``None``: every token is real).
            return_weights: also return the attention weights.

        Returns:
            (B, N, D_q), and the weights (B, heads, N, L) when ``return_weights``.
        """
        if context is None:
            context = x
        if x.dim() != 3 or x.shape[-1] != self.query_dim:
            raise ValueError(f"x must have shape (B, N, {self.query_dim}), got {tuple(x.shape)}")
        if context.dim() != 3 or context.shape[-1] != self.context_dim:
            raise ValueError(
                f"context must have shape (B, L, {self.context_dim}), got {tuple(context.shape)}"
            )
        if context.shape[0] != x.shape[0]:
            raise ValueError(f"x has batch {x.shape[0]} but context has batch {context.shape[0]}")
        b, n, _ = x.shape
        length = context.shape[1]
        has_token = None
        if mask is not None:
            if mask.dtype != torch.bool:
                raise TypeError(
                    f"mask must be a bool tensor (True = real token), got {mask.dtype}; use mask.bool()"
                )
            if mask.shape != (b, length):
                raise ValueError(f"mask must have shape ({b}, {length}), got {tuple(mask.shape)}")
            mask = mask.to(x.device)
            has_token = mask.any(dim=1)  # (B,)
            # rows without any real token: let them attend (harmlessly) and zero them afterwards
            mask = mask | ~has_token[:, None]
        q = self._split(self.to_q(x))
        k = self._split(self.to_k(context))
        v = self._split(self.to_v(context))
        attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, L)
        weights = None
        if return_weights:
            scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale  # (B, h, N, L)
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            weights = scores.softmax(dim=-1)
            out = torch.matmul(weights, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=self.scale)
        out = self.to_out(out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))
        if has_token is not None and not bool(has_token.all()):
            keep = has_token.to(out.dtype)
            out = out * keep[:, None, None]
            if weights is not None:
                weights = weights * keep[:, None, None, None]
        if return_weights:
            return out, weights
        return out


class SelfAttention2d(nn.Module):
    """Residual multi-head self-attention over the H·W positions of a feature map.

    ``x + proj(Attention(GroupNorm(x)))`` with the positions flattened to a sequence of length H·W,
    as in DDPM's U-Net at 16×16 (Ho et al. 2020, Appendix B). The output projection starts at zero,
    so the block starts as the identity.

    Args:
        channels: C.
        heads: number of heads (must divide C).
    """

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(norm_groups(channels), channels)
        self.attention = CrossAttention(channels, channels, heads=heads)
        zero_init(self.attention.to_out)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        if x.dim() != 4:
            raise ValueError(f"SelfAttention2d expects (B, C, H, W), got {tuple(x.shape)}")
        b, c, h, w = x.shape
        seq = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        out = self.attention(seq)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class CrossAttention2d(nn.Module):
    """Residual cross-attention from a feature map to a context sequence (Rombach et al. 2022, eq. 3).

    ``x + CrossAttention(GroupNorm(x) as (B, H·W, C), context, mask)``; the output projection starts
    at zero, so an untrained block is the identity. ``context=None`` skips the block.

    Args:
        channels: C of the feature map.
        context_dim: D_c of the context tokens.
        heads: number of heads (must divide C unless ``head_dim`` is given).
    """

    def __init__(self, channels: int, context_dim: int, heads: int = 4, head_dim: int | None = None):
        super().__init__()
        self.norm = nn.GroupNorm(norm_groups(channels), channels)
        self.attention = CrossAttention(channels, context_dim, heads=heads, head_dim=head_dim)
        zero_init(self.attention.to_out)

    def forward(self, x: Tensor, context: Tensor | None, mask: Tensor | None = None) -> Tensor:
        """x: (B, C, H, W), context: (B, L, D_c), mask: (B, L) bool -> (B, C, H, W)."""
        if context is None:
            return x
        if x.dim() != 4:
            raise ValueError(f"CrossAttention2d expects x of shape (B, C, H, W), got {tuple(x.shape)}")
        b, c, h, w = x.shape
        seq = self.norm(x).flatten(2).transpose(1, 2)
        out = self.attention(seq, context, mask)
        return x + out.transpose(1, 2).reshape(b, c, h, w)
