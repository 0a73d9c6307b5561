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

VIDEO_DATA = {"n": 16000, "frames": 8, "size": 32, "digit_size": 14, "seed": 0}
"""The training clips: ``moving_digits(**VIDEO_DATA)`` on the bundled training digits."""

VIDEO_MODEL: dict[str, Any] = {
    "base_channels": 16,
    "channel_mults": [1, 2, 4],
    "num_res_blocks": 1,
    "patch": 2,
    "prediction": "v",
    "schedule": "cosine",
    "T": 1000,
    "max_norm_groups": 8,
}
"""Constructor arguments shared by ``video-digits`` (``temporal=True``) and ``video-digits-frames``."""
VIDEO_TRAIN: dict[str, Any] = {
    "steps": 10000,
    "batch_size": 16,
    "lr": 2e-3,
    "warmup": 200,
    "ema_decay": 0.9995,
}
"""Arguments of ``chapter13.train.fit`` for both video models."""
VIDEO_LOSS: dict[str, Any] = {"temporal_weight": 0.5, "min_snr_gamma": 5.0}
"""Arguments of the video loss (the per-frame model gets ``temporal_weight=None``: the plain loss)."""
VIDEO_CONDITIONING: dict[str, Any] = {"num_classes": 10, "p_uncond": 0.5}
"""The joint model is also class-conditional (``VideoUNet(num_classes=10)``): each clip's digit label
is dropped to the null label with probability ``p_uncond`` (Ho & Salimans 2022, Algorithm 1), so one
network samples unconditionally (``sample_clips(model, n)``) and on request (``labels=7``, with
classifier-free guidance). Half the clips train the unconditional path, which is the one the
joint-versus-per-frame comparison uses. The per-frame baseline stays unconditional."""
VIDEO_GUIDANCE_SCALE = 3.0
"""The guidance scale s of the notebook's prompted clips (``sample_clips(..., labels=, guidance_scale=)``)."""


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
    prediction (``temporal.video_diffusion_loss`` with ``VIDEO_LOSS``, weight 0.5) and conditional on
    the clip's digit, dropped to the null label with ``VIDEO_CONDITIONING["p_uncond"]``. ``temporal=False``:
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
    clips, labels, _ = moving_digits(
        data["n"], data["frames"], data["size"], data["digit_size"], seed=data["seed"]
    )
    torch.manual_seed(seed)
    conditioning = {"num_classes": VIDEO_CONDITIONING["num_classes"]} if temporal else {}
    model = VideoUNet(temporal=temporal, **{**VIDEO_MODEL, **conditioning, **(model_kwargs or {})})
    if init_from is not None:
        inflate_from_image_model(model, init_from)
    loss_cfg = {**VIDEO_LOSS, "p_uncond": VIDEO_CONDITIONING["p_uncond"], **(loss_kwargs or {})}
    if not temporal:
        loss_cfg["temporal_weight"] = None
    loss_fn = functools.partial(_video_loss, schedule=model.schedule, **loss_cfg)
    cfg = {**VIDEO_TRAIN, **(train_kwargs or {}), **({"steps": steps} if steps is not None else {})}
    with torch_threads(threads):
        return fit(
            model,
            loss_fn,
            [clips, labels],
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
    p_uncond: float,
) -> Tensor:
    """The joint model's loss (with the consistency term) or, with ``temporal_weight=None``, the plain one.

    ``batch``: (clips (B, 1, F, H, W), labels (B,)); a conditional model gets the labels, each dropped
    to the null label with probability ``p_uncond``."""
    cond: dict[str, Any] = {}
    if getattr(model, "num_classes", None) is not None:
        cond = {"labels": batch[1], "p_uncond": p_uncond, "null": {"labels": model.null_labels(1)}}
    if temporal_weight is None:
        return diffusion_loss(model, schedule, batch[0], space="native", min_snr_gamma=min_snr_gamma, **cond)
    return video_diffusion_loss(
        model, schedule, batch[0], temporal_weight=temporal_weight, min_snr_gamma=min_snr_gamma, **cond
    )


