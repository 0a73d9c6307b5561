"""Section 13.2 as printed: ``forward_diffusion`` (13.2.1), ``diffusion_training_loss`` (13.2.2),
``sample`` (13.2.3) and the U-Net ``SimpleUNet`` (13.2.4).

The listings take a ``noise_scheduler`` with ``.alphas`` and ``.num_timesteps``; the chapter's own
scheduler is 13.6's ``DiffusionScheduler`` (:mod:`chapter13.book.sec13_6`), which holds
``alphas = 1 - betas`` and, separately, ``alphas_cumprod``. Run with it, ``forward_diffusion`` and
``sample`` use α_t where DDPM's equations need ᾱ_t, ``forward_diffusion`` fails on a batch of
timesteps, and the "U-Net" has no skip connections; the loss itself (Ho et al. 2020, eq. 14) is right.
``ERRATA`` says what each shows when run; the notebook ``13.2-diffusion-models`` runs each next to
:mod:`chapter13.diffusion` and :mod:`chapter13.unet`.
"""

from chapter13.book.erratum import Erratum  # ch13: added - for the notes at the end
import torch  # ch13: added - the chapter imports it in 13.1.1
import torch.nn as nn  # ch13: added - the chapter imports it in 13.1.1

# ch13: added - from here to LISTINGS, the chapter's listings as printed

def forward_diffusion(x_0, t, noise_scheduler):
    """
    Apply t steps of forward diffusion to an image x_0

    Parameters:
    - x_0: Original image
    - t: Timestep (amount of noise to add)
    - noise_scheduler: Controls noise schedule

    Returns:
    - Noised image x_t
    - Noise added
    """
    # Get noise scaling for timestep t
    alpha_t = noise_scheduler.alphas[t]
    sqrt_alpha_t = torch.sqrt(alpha_t)
    sqrt_one_minus_alpha_t = torch.sqrt(1 - alpha_t)

    # Sample noise
    epsilon = torch.randn_like(x_0)

    # Apply noise according to diffusion equation
    x_t = sqrt_alpha_t * x_0 + sqrt_one_minus_alpha_t * epsilon

    return x_t, epsilon


def diffusion_training_loss(model, x_0, noise_scheduler):
    """
    Compute loss for training a diffusion model
    """
    batch_size = x_0.shape[0]

    # Sample random timesteps
    t = torch.randint(0, noise_scheduler.num_timesteps, (batch_size,), device=x_0.device)

    # Apply forward diffusion to get noisy images
    x_t, noise_added = forward_diffusion(x_0, t, noise_scheduler)

    # Predict the noise
    noise_pred = model(x_t, t)

    # Simple MSE loss between actual and predicted noise
    return nn.MSELoss()(noise_pred, noise_added)


def sample(model, noise_scheduler, shape, device):
    """
    Generate a new image by sampling from the diffusion model
    """
    # Start from random noise
    x_T = torch.randn(shape, device=device)
    x_t = x_T

    # Iteratively denoise
    for t in reversed(range(noise_scheduler.num_timesteps)):
        t_tensor = torch.full((shape[0],), t, device=device, dtype=torch.long)

        # Predict noise
        with torch.no_grad():
            predicted_noise = model(x_t, t_tensor)

        # Get alpha values for current timestep
        alpha_t = noise_scheduler.alphas[t]
        alpha_t_prev = noise_scheduler.alphas[t-1] if t > 0 else torch.tensor(1.0)

        # Apply formula for reverse process step
        # (Simplified version of the full algorithm)
        coef1 = torch.sqrt(1 / alpha_t)
        coef2 = (1 - alpha_t) / torch.sqrt(1 - alpha_t)

        x_t = coef1 * (x_t - coef2 * predicted_noise)

        # Add noise for t > 0
        if t > 0:
            sigma_t = torch.sqrt(
                (1 - alpha_t_prev) / (1 - alpha_t) * (1 - alpha_t / alpha_t_prev)
            )
            x_t += sigma_t * torch.randn_like(x_t)

    return x_t


class SimpleUNet(nn.Module):
    def __init__(self, channels=3, time_emb_dim=256):
        super().__init__()
        # Time embedding
        self.time_embed = nn.Sequential(
            nn.Linear(1, time_emb_dim),
            nn.SiLU(),
            nn.Linear(time_emb_dim, time_emb_dim),
        )

        # Simplified U-Net structure
        self.down1 = nn.Conv2d(channels, 64, 3, padding=1)
        self.down2 = nn.Conv2d(64, 128, 3, padding=1, stride=2)
        self.down3 = nn.Conv2d(128, 256, 3, padding=1, stride=2)

        # Middle blocks with time conditioning
        self.mid_conv1 = nn.Conv2d(256, 256, 3, padding=1)
        self.mid_time = nn.Linear(time_emb_dim, 256)
        self.mid_conv2 = nn.Conv2d(256, 256, 3, padding=1)

        # Upsampling path
        self.up1 = nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1)
        self.up2 = nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1)
        self.up3 = nn.Conv2d(64, channels, 3, padding=1)

    def forward(self, x, t):
        # Embed time
        t_emb = self.time_embed(t.unsqueeze(-1).float())

        # Downsample
        x1 = nn.functional.silu(self.down1(x))
        x2 = nn.functional.silu(self.down2(x1))
        x3 = nn.functional.silu(self.down3(x2))

        # Middle with time conditioning
        h = nn.functional.silu(self.mid_conv1(x3))
        h = h + self.mid_time(t_emb)[:, :, None, None]
        h = nn.functional.silu(self.mid_conv2(h))

        # Upsample
        h = nn.functional.silu(self.up1(h))
        h = nn.functional.silu(self.up2(h))
        h = self.up3(h)

        return h


