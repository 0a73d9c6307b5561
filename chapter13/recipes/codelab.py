"""Recipe of ``codelab-mnist``, the 13.6 code lab's unconditional MNIST diffusion model.

The model is ``chapter13.codelab.PatchUNet`` (why each choice: that module's docstring); here are
the numbers of the shipped one, how it is trained (``train_codelab``) and measured
(``evaluate_codelab``), and how ``python -m chapter13.sample codelab-mnist`` draws from it.

    python -m chapter13.train codelab-mnist     # 6,000 steps of 128 on the CPU, then 256 DDIM-50 samples judged
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from chapter13.checkpoints import load_model
from chapter13.codelab import PatchUNet, sample_digits
from chapter13.config import seed_everything
from chapter13.data import load_mnist
from chapter13.diffusion import diffusion_loss
from chapter13.evaluate import sample_metrics
from chapter13.recipes import Built, Recipe, SamplerSpec
from chapter13.train import TrainResult, fit, loss_curve

NAME = "codelab-mnist"

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
"""How the shipped model is trained (``train`` below uses exactly these)."""

NOTEBOOK_TRAINING: dict[str, Any] = {**CODELAB_TRAINING, "steps": 3000}
"""The notebook's ``TRAIN = True`` run: the same model and recipe, shortened to fit 10 CPU minutes."""


def train_codelab(
    model_config: dict[str, Any] | None = None,
    *,
    progress: bool = True,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    limit: int | None = None,
    device: torch.device | str | None = None,
    **training: Any,
) -> TrainResult:
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
        The ``TrainResult``: ``.ema_model`` (eval mode) is what we sample from; also the raw model,
        the losses and the seconds.
    """
    unknown = sorted(set(training) - set(CODELAB_TRAINING))
    if unknown:
        raise TypeError(f"unknown training settings {unknown}; known: {sorted(CODELAB_TRAINING)}")
    settings = {**CODELAB_TRAINING, **training}
    config = {**CODELAB_MODEL, **(model_config or {})}
    seed_everything(settings["seed"])
    model = PatchUNet(**config)
    schedule = model.schedule
    x, _ = load_mnist("train", limit=limit)
    generator = torch.Generator().manual_seed(settings["seed"] + 1)
    gamma = settings["min_snr_gamma"]

    def loss_fn(m: nn.Module, batch: Sequence[Tensor]) -> Tensor:
        return diffusion_loss(m, schedule, batch[0], space="eps", min_snr_gamma=gamma, generator=generator)

    return fit(
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
    t0 = time.perf_counter()
    samples = sample_digits(model, n, steps=steps, sampler=sampler, seed=seed, progress=progress)
    seconds = time.perf_counter() - t0
    return {**sample_metrics(samples), "sampler": sampler, "steps": steps, "sample_seconds": seconds}


def build() -> Built:
    """Train ``PatchUNet(**CODELAB_MODEL)`` with ``CODELAB_TRAINING`` on the CPU and score 256 DDIM-50
    samples with ``chapter13.evaluate``; the EMA weights are what is saved."""
    result = train_codelab(progress=True, device="cpu")
    model = result.ema_model
    metrics = evaluate_codelab(model, 256, steps=50, sampler="ddim", seed=0)
    quality = {
        "ddim50_confident_fraction": round(metrics["confident_fraction"], 4),
        "ddim50_class_entropy": round(metrics["class_entropy"], 4),
        "ddim50_frechet_distance": round(metrics["frechet_distance"], 3),
        "ddim50_class_histogram": metrics["class_histogram"],
        "samples": metrics["n"],
        "steps": CODELAB_TRAINING["steps"],
        "loss_curve": loss_curve(result.losses),
    }
    notes = f"EMA weights; trained on the CPU ({torch.get_num_threads()} threads) with {CODELAB_TRAINING}"
    return Built(model, copy.deepcopy(model.config), result.seconds, quality, notes)


def sampler_spec() -> Any:
    """How ``python -m chapter13.sample codelab-mnist`` draws samples (unconditional)."""

    def draw(n: int, *, steps: int, eta: float, seed: int, device: Any, progress: bool) -> Tensor:
        model = load_model(NAME, device=device)
        return sample_digits(model, n, steps=steps, eta=eta, seed=seed, device=device, progress=progress)

    return SamplerSpec(draw=draw, accepts=frozenset(), max_steps=CODELAB_MODEL["T"])


RECIPES = (Recipe(NAME, "13.6 unconditional MNIST diffusion U-Net", PatchUNet, build, sampler_spec),)
