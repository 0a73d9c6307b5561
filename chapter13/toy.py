"""Diffusion in two dimensions: toy data sets, a small time-conditioned MLP denoiser, and its pictures.

Two-dimensional data make the reverse process visible: every sample is a point, every trajectory a
curve, and the learned denoiser a vector field. The denoiser is an ε-predictor
``ToyDenoiser(x: (B, 2), t: (B,)) -> (B, 2)`` trained with the same ``diffusion_loss`` and sampled with
the same ``sample_ddpm``/``sample_ddim`` as the image models; it trains in well under a minute on a
laptop CPU (see ``train_toy``).

    data = make_toy_data("spiral", 4000)
    result = train_toy(data)                       # TrainResult; result.ema_model is the denoiser
    x = sample_ddim(result.ema_model, schedule, (1000, 2), steps=50, device="cpu")
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chapter13.config import check_finite, check_model_input, check_seed, torch_threads
from chapter13.diffusion import NoiseSchedule, diffusion_loss
from chapter13.train import TrainResult, fit
from chapter13.unet import SinusoidalTimeEmbedding

__all__ = [
    "TOY_DATASETS",
    "ToyDenoiser",
    "chamfer_distance",
    "denoising_field",
    "exact_score",
    "field_figure",
    "make_toy_data",
    "toy_schedule",
    "train_toy",
    "trajectory_figure",
]

TOY_DATASETS = ("spiral", "mixture", "moons")
LIMIT = 1.6
"""Half-width of the square the figures show."""


def make_toy_data(name: str = "spiral", n: int = 4000, *, seed: int = 0, noise: float = 0.02) -> Tensor:
    """``n`` points of a 2-D toy distribution inside [-1, 1]²: (n, 2) float32.

    - ``"spiral"``: a two-turn spiral, radius up to 0.9, density uniform along the arc length.
    - ``"mixture"``: eight Gaussians (std 0.05) evenly spaced on a circle of radius 0.7.
    - ``"moons"``: two interleaved half circles.

    ``noise`` is the std of Gaussian jitter added to the spiral and moons. Deterministic given ``seed``.
    """
    if name not in TOY_DATASETS:
        raise ValueError(f"unknown toy data set {name!r}; choose one of {TOY_DATASETS}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not check_finite(noise, "noise") >= 0:
        raise ValueError(f"noise is a standard deviation and must be >= 0, got {noise}")
    g = torch.Generator().manual_seed(check_seed(seed))
    if name == "spiral":
        theta = torch.sqrt(torch.rand(n, generator=g)) * 4 * math.pi + 0.5
        r = 0.9 * theta / (4 * math.pi + 0.5)
        x = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=1)
        x = x + noise * torch.randn(n, 2, generator=g)
    elif name == "mixture":
        k = torch.randint(0, 8, (n,), generator=g).double()
        angle = 2 * math.pi * k / 8
        centres = 0.7 * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
        x = centres + 0.05 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    else:  # moons
        upper = torch.rand(n, generator=g) < 0.5
        a = torch.rand(n, generator=g) * math.pi
        x_up = torch.stack([torch.cos(a), torch.sin(a)], dim=1)
        x_low = torch.stack([1 - torch.cos(a), 0.5 - torch.sin(a)], dim=1)
        x = torch.where(upper[:, None], x_up, x_low)
        x = (x - torch.tensor([0.5, 0.25])) * 0.6 + noise * torch.randn(n, 2, generator=g)
    return x.float().clamp(-1.0, 1.0)


def toy_schedule(T: int = 1000) -> NoiseSchedule:
    """The schedule the toy model is trained with: DDPM's linear β from 1e-4 to 0.02."""
    return NoiseSchedule.linear(T)


