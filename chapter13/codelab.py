"""The 13.6 code lab: an unconditional MNIST diffusion model that trains on a laptop CPU.

The recipe (every number lives in ``CODELAB_MODEL`` and ``CODELAB_TRAINING``):

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

    from chapter13.codelab import load_codelab, sample_digits
    model = load_codelab()                    # the shipped ``codelab-mnist`` checkpoint
    x = sample_digits(model, 64, steps=50)    # (64, 1, 28, 28) in [-1, 1]

Rebuild the checkpoint: ``python -m chapter13.train codelab-mnist``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chapter13.diffusion import (
    NoiseSchedule,
    diffusion_loss,
    make_schedule,
    sample_ddim,
    sample_ddpm,
)
from chapter13.unet import UNet

CODELAB_NAME = "codelab-mnist"

CODELAB_MODEL: dict[str, Any] = {
    "in_channels": 1,
    "image_size": 28,
    "patch_size": 2,
    "base_channels": 16,
    "channel_mults": [1, 2, 4],
    "num_res_blocks": 1,
    "attention_resolutions": [],
    "dropout": 0.0,
    "schedule": "cosine",
    "T": 1000,
    "prediction": "v",
    "max_norm_groups": 8,
}
"""Constructor arguments of the shipped ``PatchUNet`` (JSON; stored in the checkpoint manifest)."""

CODELAB_TRAINING: dict[str, Any] = {
    "steps": 6000,
    "batch_size": 128,
    "lr": 2e-3,
    "weight_decay": 0.0,
    "warmup": 200,
    "grad_clip": 1.0,
    "ema_decay": 0.999,
    "min_snr_gamma": 5.0,
    "seed": 0,
}
"""How the shipped model is trained (``build_codelab_mnist`` uses exactly these)."""

NOTEBOOK_TRAINING: dict[str, Any] = {**CODELAB_TRAINING, "steps": 3000}
"""The notebook's ``TRAIN = True`` run: the same model and recipe, shortened to fit 10 CPU minutes."""

PREDICTIONS = ("v", "eps")


def regroup_norms(module: nn.Module, max_groups: int) -> nn.Module:
    """Rebuild every ``nn.GroupNorm`` in ``module`` with at most ``max_groups`` groups (in place).

    ``chapter13.unet`` picks the largest divisor of C up to 32 groups (Wu & He 2018's default), which
    for the narrow layers of a CPU-sized U-Net (16 or 32 channels) means one channel per group, i.e.
    instance normalisation: every feature map is re-centred and re-scaled on its own, and the network
    loses how bright or how large a stroke is. Wu & He (2018, Table 3) find 1 channel per group the
    worst setting; with 8 groups each group spans 2-8 channels here. Parameters keep their shapes.
    """
    from chapter13.attention import norm_groups

    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.GroupNorm):
                groups = norm_groups(child.num_channels, max_groups)
                if groups != child.num_groups:
                    setattr(parent, name, nn.GroupNorm(groups, child.num_channels, eps=child.eps))
    return module


