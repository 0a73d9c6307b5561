"""Recipes of ``autoencoder-digits`` (the 13.3 VAE) and ``latent-text2image-digits`` (latent diffusion).

python -m chapter13.train autoencoder-digits          # about 3 min on one CPU core
python -m chapter13.train latent-text2image-digits    # about 6 min; needs the two above it
"""

from __future__ import annotations

from typing import Any

import torch

from chapter13.captions import captioned_digits
from chapter13.checkpoints import load_model
from chapter13.config import seed_everything
from chapter13.data import load_mnist
from chapter13.evaluate import accuracy, load_classifier
from chapter13.latent import VAE, LatentTextToImage, vae_config, vae_loss
from chapter13.recipes import Built, Recipe, SamplerSpec
from chapter13.recipes.text2image import (
    CLIP,
    SCHEDULE,
    built_text_to_image,
    text_encoder_config,
    text_sampler_spec,
    train_with_settings,
)
from chapter13.train import RunRecord, TrainResult, fit

# --- the shipped autoencoder ----------------------------------------------------------------------

AUTOENCODER_NAME = "autoencoder-digits"
AUTOENCODER_CONFIG: dict = {
    "in_channels": 1,
    "latent_channels": 4,
    "channels": [16, 32, 64],
    "image_size": 28,
    "padded_size": 32,
}
"""Constructor arguments of the shipped VAE (JSON, stored in the manifest)."""
AUTOENCODER_TRAINING: dict = {
    "steps": 1200,
    "batch_size": 64,
    "lr": 2e-3,
    "kl_weight": 1e-4,
    "copies": 2,
    "seed": 0,
}
"""Full-size training of the shipped VAE (on captioned digits, so that small and thick digits
reconstruct too)."""


