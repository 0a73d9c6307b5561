"""Classifier-free guidance (Ho & Salimans 2022): condition dropout and the guided prediction.

Classifier-free guidance trains ONE network both conditionally and unconditionally: during training
the condition is replaced by a null condition ∅ with probability ``p_uncond`` (0.1-0.2), so that the
same weights predict ε(x_t, c) and ε(x_t, ∅). At sampling time the two predictions are combined.

Two conventions for the guidance weight are in use; this module uses the scale ``s``:

* Ho & Salimans (2022), eq. 6, write ε̃ = (1 + w) ε(x_t, c) − w ε(x_t, ∅), with w = 0 the
  plain conditional model.
* Stable Diffusion and most code write ε̃ = ε_u + s (ε_c − ε_u) ("guidance_scale" 7.5), which is
  the same expression with **s = 1 + w**. Here s = 1 is the plain conditional model, s = 0 the
  unconditional model, s > 1 pushes samples further towards the condition.

Both predictions are computed in **one batched forward pass**: the batch is doubled to
``[x, x]`` with conditions ``[∅, c]`` and the output split in two (``guided_epsilon``). A
``GuidedModel`` wraps a conditional model into the plain ``model(x_t, t, **cond)`` callable that the
shared samplers of ``chapter13.diffusion`` expect, so guided sampling reuses DDPM and DDIM unchanged;
``chapter13.diffusion.diffusion_loss(..., p_uncond=, null=)`` trains with condition dropout. This
module is pure math on callables: the text-to-image model is ``chapter13.text2image``.

Conditions are dictionaries of tensors whose first dimension is the batch (for the text model:
``context`` (B, L, D) token features and ``context_mask`` (B, L) bool). A null condition has the
same keys, with batch dimension B or 1 (broadcast).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping

import torch
from torch import nn

Condition = Mapping[str, torch.Tensor]
"""A condition: keyword tensors for ``model(x_t, t, **cond)``, first dimension the batch."""


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number (or a (B,) tensor), got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {number}; the chapter uses s = 1..7.5")
    return number


def scale_from_w(w: float) -> float:
    """Ho & Salimans' guidance weight ``w`` (eq. 6) -> this package's scale ``s = 1 + w``."""
    return 1.0 + _finite(w, "the guidance weight w")


def w_from_scale(s: float) -> float:
    """This package's scale ``s`` -> Ho & Salimans' weight ``w = s - 1`` (eq. 6)."""
    return _finite(s, "the guidance scale s") - 1.0


def _batch_size(cond: Condition) -> int:
    if not cond:
        raise ValueError(
            "the condition is empty; pass the keyword tensors of the conditional model, "
            "e.g. {'context': tokens, 'context_mask': mask}"
        )
    wrong = {k: type(v).__name__ for k, v in cond.items() if not isinstance(v, torch.Tensor)}
    if wrong:
        raise TypeError(
            f"condition values must be tensors (batch first), got {wrong}; convert with torch.as_tensor"
        )
    sizes = {k: v.shape[0] for k, v in cond.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"condition tensors disagree in batch size: {sizes}")
    return next(iter(sizes.values()))


def expand_null(null: Condition, cond: Condition) -> dict[str, torch.Tensor]:
    """Broadcast the null condition to the batch and shapes of ``cond``.

    Each ``null[k]`` must have batch dimension 1 or B and otherwise the shape of ``cond[k]``.
    """
    missing = set(cond) - set(null)
    extra = set(null) - set(cond)
    if missing or extra:
        raise ValueError(
            f"the null condition must have the same keys as the condition: missing {sorted(missing)}, "
            f"extra {sorted(extra)}"
        )
    wrong = {k: type(v).__name__ for k, v in null.items() if not isinstance(v, torch.Tensor)}
    if wrong:
        raise TypeError(f"null condition values must be tensors, got {wrong}; convert with torch.as_tensor")
    out = {}
    for key, value in cond.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"condition {key!r} must be a tensor, got {type(value).__name__}")
        empty = null[key].to(device=value.device)
        if empty.shape[1:] != value.shape[1:] or empty.shape[0] not in (1, value.shape[0]):
            raise ValueError(
                f"null condition {key!r} has shape {tuple(empty.shape)}, which does not broadcast to the "
                f"condition's {tuple(value.shape)}; give it batch size 1 or {value.shape[0]} and the same "
                "trailing shape (pad text to the same length)"
            )
        out[key] = empty.expand_as(value) if empty.shape[0] == 1 else empty
    return out


def drop_condition(
    cond: Condition,
    null: Condition,
    p_uncond: float,
    *,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Condition dropout for classifier-free guidance training (Ho & Salimans 2022, Algorithm 1).

    Each example's condition is replaced by the null condition independently with probability
    ``p_uncond`` (the paper uses 0.1 or 0.2), so one network learns ε(x_t, c) and ε(x_t, ∅).

    Args:
        cond: tensors with batch dimension B (e.g. ``context`` (B, L, D), ``context_mask`` (B, L)).
        null: the null condition, batch dimension 1 or B (see ``expand_null``).
        p_uncond: probability in [0, 1] of dropping each example's condition.
        generator: a CPU ``torch.Generator`` for reproducible draws.

    Returns:
        A new dict of the same shapes in which the dropped rows equal the null condition.
    """
    if not 0.0 <= _finite(p_uncond, "p_uncond") <= 1.0:
        raise ValueError(f"p_uncond is a probability and must lie in [0, 1], got {p_uncond}")
    batch = _batch_size(cond)
    empty = expand_null(null, cond)
    drop = torch.rand(batch, generator=generator) < p_uncond
    out = {}
    for key, value in cond.items():
        where = drop.to(value.device).view(batch, *([1] * (value.ndim - 1)))
        out[key] = torch.where(where, empty[key], value)
    return out


