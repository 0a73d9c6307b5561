"""Section 13.4 listings: a video U-Net with ``Conv3d``, a 1-D ``AudioDiffusion`` and ``consistency_loss``.

.. warning::
   RECONSTRUCTED, NOT VERBATIM. The printed 13.4 listings were not available to the engineer who
   wrote this module. What is here follows the chapter's description as quoted in the project's
   issue 13.4: "the chapter's ``VideoUNet`` with ``Conv3d``", "the chapter's ``AudioDiffusion`` as a
   1-D U-Net" and "the chapter's ``consistency_loss`` = per-frame MSE + 0.5 × frame-difference
   MSE", written in the plainest way. Replace each body with the printed text when it is at hand,
   and keep or correct the notes below accordingly.

The notes say what to watch for in code of this shape and name the package's replacement; they are
not claims about misprints in the chapter.

- :class:`VideoUNet`: use :class:`chapter13.temporal.VideoUNet` (factorised space-then-time).
- :class:`AudioDiffusion`: use :class:`chapter13.audio.AudioDiffusion`.
- :func:`consistency_loss`: use :func:`chapter13.temporal.consistency_loss` and, for training,
  :func:`chapter13.temporal.video_diffusion_loss`.
"""

import torch
import torch.nn.functional as F
from torch import nn


class VideoUNet(nn.Module):
    """A small 3-D U-Net: every convolution is a full 3×3×3 ``Conv3d`` over (frames, height, width).

    Input ``x``: (batch, channels, frames, height, width) and timesteps ``t``: (batch,).

    What to watch for (the package's replacement: :class:`chapter13.temporal.VideoUNet`):

    1. Cost. A 3×3×3 kernel has 27·C_in·C_out weights and as many multiply-adds per voxel; a 3×3
       spatial kernel followed by a 3-tap temporal one has 9·C² + 3·C² = 12·C², 2.25× fewer for the
       same receptive field. Published video diffusion models factorise for this reason (Ho et al.
       2022, "Video Diffusion Models", §3.1; Singer et al. 2022, "Make-A-Video", §3.2).
       ``benchmarks/bench_temporal.py`` times both on this CPU.
    2. There is no way to switch the time mixing off, so the same network cannot serve as the
       per-frame image baseline, nor start from an image model's weights.
    3. Each stride-2 ``Conv3d`` halves the frame count too (with padding 1 an odd count is rounded
       up), and the ``ConvTranspose3d`` doubles it, so a clip whose length is not divisible by 4 comes
       back with a different length and the skip concatenation fails with an opaque size error.
       The package's network checks the clip length first and says what to change.
    """

    def __init__(self, in_channels=1, base_channels=32, time_dim=128):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.Linear(1, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.enc1 = nn.Conv3d(in_channels, base_channels, kernel_size=3, padding=1)
        self.enc2 = nn.Conv3d(base_channels, base_channels * 2, kernel_size=3, stride=2, padding=1)
        self.enc3 = nn.Conv3d(base_channels * 2, base_channels * 4, kernel_size=3, stride=2, padding=1)
        self.time_proj = nn.Linear(time_dim, base_channels * 4)
        self.dec3 = nn.ConvTranspose3d(
            base_channels * 4, base_channels * 2, kernel_size=4, stride=2, padding=1
        )
        self.dec2 = nn.ConvTranspose3d(base_channels * 4, base_channels, kernel_size=4, stride=2, padding=1)
        self.out = nn.Conv3d(base_channels * 2, in_channels, kernel_size=3, padding=1)

    def forward(self, x, t):
        temb = self.time_mlp(t.float().unsqueeze(-1))
        h1 = F.silu(self.enc1(x))
        h2 = F.silu(self.enc2(h1))
        h3 = F.silu(self.enc3(h2))
        h3 = h3 + self.time_proj(temb)[:, :, None, None, None]
        d3 = F.silu(self.dec3(h3))
        d2 = F.silu(self.dec2(torch.cat([d3, h2], dim=1)))
        return self.out(torch.cat([d2, h1], dim=1))


class AudioDiffusion(nn.Module):
    """A 1-D U-Net over raw waveforms: ``Conv1d`` down, ``ConvTranspose1d`` up, skip connections.

    Input ``x``: (batch, 1, samples), ``t``: (batch,).

    What to watch for (the package's replacement: :class:`chapter13.audio.AudioDiffusion`):
    the length must be divisible by 4 (two stride-2 layers) or the skips do not line up; the
    receptive field of two down-samplings with kernel 3 is a few tens of samples, far shorter than
    a sound, so nothing keeps the pitch constant over the whole tone (the package's network adds
    more levels and self-attention at the bottom); the raw timestep enters through ``Linear(1, ·)``
    instead of a sinusoidal embedding (compare ``chapter13.unet.SinusoidalTimeEmbedding``).
    """

    def __init__(self, channels=32, time_dim=128):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.Linear(1, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.down1 = nn.Conv1d(1, channels, kernel_size=3, stride=2, padding=1)
        self.down2 = nn.Conv1d(channels, channels * 2, kernel_size=3, stride=2, padding=1)
        self.time_proj = nn.Linear(time_dim, channels * 2)
        self.up2 = nn.ConvTranspose1d(channels * 2, channels, kernel_size=4, stride=2, padding=1)
        self.up1 = nn.ConvTranspose1d(channels * 2, channels, kernel_size=4, stride=2, padding=1)
        self.out = nn.Conv1d(channels, 1, kernel_size=3, padding=1)

    def forward(self, x, t):
        temb = self.time_mlp(t.float().unsqueeze(-1))
        h1 = F.silu(self.down1(x))
        h2 = F.silu(self.down2(h1)) + self.time_proj(temb)[:, :, None]
        u2 = F.silu(self.up2(h2))
        u1 = F.silu(self.up1(torch.cat([u2, h1], dim=1)))
        return self.out(u1)


def consistency_loss(pred_frames, target_frames):
    """Per-frame MSE plus 0.5 × the MSE of frame-to-frame differences.

    Frames are indexed along dimension 1: ``pred_frames``, ``target_frames``: (batch, frames, ...).

    What to watch for (the package's replacement: :func:`chapter13.temporal.consistency_loss`):

    1. The layout. ``Conv3d`` networks take (batch, channels, frames, H, W), where the frame axis is
       2. Given such a tensor this function differences the *channels*; with one channel the
       difference is an empty tensor and the loss is NaN. The package's function takes the
       (B, C, F, H, W) layout of its networks and raises a clear error on anything else.
    2. Where it belongs. On generated clips there is no target frame to compare with, and a
       penalty on frame differences alone pushes samples towards a still image. In diffusion
       training it belongs on the noise prediction, where it re-weights the errors without moving
       the optimum (:func:`chapter13.temporal.video_diffusion_loss`).
    """
    frame_loss = F.mse_loss(pred_frames, target_frames)
    pred_diff = pred_frames[:, 1:] - pred_frames[:, :-1]
    target_diff = target_frames[:, 1:] - target_frames[:, :-1]
    temporal_loss = F.mse_loss(pred_diff, target_diff)
    return frame_loss + 0.5 * temporal_loss