class PatchUNet(nn.Module):
    """A ``chapter13.unet.UNet`` that works on 2x2 patches of the image (space-to-depth).

    ``x``: (B, C, H, W) -> ``pixel_unshuffle(x, p)``: (B, C p², H/p, W/p) -> U-Net -> ``pixel_shuffle``
    -> network output (B, C, H, W) -> ε̂. With ``patch_size=1`` it is the plain U-Net. The model also
    records the noise schedule it was trained with (``schedule``, ``T``), so a checkpoint says how to
    sample it: ``model.noise_schedule()``.

    Args:
        in_channels: C of the images (1 for MNIST).
        image_size: H = W of the images; must be divisible by ``patch_size``.
        patch_size: p, the side of the square patches folded into channels.
        base_channels, channel_mults, num_res_blocks, attention_resolutions, dropout: as for
            ``chapter13.unet.UNet``; ``attention_resolutions`` are sizes of the *patched* feature maps
            (14, 7, ... for 28x28 and p = 2).
        schedule, T: the noise schedule (``make_schedule``) the model is trained for.
        prediction: ``"v"`` (the network predicts v, Salimans & Ho 2022) or ``"eps"`` (it predicts ε
            directly, as in DDPM). Either way ``forward`` returns ε̂.
        max_norm_groups: at most this many GroupNorm groups per layer (see ``regroup_norms``); 32
            keeps the U-Net's own choice.

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
    ):
        super().__init__()
        if not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f"patch_size must be a positive int, got {patch_size!r}")
        if image_size % patch_size:
            raise ValueError(
                f"image_size {image_size} is not divisible by patch_size {patch_size}; use 1, 2, 4, 7, ..."
            )
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        self._schedule = make_schedule(schedule, T)  # validates both; v̂ → ε̂ uses its ᾱ
        self.in_channels, self.image_size, self.patch_size = in_channels, image_size, patch_size
        self.schedule_name, self.T, self.prediction = schedule, T, prediction
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

    def noise_schedule(self) -> NoiseSchedule:
        """The schedule this model was trained with."""
        return self._schedule

    def forward(self, x: Tensor, t: Tensor, **cond: Any) -> Tensor:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        p = self.patch_size
        h = F.pixel_unshuffle(x, p) if p > 1 else x
        out = self.unet(h, t, **cond)
        out = F.pixel_shuffle(out, p) if p > 1 else out
        return out if self.prediction == "eps" else self._schedule.eps_from_v(x, t, out)


def parameter_count(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def macs_per_image(model: nn.Module, shape: Sequence[int] = (1, 28, 28), **cond: Any) -> int:
    """Multiply-accumulates of one forward pass for one image of ``shape``.

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


def loss_curve(losses: Sequence[float], points: int = 50) -> list[float]:
    """``losses`` averaged over ``points`` equal windows (a compact curve to store and plot)."""
    if len(losses) == 0:
        raise ValueError("no losses to summarise")
    chunks = torch.tensor(list(losses), dtype=torch.float64).tensor_split(min(points, len(losses)))
    return [round(float(c.mean()), 5) for c in chunks]


