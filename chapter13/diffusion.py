"""Denoising diffusion: noise schedules, the forward process, the epsilon loss, DDPM and DDIM sampling.

The published math, equation by equation:

- Forward process (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", eq. 4):
  ``q(x_t | x_0) = N(sqrt(ᾱ_t) x_0, (1 - ᾱ_t) I)`` with ``ᾱ_t = prod_{s<=t} (1 - β_s)``.
- Posterior (DDPM eq. 6-7): ``q(x_{t-1} | x_t, x_0) = N(μ̃_t, β̃_t I)`` with
  ``μ̃_t = sqrt(ᾱ_{t-1}) β_t / (1 - ᾱ_t) x_0 + sqrt(α_t) (1 - ᾱ_{t-1}) / (1 - ᾱ_t) x_t`` and
  ``β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) β_t``.
- Reverse mean through the predicted noise (DDPM eq. 11):
  ``μ_θ = (x_t - β_t / sqrt(1 - ᾱ_t) ε_θ) / sqrt(α_t)``; the same as μ̃_t with x_0 replaced by
  ``x̂_0 = (x_t - sqrt(1 - ᾱ_t) ε_θ) / sqrt(ᾱ_t)`` (which is what lets us clip x̂_0 to [-1, 1]).
- Simple loss (DDPM eq. 14): ``E ||ε - ε_θ(sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε, t)||²``.
- DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", eq. 12 with σ of eq. 16).
- Cosine schedule (Nichol & Dhariwal 2021, "Improved DDPM", eq. 17), β clipped at ``max_beta``.

Timesteps are 0-based: the table entry ``alpha_bars[t]`` is the paper's ᾱ_{t+1}, for t in 0..T-1, and
"step -1" stands for the clean data (ᾱ = 1). Tables are kept in float64 on the CPU; every step
gathers the few scalars it needs and computes in the dtype and on the device of ``x_t``, so a float64
input gives a float64 result and the code runs on CPU, CUDA and MPS alike.

A model is any callable ``model(x_t, t, **cond) -> ε̂`` with ``t`` a (B,) long tensor and ``ε̂``
shaped like ``x_t``; this module knows nothing of U-Nets.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from chapter13.config import check_device, check_finite, check_model_input, default_device
from chapter13.guidance import drop_condition

Model = Callable[..., Tensor]

__all__ = [
    "PREDICTIONS",
    "DiffusionModel",
    "NoiseSchedule",
    "diffusion_loss",
    "make_schedule",
    "mse_per_example",
    "sample_ddim",
    "sample_ddpm",
    "timesteps",
]


class TimestepRangeError(IndexError, ValueError):
    """A timestep outside 0..T-1: an index out of range and a bad value alike (catch either)."""


def _as_int(value: Any, name: str) -> int:
    """A Python int from ``value`` (int, NumPy int, 0-d integer tensor); a clear error otherwise."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer timestep, got a bool ({value})")
    if isinstance(value, Tensor) and value.numel() != 1:
        raise TypeError(
            f"{name} must be a single Python int here, got a tensor of shape {tuple(value.shape)}; "
            "use q_sample for per-example timesteps, or pass int(t)"
        )
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a Python int, got {type(value).__name__} ({value!r})") from None


