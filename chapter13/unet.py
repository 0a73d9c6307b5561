"""A small U-Net ε-predictor for diffusion, in the style of DDPM's (Ho et al. 2020, Appendix B).

- The timestep enters through a sinusoidal embedding (Vaswani et al. 2017, §3.5) followed by an MLP,
  never as a raw integer (compare ``chapter13.book.sec13_2.SimpleUNet``).
- Residual blocks with GroupNorm (Wu & He 2018) and SiLU add the time embedding to every block.
- Down path, middle, up path with skip connections (Ronneberger et al. 2015), optional self-attention
  at chosen resolutions.
- Conditioning hooks: ``num_classes`` adds a learned class embedding to the time embedding;
  ``context_dim`` adds cross-attention blocks (``chapter13.attention.CrossAttention2d``) that attend
  to a token sequence ``context`` (B, L, context_dim) with a padding mask (as in Rombach et al. 2022).

Works on 28×28 MNIST and on any H, W (odd sizes are handled by upsampling to the skip's size).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chapter13.attention import CrossAttention2d, SelfAttention2d, norm_groups, zero_init
from chapter13.config import check_model_input

__all__ = [
    "ChannelPlan",
    "ResBlock",
    "SinusoidalTimeEmbedding",
    "UNet",
    "channel_plan",
    "check_channel_mults",
    "check_positive_int",
    "check_timesteps",
    "time_mlp",
]


class SinusoidalTimeEmbedding(nn.Module):
    """Sinusoidal embedding of the timestep (Vaswani et al. 2017, §3.5; DDPM Appendix B).

    ``emb[:, i] = sin(t · 10000^(-i/(d/2)))`` and ``emb[:, d/2 + i] = cos(...)`` for i < d/2.

    Args:
        dim: embedding size d (even, >= 2).

    forward(t: (B,) integer or float tensor) -> (B, dim) float32.
    """

    def __init__(self, dim: int, max_period: float = 10000.0):
        super().__init__()
        if not isinstance(dim, int) or dim < 2 or dim % 2:
            raise ValueError(f"dim must be an even int >= 2, got {dim!r}")
        self.dim = dim
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: Tensor) -> Tensor:
        if t.dim() != 1:
            raise ValueError(f"t must have shape (B,), got {tuple(t.shape)}")
        args = t.to(self.freqs.dtype)[:, None] * self.freqs[None, :]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → 3×3 conv, + Linear(time embedding), GroupNorm → SiLU → dropout → 3×3 conv,
    plus a (1×1 conv) skip (DDPM Appendix B; Wide ResNet style). The last conv starts at zero.

    forward(x: (B, C_in, H, W), emb: (B, emb_dim)) -> (B, C_out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(norm_groups(in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_channels)
        self.norm2 = nn.GroupNorm(norm_groups(out_channels), out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_init(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


def time_mlp(base_channels: int) -> nn.Sequential:
    """Sinusoidal embedding of t followed by a 2-layer MLP (DDPM Appendix B), width 4·``base_channels``.

    forward(t: (B,) long) -> (B, 4·base_channels). Every U-Net of the package (images, clips, sounds)
    embeds time this way.
    """
    emb_dim = 4 * base_channels
    return nn.Sequential(
        SinusoidalTimeEmbedding(base_channels),
        nn.Linear(base_channels, emb_dim),
        nn.SiLU(),
        nn.Linear(emb_dim, emb_dim),
    )


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` if it is an int >= ``minimum`` (not a bool); a ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_channel_mults(channel_mults: Sequence[int]) -> tuple[int, ...]:
    """``channel_mults`` as a tuple of positive ints; a ValueError otherwise."""
    mults = tuple(int(m) for m in channel_mults)
    if not mults or min(mults) < 1:
        raise ValueError(
            f"channel_mults must be a non-empty list of positive ints, got {list(channel_mults)}"
        )
    return mults


def check_layout(x: Any, owner: str, what: str, layout: Sequence[str], one_axis_short: str = "") -> None:
    """Raise a TypeError unless ``x`` is a tensor, and a ValueError that names the expected layout
    (e.g. ``("B", "C", "L")``) unless it has one axis per letter; ``one_axis_short`` is the fix to
    suggest when ``x`` lacks exactly one axis."""
    shape = f"({', '.join(layout)})"
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a tensor {shape}, got {type(x).__name__}")
    if x.dim() != len(layout):
        hint = f" {one_axis_short}" if one_axis_short and x.dim() == len(layout) - 1 else ""
        raise ValueError(
            f"{owner} expects {what} of shape {shape} ({len(layout)} dimensions), got {x.dim()} "
            f"dimensions {tuple(x.shape)}.{hint}"
        )


def check_timesteps(t: Tensor | int, batch: int, device: torch.device) -> Tensor:
    """``t`` as a (batch,) tensor on ``device``; an int or 0-d tensor applies to the whole batch."""
    if not isinstance(t, Tensor):
        t = torch.tensor(t)
    if t.dim() == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"t must have shape ({batch},), one timestep per example, got {tuple(t.shape)}")
    return t.to(device)


@dataclass(frozen=True)
class ChannelPlan:
    """The channel bookkeeping of a U-Net with skip connections (Ronneberger et al. 2015; the DDPM
    layout, Ho et al. 2020, Appendix B), shared by the image, video and audio U-Nets.

    ``down[level]``: (in, out) of each block on the way down; a down-sampling follows every level but
    the last. ``mid``: the width of the middle block. ``up``: (level, [(in, out), ...]) from the
    deepest level up, where ``in`` includes the skip connection it concatenates; an up-sampling
    follows every level but level 0. ``out``: the width after the last up block.
    """

    down: list[list[tuple[int, int]]]
    mid: int
    up: list[tuple[int, list[tuple[int, int]]]]
    out: int


def channel_plan(base_channels: int, channel_mults: Sequence[int], num_res_blocks: int) -> ChannelPlan:
    """Widths of every block of a U-Net: ``num_res_blocks`` per level down, one more per level up,
    level i ``base_channels * channel_mults[i]`` wide, one skip per block and per down-sampling."""
    skips = [base_channels]
    ch = base_channels
    down = []
    for level, mult in enumerate(channel_mults):
        pairs = []
        for _ in range(num_res_blocks):
            pairs.append((ch, base_channels * mult))
            ch = base_channels * mult
            skips.append(ch)
        down.append(pairs)
        if level < len(channel_mults) - 1:
            skips.append(ch)
    mid = ch
    up = []
    for level, mult in reversed(list(enumerate(channel_mults))):
        pairs = []
        for _ in range(num_res_blocks + 1):
            pairs.append((ch + skips.pop(), base_channels * mult))
            ch = base_channels * mult
        up.append((level, pairs))
    return ChannelPlan(down=down, mid=mid, up=up, out=ch)


def skip_connected_pass(
    h: Tensor,
    down: nn.ModuleList,
    up: nn.ModuleList,
    *,
    block: Callable[[nn.Module, Tensor], Tensor],
    downsample: Callable[[int, Tensor], Tensor],
    middle: Callable[[Tensor], Tensor],
    upsample: Callable[[int, Tensor, Tensor], Tensor],
) -> Tensor:
    """The walk of a U-Net with skip connections (Ronneberger et al. 2015; DDPM's layout, Ho et al.
    2020, Appendix B), in the order ``channel_plan`` counts it; shared by ``UNet``, the video and the
    audio U-Nets, which differ only in what a step does to their tensors.

    Every block's output, and every down-sampled tensor, is kept as a skip; on the way up each block
    first concatenates the latest skip along the channels (dim 1). Down-sampling follows every level
    of ``down`` but the last, up-sampling every level of ``up`` but the last.

    Args:
        h: the input after the network's first convolution, (B, C, ...).
        down, up: ``ModuleList`` of ``ModuleList`` s of blocks per level (``up`` from the deepest).
        block: ``block(module, h) -> h`` runs one block (with the time embedding, context, ...).
        downsample: ``downsample(level, h) -> h`` after down level ``level``.
        middle: the bottleneck, ``middle(h) -> h``.
        upsample: ``upsample(i, h, skip) -> h`` after up level ``i``, to ``skip``'s size.
    """
    skips = [h]
    for level, blocks in enumerate(down):
        for module in blocks:
            h = block(module, h)
            skips.append(h)
        if level < len(down) - 1:
            h = downsample(level, h)
            skips.append(h)
    h = middle(h)
    for i, blocks in enumerate(up):
        for module in blocks:
            h = block(module, torch.cat([h, skips.pop()], dim=1))
        if i < len(up) - 1:
            h = upsample(i, h, skips[-1])
    return h


class _Level(nn.Module):
    """One res block, optionally followed by self-attention and cross-attention."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        emb_dim: int,
        dropout: float,
        attention: bool,
        context_dim: int | None,
        heads: int,
    ):
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, emb_dim, dropout)
        self.attn = SelfAttention2d(out_ch, heads) if attention else None
        self.cross = CrossAttention2d(out_ch, context_dim, heads) if (attention and context_dim) else None

    def forward(self, x: Tensor, emb: Tensor, context: Tensor | None, mask: Tensor | None) -> Tensor:
        x = self.res(x, emb)
        if self.attn is not None:
            x = self.attn(x)
        if self.cross is not None:
            x = self.cross(x, context, mask)
        return x