def _as_scale(scale: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor | float:
    """A float, or a (B,) tensor broadcast over the image dimensions of ``x``."""
    scale = _check_scale(scale)
    if isinstance(scale, torch.Tensor):
        if scale.shape != (x.shape[0],):
            raise ValueError(
                f"a tensor guidance scale must have shape (B,) = ({x.shape[0]},), got {tuple(scale.shape)}"
            )
        return scale.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.ndim - 1)))
    return scale


def _check_scale(scale: float | torch.Tensor) -> torch.Tensor | float:
    """A finite number, or a finite 1-D tensor (one scale per example); a 0-d tensor becomes a float."""
    if isinstance(scale, torch.Tensor):
        if scale.ndim == 0:
            return _finite(float(scale), "the guidance scale")
        if scale.ndim != 1 or not (scale.is_floating_point() or scale.dtype in (torch.int32, torch.int64)):
            raise ValueError(
                f"a tensor guidance scale must be a (B,) tensor of numbers, got {scale.dtype} {tuple(scale.shape)}"
            )
        if not bool(torch.isfinite(scale).all()):
            raise ValueError(f"the guidance scales must be finite, got {scale.tolist()}")
        return scale
    return _finite(scale, "the guidance scale")


def guided_epsilon(
    model: Callable[..., torch.Tensor],
    x_t: torch.Tensor,
    t: torch.Tensor,
    cond: Condition,
    null: Condition,
    scale: float | torch.Tensor,
    *,
    return_parts: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The classifier-free guided prediction ε̃ = ε_u + s (ε_c − ε_u) in one batched forward pass.

    This is Ho & Salimans (2022) eq. 6, ε̃ = (1 + w) ε_c − w ε_u, written with s = 1 + w: s = 0
    gives the unconditional prediction ε_u, s = 1 the conditional ε_c, s > 1 extrapolates beyond it.
    The batch is doubled, ``[x_t, x_t]`` with conditions ``[∅, c]``, so the network runs once on 2B
    examples instead of twice on B (one call keeps the matrix multiplies large, which is what makes
    it faster on a GPU and no slower on a CPU). For a plain number s = 0 or s = 1 only the needed
    half is computed.

    Args:
        model: ``model(x_t, t, **cond) -> ε``, trained with condition dropout.
        x_t: noisy inputs (B, C, H, W).
        t: timesteps (B,) long.
        cond: the condition, batch B; ``null``: the null condition, batch 1 or B.
        scale: s, a number or a (B,) tensor (one scale per example, e.g. for a trade-off curve).
        return_parts: also return ``(eps_uncond, eps_cond)``.

    Returns:
        ε̃ shaped like ``x_t`` (and ε_u, ε_c when ``return_parts``).
    """
    s = _as_scale(scale, x_t)
    batch = x_t.shape[0]
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a (B,) long tensor of timesteps, got {type(t).__name__}")
    if _batch_size(cond) != batch or t.shape[0] != batch:
        raise ValueError(
            f"x_t has batch {batch}, t has {t.shape[0]} and the condition has {_batch_size(cond)}; "
            "they must agree"
        )
    empty = expand_null(null, cond)
    if not return_parts and isinstance(s, float) and s == 1.0:
        return model(x_t, t, **cond)
    if not return_parts and isinstance(s, float) and s == 0.0:
        return model(x_t, t, **empty)
    both = {k: torch.cat([empty[k], cond[k]]) for k in cond}
    eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), **both)
    if eps.shape[0] != 2 * batch:
        raise ValueError(f"the model returned batch {eps.shape[0]} for an input batch of {2 * batch}")
    eps_u, eps_c = eps.chunk(2)
    guided = eps_u + s * (eps_c - eps_u)
    if return_parts:
        return guided, eps_u, eps_c
    return guided


class GuidedModel(nn.Module):
    """A conditional model turned into the plain ``model(x_t, t, **cond) -> ε̃`` of the samplers.

    ``GuidedModel(model, null, scale)(x_t, t, **cond)`` returns ``guided_epsilon(...)``, so
    ``diffusion.sample_ddim(GuidedModel(m, null, 3.0), schedule, shape, **cond)`` samples with
    classifier-free guidance at s = 3 through the unchanged DDIM sampler.

    Args:
        model: the conditional network ``model(x_t, t, **cond)``.
        null: the null condition (dict of tensors, batch 1 or B), or a callable ``null(cond)``
            returning it.
        scale: s = 1 + w (Ho & Salimans 2022, eq. 6); a number or a (B,) tensor.
    """

    def __init__(
        self,
        model: Callable[..., torch.Tensor],
        null: Condition | Callable[[Condition], Condition],
        scale: float | torch.Tensor,
    ) -> None:
        super().__init__()
        self.model = model
        self.null = null
        self.scale = _check_scale(scale)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, **cond: torch.Tensor) -> torch.Tensor:
        null = self.null(cond) if callable(self.null) else self.null
        return guided_epsilon(self.model, x_t, t, cond, null, self.scale)  # type: ignore[return-value]
