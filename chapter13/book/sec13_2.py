"""The chapter's 13.2 listings (and 13.6's ``sample_from_model``) as printed, made runnable.

Nothing in the code below has been corrected: each docstring says what is wrong and which function of
the package does it right. The notebook ``13.2-diffusion-models`` puts each next to the correct
version, with a figure and an ``assert`` that shows the difference. ``chapter13.book`` imports nothing
from the package, so the listings stay exactly as a reader would type them in.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def forward_diffusion(x0, t, betas):
    """The book's forward process q(x_t | x_0).

    WRONG: it scales by ``alphas[t]`` where DDPM eq. 4 needs the cumulative product
    ``alpha_bars[t] = prod_{s<=t} alphas[s]``. With the linear schedule ``alphas[999] = 0.98``, so
    "x_T" is 99 % the clean image plus a little noise instead of pure noise, and the model is trained
    on a process that never reaches N(0, I). Correct: ``NoiseSchedule.q_sample`` in
    ``chapter13.diffusion``.

    x0: (B, C, H, W), t: (B,) long, betas: (T,) -> (x_t, noise).
    """
    alphas = 1.0 - betas
    alpha_bars = torch.cumprod(alphas, dim=0)  # noqa: F841 - computed in the listing, then not used
    noise = torch.randn_like(x0)
    sqrt_alpha = torch.sqrt(alphas[t]).view(-1, 1, 1, 1)
    sqrt_one_minus_alpha = torch.sqrt(1.0 - alphas[t]).view(-1, 1, 1, 1)
    x_t = sqrt_alpha * x0 + sqrt_one_minus_alpha * noise
    return x_t, noise


@torch.no_grad()
def sample(model, shape, betas, device="cpu"):
    """The book's reverse-diffusion sampler (DDPM Algorithm 2).

    WRONG: the noise coefficient is ``betas[t] / sqrt(1 - alphas[t])`` (which is just sqrt(β_t)) where
    DDPM eq. 11 has ``β_t / sqrt(1 - ᾱ_t)``. At large t it removes sqrt(1 - ᾱ_t)/sqrt(β_t) ≈ 7× too
    much predicted noise per step: the spread of x_t collapses (std ≈ 0.3 instead of ≈ 1 within the
    first hundred steps), the chain leaves the distribution the model was trained on, and the samples
    come out too concentrated, in the wrong proportions. Correct: ``chapter13.diffusion.sample_ddpm``
    (or ``NoiseSchedule.ddpm_step``).

    model(x, t) -> ε̂; shape: (B, ...); betas: (T,) -> x_0 of ``shape``.
    """
    alphas = 1.0 - betas
    alpha_bars = torch.cumprod(alphas, dim=0)  # noqa: F841 - computed in the listing, then not used
    x = torch.randn(shape, device=device)
    for t in reversed(range(len(betas))):
        t_batch = torch.full((shape[0],), t, device=device, dtype=torch.long)
        predicted_noise = model(x, t_batch)
        x = (x - betas[t] / torch.sqrt(1.0 - alphas[t]) * predicted_noise) / torch.sqrt(alphas[t])
        if t > 0:
            x = x + torch.sqrt(betas[t]) * torch.randn_like(x)
    return x


class SimpleUNet(nn.Module):
    """The book's small U-Net for 28×28 digits.

    WRONG: the timestep goes in as a raw number, ``nn.Linear(1, time_dim)(t.float())``. Each ReLU
    unit of the first layer switches at t = -b/w, which for PyTorch's default initialisation lies
    below t ≈ 50, so for almost all timesteps the time embedding is an affine function A + t·B: it moves
    along one straight line in embedding space, and its size grows ~700× from t = 1 to t = 999,
    swamping the image features. Correct: a sinusoidal embedding plus an MLP,
    ``chapter13.unet.SinusoidalTimeEmbedding`` inside ``chapter13.unet.UNet``.

    forward(x: (B, 1, 28, 28), t: (B,) long) -> (B, 1, 28, 28).
    """

    def __init__(self, channels=1, base=64, time_dim=128):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.Linear(1, time_dim), nn.ReLU(), nn.Linear(time_dim, time_dim))

        def block(cin, cout):
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU()
            )

        self.enc1 = block(channels, base)
        self.enc2 = block(base, base * 2)
        self.pool = nn.MaxPool2d(2)
        self.time_proj = nn.Linear(time_dim, base * 2)
        self.bottleneck = block(base * 2, base * 2)
        self.up = nn.ConvTranspose2d(base * 2, base, 2, stride=2)
        self.dec1 = block(base * 2, base)
        self.out = nn.Conv2d(base, channels, 1)

    def forward(self, x, t):
        t_emb = self.time_mlp(t.float().unsqueeze(-1))
        h1 = self.enc1(x)
        h2 = self.enc2(self.pool(h1))
        h2 = h2 + self.time_proj(t_emb)[:, :, None, None]
        h = self.bottleneck(h2)
        h = self.up(h)
        h = self.dec1(torch.cat([h, h1], dim=1))
        return self.out(h)


@torch.no_grad()
def sample_from_model(model, betas, shape, num_steps=50, device="cpu"):
    """The book's faster sampler of 13.6: visit only every ``T // num_steps``-th timestep.

    WRONG: it jumps ``step_size`` timesteps at a time but applies the one-step posterior of t -> t-1
    (coefficient β_t, variance β_t). Each visit removes only one step's worth of noise, so after 50
    visits the samples are still mostly noise; the last visit (t = 19) does not even return x̂_0.
    Correct: the respaced posterior with β' = 1 - ᾱ_t/ᾱ_prev, ``chapter13.diffusion.sample_ddpm(...,
    steps=50)``, or DDIM, ``chapter13.diffusion.sample_ddim``.

    model(x, t) -> ε̂; betas: (T,); shape: (B, ...) -> samples of ``shape``.
    """
    alphas = 1.0 - betas
    alpha_bars = torch.cumprod(alphas, dim=0)
    T = len(betas)
    step_size = T // num_steps
    x = torch.randn(shape, device=device)
    for t in range(T - 1, -1, -step_size):
        t_batch = torch.full((shape[0],), t, device=device, dtype=torch.long)
        predicted_noise = model(x, t_batch)
        mean = (x - betas[t] / torch.sqrt(1.0 - alpha_bars[t]) * predicted_noise) / torch.sqrt(alphas[t])
        if t - step_size >= 0:
            x = mean + torch.sqrt(betas[t]) * torch.randn_like(x)
        else:
            x = mean
    return x
