"""Diffusion over time: a spatio-temporal video denoiser, a 1-D audio U-Net, and how to measure them.

The same diffusion as for images (``chapter13.diffusion``; Ho et al. 2020) runs unchanged on clips
``(B, C, F, H, W)`` and waveforms ``(B, C, L)``: ``q_sample``, the samplers and the loss never look at
the layout, only the denoiser does. Both networks return ε̂ (the samplers' contract); inside they may
predict ``v`` instead (Salimans & Ho 2022), which the shipped models do (see :class:`_Parameterised`).

Video: :class:`VideoUNet` is a *factorised space-then-time* U-Net (pseudo-3-D), not a full
``Conv3d`` one. Every residual block is the 13.2 U-Net's 2-D :class:`~chapter13.unet.ResBlock` applied
to each frame, followed by a 1-D temporal convolution over the frames at each pixel (kernel 3, zero
initialised, residual); the middle block adds a space-time self-attention over the whole clip. Why
this design:

1. Cost. A 3×3×3 ``Conv3d`` has 27·C² weights and multiply-adds per voxel; a 3×3 spatial plus a
   3-tap temporal convolution has 9·C² + 3·C² = 12·C², 2.25× fewer. On a 2-core CPU that decides
   whether the model trains in minutes (``benchmarks/bench_temporal.py`` times both).
2. It is how published video diffusion models extend image U-Nets: factorised space-time U-Net
   (Ho, Salimans et al. 2022, "Video Diffusion Models", §3.1), pseudo-3-D convolutions (Singer et al.
   2022, "Make-A-Video", §3.2), temporal layers interleaved with spatial ones (Blattmann et al.
   2023, "Align your Latents", §3.1).
3. ``temporal=False`` removes every temporal layer: the same network becomes an image model applied
   to each frame independently, the per-frame baseline of the consistency measurements. The
   temporal layers start at zero (identity), as in Make-A-Video, so an image model's weights can
   seed the video model (:func:`inflate_from_image_model`).

With ``temporal_downsample=True`` each lower level halves the number of frames too (8 → 4 → 2), so
the deepest temporal convolution sees the whole clip; the frame count must then be divisible by
``2 ** (levels - 1)`` and a clear error says so otherwise.

Audio: :class:`AudioDiffusion` is the same U-Net in 1-D (``Conv1d`` residual blocks, stride-2
down-sampling, self-attention at the bottom) over raw waveforms, in the spirit of WaveGrad (Chen et al.
2021) and DiffWave (Kong et al. 2021) but unconditional and tiny.

Losses and metrics:
- :func:`consistency_loss`: the chapter's per-frame MSE plus 0.5 × the MSE of frame differences.
- :func:`video_diffusion_loss` / :func:`parameterised_loss`: the diffusion loss with the consistency
  term on the network's prediction (why that is the right place: see the docstring).
- :func:`temporal_metrics`: flicker (mean squared consecutive-frame difference), flicker relative to
  the amount of ink, warping error after the best integer translation, and the variation of the
  amount of ink over a clip; :func:`identity_consistency`: does the digit classifier read the same
  digit in every frame?
- :func:`dominant_frequency` and :func:`pitch_metrics`: the pitch of a sound from its spectrum.

Recipes: ``python -m chapter13.train video-digits`` (joint model), ``video-digits-frames`` (the same
network with time mixing off) and ``audio-tones``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chapter13.attention import SelfAttention2d, norm_groups
from chapter13.config import torch_threads
from chapter13.diffusion import NoiseSchedule, make_schedule, sample_ddim
from chapter13.train import RunRecord, fit
from chapter13.unet import ResBlock, SinusoidalTimeEmbedding

__all__ = [
    "AudioDiffusion",
    "SpaceTimeAttention",
    "TemporalConv",
    "VideoUNet",
    "build_audio_tones",
    "build_video_digits",
    "build_video_digits_frames",
    "consistency_loss",
    "digit_crops",
    "dominant_frequency",
    "frame_difference",
    "identity_consistency",
    "inflate_from_image_model",
    "ink_variation",
    "make_schedule",
    "parameterised_loss",
    "pitch_metrics",
    "relative_flicker",
    "sample_clips",
    "sample_sounds",
    "spectrogram",
    "temporal_metrics",
    "train_audio",
    "train_video",
    "video_diffusion_loss",
    "warp_error",
]


# ==================================================================================================
# Shared pieces
def _check_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_mults(channel_mults: Sequence[int]) -> tuple[int, ...]:
    mults = tuple(int(m) for m in channel_mults)
    if not mults or min(mults) < 1:
        raise ValueError(
            f"channel_mults must be a non-empty list of positive ints, got {list(channel_mults)}"
        )
    return mults


def _time_mlp(base_channels: int) -> nn.Sequential:
    """Sinusoidal embedding of t followed by a 2-layer MLP (DDPM Appendix B), width 4·base."""
    emb_dim = 4 * base_channels
    return nn.Sequential(
        SinusoidalTimeEmbedding(base_channels),
        nn.Linear(base_channels, emb_dim),
        nn.SiLU(),
        nn.Linear(emb_dim, emb_dim),
    )


def _check_t(t: Tensor | int, batch: int, device: torch.device) -> Tensor:
    if not isinstance(t, Tensor):
        t = torch.tensor(t)
    if t.dim() == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"t must have shape ({batch},), one timestep per example, got {tuple(t.shape)}")
    return t.to(device)


PREDICTIONS = ("eps", "v")


class _Parameterised(nn.Module):
    """What the network outputs, and how that becomes the ε the package's samplers expect.

    ``prediction="eps"``: the network predicts ε (Ho et al. 2020, eq. 11). ``prediction="v"``: it
    predicts ``v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0`` (Salimans & Ho 2022, "Progressive Distillation
    for Fast Sampling of Diffusion Models", §4 and Appendix D), the parameterisation of Imagen Video
    (Ho et al. 2022, §2.4). Either way ``forward`` returns ε̂, so ``chapter13.diffusion``'s samplers
    and loss take the model unchanged; for v, ``ε̂ = sqrt(ᾱ_t) v̂ + sqrt(1 - ᾱ_t) x_t`` (substitute
    ``x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε`` to check). Why v here: with ε-prediction the clean
    estimate ``x̂_0 = (x_t - sqrt(1 - ᾱ_t) ε̂) / sqrt(ᾱ_t)`` multiplies the network's error by
    ``1 / sqrt(ᾱ_t)`` (158 at the last step of the linear schedule), so a network trained for only
    minutes starts every sample from amplified noise; with v, ``x̂_0 = sqrt(ᾱ_t) x_t - sqrt(1 - ᾱ_t) v̂``
    and nothing is amplified.
    """

    prediction: str

    def _init_prediction(self, prediction: str, schedule: str, T: int) -> None:
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        self.prediction, self.schedule_name, self.T = prediction, schedule, T
        self._schedule = make_schedule(schedule, T)

    def schedule(self) -> NoiseSchedule:
        """The noise schedule this model was built for (needed for v-prediction)."""
        return self._schedule

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """What the network is trained to output: ε, or ``v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0``."""
        return noise if self.prediction == "eps" else self._schedule.v_target(x0, noise, t)

    def predict(self, x: Tensor, t: Tensor) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """ε̂(x_t, t), whatever the network predicts internally (shape of ``x``)."""
        out = self.predict(x, t)
        return out if self.prediction == "eps" else self._schedule.eps_from_v(x, t, out)


# ==================================================================================================
# Video
class TemporalConv(nn.Module):
    """Residual temporal mixing: ``x + Conv1d_time(SiLU(GroupNorm(x)))`` with a 3-tap kernel over frames.

    The pseudo-3-D convolution's temporal half (Singer et al. 2022, "Make-A-Video", eq. 1). The
    convolution starts at zero, so an untrained block is the identity.

    forward(x: (B, C, F, H, W)) -> (B, C, F, H, W).
    """

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd so that the clip keeps its length, got {kernel_size}")
        self.norm = nn.GroupNorm(norm_groups(channels), channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, f, h, w = x.shape
        y = F.silu(self.norm(x))  # GroupNorm normalises over (C/G, F, H, W): statistics of the whole clip
        y = y.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, f)
        y = self.conv(y).reshape(b, h, w, c, f).permute(0, 3, 4, 1, 2)
        return x + y


def _frames_to_batch(x: Tensor) -> Tensor:
    """(B, C, F, H, W) -> (B·F, C, H, W)."""
    b, c, f, h, w = x.shape
    return x.transpose(1, 2).reshape(b * f, c, h, w)


def _batch_to_frames(x: Tensor, frames: int) -> Tensor:
    """(B·F, C, H, W) -> (B, C, F, H, W)."""
    bf, c, h, w = x.shape
    return x.reshape(bf // frames, frames, c, h, w).transpose(1, 2)


class SpaceTimeAttention(SelfAttention2d):
    """Residual self-attention over all F·H·W positions of a clip's feature map.

    ``x + Attention(GroupNorm(x))`` with the clip flattened to one sequence (Vaswani et al. 2017, eq. 1),
    so a position of one frame can copy from wherever the digit is in any other frame; the output
    projection starts at zero (identity). The joint space-time attention of Ho et al. (2022),
    affordable here because it only runs at the coarse levels.

    forward(x: (B, C, F, H, W)) -> (B, C, F, H, W).
    """

    def forward(self, x: Tensor) -> Tensor:
        b, c, f, h, w = x.shape  # a (B, C, F·H, W) map has the same F·H·W positions
        return super().forward(x.reshape(b, c, f * h, w)).reshape(b, c, f, h, w)


class _SpaceTimeBlock(nn.Module):
    """The 13.2 2-D ResBlock on every frame, then (if ``temporal``) a :class:`TemporalConv` and,
    optionally, a :class:`SpaceTimeAttention`."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        emb_dim: int,
        dropout: float,
        temporal: bool,
        attention: bool = False,
        heads: int = 4,
    ):
        super().__init__()
        self.spatial = ResBlock(in_ch, out_ch, emb_dim, dropout)
        self.temporal = TemporalConv(out_ch) if temporal else None
        self.st_attn = SpaceTimeAttention(out_ch, heads) if (temporal and attention) else None

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        frames = x.shape[2]
        h = self.spatial(_frames_to_batch(x), emb.repeat_interleave(frames, dim=0))
        h = _batch_to_frames(h, frames)
        if self.temporal is not None:
            h = self.temporal(h)
        if self.st_attn is not None:
            h = self.st_attn(h)
        return h


