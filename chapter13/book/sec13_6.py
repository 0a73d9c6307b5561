"""The chapter's 13.6 code lab, made runnable: schedule, ``SimpleUNet``, training loop, sampler.

The lab strings together listings the chapter prints in 13.2 and 13.6; the ones that carry errors are
kept verbatim in ``chapter13.book.sec13_2`` and re-exported here, unchanged:

- ``SimpleUNet``: the timestep enters as a raw number through ``nn.Linear(1, 128)`` (see its
  docstring). Correct: ``chapter13.unet.UNet`` (sinusoidal embedding + MLP), which the lab's
  ``chapter13.codelab.PatchUNet`` wraps.
- ``forward_diffusion``: scales by ``alphas[t]`` instead of the cumulative ``alpha_bars[t]``.
  Correct: ``chapter13.diffusion.NoiseSchedule.q_sample``.
- ``sample_from_model``: jumps ``T // num_steps`` timesteps with the one-step posterior. Correct:
  ``chapter13.diffusion.sample_ddim`` or ``sample_ddpm(..., steps=50)``.

``linear_betas`` and ``train_simple_unet`` are the glue the lab runs between those listings: the DDPM
linear schedule and a plain Adam loop on the noise-prediction MSE. We did not have the lab's loop
verbatim; this is the loop the chapter describes, written in its style and built on the book's own
``forward_diffusion``, so the loop is only as wrong as the listings it calls. The package's loop is
``chapter13.train.fit`` through ``chapter13.recipes.codelab.train_codelab``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from chapter13.book.sec13_2 import SimpleUNet, forward_diffusion, sample_from_model

__all__ = [
    "SimpleUNet",
    "count_parameters",
    "forward_diffusion",
    "linear_betas",
    "sample_from_model",
    "train_simple_unet",
]


def linear_betas(T=1000, beta_start=1e-4, beta_end=0.02):
    """The lab's noise schedule: β linear from 1e-4 to 0.02 over T = 1000 steps (DDPM §4). Correct as
    far as it goes; ``chapter13.diffusion.NoiseSchedule.linear`` is the same table in float64."""
    return torch.linspace(beta_start, beta_end, T)


def train_simple_unet(model, images, betas, steps=100, batch_size=64, lr=1e-3, device="cpu"):
    """The lab's training loop: Adam, random t, ``forward_diffusion``, MSE between noise and prediction.

    Inherits ``forward_diffusion``'s error: the model is trained on x_t = sqrt(α_t) x_0 + ... , which
    at t = T-1 is still 99 % image, so it never learns to start from pure noise. No EMA, no
    clipping, no learning-rate schedule (the package's ``chapter13.train.fit`` has all three).

    images: (N, 1, 28, 28) in [-1, 1] -> the list of losses.
    """
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    betas = betas.to(device)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(images), (batch_size,))
        x0 = images[idx].to(device)
        t = torch.randint(0, len(betas), (batch_size,), device=device)
        x_t, noise = forward_diffusion(x0, t, betas)
        loss = F.mse_loss(model(x_t, t), noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (the lab prints it after building the model)."""
    return sum(p.numel() for p in model.parameters())
