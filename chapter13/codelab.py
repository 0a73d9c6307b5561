"""The 13.6 code lab: an unconditional MNIST diffusion model that trains on a laptop CPU.

The model and how it is trained (the shipped numbers live in ``chapter13.recipes.codelab``):

- **Space-to-depth ("patch") input.** The 28x28 digit is rearranged into 4 channels of 14x14
  (``pixel_unshuffle``, as the 2x2 patches of DiT, Peebles & Xie 2023, and the invertible
  down-sampling of "simple diffusion", Hoogeboom et al. 2023) and the U-Net runs at 14 -> 7 -> 4.
  The 28x28 level is where a plain U-Net spends most of its compute; skipping it cuts the cost of a
  forward pass about 4x at the same width, so the CPU can afford more training steps.
- **The package's U-Net** (``chapter13.unet.UNet``): sinusoidal time embedding + MLP, GroupNorm
  residual blocks, skip connections, self-attention in the middle block.
- **Cosine noise schedule** (Nichol & Dhariwal 2021, eq. 17), T = 1000.
- **v-parameterisation** (Salimans & Ho 2022, §4): the network outputs ``v = sqrt(ᾱ) ε - sqrt(1-ᾱ) x_0``
  and ``forward`` returns ``ε̂ = sqrt(ᾱ) v̂ + sqrt(1-ᾱ) x_t``, so every ε-sampler of
  ``chapter13.diffusion`` works unchanged. With ε-prediction, ``x̂_0 = (x_t - sqrt(1-ᾱ) ε̂)/sqrt(ᾱ)``
  multiplies the network's error by ``1/sqrt(ᾱ)`` (20,000 at the cosine schedule's last step), and the
  clipped, garbage x̂_0 of the first sampling steps is baked into the digits as grain.
- **Min-SNR-γ loss weighting** (Hang et al. 2023, γ = 5) on the ε error: ``min(SNR, γ)/SNR ||ε̂ - ε||²``,
  which for a v-network is exactly their v-loss ``min(SNR, γ)/(SNR + 1) ||v̂ - v||²``.
- **AdamW** with linear warm-up and cosine decay, gradient clipping, **EMA** of the weights (0.999),
  all from ``chapter13.train.fit``.

Sampling uses the package's DDIM (Song et al. 2021) with 50 steps unless asked otherwise.

    from chapter13.checkpoints import load_model
    from chapter13.codelab import sample_digits
    model = load_model("codelab-mnist")       # the shipped checkpoint
    x = sample_digits(model, 64, steps=50)    # (64, 1, 28, 28) in [-1, 1]

The recipe (its numbers, training and measurement) is ``chapter13.recipes.codelab``; rebuild the
checkpoint with ``python -m chapter13.train codelab-mnist``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chapter13.attention import regroup_norms
from chapter13.config import check_model_input, check_seed
from chapter13.diffusion import DiffusionModel, NoiseSchedule, sample_ddim, sample_ddpm
from chapter13.unet import UNet


class PatchUNet(DiffusionModel):
    """A ``chapter13.unet.UNet`` that works on 2x2 patches of the image (space-to-depth).

    ``x``: (B, C, H, W) -> ``pixel_unshuffle(x, p)``: (B, C p², H/p, W/p) -> U-Net -> ``pixel_shuffle``
    -> network output (B, C, H, W) -> ε̂. With ``patch_size=1`` it is the plain U-Net. The model also
    records the noise schedule it was trained with (``schedule``, ``T``), so a checkpoint says how to
    sample it: ``model.schedule`` (``chapter13.diffusion.DiffusionModel``).

    Args:
        in_channels: C of the images (1 for MNIST).
        image_size: H = W of the images; must be divisible by ``patch_size``.
        patch_size: p, the side of the square patches folded into channels.
        base_channels, channel_mults, num_res_blocks, attention_resolutions, dropout: as for
            ``chapter13.unet.UNet``; ``attention_resolutions`` are sizes of the *patched* feature maps
            (14, 7, ... for 28x28 and p = 2).
        schedule, T: the noise schedule (``make_schedule``) the model is trained for.
        prediction: ``"v"`` (the network predicts v, Salimans & Ho 2022), ``"eps"`` (it predicts ε
            directly, as in DDPM) or ``"edm"`` (Karras et al. 2022's preconditioning with
            ``sigma_data``; see ``chapter13.diffusion.DiffusionModel``). Either way ``forward`` returns ε̂.
        max_norm_groups: at most this many GroupNorm groups per layer (see ``regroup_norms``); 32
            keeps the U-Net's own choice.
        sigma_data: σ_d of ``prediction="edm"``; ``None`` otherwise.

    forward(x: (B, C, H, W), t: (B,) long) -> (B, C, H, W).
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        patch_size: int = 2,
        base_channels: int = 16,
        channel_mults: Sequence[int] = (1, 2, 4),
        num_res_blocks: int = 1,
        attention_resolutions: Sequence[int] = (),
        dropout: float = 0.0,
        schedule: str = "cosine",
        T: int = 1000,
        prediction: str = "v",
        max_norm_groups: int = 8,
        sigma_data: float | None = None,
    ):
        super().__init__(prediction, schedule, T, sigma_data)  # validates them; v̂ → ε̂ uses the schedule's ᾱ
        if not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f"patch_size must be a positive int, got {patch_size!r}")
        if image_size % patch_size:
            raise ValueError(
                f"image_size {image_size} is not divisible by patch_size {patch_size}; use 1, 2, 4, 7, ..."
            )
        self.in_channels, self.image_size, self.patch_size = in_channels, image_size, patch_size
        self.unet = UNet(
            in_channels=in_channels * patch_size**2,
            base_channels=base_channels,
            channel_mults=tuple(channel_mults),
            num_res_blocks=num_res_blocks,
            attention_resolutions=tuple(attention_resolutions),
            dropout=dropout,
            image_size=image_size // patch_size,
        )
        if not isinstance(max_norm_groups, int) or max_norm_groups < 1:
            raise ValueError(f"max_norm_groups must be a positive int, got {max_norm_groups!r}")
        regroup_norms(self.unet, max_norm_groups)
        self.config: dict[str, Any] = {
            "in_channels": in_channels,
            "image_size": image_size,
            "patch_size": patch_size,
            "base_channels": base_channels,
            "channel_mults": list(channel_mults),
            "num_res_blocks": num_res_blocks,
            "attention_resolutions": list(attention_resolutions),
            "dropout": dropout,
            "schedule": schedule,
            "T": T,
            "prediction": prediction,
            "max_norm_groups": max_norm_groups,
        }
        if sigma_data is not None:  # only EDM models carry it, so older configs stay valid
            self.config["sigma_data"] = sigma_data

    def predict(self, x: Tensor, t: Tensor, **cond: Any) -> Tensor:
        """The U-Net's output (v̂ or ε̂, by ``prediction``) for ``x`` (B, C, H, W), on 2x2 patches."""
        check_model_input(x, self, "x")
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        p = self.patch_size
        h = F.pixel_unshuffle(x, p) if p > 1 else x
        out = self.unet(h, t, **cond)
        return F.pixel_shuffle(out, p) if p > 1 else out