class VideoUNet(_Parameterised):
    """ε-prediction U-Net for clips, factorised into spatial and temporal layers (see the module doc).

    Args:
        in_channels: C of the clips (1 for the moving digits).
        out_channels: C of the prediction (default ``in_channels``).
        base_channels: width of the first level; level i has ``base_channels * channel_mults[i]``.
        channel_mults: one multiplier per level; 2× spatial down-sampling between levels.
        num_res_blocks: blocks per level on the way down (one more on the way up).
        temporal: add temporal convolutions after every spatial block (and in the middle). ``False``
            gives a per-frame image model: no information passes between frames.
        temporal_downsample: also halve the frame count between levels (only with ``temporal``).
        mid_attention: spatial self-attention in the middle block (per frame); with ``temporal`` it
            is followed by a **space-time** self-attention over all F·H·W positions of the deepest
            level (zero-initialised, so it starts as the identity), which lets every position of
            every frame look at the whole clip, as the space-time attention of Ho et al. (2022).
        space_time_attention: levels (0 = finest) whose blocks are followed by a
            :class:`SpaceTimeAttention` as well (only with ``temporal``).
        dropout: dropout in the residual blocks.
        heads: attention heads.
        patch: side of the square patches folded into channels at the input (space-to-depth,
            ``pixel_unshuffle``) and unfolded at the output, as in "simple diffusion" (Hoogeboom,
            Heek & Salimans 2023, §3.3): ``patch=2`` runs the first level at 16×16 for 32×32 frames,
            4× cheaper.

    forward(x: (B, C, F, H, W), t: (B,) long) -> (B, C_out, F, H, W). H and W must be divisible by
    ``patch · 2 ** (levels - 1)``, and F by ``2 ** (levels - 1)`` when ``temporal_downsample`` is on. All constructor
    arguments are JSON-serialisable; ``self.config`` holds them for ``checkpoints.save``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int | None = None,
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 1,
        temporal: bool = True,
        temporal_downsample: bool = True,
        mid_attention: bool = True,
        space_time_attention: Sequence[int] = (),
        dropout: float = 0.0,
        heads: int = 4,
        patch: int = 1,
        prediction: str = "eps",
        schedule: str = "linear",
        T: int = 1000,
    ):
        super().__init__()
        self._init_prediction(prediction, schedule, T)
        out_channels = in_channels if out_channels is None else out_channels
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("base_channels", base_channels),
            ("num_res_blocks", num_res_blocks),
            ("patch", patch),
        ):
            _check_int(name, value)
        mults = _check_mults(channel_mults)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        temporal, temporal_downsample = bool(temporal), bool(temporal) and bool(temporal_downsample)
        st_levels = sorted({int(v) for v in space_time_attention})
        if st_levels and (st_levels[0] < 0 or st_levels[-1] >= len(mults)):
            raise ValueError(
                f"space_time_attention lists levels {st_levels}, but this network has levels 0..{len(mults) - 1}"
            )
        self.config: dict[str, Any] = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "base_channels": base_channels,
            "channel_mults": list(mults),
            "num_res_blocks": num_res_blocks,
            "temporal": temporal,
            "temporal_downsample": temporal_downsample,
            "mid_attention": bool(mid_attention),
            "space_time_attention": st_levels,
            "dropout": dropout,
            "heads": heads,
            "patch": patch,
            "prediction": prediction,
            "schedule": schedule,
            "T": T,
        }
        self.in_channels, self.out_channels, self.patch = in_channels, out_channels, patch
        self.temporal, self.temporal_downsample = temporal, temporal_downsample
        self.levels = len(mults)
        emb_dim = 4 * base_channels
        self.time_embed = _time_mlp(base_channels)
        self.init_conv = nn.Conv2d(in_channels * patch * patch, base_channels, 3, padding=1)

        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [base_channels]
        ch = base_channels
        for level, mult in enumerate(mults):
            out = base_channels * mult
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(_SpaceTimeBlock(ch, out, emb_dim, dropout, temporal, level in st_levels, heads))
                ch = out
                skips.append(ch)
            self.down.append(blocks)
            if level < self.levels - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)

        self.mid1 = _SpaceTimeBlock(ch, ch, emb_dim, dropout, temporal)
        self.mid_attn = SelfAttention2d(ch, heads) if mid_attention else None
        self.mid_st_attn = SpaceTimeAttention(ch, heads) if (mid_attention and temporal) else None
        self.mid2 = _SpaceTimeBlock(ch, ch, emb_dim, dropout, temporal)

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            out = base_channels * mult
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                blocks.append(
                    _SpaceTimeBlock(
                        ch + skips.pop(), out, emb_dim, dropout, temporal, level in st_levels, heads
                    )
                )
                ch = out
            self.up.append(blocks)
            if level > 0:
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))

        self.out_norm = nn.GroupNorm(norm_groups(ch), ch)
        self.out_conv = nn.Conv2d(ch, out_channels * patch * patch, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError that says how to fix ``x`` if this network cannot take it."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a tensor (B, C, F, H, W), got {type(x).__name__}")
        if x.dim() != 5:
            hint = (
                " A single image batch (B, C, H, W) is a clip of one frame: use x.unsqueeze(2)."
                if x.dim() == 4
                else ""
            )
            raise ValueError(
                f"VideoUNet expects clips of shape (B, C, F, H, W) (5 dimensions), got {x.dim()} "
                f"dimensions {tuple(x.shape)}.{hint}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"x has {x.shape[1]} channels but this VideoUNet was built with in_channels="
                f"{self.in_channels}; the layout is (B, C, F, H, W) with channels before frames"
            )
        factor = 2 ** (self.levels - 1)
        _, _, f, h, w = x.shape
        if h % (factor * self.patch) or w % (factor * self.patch):
            raise ValueError(
                f"frames of {h}x{w} pixels cannot be cut into {self.patch}x{self.patch} patches and "
                f"halved {self.levels - 1} times by this VideoUNet ({self.levels} levels); use H and W "
                f"divisible by {factor * self.patch} (e.g. 32x32)"
            )
        if self.temporal_downsample and f % factor:
            raise ValueError(
                f"a clip of {f} frames cannot be halved {self.levels - 1} times in time by this "
                f"VideoUNet ({self.levels} levels with temporal_downsample=True); use a frame count "
                f"divisible by {factor} (e.g. {max(factor, 2 * factor)}), or build it with "
                "temporal_downsample=False"
            )

    def _down_time(self, x: Tensor) -> Tensor:
        if not self.temporal_downsample:
            return x
        b, c, f, h, w = x.shape
        return x.reshape(b, c, f // 2, 2, h, w).mean(dim=3)

    def _up_time(self, x: Tensor, frames: int) -> Tensor:
        if x.shape[2] == frames:
            return x
        return x.repeat_interleave(frames // x.shape[2], dim=2)

    def predict(self, x: Tensor, t: Tensor) -> Tensor:
        """The network's raw output (ε̂ or v̂) for noisy clips ``x``: (B, C, F, H, W), ``t``: (B,) long."""
        self.check_input(x)
        frames = x.shape[2]
        emb = self.time_embed(_check_t(t, x.shape[0], x.device))
        h = _batch_to_frames(self.init_conv(F.pixel_unshuffle(_frames_to_batch(x), self.patch)), frames)
        hs = [h]
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
                hs.append(h)
            if level < len(self.downsample):
                f = h.shape[2]
                h = _batch_to_frames(self.downsample[level](_frames_to_batch(h)), f)
                h = self._down_time(h)
                hs.append(h)
        h = self.mid1(h, emb)
        if self.mid_attn is not None:
            f = h.shape[2]
            h = _batch_to_frames(self.mid_attn(_frames_to_batch(h)), f)
        if self.mid_st_attn is not None:
            h = self.mid_st_attn(h)
        h = self.mid2(h, emb)
        for i, blocks in enumerate(self.up):
            for block in blocks:
                h = block(torch.cat([h, hs.pop()], dim=1), emb)
            if i < len(self.upsample):
                target = hs[-1]
                h = self._up_time(h, target.shape[2])
                f = h.shape[2]
                up = F.interpolate(_frames_to_batch(h), size=target.shape[-2:], mode="nearest")
                h = _batch_to_frames(self.upsample[i](up), f)
        out = self.out_conv(F.silu(self.out_norm(_frames_to_batch(h))))
        return _batch_to_frames(F.pixel_shuffle(out, self.patch), frames)