# ch13: added - what running the listings above shows (chapter13.book.Erratum)

LISTINGS = {
    "forward_diffusion": "13.2.1",
    "diffusion_training_loss": "13.2.2",
    "sample": "13.2.3",
    "SimpleUNet": "13.2.4",
}

NOTEBOOK = "13.2-diffusion-models"

ERRATA = (
    Erratum(
        section="13.2.1",
        listing="forward_diffusion",
        kind="fault",
        finding="It scales by noise_scheduler.alphas[t] = α_t = 1 - β_t. With the chapter's schedule "
        "α_999 = 0.98, so x_999 = 0.99·x_0 + 0.14·ε is still the image (correlation with x_0 about 0.97), "
        "where it should be pure noise (ᾱ_999 = 4e-5).",
        why="The closed form q(x_t | x_0) = N(sqrt(ᾱ_t) x_0, (1 - ᾱ_t) I) has the cumulative product "
        "ᾱ_t = Π_{s<=t} α_s (Ho et al. 2020, eq. 4). The chapter's own 13.6 lab uses it right "
        "(sqrt_alphas_cumprod).",
        package="chapter13.diffusion.NoiseSchedule.q_sample",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.2.1",
        listing="forward_diffusion",
        kind="fault",
        finding="A batch of timesteps t: (B,) gives alpha_t: (B,), which broadcasts against the last axis "
        "of x_0: (B, C, H, W). For B other than 1 or W it raises 'The size of tensor a (B) must match the "
        "size of tensor b (W) at non-singleton dimension 3'; for B = W (28 images of 28 x 28) it runs and "
        "scales column j of every image by timestep t_j's factor, silently.",
        why="Per-sample coefficients need the shape (B, 1, 1, 1) (the 13.6 lab indexes "
        "[t, None, None, None]).",
        package="chapter13.diffusion.NoiseSchedule.q_sample",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.2.2",
        listing="diffusion_training_loss",
        kind="fault",
        finding="It draws one timestep per image and calls forward_diffusion with them, so it fails with "
        "the broadcasting error above for every batch size but 1 and the image width.",
        why="The loss itself is right: the ε-prediction MSE L_simple of Ho et al. 2020 (eq. 14, Algorithm "
        "1), which is denoising score matching (Vincent 2011) with the score -ε/sqrt(1 - ᾱ_t).",
        package="chapter13.diffusion.diffusion_loss",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.2.3",
        listing="sample",
        kind="fault",
        finding="With the chapter's scheduler its noise coefficient (1 - α_t)/sqrt(1 - α_t) = sqrt(β_t) "
        "removes up to sqrt((1 - ᾱ_t)/β_t) = 7x too much predicted noise per step, and sigma_t, written "
        "with α where ᾱ is meant, adds almost none (0.005 instead of 0.14 at large t). Even with the "
        "exact noise predictor of N(0, 0.5² I) data, the samples come out with standard deviation 0.03 "
        "instead of 0.5.",
        why="DDPM's reverse step (Ho et al. 2020, eq. 11 and Algorithm 2) is x_{t-1} = (x_t - β_t / "
        "sqrt(1 - ᾱ_t) ε̂) / sqrt(α_t) + σ_t z with σ_t² = β_t or β̃_t = (1 - ᾱ_{t-1})/(1 - ᾱ_t) β_t "
        "(eq. 7). The listing's sigma_t is β̃_t with α in place of ᾱ; coef1 is right.",
        package="chapter13.diffusion.sample_ddpm",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.2.4",
        listing="SimpleUNet",
        kind="fault",
        finding="The timestep enters as a raw number, Linear(1, 256)(t). For t from 100 to 999 the "
        "embeddings lie on one straight line (second singular value / first below 1e-4) and their size "
        "grows about 900x from t = 1 to t = 999.",
        why="Large inputs put every SiLU in its linear or its zero regime, so the MLP is affine in t. "
        "DDPM embeds t with the Transformer's sinusoids before the MLP (Ho et al. 2020, Sec. 4 and "
        "App. B; Vaswani et al. 2017, Sec. 3.5), which spreads the timesteps over many directions at a "
        "fixed norm.",
        package="chapter13.unet.SinusoidalTimeEmbedding",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.2.4",
        listing="SimpleUNet",
        kind="fault",
        finding="It has no skip connections: down1-3, mid, up1-3 in a chain, so every output pixel is "
        "computed from the 7 x 7 bottleneck alone. Called a U-Net, it is an encoder-decoder; the time "
        "signal enters only in the middle.",
        why="A U-Net concatenates each encoder level into the decoder at the same resolution "
        "(Ronneberger et al. 2015), which is what carries fine detail to the output; DDPM's network adds "
        "the time embedding in every residual block (Ho et al. 2020, App. B).",
        package="chapter13.unet.UNet",
        notebook=NOTEBOOK,
    ),
)
