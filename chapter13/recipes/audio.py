"""Recipe of ``audio-tones``, the 13.4 1-D U-Net on tones.

python -m chapter13.train audio-tones
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from chapter13.audio import AudioDiffusion, pitch_metrics, sample_sounds
from chapter13.config import torch_threads
from chapter13.diffusion import diffusion_loss
from chapter13.recipes import Built, Recipe
from chapter13.synthetic import PITCHES, SAMPLE_RATE, tones
from chapter13.train import RunRecord, TrainResult, fit

AUDIO_DATA = {"n": 4000, "seed": 0}
"""The training sounds: ``tones(**AUDIO_DATA)``."""
AUDIO_MODEL: dict[str, Any] = {
    "base_channels": 32,
    "channel_mults": [1, 2, 2, 2, 2],
    "num_res_blocks": 1,
    "patch": 4,
    "prediction": "v",
    "schedule": "cosine",
    "T": 1000,
}
AUDIO_TRAIN: dict[str, Any] = {"steps": 3000, "batch_size": 32, "lr": 2e-3, "warmup": 50}
AUDIO_LOSS: dict[str, Any] = {"min_snr_gamma": None}


def train_audio(
    steps: int | None = None,
    *,
    n_sounds: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    train_kwargs: dict[str, Any] | None = None,
    loss_kwargs: dict[str, Any] | None = None,
    threads: int | None = 1,
    progress: bool = True,
    seed: int = 0,
) -> TrainResult:
    """Train an :class:`AudioDiffusion` on tones through ``chapter13.train.fit``.

    Returns:
        The ``TrainResult`` (``.ema_model`` in eval mode).
    """
    waves, _, _ = tones(n_sounds or AUDIO_DATA["n"], seed=AUDIO_DATA["seed"])
    torch.manual_seed(seed)
    model = AudioDiffusion(**{**AUDIO_MODEL, **(model_kwargs or {})})
    schedule = model.schedule
    loss_cfg = {**AUDIO_LOSS, **(loss_kwargs or {})}
    cfg = {**AUDIO_TRAIN, **(train_kwargs or {}), **({"steps": steps} if steps is not None else {})}
    with torch_threads(threads):
        return fit(
            model,
            lambda m, batch: diffusion_loss(m, schedule, batch[0], space="native", **loss_cfg),
            [waves],
            seed=seed,
            progress=progress,
            desc="audio",
            **cfg,
        )


def evaluate_audio(model: nn.Module, n: int = 128, steps: int = 50, seed: int = 1) -> dict[str, Any]:
    """Pitch metrics of ``n`` DDIM samples of ``model`` against the training pitches."""
    metrics = pitch_metrics(sample_sounds(model, n, steps=steps, seed=seed), PITCHES, SAMPLE_RATE)
    return {
        "within_3pct": round(metrics["within"], 4),
        "counts_per_pitch": metrics["counts"],
        "median_relative_error": round(float(metrics["relative_error"].median()), 5),
        "samples": n,
        "ddim_steps": steps,
    }


def build() -> Built:
    """Recipe of ``audio-tones``: train, then judge the pitch of 128 DDIM-50 samples."""
    with RunRecord() as run:
        result = train_audio()
    model = result.ema_model
    notes = f"EMA weights; data {AUDIO_DATA}; training {AUDIO_TRAIN}, loss {AUDIO_LOSS}, 1 CPU thread (load averages in quality)"
    quality = {**evaluate_audio(model), **run.quality_fields()}
    return Built(model, model.config, result.seconds, quality, notes)


RECIPES = (Recipe("audio-tones", "13.4 1-D U-Net on tones", AudioDiffusion, build),)