class NoiseSchedule:
    """A variance schedule β_1..β_T and the tables derived from it (Ho et al. 2020, §2).

    Attributes (1-D float64 CPU tensors of length ``T``, index t = 0..T-1 for the paper's 1..T):
        betas: β_t.
        alphas: α_t = 1 - β_t.
        alpha_bars: ᾱ_t = prod_{s<=t} α_s (DDPM eq. 4).
        alpha_bars_prev: ᾱ_{t-1}, with ᾱ of step -1 equal to 1.
        posterior_variance: β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) β_t (DDPM eq. 7).
        snr: signal-to-noise ratio ᾱ_t / (1 - ᾱ_t) (Kingma et al. 2021, "Variational Diffusion Models").

    Build one with ``NoiseSchedule.linear``, ``.cosine``, ``.quadratic``, ``.sigmoid`` or directly from
    a table of betas: ``NoiseSchedule(betas)``.
    """

    def __init__(self, betas: Tensor | Sequence[float], *, T: int | None = None, name: str = "custom"):
        try:
            betas = torch.as_tensor(betas, dtype=torch.float64).detach().cpu().clone()
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"betas must be a 1-D table of numbers in (0, 1), got {betas!r}") from None
        if betas.dim() != 1 or betas.numel() == 0:
            raise ValueError(
                f"betas must be a non-empty 1-D table (one β per timestep), got shape {tuple(betas.shape)}"
            )
        if T is not None and betas.numel() != T:
            raise ValueError(
                f"the betas table has {betas.numel()} entries but T={T}; pass exactly one β per timestep"
            )
        if not torch.isfinite(betas).all():
            raise ValueError("betas contain NaN or infinity; every β must be a finite number in (0, 1)")
        if (betas <= 0).any() or (betas >= 1).any():
            bad = int(((betas <= 0) | (betas >= 1)).nonzero()[0])
            raise ValueError(
                f"every β must lie strictly between 0 and 1; β[{bad}] = {betas[bad].item():.6g}. "
                "Choose beta_start/beta_end in (0, 1) (DDPM uses 1e-4 and 0.02), or clip with max_beta < 1"
            )
        self.name = name
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alpha_bars = torch.cumprod(self.alphas, dim=0)
        self.alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])
        self.posterior_variance = (1.0 - self.alpha_bars_prev) / (1.0 - self.alpha_bars) * betas

    # ----------------------------------------------------------------------------------------------
    # Families
    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        """β linear from ``beta_start`` to ``beta_end`` (Ho et al. 2020, §4: 1e-4 to 0.02, T = 1000)."""
        T = _check_T(T)
        _check_beta_range(beta_start, beta_end)
        return cls(torch.linspace(beta_start, beta_end, T, dtype=torch.float64), name="linear")

    @classmethod
    def quadratic(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        """β = (linspace(sqrt(β_start), sqrt(β_end), T))², the "scaled linear" schedule of Stable Diffusion."""
        T = _check_T(T)
        _check_beta_range(beta_start, beta_end)
        root = torch.linspace(math.sqrt(beta_start), math.sqrt(beta_end), T, dtype=torch.float64)
        return cls(root**2, name="quadratic")

    @classmethod
    def sigmoid(
        cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, width: float = 6.0
    ) -> NoiseSchedule:
        """β = β_start + (β_end - β_start) · sigmoid(linspace(-width, width, T)) (as in GeoDiff, Xu et al. 2022)."""
        T = _check_T(T)
        _check_beta_range(beta_start, beta_end)
        if not check_finite(width, "width") > 0:
            raise ValueError(f"width must be positive, got {width}")
        s = torch.sigmoid(torch.linspace(-width, width, T, dtype=torch.float64))
        return cls(beta_start + (beta_end - beta_start) * s, name="sigmoid")

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
        """Cosine schedule (Nichol & Dhariwal 2021, eq. 17).

        ``ᾱ_t = f(t) / f(0)`` with ``f(t) = cos(((t/T + s) / (1 + s)) · π/2)²``, and
        ``β_t = 1 - ᾱ_t / ᾱ_{t-1}`` clipped at ``max_beta`` (0.999 in the paper) to avoid the
        singularity at t = T.
        """
        T = _check_T(T)
        if not 0 <= check_finite(s, "s") < 1:
            raise ValueError(f"the offset s must lie in [0, 1) (the paper uses 0.008), got {s}")
        if not 0 < max_beta < 1:
            raise ValueError(f"max_beta must lie in (0, 1) (the paper uses 0.999), got {max_beta}")
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        betas = 1.0 - alpha_bar[1:] / alpha_bar[:-1]
        return cls(betas.clamp(min=1e-12, max=max_beta), name="cosine")

    @classmethod
    def from_alpha_bars(cls, alpha_bars: Tensor | Sequence[float], max_beta: float = 0.999) -> NoiseSchedule:
        """The schedule whose cumulative products are ``alpha_bars`` (β_t = 1 - ᾱ_t / ᾱ_{t-1}, clipped)."""
        try:
            ab = torch.as_tensor(alpha_bars, dtype=torch.float64).cpu()
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"alpha_bars must be a 1-D table of numbers in (0, 1), got {alpha_bars!r}"
            ) from None
        if ab.dim() != 1 or ab.numel() == 0:
            raise ValueError(f"alpha_bars must be a non-empty 1-D table, got shape {tuple(ab.shape)}")
        if not torch.isfinite(ab).all():
            raise ValueError("alpha_bars contain NaN or infinity; every ᾱ must be a finite number in (0, 1)")
        if (ab <= 0).any() or (ab >= 1).any():
            raise ValueError("every ᾱ must lie strictly between 0 and 1")
        if (ab[1:] > ab[:-1]).any():
            raise ValueError("alpha_bars must be non-increasing: noise can only grow with t")
        prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        return cls((1.0 - ab / prev).clamp(min=1e-12, max=max_beta), name="custom")

    # ----------------------------------------------------------------------------------------------
    @property
    def T(self) -> int:
        """Number of diffusion steps."""
        return self.betas.numel()

    @property
    def snr(self) -> Tensor:
        """Signal-to-noise ratio ᾱ_t / (1 - ᾱ_t), float64 (T,)."""
        return self.alpha_bars / (1.0 - self.alpha_bars)

    @property
    def log_snr(self) -> Tensor:
        """log(ᾱ_t / (1 - ᾱ_t)), float64 (T,)."""
        return torch.log(self.alpha_bars) - torch.log1p(-self.alpha_bars)

    def __len__(self) -> int:
        return self.T

    def __repr__(self) -> str:
        return (
            f"NoiseSchedule({self.name}, T={self.T}, β ∈ [{self.betas.min().item():.3g}, "
            f"{self.betas.max().item():.3g}], ᾱ_T={self.alpha_bars[-1].item():.3g})"
        )

    # ----------------------------------------------------------------------------------------------
    # Helpers
    def _check_t_tensor(self, t: Tensor | int, batch: int, name: str = "t") -> Tensor:
        """``t`` as a (batch,) long CPU tensor, checked for dtype, shape and range."""
        if not isinstance(t, Tensor):
            try:
                t = torch.full((batch,), _as_int(t, name), dtype=torch.long)
            except TypeError:
                raise TypeError(
                    f"{name} must be a (B,) integer tensor or an int, got {type(t).__name__}"
                ) from None
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(
                f"{name} must hold integer timesteps (torch.long), got {t.dtype}; "
                "draw it with torch.randint(0, schedule.T, (B,))"
            )
        t = t.detach().cpu().long()
        if t.dim() == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(
                f"{name} must have shape ({batch},), one timestep per example, got {tuple(t.shape)}"
            )
        if batch and (t.min() < 0 or t.max() >= self.T):
            raise TimestepRangeError(
                f"{name} out of range: timesteps must lie in 0..{self.T - 1} for this schedule of "
                f"T={self.T}, got values in {int(t.min())}..{int(t.max())}"
            )
        return t

    def _check_step(self, t: Any, name: str = "t") -> int:
        t = _as_int(t, name)
        if not 0 <= t < self.T:
            raise TimestepRangeError(
                f"{name}={t} is out of range: use 0..{self.T - 1} for this schedule of T={self.T}"
            )
        return t

    def _alpha_bar_at(self, t: int) -> float:
        """ᾱ at 0-based step t as a float64 Python float; step -1 (clean data) gives 1."""
        return 1.0 if t < 0 else float(self.alpha_bars[t])

    @staticmethod
    def _gather(table: Tensor, t: Tensor, like: Tensor) -> Tensor:
        """``table[t]`` reshaped to (B, 1, ..., 1) in the dtype and on the device of ``like``."""
        values = table[t].to(dtype=like.dtype if like.is_floating_point() else torch.float32)
        return values.to(like.device).reshape(-1, *([1] * (like.dim() - 1)))

    # ----------------------------------------------------------------------------------------------
    # Forward process
    def q_sample(self, x0: Tensor, t: Tensor | int, noise: Tensor | None = None) -> Tensor:
        """Draw x_t ~ q(x_t | x_0) = N(sqrt(ᾱ_t) x_0, (1 - ᾱ_t) I) (DDPM eq. 4).

        Args:
            x0: clean data (B, ...), e.g. (B, C, H, W) in [-1, 1].
            t: (B,) integer timesteps in 0..T-1 (an int applies to the whole batch).
            noise: ε ~ N(0, I) shaped like ``x0`` (drawn with ``torch.randn_like`` when omitted).

        Returns:
            x_t: (B, ...) in the dtype and on the device of ``x0``.
        """
        if not isinstance(x0, Tensor) or not x0.is_floating_point() or x0.dim() < 1:
            raise TypeError("x0 must be a floating-point tensor with a batch dimension, shape (B, ...)")
        if x0.device.type != "meta" and not bool(torch.isfinite(x0).all()):
            raise ValueError("x0 contains NaN or infinity; check the data (e.g. torch.isfinite(x0).all())")
        if noise is None:
            noise = torch.randn_like(x0)
        if not isinstance(noise, Tensor):
            raise TypeError(f"noise must be a tensor shaped like x0, got {type(noise).__name__}")
        if noise.shape != x0.shape:
            raise ValueError(
                f"noise must have the shape of x0: got noise {tuple(noise.shape)} and x0 {tuple(x0.shape)}"
            )
        t = self._check_t_tensor(t, x0.shape[0])
        a = self._gather(self.alpha_bars.sqrt(), t, x0)
        b = self._gather((1.0 - self.alpha_bars).sqrt(), t, x0)
        return a * x0 + b * noise.to(dtype=x0.dtype, device=x0.device)

    def posterior(self, x0: Tensor, x_t: Tensor, t: Tensor | int) -> tuple[Tensor, Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x_0) (DDPM eq. 6-7).

        Args:
            x0, x_t: (B, ...) of the same shape.
            t: (B,) integer timesteps (or an int).

        Returns:
            mean (B, ...) and variance β̃_t broadcastable as (B, 1, ..., 1).
        """
        if x0.shape != x_t.shape:
            raise ValueError(f"x0 {tuple(x0.shape)} and x_t {tuple(x_t.shape)} must have the same shape")
        t = self._check_t_tensor(t, x_t.shape[0])
        ab, ab_prev = self.alpha_bars, self.alpha_bars_prev
        c0 = self._gather(ab_prev.sqrt() * self.betas / (1 - ab), t, x_t)
        ct = self._gather(self.alphas.sqrt() * (1 - ab_prev) / (1 - ab), t, x_t)
        return c0 * x0 + ct * x_t, self._gather(self.posterior_variance, t, x_t)

    def predict_x0(self, x_t: Tensor, t: Tensor | int, eps: Tensor) -> Tensor:
        """x̂_0 = (x_t - sqrt(1 - ᾱ_t) ε) / sqrt(ᾱ_t), the inverse of eq. 4. ``t``: (B,) or int."""
        _check_pair(x_t, eps)
        t = self._check_t_tensor(t, x_t.shape[0])
        eps = eps.to(dtype=x_t.dtype, device=x_t.device)
        return (x_t - self._gather((1 - self.alpha_bars).sqrt(), t, x_t) * eps) / self._gather(
            self.alpha_bars.sqrt(), t, x_t
        )

    def v_target(self, x0: Tensor, noise: Tensor, t: Tensor | int) -> Tensor:
        """v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0, what a v-prediction network is trained to output
        (Salimans & Ho 2022, §4). ``x0``, ``noise``: (B, ...); ``t``: (B,) or int."""
        _check_pair(x0, noise)
        t = self._check_t_tensor(t, x0.shape[0])
        noise = noise.to(dtype=x0.dtype, device=x0.device)
        return (
            self._gather(self.alpha_bars.sqrt(), t, x0) * noise
            - self._gather((1 - self.alpha_bars).sqrt(), t, x0) * x0
        )

    def eps_from_v(self, x_t: Tensor, t: Tensor | int, v: Tensor) -> Tensor:
        """ε̂ = sqrt(ᾱ_t) v̂ + sqrt(1 - ᾱ_t) x_t: a v-prediction turned into ε (Salimans & Ho 2022, §4).

        With v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0 and x_t from eq. 4 this returns ε exactly, so a network
        that predicts v serves every ε-speaking loss and sampler here. ``t``: (B,) or int.
        """
        _check_pair(x_t, v)
        t = self._check_t_tensor(t, x_t.shape[0])
        v = v.to(dtype=x_t.dtype, device=x_t.device)
        return (
            self._gather(self.alpha_bars.sqrt(), t, x_t) * v
            + self._gather((1 - self.alpha_bars).sqrt(), t, x_t) * x_t
        )

    # ----------------------------------------------------------------------------------------------
    # Reverse steps
    def ddpm_step(
        self,
        x_t: Tensor,
        t: int,
        eps: Tensor,
        noise: Tensor | None = None,
        prev_t: int | None = None,
        clip: bool = True,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """One ancestral step x_t -> x_{prev_t} ~ N(μ̃, β̃ I) (DDPM eq. 6-7 with x̂_0 from ε, eq. 11).

        With ``prev_t = t - 1`` (the default) this is DDPM's step. With a larger jump (respaced
        sampling, Nichol & Dhariwal 2021 §4) it uses β' = 1 - ᾱ_t / ᾱ_prev and α' = 1 - β' in the
        same formulas. At the last step (``prev_t = -1``, ᾱ = 1) it returns x̂_0 and adds no noise.

        Args:
            x_t: (B, ...) current sample.
            t: current step, a Python int in 0..T-1.
            eps: (B, ...) the model's predicted noise ε_θ(x_t, t).
            noise: (B, ...) the fresh N(0, I) draw z (drawn with ``generator`` when omitted).
            prev_t: the step to jump to, -1 <= prev_t < t (default t - 1).
            clip: clip x̂_0 to [-1, 1] before forming the posterior mean (Ho et al.'s released code).

        Returns:
            x_{prev_t}: (B, ...) in the dtype and on the device of ``x_t``.
        """
        _check_pair(x_t, eps)
        t = self._check_step(t)
        prev_t = t - 1 if prev_t is None else _as_int(prev_t, "prev_t")
        if not -1 <= prev_t < t:
            raise ValueError(f"prev_t must satisfy -1 <= prev_t < t = {t}, got prev_t={prev_t}")
        ab_t, ab_prev = self._alpha_bar_at(t), self._alpha_bar_at(prev_t)
        beta = 1.0 - ab_t / ab_prev  # β' (equals β_t when prev_t = t - 1)
        alpha = 1.0 - beta
        eps = eps.to(dtype=x_t.dtype, device=x_t.device)
        x0 = (x_t - math.sqrt(1.0 - ab_t) * eps) / math.sqrt(ab_t)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
        if prev_t < 0:
            return x0
        mean = (math.sqrt(ab_prev) * beta / (1.0 - ab_t)) * x0 + (
            math.sqrt(alpha) * (1.0 - ab_prev) / (1.0 - ab_t)
        ) * x_t
        variance = beta * (1.0 - ab_prev) / (1.0 - ab_t)
        noise = _noise_like(x_t, noise, generator)
        return mean + math.sqrt(variance) * noise

    def ddim_step(
        self,
        x_t: Tensor,
        t: int,
        prev_t: int,
        eps: Tensor,
        eta: float = 0.0,
        noise: Tensor | None = None,
        clip: bool = True,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """One DDIM step x_t -> x_{prev_t} (Song et al. 2021, eq. 12 with σ of eq. 16).

        ``x_prev = sqrt(ᾱ_prev) x̂_0 + sqrt(1 - ᾱ_prev - σ²) ε + σ z`` with
        ``σ = η sqrt((1 - ᾱ_prev) / (1 - ᾱ_t)) sqrt(1 - ᾱ_t / ᾱ_prev)``. η = 0 is deterministic DDIM;
        η = 1 is the DDPM posterior. When ``clip`` clips x̂_0, ε is re-derived from the clipped x̂_0
        (as in Dhariwal & Nichol's guided-diffusion) so that the two terms stay consistent with x_t.

        Args:
            x_t: (B, ...) current sample.
            t, prev_t: Python ints, -1 <= prev_t < t <= T-1; ``prev_t = -1`` means ᾱ = 1 (clean data).
            eps: (B, ...) predicted noise.
            eta: η >= 0.
            noise: (B, ...) z ~ N(0, I), only used when σ > 0.

        Returns:
            x_{prev_t}: (B, ...) in the dtype and on the device of ``x_t``.
        """
        _check_pair(x_t, eps)
        t = self._check_step(t)
        prev_t = _as_int(prev_t, "prev_t")
        if not -1 <= prev_t < t:
            raise ValueError(f"prev_t must satisfy -1 <= prev_t < t = {t}, got prev_t={prev_t}")
        if not (isinstance(eta, int | float) and eta >= 0 and math.isfinite(eta)):
            raise ValueError(f"eta must be a finite number >= 0 (0 = DDIM, 1 = DDPM), got {eta!r}")
        ab_t, ab_prev = self._alpha_bar_at(t), self._alpha_bar_at(prev_t)
        eps = eps.to(dtype=x_t.dtype, device=x_t.device)
        x0 = (x_t - math.sqrt(1.0 - ab_t) * eps) / math.sqrt(ab_t)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
            eps = (x_t - math.sqrt(ab_t) * x0) / math.sqrt(1.0 - ab_t)
        sigma = eta * math.sqrt((1.0 - ab_prev) / (1.0 - ab_t)) * math.sqrt(1.0 - ab_t / ab_prev)
        direction = math.sqrt(max(1.0 - ab_prev - sigma**2, 0.0))
        out = math.sqrt(ab_prev) * x0 + direction * eps
        if sigma > 0:
            out = out + sigma * _noise_like(x_t, noise, generator)
        return out

    def respace(self, steps: Sequence[int]) -> NoiseSchedule:
        """The schedule of a sub-sequence of steps: β'_i = 1 - ᾱ_{s_i} / ᾱ_{s_{i-1}} (Nichol & Dhariwal §4).

        ``steps`` are 0-based timesteps in any order; the result has ``len(steps)`` entries in
        increasing order of t.
        """
        chosen = sorted({self._check_step(s, "steps[i]") for s in steps})
        if not chosen:
            raise ValueError("respace needs at least one timestep")
        ab = self.alpha_bars[chosen]
        prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        return NoiseSchedule(1.0 - ab / prev, name=f"{self.name}-respaced{len(chosen)}")


def _check_T(T: Any) -> int:
    T = _as_int(T, "T")
    if T < 1:
        raise ValueError(f"T (the number of diffusion steps) must be at least 1, got {T}")
    return T


def _check_beta_range(beta_start: float, beta_end: float) -> None:
    for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
        if not 0 < check_finite(value, name) < 1:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")


SCHEDULES = ("cosine", "linear")
"""The schedule names a model's config may store (``make_schedule``)."""


def make_schedule(name: str = "cosine", T: int = 1000) -> NoiseSchedule:
    """The schedule a model's config names: ``"cosine"`` (Nichol & Dhariwal 2021, eq. 17) or
    ``"linear"`` (Ho et al. 2020: β from 1e-4 to 0.02), with ``T`` steps."""
    if name == "cosine":
        return NoiseSchedule.cosine(T=T)
    if name == "linear":
        return NoiseSchedule.linear(T=T)
    raise ValueError(f"unknown schedule {name!r}; choose one of {SCHEDULES}")


def _check_pair(x_t: Tensor, eps: Tensor) -> None:
    if not isinstance(x_t, Tensor) or not x_t.is_floating_point():
        raise TypeError("x_t must be a floating-point tensor (B, ...)")
    if not isinstance(eps, Tensor):
        raise TypeError(f"eps must be a tensor shaped like x_t, got {type(eps).__name__}")
    if eps.shape != x_t.shape:
        raise ValueError(
            f"eps must have the shape of x_t: got eps {tuple(eps.shape)} and x_t {tuple(x_t.shape)}; "
            "the model must return a prediction shaped like its input"
        )


def _noise_like(x: Tensor, noise: Tensor | None, generator: torch.Generator | None) -> Tensor:
    if noise is None:
        return _randn(tuple(x.shape), generator, x.device, x.dtype)
    if not isinstance(noise, Tensor):
        raise TypeError(f"noise must be a tensor shaped like x_t, got {type(noise).__name__}")
    if noise.shape != x.shape:
        raise ValueError(f"noise must have the shape of x_t: got {tuple(noise.shape)} and {tuple(x.shape)}")
    return noise.to(dtype=x.dtype, device=x.device)


def _randn(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """N(0, I) drawn on the generator's device (so a CPU generator is reproducible anywhere)."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where, dtype=dtype).to(device)


# --------------------------------------------------------------------------------------------------
# The diffusion-model base
PREDICTIONS = ("eps", "v", "edm")
"""What a denoiser's network may output: ε (Ho et al. 2020), v (Salimans & Ho 2022, §4) or the
preconditioned F of Karras et al. 2022 (EDM)."""


class DiffusionModel(nn.Module):
    """Base of every denoiser in the package: a network, what it predicts, and its noise schedule.

    A subclass implements ``predict(x_t, t, **cond)``, the network's raw output. ``forward`` turns it
    into ε̂, the one thing every loss and sampler here speaks (the samplers' contract, "a model is
    any ``model(x_t, t, **cond) -> ε̂``"):

    - ``prediction="eps"``: the network predicts ε (DDPM, Ho et al. 2020, eq. 11); ``forward`` returns it.
    - ``prediction="v"``: it predicts ``v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0`` (Salimans & Ho 2022,
      "Progressive Distillation", §4 and Appendix D) and ``forward`` returns
      ``ε̂ = sqrt(ᾱ_t) v̂ + sqrt(1 - ᾱ_t) x_t`` (``NoiseSchedule.eps_from_v``). With ε-prediction the
      clean estimate ``x̂_0 = (x_t - sqrt(1 - ᾱ_t) ε̂) / sqrt(ᾱ_t)`` multiplies the network's error by
      ``1 / sqrt(ᾱ_t)`` (2·10⁴ at the cosine schedule's last step); with v nothing is amplified, which
      is why the briefly trained models of this package predict v.
    - ``prediction="edm"``: the preconditioning of Karras et al. 2022 (EDM, eq. 7 and Table 1),
      ``D(x; σ) = c_skip x + c_out F(c_in x)`` with ``c_skip = σ_d²/(σ² + σ_d²)``,
      ``c_out = σ σ_d / sqrt(σ² + σ_d²)``, ``c_in = 1/sqrt(σ² + σ_d²)``, written for the VP process
      (``x = x_t / sqrt(ᾱ_t)``, ``σ² = (1 - ᾱ_t)/ᾱ_t``; ``edm_coefficients``). ``sigma_data`` is σ_d,
      the data's scale (EDM uses 0.5). With σ_d = 1 it is v-prediction (F = -v).

    ``target(x0, noise, t)`` is what the network is trained to output (ε, v or F), ``network_output``
    the network's output for a noisy input (with EDM's input scaling), and ``schedule`` the
    ``NoiseSchedule`` the model was built for (``make_schedule(schedule, T)``): sample it with that.

    Args:
        prediction: ``"eps"``, ``"v"`` or ``"edm"``.
        schedule: the schedule's name for ``make_schedule`` (``"cosine"`` or ``"linear"``).
        T: number of diffusion steps.
        sigma_data: σ_d of ``prediction="edm"`` (a positive number); ``None`` for the others.
    """

    def __init__(
        self,
        prediction: str = "eps",
        schedule: str = "cosine",
        T: int = 1000,
        sigma_data: float | None = None,
    ) -> None:
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if prediction == "edm":
            if (
                sigma_data is None
                or isinstance(sigma_data, bool)
                or not check_finite(sigma_data, "sigma_data") > 0
            ):
                raise ValueError(
                    f"prediction='edm' needs sigma_data, the data's scale, a positive number "
                    f"(Karras et al. 2022 use 0.5), got {sigma_data!r}"
                )
        elif sigma_data is not None:
            raise ValueError(f"sigma_data belongs to prediction='edm'; prediction={prediction!r} takes None")
        self.prediction = prediction
        self.sigma_data = None if sigma_data is None else float(sigma_data)
        self.schedule_name = schedule
        self.T = T
        self.schedule = make_schedule(schedule, T)

    def predict(self, x_t: Tensor, t: Tensor, **cond: Any) -> Tensor:  # pragma: no cover - abstract
        """The network's raw output (ε̂, v̂ or F) for its input ``x_t`` (B, ...) and ``t`` (B,) long."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict(x_t, t, **cond)")

    def _alpha_bar(self, t: Tensor, like: Tensor) -> Tensor:
        """ᾱ_t (B, 1, ..., 1) for ``t`` (B,), checked, in the dtype and on the device of ``like``."""
        schedule = self.schedule
        return schedule._gather(schedule.alpha_bars, schedule._check_t_tensor(t, like.shape[0]), like)

    def edm_coefficients(self, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(c_in, c_skip, c_out)`` of Karras et al. 2022, Table 1, for the VP input ``x_t``.

        With ``a = ᾱ_t``, ``s = σ_d²`` and ``d = 1 - a + a s``: ``c_in = 1/sqrt(d)`` scales ``x_t``,
        ``x̂_0 = c_skip x_t + c_out F`` with ``c_skip = s sqrt(a)/d`` and ``c_out = σ_d sqrt(1 - a)/sqrt(d)``
        (EDM's c_skip x + c_out F with ``x = x_t/sqrt(a)``, ``σ² = (1 - a)/a``). Each is shaped to
        broadcast against ``like`` (B, ...).
        """
        a = self._alpha_bar(t, like)
        s = self.sigma_data**2
        d = 1 - a + a * s
        return d.rsqrt(), s * a.sqrt() / d, self.sigma_data * (1 - a).sqrt() / d.sqrt()

    def network_output(self, x_t: Tensor, t: Tensor, **cond: Any) -> Tensor:
        """``predict`` on the network's input: ``x_t`` itself, or ``c_in x_t`` for EDM."""
        if self.prediction == "edm":
            x_t = self.edm_coefficients(t, x_t)[0] * x_t
        return self.predict(x_t, t, **cond)

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """What ``network_output`` is trained to output: ε, ``v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0``, or
        EDM's ``F = (x_0 - c_skip x_t) / c_out`` (Karras et al. 2022, eq. 8)."""
        if self.prediction == "eps":
            return noise
        if self.prediction == "v":
            return self.schedule.v_target(x0, noise, t)
        # (x_0 - c_skip x_t) / c_out with x_t = sqrt(a) x_0 + sqrt(1 - a) ε, simplified (no cancellation):
        # F = (sqrt(1 - a) x_0 - σ_d² sqrt(a) ε) / (σ_d sqrt(d))
        a = self._alpha_bar(t, x0)
        s = self.sigma_data**2
        noise = noise.to(x0)
        return ((1 - a).sqrt() * x0 - s * a.sqrt() * noise) / (self.sigma_data * (1 - a + a * s).sqrt())

    def x0_gain(self, t: Tensor, like: Tensor) -> Tensor:
        """|∂x̂_0 / ∂(network output)|: how an error of the output becomes an error of x̂_0
        (``sqrt(1 - ᾱ)/sqrt(ᾱ)`` for ε, ``sqrt(1 - ᾱ)`` for v, ``c_out`` for EDM), shaped like ``like``."""
        a = self._alpha_bar(t, like)
        if self.prediction == "eps":
            return ((1 - a) / a).sqrt()
        if self.prediction == "v":
            return (1 - a).sqrt()
        return self.edm_coefficients(t, like)[2]

    def forward(self, x_t: Tensor, t: Tensor, **cond: Any) -> Tensor:
        """ε̂(x_t, t), whatever the network predicts inside; shaped like ``x_t``."""
        out = self.network_output(x_t, t, **cond)
        if self.prediction == "eps":
            return out
        if self.prediction == "v":
            return self.schedule.eps_from_v(x_t, t, out)
        # ε̂ = (x_t - sqrt(a) x̂_0) / sqrt(1 - a) with x̂_0 = c_skip x_t + c_out F, simplified so that
        # nothing is divided by sqrt(1 - a): ε̂ = sqrt(1 - a)/d x_t - σ_d sqrt(a)/sqrt(d) F.
        a = self._alpha_bar(t, x_t)
        d = 1 - a + a * self.sigma_data**2
        return (1 - a).sqrt() / d * x_t - self.sigma_data * a.sqrt() / d.sqrt() * out.to(x_t)


# --------------------------------------------------------------------------------------------------
# Training loss
LOSS_SPACES = ("eps", "native")
"""Where ``diffusion_loss`` compares prediction and target: ε, or the model's own prediction type."""


def mse_per_example(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error of each example: (B, ...) x (B, ...) -> (B,)."""
    return (pred - target).pow(2).flatten(1).mean(dim=1)


def diffusion_loss(
    model: Model,
    schedule: NoiseSchedule,
    x0: Tensor,
    *,
    space: str = "eps",
    min_snr_gamma: float | None = None,
    error: Callable[[Tensor, Tensor], Tensor] = mse_per_example,
    p_uncond: float = 0.0,
    null: dict[str, Tensor] | None = None,
    generator: torch.Generator | None = None,
    **cond: Any,
) -> Tensor:
    """The simple diffusion loss (DDPM eq. 14): t ~ U{0..T-1}, ε ~ N(0, I), x_t from eq. 4, then the
    error of the model's prediction; the one loss every denoiser of the package trains with.

    Args:
        model: ``model(x_t, t, **cond) -> ε̂`` with ``t`` (B,) long; a ``DiffusionModel`` for ``space="native"``.
        x0: (B, ...) clean data.
        space: ``"eps"`` compares ε̂ with ε (DDPM); ``"native"`` compares the network's own output
            ``model.network_output`` with ``model.target`` (v for a v-model, Salimans & Ho 2022, §4;
            EDM's F, Karras et al. 2022, eq. 8, whose unit weight there is their λ(σ) = 1/c_out²; for
            an ε-model the two spaces are the same).
        min_snr_gamma: Min-SNR-γ weighting (Hang et al. 2023, §3.4; γ = 5): each example's loss times
            ``min(SNR_t, γ) / SNR_t`` for an ε-target and ``min(SNR_t, γ) / (SNR_t + 1)`` for a v-target,
            i.e. an x_0-loss weighted by ``min(SNR_t, γ)`` either way (for a v-model the two spaces then
            give the same objective, since ``ε̂ - ε = sqrt(ᾱ_t) (v̂ - v)``); in general
            ``min(SNR_t, γ) · model.x0_gain(t)²`` in the native space. ``None``: unweighted.
        error: ``error(pred, target) -> (B,)`` per-example error; the default is the MSE. Extra error
            terms go here, e.g. the temporal-consistency term of 13.4
            (``partial(temporal.consistency_loss, temporal_weight=0.5, reduction="none")``).
        p_uncond, null: condition dropout for classifier-free guidance (Ho & Salimans 2022,
            Algorithm 1): each example's ``cond`` is replaced by ``null`` with probability ``p_uncond``
            (``chapter13.guidance.drop_condition``), drawn before t and ε.
        generator: draws the dropout, t and ε (reproducible; a CPU generator works for any device).
        **cond: forwarded to the model (class labels, context, ...).

    Returns:
        A scalar tensor.
    """
    if not isinstance(x0, Tensor) or not x0.is_floating_point() or x0.dim() < 2:
        raise TypeError("x0 must be a floating-point tensor of shape (B, ...) with at least 2 dimensions")
    if x0.shape[0] == 0:
        raise ValueError("x0 is an empty batch; the loss is a mean over examples and needs at least one")
    if isinstance(model, nn.Module):
        check_model_input(x0, model, "x0")
    if space not in LOSS_SPACES:
        raise ValueError(f"space must be one of {LOSS_SPACES}, got {space!r}")
    if min_snr_gamma is not None and not check_finite(min_snr_gamma, "min_snr_gamma") > 0:
        raise ValueError(
            f"min_snr_gamma must be a finite positive number (Hang et al. use 5; None for no weighting), "
            f"got {min_snr_gamma}"
        )
    if not 0 <= check_finite(p_uncond, "p_uncond") <= 1:
        raise ValueError(f"p_uncond is a probability and must lie in [0, 1], got {p_uncond}")
    native = space == "native" and getattr(model, "prediction", "eps") != "eps"
    if native and (
        model.T != schedule.T or not torch.allclose(model.schedule.alpha_bars, schedule.alpha_bars, atol=1e-6)
    ):
        raise ValueError(
            f"this {model.prediction}-prediction model was built for the {model.schedule_name!r} schedule "
            f"with T={model.T}; "
            f"train it with that schedule (model.schedule), not {schedule!r}"
        )
    if p_uncond:
        if null is None:
            raise ValueError("condition dropout (p_uncond > 0) needs the null condition: pass null=...")
        cond = drop_condition(cond, null, p_uncond, generator=generator)
    batch = x0.shape[0]
    where = generator.device if generator is not None else x0.device
    t = torch.randint(0, schedule.T, (batch,), generator=generator, device=where)
    noise = _randn(tuple(x0.shape), generator, x0.device, x0.dtype)
    x_t = schedule.q_sample(x0, t, noise)
    t = t.to(x0.device)
    if native:
        pred, target = model.network_output(x_t, t, **cond), model.target(x0, noise, t)
    else:
        pred, target = model(x_t, t, **cond), noise
    if pred.shape != target.shape:
        raise ValueError(
            f"the model returned shape {tuple(pred.shape)} for an input of shape {tuple(x_t.shape)}; "
            "a diffusion model must return a tensor shaped like its input"
        )
    per_example = error(pred, target)
    if min_snr_gamma is not None:
        snr = schedule.snr[t.cpu()].to(per_example)
        if native:  # an x_0-error weighted by min(SNR, γ), in the network's own output space
            weight = snr.clamp(max=min_snr_gamma) * model.x0_gain(t, snr).square()
        else:
            weight = snr.clamp(max=min_snr_gamma) / snr
        per_example = per_example * weight
    return per_example.mean()


# --------------------------------------------------------------------------------------------------
# Sampling
def timesteps(T: int, steps: int, spacing: str = "trailing") -> list[int]:
    """A descending grid of ``steps`` 0-based timesteps out of ``T`` for a sampler.

    - ``"trailing"``: ``round(arange(T, 0, -T/steps)) - 1``, always starts at T-1 (Lin et al. 2024,
      "Common Diffusion Noise Schedules and Sample Steps are Flawed", Table 2).
    - ``"leading"``: ``arange(0, steps) * (T // steps)`` reversed, as in the DDIM code: it ends at 0
      and starts at ``(steps - 1) * (T // steps)``, below T-1, so the first step never sees pure noise.
    - ``"linspace"``: ``round(linspace(0, T-1, steps))`` reversed.

    ``steps == T`` gives T-1, ..., 0 for every spacing.
    """
    T = _check_T(T)
    steps = _as_int(steps, "steps")
    if not 1 <= steps <= T:
        raise ValueError(f"steps must lie in 1..T={T}, got {steps}")
    if spacing == "trailing":
        grid = [round(T - i * T / steps) - 1 for i in range(steps)]
    elif spacing == "leading":
        grid = [i * (T // steps) for i in reversed(range(steps))]
    elif spacing == "linspace":
        grid = [round(i * (T - 1) / max(steps - 1, 1)) for i in reversed(range(steps))]
    else:
        raise ValueError(f"unknown spacing {spacing!r}; choose 'trailing', 'leading' or 'linspace'")
    out = sorted(set(grid), reverse=True)
    if len(out) != steps:  # pragma: no cover - cannot happen for steps <= T
        raise RuntimeError(f"timestep grid has duplicates: {grid}")
    return out


def _resolve_device(model: Model, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return check_device(device)  # type: ignore[return-value]
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
    return default_device()


@torch.no_grad()
def _run_sampler(
    model: Model,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    grid: list[int],
    step_fn: Callable[[Tensor, int, int, Tensor], Tensor],
    *,
    generator: torch.Generator | None,
    device: torch.device | str | None,
    dtype: torch.dtype,
    progress: bool,
    return_trajectory: bool,
    x_T: Tensor | None,
    desc: str,
    cond: dict[str, Any],
) -> Tensor | tuple[Tensor, list[Tensor]]:
    try:
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints (B, ...), got {shape!r}") from None
    if len(shape) < 1 or any(s < 1 for s in shape):
        raise ValueError(f"shape must be (B, ...) with positive sizes, got {shape}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype such as torch.float32, got {dtype!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)) or None, "
            f"got {type(generator).__name__}"
        )
    device = _resolve_device(model, device)
    if x_T is None:
        x = _randn(shape, generator, device, dtype)
    else:
        if not isinstance(x_T, Tensor):
            raise TypeError(f"x_T must be a tensor of shape {shape}, got {type(x_T).__name__}")
        if tuple(x_T.shape) != shape:
            raise ValueError(f"x_T has shape {tuple(x_T.shape)} but shape={shape}")
        if not bool(torch.isfinite(x_T).all()):
            raise ValueError("x_T contains NaN or infinity; start from finite noise, e.g. torch.randn(shape)")
        x = x_T.to(device=device, dtype=dtype)
    trajectory = [x.detach().cpu()] if return_trajectory else []
    prevs = [*grid[1:], -1]
    for t, prev_t in tqdm(list(zip(grid, prevs, strict=True)), desc=desc, disable=not progress, leave=False):
        t_batch = torch.full((shape[0],), t, dtype=torch.long, device=device)
        eps = model(x, t_batch, **cond)
        if not isinstance(eps, Tensor) or eps.shape != x.shape:
            got = tuple(eps.shape) if isinstance(eps, Tensor) else type(eps).__name__
            raise ValueError(
                f"the model returned {got} for an input of shape {shape}; it must return ε̂ shaped like x_t"
            )
        x = step_fn(x, t, prev_t, eps)
        if return_trajectory:
            trajectory.append(x.detach().cpu())
    if not torch.isfinite(x).all():
        raise FloatingPointError(
            "sampling produced NaN or infinity; check the model's output and use clip=True"
        )
    return (x, trajectory) if return_trajectory else x


def sample_ddpm(
    model: Model,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    return_trajectory: bool = False,
    clip: bool = True,
    steps: int | None = None,
    spacing: str = "trailing",
    dtype: torch.dtype = torch.float32,
    x_T: Tensor | None = None,
    **cond: Any,
) -> Tensor | tuple[Tensor, list[Tensor]]:
    """Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2) from x_T ~ N(0, I).

    With ``steps=None`` it visits every t = T-1..0; with ``steps=K`` it visits ``timesteps(T, K,
    spacing)`` and uses the respaced posterior (β' = 1 - ᾱ_t/ᾱ_prev) at each jump.

    Args:
        model: ``model(x_t, t, **cond) -> ε̂``, ``t`` (B,) long on ``device``.
        shape: (B, C, H, W) or any (B, ...) shape.
        generator: reproducible noise (a CPU generator works for any device).
        device: where to sample; defaults to the model's parameters' device, else ``default_device()``.
        return_trajectory: also return ``[x_T, ..., x_0]`` (on the CPU; len = steps + 1).
        x_T: start from this noise instead of drawing it.
        **cond: forwarded unchanged to the model.

    Returns:
        x_0 of ``shape`` (and the trajectory when asked).
    """
    grid = list(range(schedule.T - 1, -1, -1)) if steps is None else timesteps(schedule.T, steps, spacing)

    def step(x: Tensor, t: int, prev_t: int, eps: Tensor) -> Tensor:
        return schedule.ddpm_step(x, t, eps, prev_t=prev_t, clip=clip, generator=generator)

    return _run_sampler(
        model, schedule, shape, grid, step, generator=generator, device=device, dtype=dtype,
        progress=progress, return_trajectory=return_trajectory, x_T=x_T, desc="DDPM", cond=cond,
    )  # fmt: skip


def sample_ddim(
    model: Model,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    *,
    steps: int = 50,
    eta: float = 0.0,
    spacing: str = "trailing",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    return_trajectory: bool = False,
    clip: bool = True,
    dtype: torch.dtype = torch.float32,
    x_T: Tensor | None = None,
    **cond: Any,
) -> Tensor | tuple[Tensor, list[Tensor]]:
    """DDIM sampling (Song et al. 2021, eq. 12) over ``timesteps(T, steps, spacing)``.

    η = 0 (default) is deterministic; η = 1 matches DDPM's posterior variance. Arguments as for
    ``sample_ddpm``; returns x_0 of ``shape`` (and the trajectory ``[x_T, ..., x_0]`` when asked).
    """
    grid = timesteps(schedule.T, steps, spacing)

    def step(x: Tensor, t: int, prev_t: int, eps: Tensor) -> Tensor:
        return schedule.ddim_step(x, t, prev_t, eps, eta=eta, clip=clip, generator=generator)

    return _run_sampler(
        model, schedule, shape, grid, step, generator=generator, device=device, dtype=dtype,
        progress=progress, return_trajectory=return_trajectory, x_T=x_T, desc=f"DDIM {steps}", cond=cond,
    )  # fmt: skip
