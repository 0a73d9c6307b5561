"""What a network costs: its parameter count and the multiply-adds of one forward pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn


def parameter_count(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters())


def macs_per_image(model: nn.Module, shape: Sequence[int] = (1, 28, 28), **cond: Any) -> int:
    """Multiply-accumulates of one forward pass ``model(x, t, **cond)`` for one image of ``shape``.

    Counts every ``nn.Conv2d``, ``nn.ConvTranspose2d`` and ``nn.Linear`` (output elements x inputs per
    output) with forward hooks; the products inside attention (``Q Kᵀ``, weights x ``V``) are left
    out, which at the lab model's 4x4 middle block is well under 1 % of the total.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1] if hasattr(module, "kernel_size") else 1
        if isinstance(module, nn.ConvTranspose2d):  # every input element is spread over the kernel
            total += inputs[0].numel() * module.out_channels // module.groups * kernel
        elif isinstance(module, nn.Conv2d):
            total += output.numel() * module.in_channels // module.groups * kernel
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)
    ]
    try:
        x = torch.zeros(1, *shape, device=next(model.parameters()).device)
        with torch.no_grad():
            model(x, torch.zeros(1, dtype=torch.long, device=x.device), **cond)
    finally:
        for handle in handles:
            handle.remove()
    return total
