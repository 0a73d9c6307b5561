"""Section 13.3 as printed: ``classifier_free_guidance`` (13.3.2), ``LatentDiffusionModel`` (13.3.3)
and ``CrossAttentionBlock`` (13.3.4).

The guidance formula and the single-head cross-attention are right (we say so in ``ERRATA``). The
latent-diffusion class is an outline: its four parts are never defined, ``generate`` calls a
``diffusion_step`` it does not have and visits only t = 49..0. ``CrossAttentionBlock``'s
``GroupNorm(32, channels)`` fails on channel counts that 32 does not divide. The notebook
``13.3-text-to-image`` runs each next to :mod:`chapter13.guidance`, :mod:`chapter13.attention` and
:mod:`chapter13.latent`.
"""

from chapter13.book.erratum import Erratum  # ch13: added - for the notes at the end
import torch  # ch13: added - the chapter imports it in 13.1.1
import torch.nn as nn  # ch13: added - the chapter imports it in 13.1.1

# ch13: added - from here to LISTINGS, the chapter's listings as printed

def classifier_free_guidance(model, x_t, t, text_emb, guidance_scale=7.5):
    """
    Apply classifier-free guidance for controlled generation
    """
    # Get unconditional prediction (empty text embedding)
    null_text_emb = torch.zeros_like(text_emb)
    noise_pred_uncond = model(x_t, t, null_text_emb)

    # Get conditional prediction (with text embedding)
    noise_pred_text = model(x_t, t, text_emb)

    # Apply guidance
    noise_pred = noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)  # ch13: completed - cut off in print after "noise_pr"

    return noise_pred


class LatentDiffusionModel:
    def __init__(self):
        self.vae_encoder = VAEEncoder()
        self.vae_decoder = VAEDecoder()
        self.diffusion_model = UNetWithTextCondition()
        self.text_encoder = TextEncoder()

    def encode_image(self, image):
        return self.vae_encoder(image)

    def decode_latents(self, latents):
        return self.vae_decoder(latents)

    def encode_text(self, text):
        return self.text_encoder(text)

    def generate(self, text, steps=50):
        # Encode text prompt
        text_embedding = self.encode_text(text)

        # Start from random latent
        latent = torch.randn(1, 4, 64, 64)

        # Reverse diffusion process
        for t in reversed(range(steps)):
            # Denoise one step with text conditioning
            latent = self.diffusion_step(latent, t, text_embedding)

        # Decode latent to image
        image = self.decode_latents(latent)
        return image


class CrossAttentionBlock(nn.Module):
    def __init__(self, channels, text_dim=768):
        super().__init__()
        self.norm = nn.GroupNorm(32, channels)
        self.q = nn.Linear(channels, channels)
        self.k = nn.Linear(text_dim, channels)
        self.v = nn.Linear(text_dim, channels)
        self.proj_out = nn.Linear(channels, channels)
        self.scale = channels ** -0.5

    def forward(self, x, text_features):
        """
        x: [B, C, H, W] - image features
        text_features: [B, L, D] - text features
        """
        batch, c, h, w = x.shape
        residual = x

        # Normalize input
        x = self.norm(x)

        # Reshape for attention
        x = x.reshape(batch, c, -1).transpose(1, 2) # [B, H*W, C]

        # Compute attention
        q = self.q(x) * self.scale
        k = self.k(text_features)
        v = self.v(text_features)

        # Attention weights
        attn = torch.bmm(q, k.transpose(1, 2)) # [B, H*W, L]
        attn = torch.softmax(attn, dim=-1)

        # Apply attention
        out = torch.bmm(attn, v) # [B, H*W, C]
        out = self.proj_out(out)

        # Reshape back and add residual
        out = out.transpose(1, 2).reshape(batch, c, h, w)
        return out + residual


# ch13: added - what running the listings above shows (chapter13.book.Erratum)

LISTINGS = {
    "classifier_free_guidance": "13.3.2",
    "LatentDiffusionModel": "13.3.3",
    "CrossAttentionBlock": "13.3.4",
}

NOTEBOOK = "13.3-text-to-image"

ERRATA = (
    Erratum(
        section="13.3.2",
        listing="classifier_free_guidance",
        kind="correct",
        finding="ε_u + s (ε_c - ε_u) with two forward passes; given the same network and the same null "
        "condition it equals the package's one-pass, doubled-batch version to float precision.",
        why="Ho & Salimans 2022, eq. 6, in the Stable Diffusion convention s = 1 + w: s = 1 is the "
        "plain conditional model, s = 0 the unconditional one, and the printed 7.5 is their w = 6.5.",
        package="chapter13.guidance.guided_epsilon",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.3.2",
        listing="classifier_free_guidance",
        kind="simplification",
        finding="The unconditional branch is torch.zeros_like(text_emb). A model gives the unconditional "
        "prediction for that input only if it was trained with its condition dropped to exactly that "
        "null (the chapter shows no such training); the shipped model's null is the empty caption, and "
        "zeros give a different ε.",
        why="Classifier-free guidance trains one network on both by replacing the condition with a null "
        "token with probability p_uncond (Ho & Salimans 2022, Algorithm 1).",
        package="chapter13.guidance.drop_condition",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.3.3",
        listing="LatentDiffusionModel",
        kind="fault",
        finding="An outline, not code: VAEEncoder, VAEDecoder, UNetWithTextCondition and TextEncoder are "
        "defined nowhere (NameError), generate calls self.diffusion_step, which the class does not have "
        "(AttributeError), and its loop visits t = 49, 48, ..., 0 only: with a 1000-step schedule it "
        "starts from pure noise at a timestep where the latent should still be 99 % signal.",
        why="Fewer sampling steps means a subsequence of the training timesteps from T - 1 down to 0, "
        "with the step rule for that spacing (DDIM, Song et al. 2021, Sec. 4.2). Latent diffusion also "
        "scales the latents to unit variance before diffusing them (Rombach et al. 2022, Sec. 4.3.2), "
        "which encode_image does not.",
        package="chapter13.latent.LatentTextToImage",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.3.4",
        listing="CrossAttentionBlock",
        kind="fault",
        finding="GroupNorm(32, channels) raises 'num_channels (48) must be divisible by num_groups (32)' "
        "for 48 channels (and for any count 32 does not divide, such as the 16, 24 or 48 of a small "
        "U-Net).",
        why="Group normalisation splits the channels into equal groups (Wu & He 2018); the group count "
        "has to divide the channel count.",
        package="chapter13.attention.CrossAttention",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.3.4",
        listing="CrossAttentionBlock",
        kind="correct",
        finding="One head of width channels with the scale channels ** -0.5, the scaled dot-product "
        "attention of the head it computes; on its own projections it equals "
        "torch.nn.functional.scaled_dot_product_attention to float precision.",
        why="Vaswani et al. 2017, eq. 1 (divide by sqrt(d_k) of the head). The package adds several heads "
        "and a padding mask, so that padded caption positions get no weight.",
        package="chapter13.attention.CrossAttention",
        notebook=NOTEBOOK,
    ),
)
