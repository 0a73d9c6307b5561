"""Recipe of ``codelab-mnist``, the 13.6 code lab's unconditional MNIST diffusion model.

The model is ``chapter13.codelab.PatchUNet`` (why each choice: that module's docstring); here are
the numbers of the shipped one, how it is trained (``train_codelab``) and measured
(``evaluate_codelab``), and how ``python -m chapter13.sample codelab-mnist`` draws from it.

    python -m chapter13.train codelab-mnist     # 14,000 + 5,000 steps of 128 on one CPU core (about 80 min),
                                                # then measure_codelab: DDIM-10/20/50/100 and DDPM-1000 judged
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from chapter13.checkpoints import load_model
from chapter13.codelab import PatchUNet, sample_digits
from chapter13.config import default_device, has_fast_bf16, seed_everything, torch_threads
from chapter13.data import load_mnist
from chapter13.diffusion import diffusion_loss, mse_per_example
from chapter13.evaluate import classify, held_out_split, sample_metrics
from chapter13.recipes import Built, Recipe, SamplerSpec
from chapter13.train import RunRecord, TrainResult, fit, loss_curve

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
    "steps": 14000,
    "batch_size": 128,
    "lr": 2e-3,
    "weight_decay": 0.0,
    "warmup": 200,
    "grad_clip": 1.0,
    "ema_decay": 0.9995,
    "min_snr_gamma": 5.0,
    "precision": "fp32",
    "seed": 0,
}
"""How the shipped model is trained (``train`` below uses exactly these). ``precision``: ``"fp32"``,
``"bf16"`` (the network runs under ``torch.autocast`` in bfloat16; weights, loss and optimiser stay
float32) or ``"auto"`` (bf16 where the device computes it natively, ``config.has_fast_bf16``)."""

NOTEBOOK_TRAINING: dict[str, Any] = {
    **CODELAB_TRAINING,
    "steps": 4000,
    "ema_decay": 0.999,
    "precision": "auto",
}
"""The notebook's ``TRAIN = True`` run: the same model and recipe, shortened to fit 10 CPU minutes; an
EMA over the last ~1,000 steps, and bfloat16 where the processor computes it natively (1.5x faster
training steps on an AVX512-BF16 CPU)."""


CODELAB_COOLDOWN: dict[str, Any] = {**CODELAB_TRAINING, "steps": 5000, "lr": 4e-4, "warmup": 100, "seed": 1}
"""The shipped build's second phase: from the first phase's EMA weights, 5,000 more steps at a fifth of
the learning rate (decaying to a tenth of that), with a fresh EMA and new draws (seed 1). The first
phase's cosine schedule ends near its floor while the loss still falls; this continues there."""


def float32_mse(pred: Tensor, target: Tensor) -> Tensor:
    """``mse_per_example`` in float32, also when the network ran in bfloat16 under autocast."""
    return mse_per_example(pred.float(), target.float())