def train_codelab(
    model_config: dict[str, Any] | None = None,
    *,
    progress: bool = True,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    limit: int | None = None,
    device: torch.device | str | None = None,
    **training: Any,
) -> tuple[PatchUNet, Any]:
    """Train a ``PatchUNet`` on the bundled MNIST training split with ``train.fit``.

    Args:
        model_config: ``PatchUNet`` arguments (default ``CODELAB_MODEL``); entries missing from it
            are taken from ``CODELAB_MODEL``.
        checkpoint_path, resume: passed to ``fit`` (write the training state; continue from it).
        limit: train on the first ``limit`` digits only (quick mode).
        device: where to train; ``None`` picks CUDA, then MPS, then the CPU
            (``chapter13.config.default_device``, overridden by ``CH13_DEVICE``).
        **training: overrides of ``CODELAB_TRAINING`` (``steps``, ``batch_size``, ``lr``, ...).

    Returns:
        ``(ema_model, result)``: the EMA weights in eval mode (what we sample from) and the
        ``TrainResult`` (losses, seconds, the raw model).
    """
    from chapter13.config import seed_everything
    from chapter13.data import load_mnist
    from chapter13.train import fit

    unknown = sorted(set(training) - set(CODELAB_TRAINING))
    if unknown:
        raise TypeError(f"unknown training settings {unknown}; known: {sorted(CODELAB_TRAINING)}")
    settings = {**CODELAB_TRAINING, **training}
    config = {**CODELAB_MODEL, **(model_config or {})}
    seed_everything(settings["seed"])
    model = PatchUNet(**config)
    schedule = model.noise_schedule()
    x, _ = load_mnist("train", limit=limit)
    generator = torch.Generator().manual_seed(settings["seed"] + 1)
    gamma = settings["min_snr_gamma"]

    def loss_fn(m: nn.Module, batch: Sequence[Tensor]) -> Tensor:
        return diffusion_loss(m, schedule, batch[0], generator=generator, min_snr_gamma=gamma)

    result = fit(
        model,
        loss_fn,
        (x,),
        steps=settings["steps"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        weight_decay=settings["weight_decay"],
        warmup=settings["warmup"],
        grad_clip=settings["grad_clip"],
        ema_decay=settings["ema_decay"],
        seed=settings["seed"],
        device=device,
        checkpoint_path=checkpoint_path,
        resume=resume,
        progress=progress,
        desc="codelab U-Net",
    )
    return result.ema_model.eval(), result  # type: ignore[return-value]


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
    T-step ancestral sampler. ``schedule`` defaults to the model's own (``model.noise_schedule()``).
    Batches of ``batch_size`` keep memory flat; with ``return_trajectory`` (one batch only) the list
    of intermediate x_t is returned too.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive number of samples, got {n!r}")
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {sampler!r}")
    if sampler == "ddim" and steps is None:
        raise ValueError("DDIM needs a number of steps, e.g. steps=50")
    if return_trajectory and n > batch_size:
        raise ValueError(f"return_trajectory works on one batch: ask for n <= batch_size={batch_size}")
    schedule = schedule if schedule is not None else model.noise_schedule()
    model.eval()
    shape = (model.in_channels, model.image_size, model.image_size)
    generator = torch.Generator().manual_seed(seed)
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


def evaluate_codelab(
    model: nn.Module,
    n: int = 256,
    *,
    steps: int | None = 50,
    sampler: str = "ddim",
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """``chapter13.evaluate.sample_metrics`` of ``n`` samples, plus the sampling time in seconds."""
    from chapter13.evaluate import sample_metrics

    t0 = time.perf_counter()
    samples = sample_digits(model, n, steps=steps, sampler=sampler, seed=seed, progress=progress)
    seconds = time.perf_counter() - t0
    return {**sample_metrics(samples), "sampler": sampler, "steps": steps, "sample_seconds": seconds}


def load_codelab(device: torch.device | str | None = None) -> PatchUNet:
    """The shipped ``codelab-mnist`` model (checksum-verified, eval mode)."""
    from chapter13.checkpoints import load_model

    return load_model(CODELAB_NAME, device=device)  # type: ignore[return-value]


def build_codelab_mnist() -> PatchUNet:
    """Recipe of the shipped ``codelab-mnist`` (``python -m chapter13.train codelab-mnist``).

    Trains ``PatchUNet(**CODELAB_MODEL)`` with ``CODELAB_TRAINING`` on the CPU, scores 256 DDIM-50
    samples with ``chapter13.evaluate`` and saves the EMA weights with their training time and quality.
    """
    from chapter13 import checkpoints

    ema_model, result = train_codelab(progress=True, device="cpu")
    metrics = evaluate_codelab(ema_model, 256, steps=50, sampler="ddim", seed=0)
    quality = {
        "ddim50_confident_fraction": round(metrics["confident_fraction"], 4),
        "ddim50_class_entropy": round(metrics["class_entropy"], 4),
        "ddim50_frechet_distance": round(metrics["frechet_distance"], 3),
        "ddim50_class_histogram": metrics["class_histogram"],
        "samples": metrics["n"],
        "steps": CODELAB_TRAINING["steps"],
        "loss_curve": loss_curve(result.losses),
    }
    checkpoints.save(
        CODELAB_NAME,
        ema_model,
        copy.deepcopy(ema_model.config),
        train_seconds=result.seconds,
        quality=quality,
        notes=f"EMA weights; trained on the CPU ({torch.get_num_threads()} threads) with {CODELAB_TRAINING}",
    )
    print(
        f"codelab-mnist: {result.seconds / 60:.1f} min, DDIM-50 confident {metrics['confident_fraction']:.1%}, "
        f"class entropy {metrics['class_entropy']:.3f}, Fréchet {metrics['frechet_distance']:.2f}"
    )
    return ema_model


def sampler_spec() -> Any:
    """How ``python -m chapter13.sample codelab-mnist`` draws samples (unconditional)."""
    from chapter13.sample import SamplerSpec

    def draw(n: int, *, steps: int, eta: float, seed: int, device: Any, progress: bool) -> Tensor:
        model = load_codelab(device=device)
        return sample_digits(model, n, steps=steps, eta=eta, seed=seed, device=device, progress=progress)

    return SamplerSpec(draw=draw, accepts=frozenset(), max_steps=CODELAB_MODEL["T"])