def clip_figures(clips: Tensor, classifier: nn.Module | None = None) -> dict[str, float]:
    """:func:`temporal_metrics` and the three :func:`identity_consistency` figures of ``clips``."""
    ident = identity_consistency(clips, classifier)
    return {
        **temporal_metrics(clips),
        "identity_agreement": ident["agreement"],
        "all_frames_one_digit": ident["all_frames"],
        "frame_confident_fraction": ident["confident_fraction"],
    }


def prompted_clips(
    model: nn.Module,
    n: int = 64,
    steps: int = 50,
    seed: int = 1,
    guidance_scale: float = VIDEO_GUIDANCE_SCALE,
    progress: bool = False,
) -> tuple[Tensor, Tensor]:
    """``n`` clips asking a conditional model for 0, 1, ..., 9 in turn (classifier-free guidance at
    ``guidance_scale``): returns (clips (n, 1, F, H, W), the requested digits (n,))."""
    wanted = torch.arange(n) % model.num_classes
    clips = sample_clips(
        model, n, steps=steps, seed=seed, labels=wanted, guidance_scale=guidance_scale, progress=progress
    )
    return clips, wanted


def requested_digit_hits(clips: Tensor, wanted: Tensor, classifier: nn.Module | None = None) -> Tensor:
    """(n, F) float: 1 where the classifier reads frame f of clip i as the digit ``wanted[i]``."""
    read = identity_consistency(clips, classifier)["labels"]
    return (read == wanted[:, None]).float()


def prompted_accuracy(
    model: nn.Module,
    n: int = 64,
    steps: int = 50,
    seed: int = 1,
    guidance_scale: float = VIDEO_GUIDANCE_SCALE,
    classifier: nn.Module | None = None,
) -> float:
    """Share of frames read as the requested digit, over :func:`prompted_clips`."""
    clips, wanted = prompted_clips(model, n, steps, seed, guidance_scale)
    return float(requested_digit_hits(clips, wanted, classifier).mean())


def evaluate_video(model: nn.Module, n: int = 64, steps: int = 50, seed: int = 1) -> dict[str, float]:
    """:func:`clip_figures` of ``n`` unconditional samples of ``model`` (and, for a conditional model,
    :func:`prompted_accuracy` at ``VIDEO_GUIDANCE_SCALE``)."""
    figures = clip_figures(sample_clips(model, n, steps=steps, seed=seed))
    if getattr(model, "num_classes", None) is not None:
        figures["prompted_accuracy"] = prompted_accuracy(model, n, steps, seed)
    return figures


def video_quality(model: nn.Module, n: int = 64, steps: int = 50, seed: int = 1) -> dict[str, Any]:
    """The figures a video checkpoint records: :func:`evaluate_video` of its samples beside the same
    measures of ``n`` real clips of test digits (``moving_digits(n, split="test", seed=12345)``)."""
    quality = {f"sampled_{k}": round(v, 5) for k, v in evaluate_video(model, n, steps, seed).items()}
    real_clips = moving_digits(n, split="test", seed=12345)[0]
    real = clip_figures(real_clips)
    quality.update({f"real_test_{k}": round(v, 5) for k, v in real.items()})
    quality.update({"samples": n, "ddim_steps": steps, "eta": 1.0})
    if "sampled_prompted_accuracy" in quality:
        quality["guidance_scale"] = VIDEO_GUIDANCE_SCALE
    return quality


def _build(temporal: bool) -> Built:
    with RunRecord() as run:
        result = train_video(temporal=temporal)
    model = result.ema_model
    quality = {**video_quality(model), **run.quality_fields()}
    notes = (
        f"EMA weights; {'joint' if temporal else 'per-frame (temporal=False)'}; data {VIDEO_DATA}; "
        f"training {VIDEO_TRAIN}, loss {VIDEO_LOSS}"
        f"{f', conditioning {VIDEO_CONDITIONING}' if temporal else ''}, 1 CPU thread (load averages in quality)"
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