def train_codelab(
    model_config: dict[str, Any] | None = None,
    *,
    progress: bool = True,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    limit: int | None = None,
    device: torch.device | str | None = None,
    init: nn.Module | None = None,
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
        init: start from these weights (a ``PatchUNet`` of the same config, copied) instead of a
            fresh initialisation: the second phase of the shipped build (``CODELAB_COOLDOWN``).
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
    if init is not None:
        model.load_state_dict(init.state_dict())
    schedule = model.schedule
    x, _ = load_mnist("train", limit=limit)
    generator = torch.Generator().manual_seed(settings["seed"] + 1)
    gamma = settings["min_snr_gamma"]
    where = torch.device(device) if device is not None else default_device()
    precision = settings["precision"]
    if precision not in ("fp32", "bf16", "auto"):
        raise ValueError(f"precision must be 'fp32', 'bf16' or 'auto', got {precision!r}")
    bf16 = precision == "bf16" or (precision == "auto" and has_fast_bf16(where))

    def loss_fn(m: nn.Module, batch: Sequence[Tensor]) -> Tensor:
        precision_context = torch.autocast(where.type, dtype=torch.bfloat16) if bf16 else nullcontext()
        with precision_context:
            return diffusion_loss(
                m,
                schedule,
                batch[0],
                space="eps",
                min_snr_gamma=gamma,
                error=float32_mse,
                generator=generator,
            )

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
        device=where,
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


SAMPLERS: dict[str, dict[str, Any]] = {
    "ddim10": {"sampler": "ddim", "steps": 10},
    "ddim20": {"sampler": "ddim", "steps": 20},
    "ddim50": {"sampler": "ddim", "steps": 50},
    "ddim100": {"sampler": "ddim", "steps": 100},
    "ddpm1000": {"sampler": "ddpm", "steps": None},
}
"""The sampler table the manifest records (and notebook 13.6 prints): DDIM at four step counts and
DDPM's full 1000-step ancestral sampler, on the same model and seed."""


def measure_codelab(model: nn.Module, n: int = 256, seed: int = 0) -> dict[str, Any]:
    """What the manifest records about a codelab model: ``n`` samples per row of ``SAMPLERS``
    (seed ``seed``, as ``python -m chapter13.sample codelab-mnist --n 256 --seed 0`` draws DDIM-50),
    scored by ``chapter13.evaluate`` against held-out test digits (``held_out_split``), plus what
    the ``n`` real held-out digits themselves score (the yardstick)."""
    yardstick, reference = held_out_split(n)
    reference_features = classify(reference)[1]

    def scored(x: Tensor) -> dict[str, Any]:
        m = sample_metrics(x, reference_features=reference_features)
        return {
            "confident_fraction": round(m["confident_fraction"], 4),
            "class_entropy": round(m["class_entropy"], 4),
            "frechet_distance": round(m["frechet_distance"], 2),
            "class_histogram": m["class_histogram"],
        }

    table = {}
    for name, how in SAMPLERS.items():
        t0 = time.perf_counter()
        row = scored(sample_digits(model, n, seed=seed, **how))
        table[name] = {**row, "seconds": round(time.perf_counter() - t0, 1)}
    return {
        "samples": n,
        "seed": seed,
        "ddim50_confident_fraction": table["ddim50"]["confident_fraction"],
        "ddim50_class_entropy": table["ddim50"]["class_entropy"],
        "ddim50_frechet_distance": table["ddim50"]["frechet_distance"],
        "ddim50_class_histogram": table["ddim50"]["class_histogram"],
        "real_held_out": scored(yardstick),
        "samplers": table,
        "frechet_reference": f"the {len(reference)} other test digits (held_out_split({n}))",
    }


def build() -> Built:
    """Train ``PatchUNet(**CODELAB_MODEL)`` with ``CODELAB_TRAINING``, then ``CODELAB_COOLDOWN`` from its
    EMA weights, on the CPU (one thread), then ``measure_codelab``; the final EMA weights are saved."""
    with torch_threads(1), RunRecord() as run:  # one thread: the other core stays free (see torch_threads)
        first = train_codelab(progress=True, device="cpu")
        second = train_codelab(progress=True, device="cpu", init=first.ema_model, **CODELAB_COOLDOWN)
    model = second.ema_model
    with torch_threads(1):
        measured = measure_codelab(model)
    quality = {
        **measured,
        "steps": CODELAB_TRAINING["steps"] + CODELAB_COOLDOWN["steps"],
        "loss_curve": loss_curve(first.losses + second.losses),
        **run.quality_fields(),
    }
    notes = (
        f"EMA weights; trained on the CPU ({run.info['threads']} threads) with {CODELAB_TRAINING}, then from "
        f"its EMA weights with {CODELAB_COOLDOWN}"
    )
    return Built(model, copy.deepcopy(model.config), first.seconds + second.seconds, quality, notes)


def sampler_spec() -> Any:
    """How ``python -m chapter13.sample codelab-mnist`` draws samples (unconditional)."""

    def draw(n: int, *, steps: int, eta: float, seed: int, device: Any, progress: bool) -> Tensor:
        model = load_model(NAME, device=device)
        return sample_digits(model, n, steps=steps, eta=eta, seed=seed, device=device, progress=progress)

    return SamplerSpec(draw=draw, accepts=frozenset(), max_steps=CODELAB_MODEL["T"])


RECIPES = (Recipe(NAME, "13.6 unconditional MNIST diffusion U-Net", PatchUNet, build, sampler_spec),)