# --------------------------------------------------------------------------------------------------
def _check_clips(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (B, C, F, H, W)")
    if x.dim() != 5:
        raise ValueError(
            f"{name} must be clips of shape (B, C, F, H, W), got {x.dim()} dimensions {tuple(x.shape)}"
        )
    if x.shape[2] < 2:
        raise ValueError(f"{name} has {x.shape[2]} frame(s); temporal measures need at least 2 frames")


def consistency_loss(
    pred: Tensor, target: Tensor, temporal_weight: float = 0.5, reduction: str = "mean"
) -> Tensor:
    """The chapter's temporal consistency loss: per-frame MSE + 0.5 × frame-difference MSE.

    ``L = mean((p - y)²) + w · mean((Δp - Δy)²)`` with ``Δz_f = z_{f+1} - z_f`` along the frame axis
    (dim 2 of the (B, C, F, H, W) layout) and ``w = temporal_weight`` (0.5 in the chapter).

    Args:
        pred, target: (B, C, F, H, W), F >= 2, the same shape.
        temporal_weight: w >= 0.
        reduction: ``"mean"`` (a scalar) or ``"none"`` (one value per clip, (B,); their mean is the
            scalar).

    Returns:
        A scalar tensor (or (B,)); zero exactly when ``pred == target``.
    """
    _check_clips("pred", pred)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape"
        )
    if not temporal_weight >= 0:
        raise ValueError(f"temporal_weight must be >= 0 (the chapter uses 0.5), got {temporal_weight}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    error = pred - target.to(pred)
    frame_term = error.pow(2).flatten(1).mean(dim=1)
    diff_term = (error[:, :, 1:] - error[:, :, :-1]).pow(2).flatten(1).mean(dim=1)  # Δp - Δy = Δ(p - y)
    per_clip = frame_term + temporal_weight * diff_term
    return per_clip.mean() if reduction == "mean" else per_clip


def parameterised_loss(
    model: nn.Module,
    schedule: NoiseSchedule,
    x0: Tensor,
    *,
    temporal_weight: float | None = None,
    min_snr_gamma: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The simple diffusion loss in the model's own parameterisation (Ho et al. 2020, eq. 14).

    ``t ~ U{0..T-1}``, ``ε ~ N(0, I)``, ``x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε``; the target is ε for
    an ε-model and ``v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0`` for a v-model (Salimans & Ho 2022, §4),
    compared by MSE, or by :func:`consistency_loss` with weight ``temporal_weight`` for clips.
    For a plain ε-model with ``temporal_weight=None`` this is ``chapter13.diffusion.diffusion_loss``
    with the same random draws.

    Args:
        model: ``model(x_t, t) -> ε̂``; if it has ``prediction == "v"``, its ``predict`` and
            ``target`` methods are used (:class:`VideoUNet`, :class:`AudioDiffusion`).
        x0: clean data (B, ...); (B, C, F, H, W) when ``temporal_weight`` is set.
        min_snr_gamma: optional Min-SNR-γ weighting (Hang et al. 2023, "Efficient Diffusion Training
            via Min-SNR Weighting Strategy", §3.4): each example's loss is multiplied by
            ``min(SNR_t, γ) / SNR_t`` for ε-targets and ``min(SNR_t, γ) / (SNR_t + 1)`` for v-targets,
            i.e. an x_0-loss weighted by ``min(SNR_t, γ)``: the many nearly clean steps stop
            dominating, which speeds up training several times in the paper.
        generator: draws t and ε (reproducible).
    """
    if min_snr_gamma is not None and not min_snr_gamma > 0:
        raise ValueError(f"min_snr_gamma must be positive (Hang et al. use 5), got {min_snr_gamma}")
    if not isinstance(x0, Tensor) or not x0.is_floating_point() or x0.dim() < 2:
        raise TypeError("x0 must be a floating-point tensor of shape (B, ...)")
    if temporal_weight is not None:
        _check_clips("x0", x0)
    native = getattr(model, "prediction", "eps") == "v"
    if native and (
        model.T != schedule.T
        or not torch.allclose(model.schedule().alpha_bars, schedule.alpha_bars, atol=1e-6)
    ):
        raise ValueError(
            f"this v-prediction model was built for the {model.schedule_name!r} schedule with T={model.T}; "
            f"train it with that schedule (model.schedule()), not {schedule!r}"
        )
    batch = x0.shape[0]
    where = generator.device if generator is not None else x0.device
    t = torch.randint(0, schedule.T, (batch,), generator=generator, device=where)
    noise = torch.randn(x0.shape, generator=generator, device=where, dtype=x0.dtype).to(x0.device)
    x_t = schedule.q_sample(x0, t, noise)
    t = t.to(x0.device)
    if native:
        pred, target = model.predict(x_t, t), model.target(x0, noise, t)
    else:
        pred, target = model(x_t, t), noise
    if pred.shape != target.shape:
        raise ValueError(
            f"the model returned shape {tuple(pred.shape)} for data of shape {tuple(x0.shape)}; "
            "a diffusion model must return a tensor shaped like its input"
        )
    if temporal_weight is None:
        per_example = (pred - target).pow(2).flatten(1).mean(dim=1)
    else:
        per_example = consistency_loss(pred, target, temporal_weight, reduction="none")
    if min_snr_gamma is not None:
        snr = schedule.snr[t.cpu()]
        weight = snr.clamp(max=min_snr_gamma) / (snr + 1.0 if native else snr)
        per_example = per_example * weight.to(per_example)
    return per_example.mean()


def video_diffusion_loss(
    model: nn.Module,
    schedule: NoiseSchedule,
    x0: Tensor,
    *,
    temporal_weight: float = 0.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The diffusion loss on clips with the chapter's consistency term on the network's prediction.

    ``L = consistency_loss(prediction(x_t, t), target, temporal_weight)`` with prediction and target ε
    (DDPM, Ho et al. 2020, eq. 14) or v (Salimans & Ho 2022); see :func:`parameterised_loss`.

    Why the consistency term belongs here, on the denoiser's prediction during training, and not as
    a penalty on sampled clips: with ``e = prediction - target`` the loss is the quadratic form
    ``eᵀ(I + w DᵀD)e`` (``D`` the frame-difference operator), which is positive definite. For any
    positive-definite ``A`` the minimiser of ``E[(f(x_t) - y)ᵀ A (f(x_t) - y)]`` over functions ``f``
    is still ``E[y | x_t]``, so the term does not bias the denoiser: it re-weights its errors,
    counting flicker (error that alternates between frames, up to ``1 + 4w`` = 3×) more than error
    that is the same in every frame (1×). A penalty on sampled frames has no target frame to compare
    with, and one that only pushes frame differences down would freeze the motion.

    Args:
        x0: clean clips (B, C, F, H, W) in [-1, 1].
        temporal_weight: w (0.5 in the chapter); ``0`` gives, for an ε-model, exactly
            ``chapter13.diffusion.diffusion_loss``'s value for the same draws.
        generator: draws t and ε (reproducible).
    """
    return parameterised_loss(model, schedule, x0, temporal_weight=temporal_weight, generator=generator)


# --------------------------------------------------------------------------------------------------
# Temporal-consistency metrics
def frame_difference(clips: Tensor) -> Tensor:
    """Flicker: mean squared difference between consecutive frames, per clip.

    ``d = mean_{f, c, h, w} (x_{f+1} - x_f)²`` for ``clips``: (B, C, F, H, W) -> (B,). Real moving
    digits have a value set by their speed; frames sampled independently have a much larger one.
    """
    _check_clips("clips", clips)
    return (clips[:, :, 1:] - clips[:, :, :-1]).pow(2).flatten(1).mean(dim=1)


def relative_flicker(clips: Tensor, background: float = -1.0) -> Tensor:
    """Flicker relative to the amount of ink, per clip: (B, C, F, H, W) -> (B,).

    With ``u = x - background`` (0 on the background),
    ``r = Σ_f ||u_{f+1} - u_f||² / Σ_f ½(||u_f||² + ||u_{f+1}||²)``. It is 0 for a still clip and 2
    when the ink of consecutive frames never overlaps, whatever the amount of ink, so a model that
    draws thinner digits than the data is not rewarded with less flicker, as it is by
    :func:`frame_difference`.
    """
    _check_clips("clips", clips)
    u = clips - background
    num = (u[:, :, 1:] - u[:, :, :-1]).pow(2).flatten(1).sum(dim=1)
    energy = u.pow(2).sum(dim=(1, 3, 4))  # (B, F)
    den = 0.5 * (energy[:, 1:] + energy[:, :-1]).sum(dim=1)
    return num / den.clamp(min=1e-12)


def _shift(frames: Tensor, dy: int, dx: int, fill: float) -> Tensor:
    """Translate (N, C, H, W) by (dy, dx) pixels, filling the uncovered border with ``fill``."""
    h, w = frames.shape[-2:]
    out = torch.full_like(frames, fill)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[:, :, yd, xd] = frames[:, :, ys, xs]
    return out


def warp_error(clips: Tensor, max_shift: int = 4, background: float = -1.0) -> Tensor:
    """Warping error with a global translation: how far each frame is from its predecessor moved.

    For each consecutive pair, ``min_{|dy|, |dx| <= max_shift} mean((shift(x_f, dy, dx) - x_{f+1})²)``
    (the uncovered border filled with ``background``), averaged over the pairs: (B, C, F, H, W) -> (B,).
    This is the warping error of video consistency studies (e.g. Lai et al. 2018, "Learning Blind
    Video Temporal Consistency", eq. 9) with the optical flow restricted to one translation per frame,
    which is the exact motion of the moving-digit clips: real clips score 0 (up to a bounce landing
    past ``max_shift``), a clip whose digit changes shape or identity scores high.
    """
    _check_clips("clips", clips)
    max_shift = _check_int("max_shift", max_shift, 0)
    b, f = clips.shape[0], clips.shape[2]
    prev = _frames_to_batch(clips[:, :, :-1])
    nxt = _frames_to_batch(clips[:, :, 1:])
    best = torch.full((prev.shape[0],), math.inf, dtype=clips.dtype, device=clips.device)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            err = (_shift(prev, dy, dx, background) - nxt).pow(2).flatten(1).mean(dim=1)
            best = torch.minimum(best, err)
    return best.reshape(b, f - 1).mean(dim=1)


def ink_variation(clips: Tensor) -> Tensor:
    """Coefficient of variation of the amount of ink over a clip, per clip: (B, C, F, H, W) -> (B,).

    ``ink_f = sum((x_f + 1) / 2)`` (pixels in [0, 1]); the result is ``std_f(ink) / mean_f(ink)``. A
    digit that only moves keeps its ink (0 for the real clips); one that changes, fades or splits
    does not.
    """
    _check_clips("clips", clips)
    ink = ((clips + 1.0) / 2.0).clamp(0.0, 1.0).sum(dim=(1, 3, 4))  # (B, F)
    return ink.std(dim=1, unbiased=False) / ink.mean(dim=1).clamp(min=1e-6)


def digit_crops(clips: Tensor, digit_size: int = 14, out_size: int = 28) -> Tensor:
    """Cut the digit out of every frame and scale it to MNIST's size, for a digit classifier.

    The crop is ``digit_size`` pixels square, centred on the frame's ink centroid (clamped to the
    canvas), then resized to ``out_size`` with bilinear interpolation: (B, 1, F, H, W) in [-1, 1] ->
    (B, F, 1, out_size, out_size) in [-1, 1]. For the real clips, whose 14-pixel sprites are whole
    28-pixel MNIST digits shrunk by two, this undoes the shrinking up to blur.
    """
    _check_clips("clips", clips)
    b, c, f, h, w = clips.shape
    if c != 1:
        raise ValueError(f"digit_crops needs grey-scale clips (C = 1), got C = {c}")
    if not 1 <= digit_size <= min(h, w):
        raise ValueError(f"digit_size must lie in 1..{min(h, w)}, got {digit_size}")
    frames = clips.detach().float().cpu()[:, 0].reshape(b * f, h, w)
    ink = ((frames + 1.0) / 2.0).clamp(0.0, 1.0)
    total = ink.sum(dim=(1, 2)).clamp(min=1e-6)
    row = (ink.sum(dim=2) * torch.arange(h)).sum(dim=1) / total
    col = (ink.sum(dim=1) * torch.arange(w)).sum(dim=1) / total
    top = (row - (digit_size - 1) / 2).round().long().clamp(0, h - digit_size)
    left = (col - (digit_size - 1) / 2).round().long().clamp(0, w - digit_size)
    offset = torch.arange(digit_size)
    rows = (top[:, None] + offset)[:, :, None].expand(-1, digit_size, digit_size)
    cols = (left[:, None] + offset)[:, None, :].expand(-1, digit_size, digit_size)
    crops = frames[torch.arange(b * f)[:, None, None], rows, cols].unsqueeze(1)
    crops = F.interpolate(crops, size=(out_size, out_size), mode="bilinear", align_corners=False)
    return crops.clamp(-1.0, 1.0).reshape(b, f, 1, out_size, out_size)


def identity_consistency(clips: Tensor, classifier: nn.Module | None = None) -> dict[str, Any]:
    """Does a clip show the same digit in every frame? Measured with the shipped digit classifier.

    Every frame's digit is cut out (:func:`digit_crops`) and classified by
    ``chapter13.evaluate``'s classifier; a clip's *agreement* is the share of its frames given the
    clip's most frequent label (1 = one digit throughout; frames drawn independently from ten
    classes agree far less).

    Returns ``{"agreement": mean agreement, "labels": (B, F) predicted digits, "per_clip": (B,)}``.
    """
    from chapter13.evaluate import classify

    crops = digit_crops(clips)
    b, f = crops.shape[:2]
    probs, _ = classify(crops.reshape(b * f, 1, 28, 28), classifier)
    labels = probs.argmax(dim=1).reshape(b, f)
    counts = torch.stack([torch.bincount(row, minlength=10) for row in labels])
    per_clip = counts.max(dim=1).values.float() / f
    return {"agreement": float(per_clip.mean()), "labels": labels, "per_clip": per_clip}


def temporal_metrics(clips: Tensor, max_shift: int = 4) -> dict[str, float]:
    """Mean :func:`frame_difference`, :func:`relative_flicker`, :func:`warp_error` and :func:`ink_variation`
    over a batch of clips.

    ``clips``: (B, C, F, H, W) in [-1, 1]. Returns a dict of Python floats.
    """
    clips = clips.detach().float().cpu().clamp(-1.0, 1.0)
    return {
        "frame_difference": float(frame_difference(clips).mean()),
        "relative_flicker": float(relative_flicker(clips).mean()),
        "warp_error": float(warp_error(clips, max_shift).mean()),
        "ink_variation": float(ink_variation(clips).mean()),
    }


# ==================================================================================================
# Audio
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
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel_size, padding=pad)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
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


class AudioDiffusion(_Parameterised):
    """ε-prediction 1-D U-Net over raw waveforms.

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
        super().__init__()
        self._init_prediction(prediction, schedule, T)
        for name, value in (
            ("in_channels", in_channels),
            ("base_channels", base_channels),
            ("num_res_blocks", num_res_blocks),
            ("kernel_size", kernel_size),
            ("patch", patch),
        ):
            _check_int(name, value)
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd so that a sound keeps its length, got {kernel_size}")
        mults = _check_mults(channel_mults)
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
        self.time_embed = _time_mlp(base_channels)
        self.init_conv = nn.Conv1d(in_channels * patch, base_channels, kernel_size, padding=kernel_size // 2)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [base_channels]
        ch = base_channels
        for level, mult in enumerate(mults):
            out = base_channels * mult
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(_ResBlock1d(ch, out, emb_dim, kernel_size, dropout))
                ch = out
                skips.append(ch)
            self.down.append(blocks)
            if level < self.levels - 1:
                self.downsample.append(nn.Conv1d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid1 = _ResBlock1d(ch, ch, emb_dim, kernel_size, dropout)
        self.mid_attn = SelfAttention2d(ch, heads) if mid_attention else None
        self.mid2 = _ResBlock1d(ch, ch, emb_dim, kernel_size, dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            out = base_channels * mult
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                blocks.append(_ResBlock1d(ch + skips.pop(), out, emb_dim, kernel_size, dropout))
                ch = out
            self.up.append(blocks)
            if level > 0:
                self.upsample.append(nn.Conv1d(ch, ch, 3, padding=1))
        self.out_norm = nn.GroupNorm(norm_groups(ch), ch)
        self.out_conv = nn.Conv1d(ch, in_channels * patch, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError that says how to fix ``x`` if this network cannot take it."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a tensor (B, C, L), got {type(x).__name__}")
        if x.dim() != 3:
            hint = (
                " A batch of mono waveforms (B, L) needs a channel axis: x.unsqueeze(1)."
                if x.dim() == 2
                else ""
            )
            raise ValueError(
                f"AudioDiffusion expects waveforms of shape (B, C, L) (3 dimensions), got {x.dim()} "
                f"dimensions {tuple(x.shape)}.{hint}"
            )
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

    def predict(self, x: Tensor, t: Tensor) -> Tensor:
        """The network's raw output (ε̂ or v̂) for noisy waveforms ``x``: (B, C, L), ``t``: (B,) long."""
        self.check_input(x)
        emb = self.time_embed(_check_t(t, x.shape[0], x.device))
        h = self.init_conv(fold_patches(x, self.patch))
        hs = [h]
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
                hs.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
                hs.append(h)
        h = self.mid1(h, emb)
        if self.mid_attn is not None:
            h = self.mid_attn(h.unsqueeze(2)).squeeze(2)
        h = self.mid2(h, emb)
        for i, blocks in enumerate(self.up):
            for block in blocks:
                h = block(torch.cat([h, hs.pop()], dim=1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, size=hs[-1].shape[-1], mode="nearest"))
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
    return waves.detach().to(torch.float64).cpu()


def dominant_frequency(waves: Tensor, sample_rate: float, pad_factor: int = 4) -> Tensor:
    """The frequency of the largest spectral peak of each sound, in Hz: (B, L) or (B, 1, L) -> (B,).

    The mean is removed, a Hann window applied and the signal zero-padded to ``pad_factor · L``
    before the real FFT; the peak bin ``k`` (DC excluded) is refined by fitting a parabola through
    the log-magnitudes ``a, b, c`` of bins ``k-1, k, k+1`` (quadratic interpolation, Smith & Serra
    1987, "PARSHL", §5): ``δ = 0.5 (a - c) / (a - 2b + c)`` and ``f = (k + δ) · sample_rate / N``.
    """
    x = _check_waves(waves)
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    pad_factor = _check_int("pad_factor", pad_factor)
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
    p = torch.as_tensor(pitches, dtype=torch.float64)
    if p.dim() != 1 or p.numel() == 0 or (p <= 0).any():
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
    window = torch.hann_window(n_fft)
    stft = torch.stft(x, n_fft=n_fft, hop_length=hop, window=window, return_complex=True)
    return 20.0 * torch.log10(stft.abs() + 1e-6)


# ==================================================================================================
# Recipes: train at full size, measure, save (``python -m chapter13.train video-digits`` etc.)
VIDEO_DATA = {"n": 4000, "frames": 8, "size": 32, "digit_size": 14, "seed": 0}
"""The training clips: ``moving_digits(**VIDEO_DATA)`` on the bundled training digits."""
AUDIO_DATA = {"n": 4000, "seed": 0}
"""The training sounds: ``tones(**AUDIO_DATA)``."""
VIDEO_MODEL: dict[str, Any] = {
    "base_channels": 16,
    "channel_mults": [1, 2, 4],
    "num_res_blocks": 1,
    "patch": 2,
    "prediction": "v",
    "schedule": "cosine",
    "T": 1000,
}
"""Constructor arguments shared by ``video-digits`` (``temporal=True``) and ``video-digits-frames``."""
VIDEO_TRAIN: dict[str, Any] = {"steps": 1500, "batch_size": 16, "lr": 2e-3, "warmup": 50}
"""Arguments of ``chapter13.train.fit`` for both video models."""
VIDEO_LOSS: dict[str, Any] = {"temporal_weight": 0.5, "min_snr_gamma": 5.0}
"""Arguments of :func:`parameterised_loss` (the per-frame model gets ``temporal_weight=None``)."""
AUDIO_MODEL: dict[str, Any] = {
    "base_channels": 32,
    "channel_mults": [1, 2, 2, 2, 2],
    "num_res_blocks": 1,
    "patch": 4,
    "prediction": "v",
    "schedule": "cosine",
    "T": 1000,
}
AUDIO_TRAIN: dict[str, Any] = {"steps": 600, "batch_size": 32, "lr": 2e-3, "warmup": 50}
AUDIO_LOSS: dict[str, Any] = {"min_snr_gamma": None}


def _schedule_of(model: nn.Module) -> NoiseSchedule:
    if isinstance(model, _Parameterised):
        return model.schedule()
    raise TypeError(
        f"cannot tell which noise schedule {type(model).__name__} was trained with; pass a VideoUNet or "
        "AudioDiffusion, or call chapter13.diffusion.sample_ddim with its schedule yourself"
    )


def sample_clips(
    model: nn.Module,
    n: int,
    *,
    frames: int = 8,
    size: int = 32,
    steps: int = 50,
    eta: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> Tensor:
    """``n`` clips (n, 1, frames, size, size) from a video model with the package's DDIM sampler over
    ``steps`` steps on the schedule the model was built for.

    ``eta=1`` (default) adds DDPM's posterior noise at every step (Song et al. 2021, eq. 16); for these
    small, briefly trained models it gave cleaner strokes than the deterministic ``eta=0``.
    """
    gen = torch.Generator().manual_seed(seed)
    shape = (n, model.in_channels, frames, size, size)
    return sample_ddim(
        model, _schedule_of(model), shape, steps=steps, eta=eta, generator=gen, progress=progress
    )


def sample_sounds(
    model: nn.Module, n: int, *, length: int = 2048, steps: int = 50, seed: int = 0, progress: bool = False
) -> Tensor:
    """``n`` sounds (n, 1, length) from an audio model with the package's DDIM (η = 0), ``steps`` steps."""
    gen = torch.Generator().manual_seed(seed)
    shape = (n, model.in_channels, length)
    return sample_ddim(model, _schedule_of(model), shape, steps=steps, generator=gen, progress=progress)


def inflate_from_image_model(video: VideoUNet, image: VideoUNet) -> VideoUNet:
    """Copy a per-frame model's weights into a joint model; its temporal layers keep their zero start.

    Raises a ValueError if the two networks differ anywhere but in the temporal layers.
    """
    if image.temporal or not video.temporal:
        raise ValueError("inflate from a per-frame model (temporal=False) into a joint one (temporal=True)")
    if video.temporal_downsample:
        raise ValueError(
            "a joint model with temporal_downsample=True averages frames where the image model does not; "
            "build it with temporal_downsample=False to start from an image model"
        )
    same = ("temporal", "temporal_downsample")
    diff = {k for k in video.config if k not in same and video.config[k] != image.config.get(k)}
    if diff:
        raise ValueError(f"the two networks differ in {sorted(diff)}; only the temporal layers may differ")
    missing, unexpected = video.load_state_dict(image.state_dict(), strict=False)
    new_layers = (".temporal.", ".st_attn.")
    if unexpected or any(
        not k.startswith("mid_st_attn.") and not any(n in k for n in new_layers) for k in missing
    ):
        raise ValueError(f"weights do not line up: missing {missing}, unexpected {unexpected}")
    return video


def train_video(
    temporal: bool = True,
    steps: int | None = None,
    *,
    n_clips: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    train_kwargs: dict[str, Any] | None = None,
    loss_kwargs: dict[str, Any] | None = None,
    init_from: VideoUNet | None = None,
    threads: int | None = 1,
    progress: bool = True,
    seed: int = 0,
) -> tuple[VideoUNet, float]:
    """Train a :class:`VideoUNet` on moving digits through ``chapter13.train.fit``.

    ``temporal=True``: the joint model, trained with the chapter's consistency term on its
    prediction (:func:`parameterised_loss` with ``VIDEO_LOSS``, weight 0.5). ``temporal=False``: the
    per-frame image model (time mixing off), trained with the plain loss, as an image model would be.
    ``model_kwargs``, ``train_kwargs`` and ``loss_kwargs`` override ``VIDEO_MODEL``, ``VIDEO_TRAIN``
    and ``VIDEO_LOSS``.

    ``init_from``: start the joint model from a trained per-frame model (Make-A-Video, Singer et al.
    2022, §3.2: the spatial layers come from the image model, the new temporal layers start at zero,
    so training starts from the image model's behaviour). Needs ``temporal_downsample=False``, which
    keeps the two networks' computations identical until the temporal layers learn something.

    Returns:
        (EMA model in eval mode, training seconds).
    """
    from chapter13.synthetic import moving_digits

    data = {**VIDEO_DATA, **({"n": n_clips} if n_clips is not None else {})}
    clips, _, _ = moving_digits(
        data["n"], data["frames"], data["size"], data["digit_size"], seed=data["seed"]
    )
    torch.manual_seed(seed)
    model = VideoUNet(temporal=temporal, **{**VIDEO_MODEL, **(model_kwargs or {})})
    if init_from is not None:
        inflate_from_image_model(model, init_from)
    schedule = model.schedule()
    loss_cfg = {**VIDEO_LOSS, **(loss_kwargs or {})}
    if not temporal:
        loss_cfg["temporal_weight"] = None
    cfg = {**VIDEO_TRAIN, **(train_kwargs or {}), **({"steps": steps} if steps is not None else {})}
    with torch_threads(threads):
        result = fit(
            model,
            lambda m, batch: parameterised_loss(m, schedule, batch[0], **loss_cfg),
            [clips],
            seed=seed,
            progress=progress,
            desc="video (joint)" if temporal else "video (per frame)",
            **cfg,
        )
    return result.ema_model, result.seconds


def train_audio(
    steps: int | None = None,
    *,
    n_sounds: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    train_kwargs: dict[str, Any] | None = None,
    loss_kwargs: dict[str, Any] | None = None,
    threads: int | None = 1,
    progress: bool = True,
    seed: int = 0,
) -> tuple[AudioDiffusion, float]:
    """Train an :class:`AudioDiffusion` on tones through ``chapter13.train.fit``.

    Returns:
        (EMA model in eval mode, training seconds).
    """
    from chapter13.synthetic import tones

    waves, _, _ = tones(n_sounds or AUDIO_DATA["n"], seed=AUDIO_DATA["seed"])
    torch.manual_seed(seed)
    model = AudioDiffusion(**{**AUDIO_MODEL, **(model_kwargs or {})})
    schedule = model.schedule()
    loss_cfg = {**AUDIO_LOSS, **(loss_kwargs or {})}
    cfg = {**AUDIO_TRAIN, **(train_kwargs or {}), **({"steps": steps} if steps is not None else {})}
    with torch_threads(threads):
        result = fit(
            model,
            lambda m, batch: parameterised_loss(m, schedule, batch[0], **loss_cfg),
            [waves],
            seed=seed,
            progress=progress,
            desc="audio",
            **cfg,
        )
    return result.ema_model, result.seconds


def evaluate_video(model: nn.Module, n: int = 64, steps: int = 50, seed: int = 1) -> dict[str, float]:
    """:func:`temporal_metrics` and :func:`identity_consistency` of ``n`` samples of ``model``."""
    clips = sample_clips(model, n, steps=steps, seed=seed)
    return {**temporal_metrics(clips), "identity_agreement": identity_consistency(clips)["agreement"]}


def evaluate_audio(model: nn.Module, n: int = 128, steps: int = 50, seed: int = 1) -> dict[str, Any]:
    """Pitch metrics of ``n`` DDIM samples of ``model`` against the training pitches."""
    from chapter13.synthetic import PITCHES, SAMPLE_RATE

    metrics = pitch_metrics(sample_sounds(model, n, steps=steps, seed=seed), PITCHES, SAMPLE_RATE)
    return {
        "within_3pct": round(metrics["within"], 4),
        "counts_per_pitch": metrics["counts"],
        "median_relative_error": round(float(metrics["relative_error"].median()), 5),
        "samples": n,
        "ddim_steps": steps,
    }


def video_quality(model: nn.Module, n: int = 64, steps: int = 50, seed: int = 1) -> dict[str, Any]:
    """The figures a video checkpoint records: :func:`evaluate_video` of its samples beside the same
    measures of ``n`` real clips of test digits (``moving_digits(n, split="test", seed=12345)``)."""
    from chapter13.synthetic import moving_digits

    quality = {f"sampled_{k}": round(v, 5) for k, v in evaluate_video(model, n, steps, seed).items()}
    real_clips = moving_digits(n, split="test", seed=12345)[0]
    real = {
        **temporal_metrics(real_clips),
        "identity_agreement": identity_consistency(real_clips)["agreement"],
    }
    quality.update({f"real_test_{k}": round(v, 5) for k, v in real.items()})
    quality.update({"samples": n, "ddim_steps": steps, "eta": 1.0})
    return quality


def _build_video(name: str, temporal: bool) -> VideoUNet:
    from chapter13.checkpoints import save

    with RunRecord() as run:
        model, seconds = train_video(temporal=temporal)
    quality = {**video_quality(model), **run.quality_fields()}
    notes = (
        f"EMA weights; {'joint' if temporal else 'per-frame (temporal=False)'}; data {VIDEO_DATA}; "
        f"training {VIDEO_TRAIN}, loss {VIDEO_LOSS}, 1 CPU thread (load averages in quality)"
    )
    save(name, model, model.config, train_seconds=seconds, quality=quality, notes=notes)
    return model


def build_video_digits() -> VideoUNet:
    """Recipe of checkpoint ``video-digits``: the joint (spatio-temporal) model."""
    return _build_video("video-digits", temporal=True)


def build_video_digits_frames() -> VideoUNet:
    """Recipe of checkpoint ``video-digits-frames``: the same network with time mixing off."""
    return _build_video("video-digits-frames", temporal=False)


def build_audio_tones() -> AudioDiffusion:
    """Recipe of checkpoint ``audio-tones``."""
    from chapter13.checkpoints import save

    with RunRecord() as run:
        model, seconds = train_audio()
    notes = f"EMA weights; data {AUDIO_DATA}; training {AUDIO_TRAIN}, loss {AUDIO_LOSS}, 1 CPU thread (load averages in quality)"
    quality = {**evaluate_audio(model), **run.quality_fields()}
    save("audio-tones", model, model.config, train_seconds=seconds, quality=quality, notes=notes)
    return model