class ToyDenoiser(nn.Module):
    """ε-predictor for 2-D points: a residual MLP with the time embedding added at every layer.

    ``e = MLP(sinusoidal(t))`` (Vaswani et al. 2017, §3.5), ``h_0 = SiLU(W_in x + e)``,
    ``h_{k+1} = h_k + SiLU(W_k h_k + e)``, ``ε̂ = W_out h_depth``. About 70k parameters at the defaults.

    forward(x: (B, dim), t: (B,) long) -> (B, dim).
    """

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, time_dim: int = 32):
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth), ("time_dim", time_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.config: dict[str, Any] = {"dim": dim, "hidden": hidden, "depth": depth, "time_dim": time_dim}
        self.dim = dim
        self.time = nn.Sequential(
            SinusoidalTimeEmbedding(time_dim),
            nn.Linear(time_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
        )
        self.inp = nn.Linear(dim, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        check_model_input(x, self, "x")
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape ({x.shape[0]},), got {tuple(t.shape)}")
        emb = self.time(t)
        h = F.silu(self.inp(x) + emb)
        for layer in self.layers:
            h = h + F.silu(layer(h) + emb)
        return self.out(h)


def train_toy(
    data: Tensor,
    schedule: NoiseSchedule | None = None,
    *,
    steps: int = 3000,
    batch_size: int = 256,
    lr: float = 1e-2,
    hidden: int = 128,
    depth: int = 3,
    seed: int = 0,
    progress: bool = True,
) -> TrainResult:
    """Train a ``ToyDenoiser`` on ``data`` (N, 2) with the ε loss (DDPM eq. 14) through ``train.fit``.

    Runs on the CPU with one thread (a 70k-parameter MLP gains nothing from a GPU or from more
    threads, and one thread avoids spin-waiting when the CPU is shared). At the defaults (3,000 steps
    of 256 points) it takes about 11 CPU-seconds, under a minute even on a heavily shared 2-core CPU.
    ``result.ema_model`` is the denoiser to sample from; ``result.seconds`` the training time.
    """
    if data.dim() != 2:
        raise ValueError(f"data must have shape (N, dim), got {tuple(data.shape)}")
    schedule = schedule or toy_schedule()
    torch.manual_seed(seed)
    model = ToyDenoiser(dim=data.shape[1], hidden=hidden, depth=depth)
    g = torch.Generator().manual_seed(seed + 1)

    def loss_fn(m: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        return diffusion_loss(m, schedule, batch[0], generator=g)

    with torch_threads(1):  # a tiny MLP: one thread is fastest
        return fit(
            model, loss_fn, (data.float(),), steps=steps, batch_size=batch_size, lr=lr, warmup=100,
            ema_decay=0.995, seed=seed, device="cpu", progress=progress, desc="toy denoiser",
        )  # fmt: skip


def chamfer_distance(samples: Tensor, data: Tensor) -> tuple[float, float]:
    """Mean distance from each sample to its nearest data point ("precision": are samples on the data?)
    and from each data point to its nearest sample ("coverage": is all the data reached?).

    samples: (N, 2), data: (M, 2) -> (precision distance, coverage distance); both 0 for a perfect fit.
    """
    if not isinstance(samples, Tensor) or not isinstance(data, Tensor):
        raise TypeError(
            f"samples and data must be tensors, got {type(samples).__name__} and {type(data).__name__}"
        )
    if samples.dim() != 2 or data.dim() != 2 or samples.shape[1] != data.shape[1]:
        raise ValueError(
            f"need (N, d) and (M, d) point sets, got {tuple(samples.shape)} and {tuple(data.shape)}"
        )
    if len(samples) == 0 or len(data) == 0:
        raise ValueError(
            f"need at least one point in each set, got {len(samples)} samples and {len(data)} data points"
        )
    if not torch.isfinite(samples).all():
        raise ValueError("samples contain NaN or infinity")
    if not torch.isfinite(data).all():
        raise ValueError("data contain NaN or infinity")
    d = torch.cdist(samples.double(), data.double())
    return float(d.min(dim=1).values.mean()), float(d.min(dim=0).values.mean())


@torch.no_grad()
def denoising_field(
    model: nn.Module, schedule: NoiseSchedule, t: int, *, n: int = 21, limit: float = LIMIT
) -> tuple[Tensor, Tensor]:
    """The learned denoising direction -ε̂(x, t) on an n×n grid of points x.

    Since ε̂ ≈ -sqrt(1 - ᾱ_t) ∇_x log p_t(x) (Vincent 2011; Song et al. 2021), -ε̂ is the scaled score:
    it points from x towards where the noisy data at step t are dense, and it is the direction in which
    every reverse step moves x (DDPM eq. 11). Returns grid points (n*n, 2) and vectors (n*n, 2).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int (grid points per side), got {n!r}")
    if not check_finite(limit, "limit") > 0:
        raise ValueError(f"limit must be a positive half-width, got {limit}")
    axis = torch.linspace(-limit, limit, n)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    points = torch.stack([gx.flatten(), gy.flatten()], dim=1)
    t_batch = torch.full((len(points),), schedule._check_step(t), dtype=torch.long)
    return points, -model(points, t_batch)


def exact_score(x: Tensor, data: Tensor, alpha_bar: float, *, chunk: int = 1024) -> Tensor:
    """The exact score ∇_x log q_t(x) of the noised training set: what a perfect denoiser learns.

    With x_0 drawn uniformly from the N training points ``data`` and x_t = sqrt(ᾱ) x_0 + sqrt(1 - ᾱ) ε
    (DDPM eq. 4), x_t has the Gaussian mixture density ``q_t(x) = (1/N) Σ_i N(x; sqrt(ᾱ) d_i, (1 - ᾱ) I)``,
    whose score is ``(Σ_i w_i(x) sqrt(ᾱ) d_i - x) / (1 - ᾱ)`` with ``w = softmax_i(-|x - sqrt(ᾱ) d_i|² /
    (2 (1 - ᾱ)))`` (Tweedie's formula: ``E[sqrt(ᾱ) x_0 | x_t] = x_t + (1 - ᾱ) ∇ log q_t``). The ε-loss of
    DDPM eq. 14 is denoising score matching (Vincent 2011): over all functions it is minimised by
    ``ε*(x, t) = -sqrt(1 - ᾱ_t) ∇_x log q_t(x)`` (Song & Ermon 2019; Ho et al. 2020, Sec. 3.2), so a
    trained ``ToyDenoiser`` should give ``-ε̂ / sqrt(1 - ᾱ_t) ≈ exact_score``.

    x: (M, d) points, data: (N, d) training points, alpha_bar: ᾱ_t in (0, 1) -> (M, d) float64.
    ``chunk`` rows of x at a time keep the (M, N) distance table small.
    """
    for name, value in (("x", x), ("data", data)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a tensor (points, dim), got {type(value).__name__}")
        if value.dim() != 2 or len(value) == 0:
            raise ValueError(
                f"{name} must be a non-empty (points, dim) tensor, got shape {tuple(value.shape)}"
            )
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or infinity")
    if x.shape[1] != data.shape[1]:
        raise ValueError(f"x and data must have the same dim, got {tuple(x.shape)} and {tuple(data.shape)}")
    if isinstance(alpha_bar, Tensor):
        if alpha_bar.numel() != 1:
            raise TypeError(
                f"alpha_bar must be one number ᾱ_t, got a tensor of shape {tuple(alpha_bar.shape)}"
            )
        alpha_bar = float(alpha_bar)
    if not 0 < check_finite(alpha_bar, "alpha_bar") < 1:
        raise ValueError(f"alpha_bar is ᾱ_t and must lie strictly between 0 and 1, got {alpha_bar}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive int, got {chunk!r}")
    means = math.sqrt(alpha_bar) * data.double()
    variance = 1.0 - alpha_bar
    out = []
    for rows in x.double().split(chunk):
        weights = torch.softmax(-torch.cdist(rows, means).pow(2) / (2 * variance), dim=1)  # (m, N)
        out.append((weights @ means - rows) / variance)
    return torch.cat(out)


def trajectory_figure(
    trajectory: list[Tensor], data: Tensor, *, n_paths: int = 40, title: str = "", ax: plt.Axes | None = None
) -> plt.Figure:
    """Data (grey), final samples (coloured) and the paths of ``n_paths`` samples from noise to data."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(4.2, 4.2))
    ax = ax or fig.add_subplot(111)
    path = torch.stack(trajectory)  # (K+1, N, 2)
    ax.scatter(data[:, 0], data[:, 1], s=2, c="0.8", label="data")
    for i in range(min(n_paths, path.shape[1])):
        ax.plot(path[:, i, 0], path[:, i, 1], lw=0.6, alpha=0.6, c="#0072B2")  # Okabe-Ito blue
    ax.scatter(path[-1, :, 0], path[-1, :, 1], s=3, c="#D55E00", label="samples", zorder=3)  # vermillion dots
    ax.set(xlim=(-LIMIT, LIMIT), ylim=(-LIMIT, LIMIT), aspect="equal", title=title, xticks=[], yticks=[])
    return fig


def field_figure(
    model: nn.Module, schedule: NoiseSchedule, data: Tensor, ts: tuple[int, ...] = (800, 400, 100, 10)
) -> plt.Figure:
    """One quiver plot of ``denoising_field`` per timestep in ``ts`` over the data in grey: arrows of
    equal length show the direction, their colour the (log) size of ε̂ on one scale for all panels,
    with a colour bar."""
    fig, axes = plt.subplots(1, len(ts), figsize=(3.2 * len(ts) + 0.8, 3.5), layout="constrained")
    axes = list(axes) if len(ts) > 1 else [axes]
    fields = [denoising_field(model, schedule, t) for t in ts]
    logs = [vectors.norm(dim=1).clamp(min=1e-12).log() for _, vectors in fields]
    norm = plt.Normalize(min(float(v.min()) for v in logs), max(float(v.max()) for v in logs))
    for ax, t, (points, vectors), log_size in zip(axes, ts, fields, logs, strict=True):
        unit = vectors / log_size.exp()[:, None]  # direction only; the size is the colour
        ax.scatter(data[:, 0], data[:, 1], s=1, c="0.8")
        arrows = ax.quiver(points[:, 0], points[:, 1], unit[:, 0], unit[:, 1], log_size, angles="xy",
                           scale_units="xy", scale=7.0, width=0.005, cmap="viridis", norm=norm)  # fmt: skip
        ax.set(xlim=(-LIMIT, LIMIT), ylim=(-LIMIT, LIMIT), aspect="equal", xticks=[], yticks=[],
               title=f"t = {t}, ᾱ_t = {schedule.alpha_bars[t].item():.3g}")  # fmt: skip
    fig.colorbar(arrows, ax=axes, label="log |ε̂(x, t)|", shrink=0.85)
    fig.suptitle("learned denoising direction −ε̂(x, t) (the scaled score)")
    return fig
