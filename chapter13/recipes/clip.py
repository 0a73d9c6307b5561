"""Recipe of ``clip-digits``, the 13.1 tiny CLIP, and the loaders that serve it.

``train_clip`` trains any ``chapter13.multimodal.TinyCLIP`` on captioned digits (the notebook's
live demo and the shipped build alike); ``evaluate_clip`` records zero-shot accuracy and retrieval;
``load_clip`` / ``load_text_encoder`` return the shipped model (or its text tower) with its tokenizer.

    python -m chapter13.train clip-digits     # 500 steps of 192, a few minutes on one CPU core
"""

from __future__ import annotations

from typing import Any

import torch

from chapter13.captions import CaptionedDigits, captioned_digits
from chapter13.checkpoints import load_model
from chapter13.config import default_device, seed_everything, torch_threads
from chapter13.data import load_mnist
from chapter13.multimodal import (
    DEFAULT_TEMPERATURE,
    MAX_LENGTH,
    MAX_LOGIT_SCALE,
    VOCABULARY,
    TextEncoder,
    TinyCLIP,
    Tokenizer,
    clip_loss,
    retrieval_metrics,
    zero_shot_accuracy,
)
from chapter13.recipes import Built, Recipe
from chapter13.train import RunRecord, TrainResult, fit


def clip_training_tensors(
    data: CaptionedDigits, tokenizer: Tokenizer | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images (N, 1, 28, 28), ids (N, L), mask (N, L)) for :func:`train_clip` / ``train.fit``.

    Captions are padded to the tokenizer's ``max_length`` so every batch has the same shape.
    """
    tokenizer = tokenizer or Tokenizer()
    ids, mask = tokenizer.encode(data.captions, pad_to=tokenizer.max_length)
    return data.images, ids, mask


def train_clip(
    model: TinyCLIP | None = None,
    data: CaptionedDigits | None = None,
    *,
    steps: int = 500,
    batch_size: int = 192,
    lr: float = 2e-3,
    weight_decay: float = 0.01,
    copies: int = 3,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = True,
    device: torch.device | str | None = None,
    **fit_kwargs: Any,
) -> TrainResult:
    """Train a :class:`TinyCLIP` on captioned digits with ``chapter13.train.fit``.

    Args:
        model: the model to train (default: a fresh ``TinyCLIP()`` seeded with ``seed``).
        data: the training pairs (default: ``captioned_digits("train", copies=copies, seed=seed)``).
        steps, batch_size, lr, weight_decay: optimisation (AdamW, warm-up and cosine decay in ``fit``).
        threads: CPU threads for the duration of training (restored afterwards). On a shared 2-core
            machine ``threads=1`` was 7x faster per step than PyTorch's default of 2 threads, whose
            workers wait on each other when other processes hold the cores.
        fit_kwargs: passed on to ``fit`` (``ema_decay``, ``warmup``, ``checkpoint_path``, ...).
    Returns:
        ``chapter13.train.TrainResult`` (``.model``, ``.ema_model``, ``.losses``, ``.seconds``).
    """
    if model is None:
        torch.manual_seed(seed)
        model = TinyCLIP()
    if data is None:
        data = captioned_digits("train", copies=copies, seed=seed)
    tokenizer = Tokenizer(max_length=model.text_encoder.max_length)
    tensors = clip_training_tensors(data, tokenizer)
    with torch_threads(threads):
        return fit(
            model,
            clip_loss,
            tensors,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            seed=seed,
            progress=progress,
            device=device,
            desc="tiny CLIP",
            **fit_kwargs,
        )


CLIP_DIGITS_CONFIG: dict[str, Any] = {
    "vocab_size": len(VOCABULARY),
    "max_length": MAX_LENGTH,
    "image_width": 32,
    "image_dim": 128,
    "text_dim": 64,
    "text_depth": 2,
    "text_heads": 4,
    "joint_dim": 64,
    "init_temperature": DEFAULT_TEMPERATURE,
    "max_logit_scale": MAX_LOGIT_SCALE,
}
"""Constructor arguments of the shipped ``clip-digits`` model (``TinyCLIP(**CLIP_DIGITS_CONFIG)``)."""
CLIP_DIGITS_TRAINING: dict[str, Any] = {"steps": 500, "batch_size": 192, "lr": 2e-3, "copies": 3, "seed": 0}
"""How ``clip-digits`` is trained (see :func:`build`)."""


def evaluate_clip(model: TinyCLIP) -> dict[str, Any]:
    """The figures recorded for a CLIP model: zero-shot digit accuracy on the bundled MNIST test split
    (plain digits, the ten prompt ensembles of :func:`digit_prompts`), the same on the captioned test
    split (attributes applied), and :func:`retrieval_metrics` on the captioned test split."""
    x, y = load_mnist("test")
    test = captioned_digits("test")
    quality: dict[str, Any] = {
        "zero_shot_accuracy": zero_shot_accuracy(model, x, y),
        "zero_shot_accuracy_captioned": zero_shot_accuracy(model, test.images, test.labels),
    }
    quality.update(retrieval_metrics(model, test))
    quality["temperature"] = model.temperature
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in quality.items()}


def build() -> Built:
    """Recipe of ``clip-digits``: :data:`CLIP_DIGITS_CONFIG` trained with :data:`CLIP_DIGITS_TRAINING`
    through :func:`train_clip` (one CPU thread on a CPU, see there); the EMA weights, measured with
    :func:`evaluate_clip`, are what is saved."""
    seed_everything(CLIP_DIGITS_TRAINING["seed"])
    model = TinyCLIP(**CLIP_DIGITS_CONFIG)
    device = default_device()
    with RunRecord() as run:
        result = train_clip(
            model,
            **CLIP_DIGITS_TRAINING,
            threads=1 if device.type == "cpu" else None,
            progress=True,
            device=device,
        )
    final = result.ema_model.cpu().eval()
    quality = {**evaluate_clip(final), **run.quality_fields(), "device": str(device)}
    notes = (
        f"EMA weights after {CLIP_DIGITS_TRAINING['steps']} steps of batch "
        f"{CLIP_DIGITS_TRAINING['batch_size']} on captioned_digits('train', copies="
        f"{CLIP_DIGITS_TRAINING['copies']}); wall time taken on a shared 2-core CPU (load averages "
        "in quality)."
    )
    return Built(final, CLIP_DIGITS_CONFIG, result.seconds, quality, notes)


def load_clip(device: torch.device | str | None = None) -> tuple[TinyCLIP, Tokenizer]:
    """The shipped ``clip-digits`` model (verified, eval mode) and its tokenizer."""
    model = load_model("clip-digits", device=device)
    return model, Tokenizer(max_length=model.text_encoder.max_length)


def load_text_encoder(
    device: torch.device | str | None = None, freeze: bool = True
) -> tuple[Tokenizer, TextEncoder]:
    """The text tower of the shipped ``clip-digits`` model and its tokenizer, for conditioning (13.3).

    ``tokens, pooled = encoder(*tokenizer.encode(captions))`` gives ``tokens: (B, L, 64)`` for
    cross-attention (mask padding with the tokenizer's mask) and ``pooled: (B, 64)``. With ``freeze``
    the parameters do not require gradients (as Stable Diffusion keeps CLIP's text tower frozen).
    """
    model, tokenizer = load_clip(device)
    encoder = model.text_encoder.eval()
    if freeze:
        for p in encoder.parameters():
            p.requires_grad_(False)
    return tokenizer, encoder


RECIPES = (Recipe("clip-digits", "13.1 tiny CLIP on captioned digits", TinyCLIP, build),)