def train_autoencoder(steps: int | None = None, progress: bool = True, **overrides: Any) -> TrainResult:
    """Train the VAE on captioned training digits through ``chapter13.train.fit``.

    The EMA VAE's latent scaling is fitted on the training images afterwards (``VAE.fit_latent_scale``).
    ``overrides`` change entries of ``AUTOENCODER_TRAINING``. Returns the ``TrainResult``.
    """
    settings = {**AUTOENCODER_TRAINING, **overrides}
    if steps is not None:
        settings["steps"] = steps
    seed_everything(settings["seed"])
    images = captioned_digits("train", copies=settings["copies"], seed=settings["seed"]).images
    vae = VAE(**AUTOENCODER_CONFIG)
    generator = torch.Generator().manual_seed(settings["seed"] + 1)
    result = fit(
        vae,
        lambda m, batch: vae_loss(m, batch[0], settings["kl_weight"], generator),
        (images,),
        steps=settings["steps"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        seed=settings["seed"],
        device="cpu",
        progress=progress,
        desc="VAE",
    )
    result.ema_model.eval().fit_latent_scale(images)
    return result


@torch.no_grad()
def reconstruction_quality(vae: VAE, classify: bool = True) -> dict:
    """Reconstruction MSE on captioned test digits and, when the digit classifier is available, its
    accuracy on reconstructed plain test digits next to its accuracy on the originals."""
    vae.eval()
    test = captioned_digits("test", seed=0).images
    recon = torch.cat(
        [vae.latents_to_images(vae.images_to_latents(test[i : i + 500])) for i in range(0, len(test), 500)]
    )
    quality: dict = {"test_mse": round(float((recon - test).pow(2).mean()), 5)}
    z = torch.cat([vae.images_to_latents(test[i : i + 500]) for i in range(0, len(test), 500)])
    quality["scaled_latent_std"] = round(float(z.std()), 4)
    if classify:
        x, y = load_mnist("test")
        rec = vae.latents_to_images(vae.images_to_latents(x))
        classifier = load_classifier()
        quality["classifier_accuracy_originals"] = round(accuracy(classifier, x, y), 4)
        quality["classifier_accuracy_reconstructions"] = round(accuracy(classifier, rec, y), 4)
    return quality


def build_autoencoder() -> Built:
    """Recipe of ``autoencoder-digits``: ``train_autoencoder``, then its reconstructions judged."""
    with RunRecord() as record:
        result = train_autoencoder()
    vae = result.ema_model
    quality = {
        **reconstruction_quality(vae),
        "latent_shift": round(float(vae.latent_shift), 5),
        "latent_scale": round(float(vae.latent_scale), 5),
        **record.quality_fields(),
    }
    notes = f"VAE to a 4x8x8 latent on captioned training digits; EMA weights; {AUTOENCODER_TRAINING}"
    return Built(vae, dict(AUTOENCODER_CONFIG), result.seconds, quality, notes)


# --- latent text-to-image ----------------------------------------------------------------------------

LATENT_NAME = "latent-text2image-digits"
LATENT_UNET: dict = {
    "in_channels": 4,
    "base_channels": 32,
    "channel_mults": [1, 2],
    "num_res_blocks": 1,
    "attention_resolutions": [8, 4],
    "context_dim": 64,
    "heads": 4,
    "image_size": 8,
}
"""Denoiser of ``latent-text2image-digits``: 8 → 4, self- and cross-attention at both levels."""
LATENT_TRAINING: dict = {
    "steps": 3000,
    "batch_size": 64,
    "lr": 2e-3,
    "p_uncond": 0.15,
    "min_snr_gamma": 5.0,
    "copies": 2,
    "seed": 0,
}
"""Full-size training of ``latent-text2image-digits`` (same data and recipe as the pixel model)."""


def new_latent_text_to_image(
    vae: VAE, unet: dict | None = None, clip: str | None = CLIP
) -> LatentTextToImage:
    """A fresh latent model around a trained ``vae`` with the frozen text tower of checkpoint ``clip``
    (``clip=None``: random text encoder, for quick tests)."""
    text = {"dim": 64, "depth": 1} if clip is None else text_encoder_config(clip)
    model = LatentTextToImage(dict(unet or LATENT_UNET), text, vae_config(vae), SCHEDULE)
    model.vae.load_state_dict(vae.state_dict())
    if clip is not None:
        model.load_text_encoder(load_model(clip))
    return model


def train_latent_text2image(
    vae: VAE | None = None, steps: int | None = None, progress: bool = True, **overrides
) -> TrainResult:
    """Train the latent text-to-image model as the shipped recipe does.

    Encodes the captioned training digits once to scaled latents (posterior means) with ``vae``
    (default: the shipped ``autoencoder-digits``), then trains the latent U-Net with condition dropout
    exactly as the pixel model is trained (``chapter13.recipes.text2image.train_text_to_image``).
    ``overrides`` change entries of ``LATENT_TRAINING``. Returns the ``TrainResult``.
    """
    settings = {**LATENT_TRAINING, **overrides}
    if steps is not None:
        settings["steps"] = steps
    seed_everything(settings["seed"])
    vae = load_model(AUTOENCODER_NAME) if vae is None else vae.eval()
    data = captioned_digits("train", copies=settings["copies"], seed=settings["seed"])
    latents = torch.cat([vae.images_to_latents(data.images[i : i + 500]) for i in range(0, len(data), 500)])
    model = new_latent_text_to_image(vae)
    return train_with_settings(model, latents, data.captions, settings, progress, LATENT_NAME)


def build_latent() -> Built:
    """Recipe of ``latent-text2image-digits``: needs the shipped ``autoencoder-digits`` and
    ``clip-digits``; judges decoded ``--label D`` samples at guidance 0, 1 and 3 like the pixel model."""
    with RunRecord() as record:
        result = train_latent_text2image()
    notes = "latent space of autoencoder-digits (frozen); frozen clip-digits text tower"
    return built_text_to_image(result, record, LATENT_TRAINING, notes)


def latent_sampler_spec() -> SamplerSpec:
    """``SamplerSpec`` of ``latent-text2image-digits``."""
    return text_sampler_spec(LATENT_NAME)


RECIPES = (
    Recipe(AUTOENCODER_NAME, "13.3 VAE to a 4-channel latent", VAE, build_autoencoder),
    Recipe(
        LATENT_NAME,
        "13.3 latent text-to-image diffusion",
        LatentTextToImage,
        build_latent,
        latent_sampler_spec,
    ),
)