@torch.inference_mode()
def sample_digits(
    model: nn.Module,
    n: int = 64,
    *,
    steps: int | None = 50,
    sampler: str = "ddim",
    eta: float = 0.0,
    seed: int = 0,
    schedule: NoiseSchedule | None = None,
    batch_size: int = 256,
    progress: bool = False,
    return_trajectory: bool = False,
    device: torch.device | str | None = None,
) -> Tensor | tuple[Tensor, list[Tensor]]:
    """Draw ``n`` digits (N, 1, 28, 28) in [-1, 1] with DDIM (``sampler="ddim"``) or DDPM.

    ``steps`` is the number of model evaluations; ``sampler="ddpm", steps=None`` is DDPM's full
    T-step ancestral sampler. ``schedule`` defaults to the model's own (``model.schedule``).
    Batches of ``batch_size`` keep memory flat; with ``return_trajectory`` (one batch only) the list
    of intermediate x_t is returned too.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive number of samples, got {n!r}")
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {sampler!r}")
    if sampler == "ddim" and steps is None:
        raise ValueError("DDIM needs a number of steps, e.g. steps=50")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if return_trajectory and n > batch_size:
        raise ValueError(f"return_trajectory works on one batch: ask for n <= batch_size={batch_size}")
    schedule = schedule if schedule is not None else model.schedule
    model.eval()
    shape = (model.in_channels, model.image_size, model.image_size)
    generator = torch.Generator().manual_seed(check_seed(seed))
    chunks, trajectory = [], None
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        kwargs: dict[str, Any] = dict(
            generator=generator, device=device, progress=progress, return_trajectory=return_trajectory
        )
        if sampler == "ddim":
            out = sample_ddim(model, schedule, (b, *shape), steps=steps, eta=eta, **kwargs)
        else:
            out = sample_ddpm(model, schedule, (b, *shape), steps=steps, **kwargs)
        if return_trajectory:
            out, trajectory = out
        chunks.append(out.float().cpu().clamp(-1.0, 1.0))
    samples = torch.cat(chunks)
    return (samples, trajectory) if return_trajectory else samples
