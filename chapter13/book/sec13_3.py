"""The chapter's 13.3 listings (text-to-image generation) as printed, made runnable.

Nothing in the code below has been corrected; each docstring says what is wrong and which function of
the package does it right. The notebook ``13.3-text-to-image`` puts each next to the correct version
with an ``assert`` that shows the difference. ``chapter13.book`` imports nothing from the package.

Provenance: the chapter's text is not part of this repository. These listings are written from the
chapter's description of them as recorded in the project's issue for 13.3: a single-head
``CrossAttention`` block in 13.3.4 that the package replaces by a correct multi-head one, a
``classifier_free_guidance`` function whose listing breaks off inside the guided-prediction
expression, and a latent-diffusion wrapper (13.3.3) around a 4-channel autoencoder. Where the printed
listing breaks off, the completion is the smallest one that runs and is marked ``# completed``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class CrossAttention(nn.Module):
    """The book's cross-attention block (13.3.4): queries from the image, keys and values from text.

    WRONG in three ways:

    1. ``heads`` is stored but never used: Q, K and V are never split into heads, so this is ONE head
       of width ``heads * dim_head`` (512 by default), not 8 heads of 64 (Vaswani et al. 2017, §3.2.2).
    2. The scale is ``dim_head ** -0.5`` = 1/8 while the single head it computes has width 512, so the
       logits are √8 ≈ 2.8× too large and the softmax is far too peaked (eq. 1 divides by √d_k of the
       head actually used).
    3. There is no padding mask, so padded positions of a short caption receive attention weight.

    Correct: ``chapter13.attention.CrossAttention`` (multi-head, 1/√head_dim, padding mask).

    forward(x: (B, N, query_dim), context: (B, L, context_dim)) -> (B, N, query_dim).
    """

    def __init__(self, query_dim, context_dim, heads=8, dim_head=64):
        super().__init__()
        inner_dim = dim_head * heads
        self.scale = dim_head**-0.5
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner_dim, bias=False)
        self.to_k = nn.Linear(context_dim, inner_dim, bias=False)
        self.to_v = nn.Linear(context_dim, inner_dim, bias=False)
        self.to_out = nn.Linear(inner_dim, query_dim)

    def forward(self, x, context):
        q = self.to_q(x)
        k = self.to_k(context)
        v = self.to_v(context)
        attention = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * self.scale, dim=-1)
        out = torch.bmm(attention, v)
        return self.to_out(out)


def classifier_free_guidance(model, x, t, text_embeddings, guidance_scale=7.5):
    """The book's classifier-free guidance step (13.3.2), truncated in print and completed here.

    The printed listing stops inside the last expression; the completion (marked) closes it and
    returns the result. What it computes is the right formula, ε_u + s (ε_c − ε_u), but:

    - it runs the network twice, once with ``context=None`` and once with the text; the package does
      one forward pass on the doubled batch (``chapter13.guidance.guided_epsilon``), the form every
      production implementation uses;
    - ``context=None`` is the unconditional prediction only for a model trained with condition
      dropout to that same null condition, which the chapter never shows
      (``chapter13.guidance.drop_condition``, Ho & Salimans 2022, Algorithm 1);
    - ``guidance_scale`` is the Stable-Diffusion scale s = 1 + w, not the w of Ho & Salimans (2022,
      eq. 6) that the chapter cites next to it: their w = 7.5 is s = 8.5 here, and s = 1 (not 0) is
      the plain conditional model.

    model(x, t, context=...) -> ε; x: (B, C, H, W); t: (B,); text_embeddings: (B, L, D).
    """
    # Unconditional prediction
    noise_pred_uncond = model(x, t, context=None)
    # Conditional prediction
    noise_pred_cond = model(x, t, context=text_embeddings)
    # Guided prediction
    noise_pred = noise_pred_uncond + guidance_scale * (
        noise_pred_cond - noise_pred_uncond  # completed: the printed listing breaks off here
    )  # completed
    return noise_pred  # completed


class LatentDiffusion(nn.Module):
    """The book's latent-diffusion wrapper (13.3.3): encode, diffuse in the latent, decode.

    WRONG: the latents go into the diffusion process exactly as the encoder produces them. The noise
    schedule assumes data of about unit variance (its signal-to-noise ratio ᾱ_t/(1−ᾱ_t) is defined
    relative to it), so latents with standard deviation σ_z shift every SNR by σ_z²: with σ_z = 3 the
    last step still holds visible signal and sampling from N(0, I) starts from the wrong distribution;
    with σ_z ≪ 1 most steps are pure noise. Rombach et al. (2022, Sec. 4.3.2) scale latents by 1/σ̂
    (Stable Diffusion's 0.18215) before diffusion and unscale them before decoding. Correct:
    ``chapter13.latent.VAE.scale_latents`` / ``unscale_latents`` and ``LatentTextToImage``.

    ``vae.encode(x)`` returns (mean, logvar) here (the listing's ``.latent_dist.mean``);
    ``alphas_cumprod``: (T,) ᾱ_t. training_loss(x: (B, 1, 28, 28), text_emb: (B, L, D)) -> scalar.
    """

    def __init__(self, vae, unet, alphas_cumprod):
        super().__init__()
        self.vae = vae
        self.unet = unet
        self.alphas_cumprod = alphas_cumprod

    def encode(self, x):
        return self.vae.encode(x)[0]

    def decode(self, z):
        return self.vae.decode(z)

    def training_loss(self, x, text_emb):
        z = self.encode(x)
        noise = torch.randn_like(z)
        t = torch.randint(0, len(self.alphas_cumprod), (x.shape[0],))
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1).to(z.dtype)
        z_t = a.sqrt() * z + (1 - a).sqrt() * noise
        pred = self.unet(z_t, t, context=text_emb)
        return F.mse_loss(pred, noise)
