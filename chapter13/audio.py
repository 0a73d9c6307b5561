"""Audio diffusion (13.4): a 1-D U-Net over raw waveforms, and the pitch of what it makes.

``AudioDiffusion`` is the 13.2 U-Net in one dimension (``Conv1d`` residual blocks, stride-2
down-sampling, self-attention at the bottom) over raw waveforms (B, C, L), in the spirit of WaveGrad
(Chen et al. 2021) and DiffWave (Kong et al. 2021) but unconditional and tiny; like every denoiser of
the package it is a ``chapter13.diffusion.DiffusionModel`` (the shipped one predicts v).
``dominant_frequency`` and ``pitch_metrics`` read a sound's pitch from its spectrum.

Recipe: ``chapter13.recipes.audio`` (``python -m chapter13.train audio-tones``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chapter13.attention import SelfAttention2d, norm_groups, zero_init
from chapter13.config import check_finite, check_model_input, check_seed
from chapter13.diffusion import DiffusionModel, sample_ddim
from chapter13.unet import (
    channel_plan,
    check_channel_mults,
    check_layout,
    check_positive_int,
    check_timesteps,
    skip_connected_pass,
    time_mlp,
)

__all__ = [
    "AudioDiffusion",
    "dominant_frequency",
    "fold_patches",
    "pitch_metrics",
    "sample_sounds",
    "spectrogram",
    "unfold_patches",
]


class _ResBlock1d(nn.Module):
    """GroupNorm → SiLU → Conv1d, + Linear(time embedding), GroupNorm → SiLU → dropout → Conv1d (zero
    initialised), plus a 1×1 skip: DDPM's residual block (Ho et al. 2020, Appendix B) in one dimension.

    forward(x: (B, C_in, L), emb: (B, emb_dim)) -> (B, C_out, L).
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, kernel_size: int, dropout: float):
        super().__init__()
        pad = kernel_size // 2
        self.norm1 = nn.GroupNorm(norm_groups(in_ch), in_ch)
        self.conv1 = nn.Conv1d(in_ch, out_ch, kernel_size, padding=pad)
        self.emb = nn.Linear(emb_dim, out_ch)
        self.norm2 = nn.GroupNorm(norm_groups(out_ch), out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_init(nn.Conv1d(out_ch, out_ch, kernel_size, padding=pad))
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv1d(in_ch, out_ch, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


def fold_patches(x: Tensor, p: int) -> Tensor:
    """(B, C, L) -> (B, C·p, L/p): sample j·p + i of channel c goes to channel c·p + i, position j
    (space-to-depth for waveforms; the inverse is :func:`unfold_patches`)."""
    b, c, length = x.shape
    return x.reshape(b, c, length // p, p).transpose(2, 3).reshape(b, c * p, length // p)


def unfold_patches(h: Tensor, p: int) -> Tensor:
    """(B, C·p, L/p) -> (B, C, L), the inverse of :func:`fold_patches`."""
    b, cp, n = h.shape
    return h.reshape(b, cp // p, p, n).transpose(2, 3).reshape(b, cp // p, n * p)


class AudioDiffusion(DiffusionModel):
    """A 1-D diffusion U-Net over raw waveforms (ε or v out, ``DiffusionModel``).

    Args:
        in_channels: C (1 for mono).
        base_channels: width of the first level.
        channel_mults: one multiplier per level; 2× down-sampling (strided ``Conv1d``) between levels,
            so L must be divisible by ``2 ** (levels - 1)``.
        num_res_blocks: blocks per level on the way down (one more on the way up).
        kernel_size: odd kernel of the convolutions.
        mid_attention: self-attention over the positions of the deepest level (global context: one
            pitch for the whole sound).
        dropout, heads: as in the 2-D U-Net.
        patch: consecutive samples folded into channels at the input and unfolded at the output
            (the 1-D space-to-depth of "simple diffusion", Hoogeboom et al. 2023, §3.3); the length
            must then be divisible by ``patch · 2 ** (levels - 1)``.

    forward(x: (B, C, L), t: (B,) long) -> (B, C, L).
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 2, 2, 4, 4),
        num_res_blocks: int = 1,
        kernel_size: int = 5,
        mid_attention: bool = True,
        dropout: float = 0.0,
        heads: int = 4,
        patch: int = 1,
        prediction: str = "eps",
        schedule: str = "cosine",
        T: int = 1000,
    ):
        super().__init__(prediction, schedule, T)
        for name, value in (
            ("in_channels", in_channels),
            ("base_channels", base_channels),
            ("num_res_blocks", num_res_blocks),
            ("kernel_size", kernel_size),
            ("patch", patch),
        ):
            check_positive_int(name, value)
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd so that a sound keeps its length, got {kernel_size}")
        mults = check_channel_mults(channel_mults)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.config: dict[str, Any] = {
            "in_channels": in_channels,
            "base_channels": base_channels,
            "channel_mults": list(mults),
            "num_res_blocks": num_res_blocks,
            "kernel_size": kernel_size,
            "mid_attention": bool(mid_attention),
            "dropout": dropout,
            "heads": heads,
            "patch": patch,
            "prediction": prediction,
            "schedule": schedule,
            "T": T,
        }
        self.in_channels, self.patch = in_channels, patch
        self.levels = len(mults)
        emb_dim = 4 * base_channels
        self.time_embed = time_mlp(base_channels)
        self.init_conv = nn.Conv1d(in_channels * patch, base_channels, kernel_size, padding=kernel_size // 2)
        plan = channel_plan(base_channels, mults, num_res_blocks)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for level, pairs in enumerate(plan.down):
            self.down.append(
                nn.ModuleList(_ResBlock1d(i, o, emb_dim, kernel_size, dropout) for i, o in pairs)
            )
            if level < self.levels - 1:
                self.downsample.append(nn.Conv1d(pairs[-1][1], pairs[-1][1], 3, stride=2, padding=1))
        ch = plan.mid
        self.mid1 = _ResBlock1d(ch, ch, emb_dim, kernel_size, dropout)
        self.mid_attn = SelfAttention2d(ch, heads) if mid_attention else None
        self.mid2 = _ResBlock1d(ch, ch, emb_dim, kernel_size, dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, pairs in plan.up:
            self.up.append(nn.ModuleList(_ResBlock1d(i, o, emb_dim, kernel_size, dropout) for i, o in pairs))
            if level > 0:
                self.upsample.append(nn.Conv1d(pairs[-1][1], pairs[-1][1], 3, padding=1))
        ch = plan.out
        self.out_norm = nn.GroupNorm(norm_groups(ch), ch)
        self.out_conv = zero_init(nn.Conv1d(ch, in_channels * patch, kernel_size, padding=kernel_size // 2))

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError that says how to fix ``x`` if this network cannot take it."""
        check_layout(
            x,
            "AudioDiffusion",
            "waveforms",
            "BCL",
            "A batch of mono waveforms (B, L) needs a channel axis: x.unsqueeze(1).",
        )
        check_model_input(x, self, "waves")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"x has {x.shape[1]} channels but this AudioDiffusion was built with in_channels={self.in_channels}"
            )
        factor = self.patch * 2 ** (self.levels - 1)
        if x.shape[2] % factor:
            raise ValueError(
                f"a sound of {x.shape[2]} samples cannot be cut into patches of {self.patch} and halved "
                f"{self.levels - 1} times by this AudioDiffusion ({self.levels} levels); use a length "
                f"divisible by {factor} "
                f"(e.g. {math.ceil(x.shape[2] / factor) * factor}: pad or crop the sound)"
            )

    def _middle(self, h: Tensor, emb: Tensor) -> Tensor:
        h = self.mid1(h, emb)
        if self.mid_attn is not None:
            h = self.mid_attn(h.unsqueeze(2)).squeeze(2)
        return self.mid2(h, emb)

    def predict(self, x: Tensor, t: Tensor) -> Tensor:
        """The network's raw output (ε̂ or v̂) for noisy waveforms ``x``: (B, C, L), ``t``: (B,) long."""
        self.check_input(x)
        emb = self.time_embed(check_timesteps(t, x.shape[0], x.device))
        h = skip_connected_pass(
            self.init_conv(fold_patches(x, self.patch)),
            self.down,
            self.up,
            block=lambda block, h: block(h, emb),
            downsample=lambda level, h: self.downsample[level](h),
            middle=lambda h: self._middle(h, emb),
            upsample=lambda i, h, skip: self.upsample[i](
                F.interpolate(h, size=skip.shape[-1], mode="nearest")
            ),
        )
        out = self.out_conv(F.silu(self.out_norm(h)))  # (B, C·p, L/p)
        return unfold_patches(out, self.patch)


# --------------------------------------------------------------------------------------------------
# Pitch
def _check_waves(waves: Tensor) -> Tensor:
    if not isinstance(waves, Tensor):
        raise TypeError(f"waves must be a tensor (B, L) or (B, 1, L), got {type(waves).__name__}")
    if waves.dim() == 3:
        if waves.shape[1] != 1:
            raise ValueError(f"waves must be mono, (B, 1, L); got {waves.shape[1]} channels")
        waves = waves[:, 0]
    if waves.dim() == 1:
        waves = waves[None]
    if waves.dim() != 2 or waves.shape[-1] < 8:
        raise ValueError(f"waves must have shape (B, L) or (B, 1, L) with L >= 8, got {tuple(waves.shape)}")
    if waves.shape[0] == 0:
        raise ValueError("waves is an empty batch; pass at least one sound")
    if waves.is_complex() or waves.dtype == torch.bool:
        raise TypeError(f"waves must be real samples, got {waves.dtype}")
    x = waves.detach().to(torch.float64).cpu()
    if not bool(torch.isfinite(x).all()):
        raise ValueError("waves contain NaN or infinity; the sampler diverged or the data are broken")
    return x


def dominant_frequency(waves: Tensor, sample_rate: float, pad_factor: int = 4) -> Tensor:
    """The frequency of the largest spectral peak of each sound, in Hz: (B, L) or (B, 1, L) -> (B,).

    The mean is removed, a Hann window applied and the signal zero-padded to ``pad_factor · L``
    before the real FFT; the peak bin ``k`` (DC excluded) is refined by fitting a parabola through
    the log-magnitudes ``a, b, c`` of bins ``k-1, k, k+1`` (quadratic interpolation, Smith & Serra
    1987, "PARSHL", §5): ``δ = 0.5 (a - c) / (a - 2b + c)`` and ``f = (k + δ) · sample_rate / N``.
    """
    x = _check_waves(waves)
    if not check_finite(sample_rate, "sample_rate") > 0:
        raise ValueError(f"sample_rate must be positive (samples per second, e.g. 4000), got {sample_rate}")
    pad_factor = check_positive_int("pad_factor", pad_factor)
    n = x.shape[-1]
    window = torch.hann_window(n, periodic=False, dtype=torch.float64)
    spectrum = torch.fft.rfft((x - x.mean(dim=-1, keepdim=True)) * window, n=pad_factor * n).abs()
    spectrum[:, 0] = 0.0
    k = spectrum[:, 1:-1].argmax(dim=-1) + 1  # keep a neighbour on each side
    log = torch.log(spectrum + 1e-300)
    a, b, c = (log.gather(1, (k + s)[:, None])[:, 0] for s in (-1, 0, 1))
    denom = a - 2 * b + c
    delta = torch.where(denom.abs() > 1e-12, 0.5 * (a - c) / denom, torch.zeros_like(denom))
    return (k.to(torch.float64) + delta.clamp(-0.5, 0.5)) * sample_rate / (pad_factor * n)


def pitch_metrics(
    waves: Tensor, pitches: Sequence[float], sample_rate: float, tolerance: float = 0.03
) -> dict[str, Any]:
    """Dominant frequency of each sound against the training pitches.

    Returns a dict with ``within`` (fraction of sounds whose dominant frequency lies within
    ``tolerance`` relative error of some training pitch), ``frequencies`` (B,) Hz, ``nearest``
    (B,) index of the nearest pitch (in log-frequency), ``relative_error`` (B,) |f - p| / p and
    ``counts`` (how many sounds matched each pitch within tolerance).
    """
    try:
        p = torch.as_tensor(pitches, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"pitches must be a list of frequencies in Hz, got {pitches!r}") from None
    if p.dim() != 1 or p.numel() == 0 or (p <= 0).any() or not bool(torch.isfinite(p).all()):
        raise ValueError(f"pitches must be a non-empty list of positive frequencies, got {list(pitches)}")
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance is a relative error in (0, 1), e.g. 0.03 for 3 %, got {tolerance}")
    freqs = dominant_frequency(waves, sample_rate)
    cents = (freqs[:, None].clamp(min=1e-9) / p[None]).log().abs()
    nearest = cents.argmin(dim=1)
    rel = (freqs - p[nearest]).abs() / p[nearest]
    hit = rel <= tolerance
    counts = [int((hit & (nearest == i)).sum()) for i in range(len(p))]
    return {
        "within": float(hit.double().mean()),
        "frequencies": freqs,
        "nearest": nearest,
        "relative_error": rel,
        "counts": counts,
    }


def spectrogram(waves: Tensor, n_fft: int = 256, hop: int = 64) -> Tensor:
    """Magnitude spectrogram in dB (Hann window): (B, L) or (B, 1, L) -> (B, n_fft // 2 + 1, frames).

    ``20 log10(|STFT| + 1e-6)``; frequency bin i is ``i · sample_rate / n_fft`` Hz.
    """
    x = _check_waves(waves).float()
    n_fft = check_positive_int("n_fft", n_fft, 2)
    hop = check_positive_int("hop", hop)
    if n_fft > x.shape[-1]:
        raise ValueError(
            f"n_fft={n_fft} is longer than the sounds ({x.shape[-1]} samples); use n_fft <= {x.shape[-1]}"
        )
    window = torch.hann_window(n_fft)
    stft = torch.stft(x, n_fft=n_fft, hop_length=hop, window=window, return_complex=True)
    return 20.0 * torch.log10(stft.abs() + 1e-6)


def sample_sounds(
    model: DiffusionModel,
    n: int,
    *,
    length: int = 2048,
    steps: int = 50,
    seed: int = 0,
    progress: bool = False,
) -> Tensor:
    """``n`` sounds (n, 1, length) from an audio model with the package's DDIM (η = 0), ``steps`` steps."""
    gen = torch.Generator().manual_seed(check_seed(seed))
    shape = (n, model.in_channels, length)
    return sample_ddim(model, model.schedule, shape, steps=steps, generator=gen, progress=progress)
