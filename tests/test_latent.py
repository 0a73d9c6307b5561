"""Latent diffusion: the VAE's shapes and loss, latent scaling, and the latent text-to-image model."""

from __future__ import annotations

import math

import pytest
import torch

from chapter13 import latent
from chapter13.recipes import latent as recipe
from chapter13.text2image import generate


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return latent.VAE(channels=(8, 8, 8)).eval()


def test_shapes_and_padding(vae):
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    mean, logvar = vae.encode(x)
    assert mean.shape == logvar.shape == (3, 4, 8, 8) == (3, *vae.latent_shape)
    assert vae.decode(mean).shape == (3, 1, 28, 28)
    recon, m2, _ = vae(x, generator=torch.Generator().manual_seed(0))
    assert recon.shape == x.shape and torch.equal(m2, mean)


def test_latent_scaling_round_trip(vae):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 28, 28, generator=g) * 2 - 1
    shift, scale = vae.fit_latent_scale(x)
    with torch.no_grad():
        raw = vae.encode(x)[0]
    # the fitted statistics, computed independently
    assert shift == pytest.approx(float(raw.mean()), rel=1e-5, abs=1e-6)
    assert scale == pytest.approx(1.0 / float(raw.std()), rel=1e-5)
    scaled = vae.scale_latents(raw)
    assert float(scaled.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(scaled.std()) == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(vae.unscale_latents(scaled), raw, rtol=1e-5, atol=1e-6)
    # images -> scaled latents -> images equals decoding the raw posterior mean
    torch.testing.assert_close(
        vae.latents_to_images(vae.images_to_latents(x)), vae.decode(raw).clamp(-1, 1), rtol=1e-4, atol=1e-5
    )
    # the statistics are buffers, so they travel with the state dict
    copy = latent.VAE(channels=(8, 8, 8))
    copy.load_state_dict(vae.state_dict())
    assert float(copy.latent_scale) == pytest.approx(scale)


def test_kl_matches_closed_form():
    mean = torch.tensor([[0.5, -1.0]])
    logvar = torch.tensor([[math.log(0.25), 0.0]])
    # KL(N(μ, σ²) || N(0, 1)) = ½ (σ² + μ² − 1 − ln σ²), per dimension, written out
    expected = 0.5 * (0.25 + 0.25 - 1 - math.log(0.25)) + 0.5 * (1 + 1 - 1 - 0)
    assert float(latent.kl_divergence(mean, logvar)) == pytest.approx(expected, rel=1e-6)


def test_vae_loss_is_reconstruction_plus_weighted_kl(vae):
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    with torch.no_grad():
        loss = latent.vae_loss(vae, x, kl_weight=0.5, generator=g1)
        recon, mean, logvar = vae(x, generator=g2)
    expected = ((recon - x) ** 2).sum(dim=(1, 2, 3)) + 0.5 * latent.kl_divergence(mean, logvar)
    assert float(loss) == pytest.approx(float(expected.mean()), rel=1e-5)


def test_bad_shapes_are_explained(vae):
    with pytest.raises(ValueError, match=r"expects images \(B, 1, 28, 28\)"):
        vae.encode(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"expects latents \(B, 4, 8, 8\)"):
        vae.decode(torch.zeros(2, 4, 7, 7))
    with pytest.raises(ValueError, match="divisible by 4"):
        latent.VAE(padded_size=30)
    collapsed = latent.VAE(channels=(8, 8, 8))
    torch.nn.init.zeros_(collapsed.encoder[-1].weight)  # every latent is exactly 0: nothing to scale
    torch.nn.init.zeros_(collapsed.encoder[-1].bias)
    with pytest.raises(ValueError, match="train the VAE"):
        collapsed.fit_latent_scale(torch.rand(4, 1, 28, 28))


def test_latent_model_samples_and_decodes(vae):
    tiny = dict(recipe.LATENT_UNET, base_channels=8)
    model = recipe.new_latent_text_to_image(vae, tiny, clip=None).eval()
    assert model.sample_shape == (4, 8, 8) and model.clip_samples is False
    images = generate(model, ["a handwritten digit 3", "a thin 5"], guidance=2.0, steps=3)
    assert images.shape == (2, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1
    # the frozen VAE is part of the model: its weights and latent scaling are the given VAE's
    torch.testing.assert_close(model.vae.latent_scale, vae.latent_scale)
    assert not any(p.requires_grad for p in model.vae.parameters())
    # rebuilding from the stored config gives the same model (what checkpoints.load_model does)
    clone = latent.LatentTextToImage(**model.config)
    clone.load_state_dict(model.state_dict())
    again = generate(clone.eval(), ["a handwritten digit 3", "a thin 5"], guidance=2.0, steps=3)
    torch.testing.assert_close(again, images)


# --- bad input (issue 17) ------------------------------------------------------------------------------


@pytest.mark.parametrize("kl_weight", [math.nan, math.inf, -1.0])
def test_vae_loss_refuses_a_bad_kl_weight(vae, kl_weight):
    with pytest.raises(ValueError, match="kl_weight"):
        latent.vae_loss(vae, torch.rand(2, 1, 28, 28) * 2 - 1, kl_weight)  # nan/inf gave a NaN loss


def test_vae_loss_refuses_empty_nan_and_mistyped_batches(vae):
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    with pytest.raises(ValueError, match="empty batch"):
        latent.vae_loss(vae, x[:0])
    with pytest.raises(ValueError, match="NaN"):
        latent.vae_loss(vae, x * math.nan)
    with pytest.raises(TypeError, match="float16"):
        latent.vae_loss(vae, x.half())
    with pytest.raises(TypeError, match="from_numpy"):
        latent.vae_loss(vae, x.numpy())
    with pytest.raises(TypeError, match="number"):
        latent.vae_loss(vae, x, "1e-4")


def test_vae_arguments_are_checked(vae):
    with pytest.raises(ValueError, match="3 widths"):
        latent.VAE(channels=(8, 8))
    with pytest.raises(ValueError, match="latent_channels"):
        latent.VAE(latent_channels=0)
    with pytest.raises(ValueError, match="same shape"):
        latent.kl_divergence(torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="non-empty"):
        vae.fit_latent_scale(torch.zeros(0, 1, 28, 28))
    with pytest.raises(ValueError, match="batch_size"):
        vae.fit_latent_scale(torch.zeros(2, 1, 28, 28), 0)
    with pytest.raises(TypeError, match="float16"):
        vae.decode(torch.zeros(1, 4, 8, 8).half())
