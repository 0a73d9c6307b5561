"""Recipes of ``video-digits`` (the 13.4 joint spatio-temporal model) and ``video-digits-frames``
(the same network with time mixing off: the per-frame baseline).

    python -m chapter13.train video-digits
    python -m chapter13.train video-digits-frames
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from chapter13.config import torch_threads
from chapter13.diffusion import NoiseSchedule, diffusion_loss
from chapter13.recipes import Built, Recipe
from chapter13.synthetic import moving_digits
from chapter13.temporal import (
    VideoUNet,
    identity_consistency,
    inflate_from_image_model,
    sample_clips,
    temporal_metrics,
    video_diffusion_loss,
)
from chapter13.train import RunRecord, TrainResult, fit

VIDEO_DATA = {"n": 4000, "frames": 8, "size": 32, "digit_size": 14, "seed": 0}
"""The training clips: ``moving_digits(**VIDEO_DATA)`` on the bundled training digits."""

VIDEO_MODEL: dict[str, Any] = {
    "base_channels": 16,
    "channel_mults": [1, 2, 4],
    "num_res_blocks": 1,
    "patch": 2,
    "prediction": "v",
    "schedule": "cosine",
    "T": 1000,
}
"""Constructor arguments shared by ``video-digits`` (``temporal=True``) and ``video-digits-frames``."""
VIDEO_TRAIN: dict[str, Any] = {"steps": 1500, "batch_size": 16, "lr": 2e-3, "warmup": 50}
"""Arguments of ``chapter13.train.fit`` for both video models."""
VIDEO_LOSS: dict[str, Any] = {"temporal_weight": 0.5, "min_snr_gamma": 5.0}
"""Arguments of the video loss (the per-frame model gets ``temporal_weight=None``: the plain loss)."""


def train_video(
    temporal: bool = True,
    steps: int | None = None,
    *,
    n_clips: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    train_kwargs: dict[str, Any] | None = None,
    loss_kwargs: dict[str, Any] | None = None,
    init_from: VideoUNet | None = None,
    threads: int | None = 1,
    progress: bool = True,
    seed: int = 0,
) -> TrainResult:
    """Train a :class:`VideoUNet` on moving digits through ``chapter13.train.fit``.

    ``temporal=True``: the joint model, trained with the chapter's consistency term on its
    prediction (``temporal.video_diffusion_loss`` with ``VIDEO_LOSS``, weight 0.5). ``temporal=False``:
    the per-frame image model (time mixing off), trained with the plain loss
    (``diffusion.diffusion_loss`` in v-space), as an image model would be.
    ``model_kwargs``, ``train_kwargs`` and ``loss_kwargs`` override ``VIDEO_MODEL``, ``VIDEO_TRAIN``
    and ``VIDEO_LOSS``.

    ``init_from``: start the joint model from a trained per-frame model (Make-A-Video, Singer et al.
    2022, §3.2: the spatial layers come from the image model, the new temporal layers start at zero,
    so training starts from the image model's behaviour). Needs ``temporal_downsample=False``, which
    keeps the two networks' computations identical until the temporal layers learn something.

    Returns:
        The ``TrainResult`` (``.ema_model`` in eval mode).
    """
    data = {**VIDEO_DATA, **({"n": n_clips} if n_clips is not None else {})}
    clips, _, _ = moving_digits(
        data["n"], data["frames"], data["size"], data["digit_size"], seed=data["seed"]
    )
    torch.manual_seed(seed)
    model = VideoUNet(temporal=temporal, **{**VIDEO_MODEL, **(model_kwargs or {})})
    if init_from is not None:
        inflate_from_image_model(model, init_from)
    loss_cfg = {**VIDEO_LOSS, **(loss_kwargs or {})}
    if not temporal:
        loss_cfg["temporal_weight"] = None
    loss_fn = functools.partial(_video_loss, schedule=model.schedule, **loss_cfg)
    cfg = {**VIDEO_TRAIN, **(train_kwargs or {}), **({"steps": steps} if steps is not None else {})}
    with torch_threads(threads):
        return fit(
            model,
            loss_fn,
            [clips],
            seed=seed,
            progress=progress,
            desc="video (joint)" if temporal else "video (per frame)",
            **cfg,
        )


def _video_loss(
    model: VideoUNet,
    batch: Sequence[Tensor],
    *,
    schedule: NoiseSchedule,
    temporal_weight: float | None,
    min_snr_gamma: float | None,
) -> Tensor:
    """The joint model's loss (with the consistency term) or, with ``temporal_weight=None``, the plain one."""
    if temporal_weight is None:
        return diffusion_loss(model, schedule, batch[0], space="native", min_snr_gamma=min_snr_gamma)
    return video_diffusion_loss(
        model, schedule, batch[0], temporal_weight=temporal_weight, min_snr_gamma=min_snr_gamma
    )


def evaluate_video(model: nn.Module, n: int = 64, steps: int = 50, seed: int = 1) -> dict[str, float]:
    """:func:`temporal_metrics` and :func:`identity_consistency` of ``n`` samples of ``model``."""
    clips = sample_clips(model, n, steps=steps, seed=seed)
    return {**temporal_metrics(clips), "identity_agreement": identity_consistency(clips)["agreement"]}


def video_quality(model: nn.Module, n: int = 64, steps: int = 50, seed: int = 1) -> dict[str, Any]:
    """The figures a video checkpoint records: :func:`evaluate_video` of its samples beside the same
    measures of ``n`` real clips of test digits (``moving_digits(n, split="test", seed=12345)``)."""
    quality = {f"sampled_{k}": round(v, 5) for k, v in evaluate_video(model, n, steps, seed).items()}
    real_clips = moving_digits(n, split="test", seed=12345)[0]
    real = {
        **temporal_metrics(real_clips),
        "identity_agreement": identity_consistency(real_clips)["agreement"],
    }
    quality.update({f"real_test_{k}": round(v, 5) for k, v in real.items()})
    quality.update({"samples": n, "ddim_steps": steps, "eta": 1.0})
    return quality


def _build(temporal: bool) -> Built:
    with RunRecord() as run:
        result = train_video(temporal=temporal)
    model = result.ema_model
    quality = {**video_quality(model), **run.quality_fields()}
    notes = (
        f"EMA weights; {'joint' if temporal else 'per-frame (temporal=False)'}; data {VIDEO_DATA}; "
        f"training {VIDEO_TRAIN}, loss {VIDEO_LOSS}, 1 CPU thread (load averages in quality)"
    )
    return Built(model, model.config, result.seconds, quality, notes)


def build_joint() -> Built:
    """Recipe of ``video-digits``: the joint (spatio-temporal) model."""
    return _build(temporal=True)


def build_frames() -> Built:
    """Recipe of ``video-digits-frames``: the same network with time mixing off."""
    return _build(temporal=False)


RECIPES = (
    Recipe("video-digits", "13.4 spatio-temporal denoiser on moving digits", VideoUNet, build_joint),
    Recipe(
        "video-digits-frames",
        "13.4 the same denoiser with time mixing off (per-frame baseline)",
        VideoUNet,
        build_frames,
    ),
)