class UNet(nn.Module):
    """ε-prediction U-Net: ``forward(x, t, class_labels=None, context=None, context_mask=None)``.

    Args:
        in_channels: C of the images.
        out_channels: C of the prediction (default ``in_channels``).
        base_channels: width of the first level; level i has ``base_channels * channel_mults[i]``.
        channel_mults: one multiplier per resolution level; a 2× down-sampling between levels
            (28 → 14 → 7 for the default three levels).
        num_res_blocks: residual blocks per level on the way down (one more on the way up).
        attention_resolutions: feature-map sizes (in pixels, for an input of ``image_size``) at which
            to add self-attention (and cross-attention when ``context_dim`` is set), e.g. ``(7,)`` or
            ``(14, 7)``. DDPM used 16 for 32×32 CIFAR-10. The middle block always has self-attention.
        num_classes: if set, a learned class embedding is added to the time embedding;
            ``class_labels`` entries of -1 (or ``class_labels=None``) mean "no label" (the
            unconditional model of classifier-free guidance).
        context_dim: if set, cross-attention to ``context`` (B, L, context_dim) at the middle block and
            at every level in ``attention_resolutions``; ``context=None`` skips those blocks, and a
            sample whose ``context_mask`` is all False receives no context.
        dropout: dropout rate in the residual blocks.
        heads: attention heads.
        image_size: input side length used to place ``attention_resolutions`` (default 28).

    All arguments are JSON-serialisable; ``self.config`` holds them for ``checkpoints.save``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int | None = None,
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (),
        num_classes: int | None = None,
        context_dim: int | None = None,
        dropout: float = 0.0,
        heads: int = 4,
        image_size: int = 28,
    ):
        super().__init__()
        channel_mults = tuple(int(m) for m in channel_mults)
        attention_resolutions = tuple(int(r) for r in attention_resolutions)
        out_channels = in_channels if out_channels is None else out_channels
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("base_channels", base_channels),
            ("num_res_blocks", num_res_blocks),
            ("image_size", image_size),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not channel_mults or min(channel_mults) < 1:
            raise ValueError(f"channel_mults must be a non-empty list of positive ints, got {channel_mults}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}")
        if context_dim is not None and (not isinstance(context_dim, int) or context_dim < 1):
            raise ValueError(f"context_dim must be a positive int or None, got {context_dim!r}")
        resolutions = [image_size]
        for _ in channel_mults[1:]:
            resolutions.append((resolutions[-1] + 1) // 2)
        unknown = sorted(set(attention_resolutions) - set(resolutions))
        if unknown:
            raise ValueError(
                f"attention_resolutions {unknown} match no level: with image_size={image_size} and "
                f"{len(channel_mults)} levels the feature maps are {resolutions} pixels wide"
            )
        self.config: dict[str, Any] = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "base_channels": base_channels,
            "channel_mults": list(channel_mults),
            "num_res_blocks": num_res_blocks,
            "attention_resolutions": list(attention_resolutions),
            "num_classes": num_classes,
            "context_dim": context_dim,
            "dropout": dropout,
            "heads": heads,
            "image_size": image_size,
        }
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_classes, self.context_dim = num_classes, context_dim

        emb_dim = 4 * base_channels
        self.time_embed = time_mlp(base_channels)
        self.class_embed = nn.Embedding(num_classes, emb_dim) if num_classes else None

        self.init_conv = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        plan = channel_plan(base_channels, channel_mults, num_res_blocks)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for level, pairs in enumerate(plan.down):
            attn = resolutions[level] in attention_resolutions
            self.down.append(
                nn.ModuleList(_Level(i, o, emb_dim, dropout, attn, context_dim, heads) for i, o in pairs)
            )
            if level < len(plan.down) - 1:
                self.downsample.append(nn.Conv2d(pairs[-1][1], pairs[-1][1], 3, stride=2, padding=1))

        ch = plan.mid
        self.mid1 = ResBlock(ch, ch, emb_dim, dropout)
        self.mid_attn = SelfAttention2d(ch, heads)
        self.mid_cross = CrossAttention2d(ch, context_dim, heads) if context_dim else None
        self.mid2 = ResBlock(ch, ch, emb_dim, dropout)

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, pairs in plan.up:
            attn = resolutions[level] in attention_resolutions
            self.up.append(
                nn.ModuleList(_Level(i, o, emb_dim, dropout, attn, context_dim, heads) for i, o in pairs)
            )
            if level > 0:
                self.upsample.append(nn.Conv2d(pairs[-1][1], pairs[-1][1], 3, padding=1))

        ch = plan.out
        self.out_norm = nn.GroupNorm(norm_groups(ch), ch)
        self.out_conv = zero_init(nn.Conv2d(ch, out_channels, 3, padding=1))

    def _embed(self, t: Tensor, batch: int, class_labels: Tensor | None, device: torch.device) -> Tensor:
        emb = self.time_embed(check_timesteps(t, batch, device))
        if self.class_embed is not None and class_labels is not None:
            if class_labels.shape != (batch,):
                raise ValueError(f"class_labels must have shape ({batch},), got {tuple(class_labels.shape)}")
            if class_labels.is_floating_point():
                raise TypeError("class_labels must be integers (torch.long), -1 for 'no label'")
            labels = class_labels.to(device).long()
            if labels.min() < -1 or labels.max() >= self.num_classes:
                raise ValueError(
                    f"class_labels must lie in -1..{self.num_classes - 1} (-1 = no label), got "
                    f"{int(labels.min())}..{int(labels.max())}"
                )
            keep = (labels >= 0).to(emb.dtype)[:, None]
            emb = emb + self.class_embed(labels.clamp(min=0)) * keep
        elif class_labels is not None:
            raise ValueError("class_labels were given but this UNet was built with num_classes=None")
        return emb

    def _middle(self, h: Tensor, emb: Tensor, context: Tensor | None, context_mask: Tensor | None) -> Tensor:
        h = self.mid_attn(self.mid1(h, emb))
        if self.mid_cross is not None:
            h = self.mid_cross(h, context, context_mask)
        return self.mid2(h, emb)

    def forward(
        self,
        x: Tensor,
        t: Tensor,
        class_labels: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
    ) -> Tensor:
        """Predict ε.

        Args:
            x: (B, C_in, H, W) noisy images.
            t: (B,) timesteps (long).
            class_labels: (B,) long in -1..num_classes-1 (needs ``num_classes``).
            context: (B, L, context_dim) conditioning tokens (needs ``context_dim``).
            context_mask: (B, L) bool, True = real token.

        Returns:
            (B, C_out, H, W).
        """
        check_model_input(x, self, "x")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if context is not None and self.context_dim is None:
            raise ValueError("context was given but this UNet was built with context_dim=None")
        if context is not None and (context.dim() != 3 or context.shape[-1] != self.context_dim):
            raise ValueError(
                f"context must have shape (B, L, {self.context_dim}), got {tuple(context.shape)}"
            )
        emb = self._embed(t, x.shape[0], class_labels, x.device)
        h = skip_connected_pass(
            self.init_conv(x),
            self.down,
            self.up,
            block=lambda block, h: block(h, emb, context, context_mask),
            downsample=lambda level, h: self.downsample[level](h),
            middle=lambda h: self._middle(h, emb, context, context_mask),
            upsample=lambda i, h, skip: self.upsample[i](
                F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            ),
        )
        return self.out_conv(F.silu(self.out_norm(h)))
