"""Text-to-image diffusion (13.3): a U-Net that attends to the 13.1 CLIP text encoder's token features.

``TextToImageUNet`` (pixels) and ``chapter13.latent.LatentTextToImage`` (latents) are
``chapter13.diffusion.DiffusionModel``s conditioned by cross-attention (Rombach et al. 2022, eq. 3);
``generate`` samples them with classifier-free guidance (``chapter13.guidance``);
``cross_attention_maps`` shows where each word is looked at; ``parse_prompt`` and
``measure_attributes`` check that an image has what its caption asked for. The shipped models'
numbers, training and evaluation are ``chapter13.recipes.text2image`` and ``chapter13.recipes.latent``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from chapter13.attention import CrossAttention2d
from chapter13.captions import (
    DIGIT_WORDS,
    SMALL_SIDE,
    default_caption,
    ink_centroid,
    ink_extent,
    normalize,
    stroke_width,
)
from chapter13.config import check_seed
from chapter13.diffusion import DiffusionModel, sample_ddim
from chapter13.evaluate import classify
from chapter13.guidance import GuidedModel
from chapter13.multimodal import TextEncoder, Tokenizer
from chapter13.unet import UNet


class TextToImageUNet(DiffusionModel):
    """ε-prediction U-Net conditioned on a caption through cross-attention, with its text encoder.

    As in Stable Diffusion (Rombach et al. 2022, Sec. 3.3, eq. 3), the caption is encoded once by a
    text transformer into token features τ(y): (B, L, D) and every cross-attention block of the U-Net
    computes softmax(Q Kᵀ/√d) V with queries from the image features and keys and values from τ(y).
    The text encoder is the 13.1 CLIP text tower (``chapter13.multimodal.TextEncoder``), kept
    **frozen**: its weights are copied from ``clip-digits`` into this model (so the checkpoint stands
    alone) and receive no gradient. Frozen, the captions' features can be computed once for the whole
    training set, which is what makes training affordable on a CPU (Stable Diffusion keeps CLIP's text
    tower frozen too, and Imagen conditions on a frozen T5 language model, Saharia et al. 2022).

    The null condition ∅ of classifier-free guidance is "no text": all-zero features with an
    all-False mask, for which every cross-attention block adds exactly nothing
    (``chapter13.attention.CrossAttention``), so ε(x_t, ∅) is the U-Net without text.

    Args:
        unet: constructor arguments of ``chapter13.unet.UNet`` (``context_dim`` = the text width).
        text_encoder: constructor arguments of ``chapter13.multimodal.TextEncoder``.
        schedule: ``{"kind": "cosine" | "linear", "T": 1000}``, the training noise schedule.
        prediction: ``"eps"``, the U-Net predicts ε (DDPM), or ``"v"``, it predicts
            v = √ᾱ_t ε − √(1−ᾱ_t) x_0 (Salimans & Ho 2022, §4) and ``forward`` converts,
            ε̂ = √ᾱ_t v̂ + √(1−ᾱ_t) x_t. Either way the model speaks ε to the loss, guidance and samplers;
            with v, DDIM's x̂_0 = √ᾱ_t x_t − √(1−ᾱ_t) v̂ stays bounded at the first step, where ᾱ ≈ 0.

    forward(x_t: (B, C, H, W), t: (B,), context: (B, L, D), context_mask: (B, L) bool) -> ε (B, C, H, W).
    """

    clip_samples = True
    """Pixel samples live in [-1, 1], so DDIM may clip its x̂_0 there."""
    spacing = "trailing"
    """DDIM timestep grid (``chapter13.diffusion.timesteps``): trailing starts at t = T - 1."""

    def __init__(
        self,
        unet: dict[str, Any],
        text_encoder: dict[str, Any],
        schedule: dict[str, Any] | None = None,
        prediction: str = "eps",
    ):
        schedule = schedule or {}
        super().__init__(prediction, schedule.get("kind", "cosine"), schedule.get("T", 1000))
        self.config = {
            "unet": dict(unet),
            "text_encoder": dict(text_encoder),
            "schedule": dict(schedule),
        }
        if prediction != "eps":
            self.config["prediction"] = prediction
        self.unet = UNet(**unet)
        self.text_encoder = TextEncoder(**text_encoder)
        if self.unet.context_dim != self.text_encoder.dim:
            raise ValueError(
                f"the U-Net's context_dim ({self.unet.context_dim}) must equal the text encoder's width "
                f"({self.text_encoder.dim})"
            )
        self.text_encoder.requires_grad_(False)
        self.tokenizer = Tokenizer(max_length=self.text_encoder.max_length)
        self._text_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    # --- shapes and outputs ------------------------------------------------------------------------
    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of what the diffusion model generates (here: pixels, e.g. (1, 28, 28))."""
        size = self.unet.config["image_size"]
        return (self.unet.in_channels, size, size)

    def decode(self, samples: torch.Tensor) -> torch.Tensor:
        """Diffusion samples → images (B, 1, 28, 28) in [-1, 1] (pixels: clamped, nothing else)."""
        return samples.clamp(-1.0, 1.0)

    def train(self, mode: bool = True) -> TextToImageUNet:
        super().train(mode)
        self.text_encoder.eval()  # frozen, always in inference mode
        return self

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        self._text_cache.clear()
        return super().load_state_dict(*args, **kwargs)

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # .to(device) / .double(): cached encodings would be on the old device or dtype
        if hasattr(self, "_text_cache"):
            self._text_cache.clear()
        return super()._apply(fn, *args, **kwargs)

    def predict(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The U-Net's output (ε̂ or v̂, by ``prediction``) for ``x_t`` (B, C, H, W)."""
        return self.unet(x_t, t, context=context, context_mask=context_mask)

    # --- text ----------------------------------------------------------------------------------------
    @property
    def context_length(self) -> int:
        """Every caption is padded to this many tokens, so that any two conditions batch together."""
        return self.text_encoder.max_length

    @torch.no_grad()
    def encode_text(self, prompts: str | list[str]) -> dict[str, torch.Tensor]:
        """Captions → the condition ``{"context": (B, L, D), "context_mask": (B, L) bool}``.

        Encodings are cached per prompt (the text encoder is frozen), so asking again is free.
        Unknown words raise a ``ValueError`` that names them and lists the vocabulary: a prompt the
        model cannot read must not silently turn into a different prompt.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts:
            raise ValueError("no prompts given; pass a list of captions such as ['a handwritten digit 3']")
        missing = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        if missing:
            unknown = self.tokenizer.unknown_words(missing)
            if unknown:
                bad = [p for p in missing if self.tokenizer.unknown_words(p)]
                raise ValueError(
                    f"the prompt(s) {bad} contain word(s) {unknown} that the text encoder does not know. "
                    f"It reads only these {self.tokenizer.vocab_size - 2} words: "
                    f"{' '.join(self.tokenizer.vocabulary[2:])}. Rephrase with them, for example "
                    "'a thick small 3 in the top left corner'."
                )
            device = next(self.text_encoder.parameters()).device
            ids, mask = self.tokenizer.encode(missing, strict=True, pad_to=self.context_length)
            tokens, _ = self.text_encoder(ids.to(device), mask.to(device))
            for i, prompt in enumerate(missing):
                self._text_cache[prompt] = (tokens[i].detach(), mask[i].to(device))
        context = torch.stack([self._text_cache[p][0] for p in prompts])
        context_mask = torch.stack([self._text_cache[p][1] for p in prompts])
        return {"context": context, "context_mask": context_mask}

    def null_condition(self, batch: int = 1) -> dict[str, torch.Tensor]:
        """∅: zero features and an all-False mask, (batch, L, D) and (batch, L)."""
        device = next(self.text_encoder.parameters()).device
        return {
            "context": torch.zeros(batch, self.context_length, self.text_encoder.dim, device=device),
            "context_mask": torch.zeros(batch, self.context_length, dtype=torch.bool, device=device),
        }

    def load_text_encoder(self, clip: nn.Module) -> None:
        """Copy the text tower of a CLIP model (``chapter13.multimodal.TinyCLIP``) into this model (frozen)."""
        encoder = getattr(clip, "text_encoder", None)
        if encoder is None:
            raise ValueError(
                f"{type(clip).__name__} has no text_encoder; pass a chapter13.multimodal.TinyCLIP"
            )
        self.text_encoder.load_state_dict(encoder.state_dict())
        self._text_cache.clear()


def _as_prompts(prompts: object) -> list[str]:
    """A list of captions from a string or a sequence of strings; a clear error otherwise."""
    if isinstance(prompts, str):
        return [prompts]
    if isinstance(prompts, list | tuple) and all(isinstance(p, str) for p in prompts):
        return list(prompts)
    raise TypeError(
        f"prompts must be a caption or a list of captions (strings), got {type(prompts).__name__} {prompts!r}"
    )


def label_prompts(labels: torch.Tensor | list[int]) -> list[str]:
    """The default caption of each digit label (what ``--label D`` asks for): 3 → "a handwritten digit 3"."""
    return [default_caption(int(d)) for d in torch.as_tensor(labels).flatten().tolist()]


@torch.no_grad()
def generate(
    model: TextToImageUNet,
    prompts: str | list[str],
    *,
    guidance: float | torch.Tensor = 3.0,
    steps: int = 50,
    eta: float = 0.0,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    progress: bool = False,
    return_trajectory: bool = False,
) -> Any:
    """Text → images with guided DDIM: (B,) prompts → (B, 1, 28, 28) in [-1, 1].

    Works for the pixel model and for the latent one (``chapter13.latent.LatentTextToImage``, whose
    samples are decoded by its VAE). ``guidance`` is s = 1 + w (Ho & Salimans 2022, eq. 6); a (B,)
    tensor gives each image its own scale. ``seed`` (or ``generator``, or the start noise ``x_T``)
    fixes the randomness. With ``return_trajectory`` also the list of intermediate diffusion states.
    """
    prompts = _as_prompts(prompts)
    guided = GuidedModel(model, model.null_condition(1), guidance)  # checks the scale before any work
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(check_seed(seed))
    cond = model.encode_text(prompts)
    device = next(model.parameters()).device
    shape = (len(prompts), *model.sample_shape)
    out = sample_ddim(
        guided,
        model.schedule,
        shape,
        steps=steps,
        eta=eta,
        generator=generator,
        device=device,
        progress=progress,
        return_trajectory=return_trajectory,
        clip=model.clip_samples,
        spacing=model.spacing,
        x_T=x_T,
        **cond,
    )
    if return_trajectory:
        samples, trajectory = out
        return model.decode(samples), trajectory
    return model.decode(out)


# --- cross-attention maps -----------------------------------------------------------------------------


@torch.no_grad()
def cross_attention_maps(
    model: TextToImageUNet,
    prompts: str | list[str],
    *,
    guidance: float = 3.0,
    steps: int = 20,
    seed: int = 0,
    size: int = 28,
) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
    """Where each word of the prompt is looked at while an image is generated.

    Every cross-attention block of the U-Net computes weights softmax(Q Kᵀ/√d): (heads, H·W, L)
    from each image position to each token. Forward hooks record them during guided sampling
    (conditional half of the batch only), average over heads, upsample each block's H×W map to
    ``size``×``size`` and average over blocks and denoising steps, as in the attention visualisations
    of Hertz et al. (2022, "Prompt-to-Prompt", Sec. 3.1). At every pixel the maps of a prompt's words
    therefore sum to one: they say how the image's attention is shared among the words.

    Returns ``images`` (B, 1, 28, 28), ``maps`` (B, L, size, size) with zeros at padding, and the
    words of each prompt (``maps[b, i]`` belongs to ``words[b][i]``).
    """

    prompts = _as_prompts(prompts)
    total = torch.zeros(len(prompts), model.context_length, size, size)
    calls = [0]

    def hook(module: CrossAttention2d, args: tuple, output: torch.Tensor) -> None:
        x, context, mask = [*args, None, None][:3]
        if context is None or mask is None:
            return
        keep = mask.any(dim=1)
        if not bool(keep.any()):
            return
        x, context, mask = x[keep], context[keep], mask[keep]
        b, _, h, w = x.shape
        if b != len(prompts):  # pragma: no cover - the conditional half is always the prompts
            return
        seq = module.norm(x).flatten(2).transpose(1, 2)
        _, weights = module.attention(seq, context, mask, return_weights=True)
        maps = weights.mean(dim=1).transpose(1, 2).reshape(b, -1, h, w)  # (b, L, h, w)
        total.add_(F.interpolate(maps.float().cpu(), size=(size, size), mode="bilinear", align_corners=False))
        calls[0] += 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, CrossAttention2d)]
    try:
        images = generate(model, prompts, guidance=guidance, steps=steps, seed=seed)
    finally:
        for handle in handles:
            handle.remove()
    if calls[0] == 0:
        raise ValueError("the model has no cross-attention block, so there is no map to show")
    words = [model.tokenizer.tokenize(p) for p in prompts]
    return images, total / calls[0], words


# --- attribute prompts --------------------------------------------------------------------------------


def parse_prompt(prompt: str) -> dict[str, Any]:
    """The attributes a caption asks for: ``{"digit", "thickness", "size", "position"}``.

    Words absent from the caption take the data set's defaults (regular stroke, large, centre), as in
    ``chapter13.captions``: "a thin small seven in the top left corner" →
    ``{"digit": 7, "thickness": "thin", "size": "small", "position": "top left"}``; ``digit`` is
    None when the caption names none.
    """
    words = normalize(prompt)
    digit = None
    for word in words:
        if word.isdigit() or word in DIGIT_WORDS:
            digit = int(word) if word.isdigit() else DIGIT_WORDS.index(word)
            break
    thickness = "thin" if "thin" in words else "thick" if "thick" in words else "regular"
    vertical = "top" if "top" in words else "bottom" if "bottom" in words else None
    horizontal = "left" if "left" in words else "right" if "right" in words else None
    small = "small" in words or (vertical is not None and horizontal is not None)
    position = f"{vertical or 'top'} {horizontal or 'left'}" if small else "centre"
    return {
        "digit": digit,
        "thickness": thickness,
        "size": "small" if small else "large",
        "position": position,
    }


@torch.no_grad()
def measure_attributes(images: torch.Tensor, prompt: str) -> dict[str, Any]:
    """Measure what ``prompt`` asked for on generated ``images`` (N, 1, 28, 28) in [-1, 1].

    Stroke width (2·area/perimeter), ink height and ink centroid come from ``chapter13.captions``, the
    functions that define the attributes of the training data. ``digit_accuracy`` is the share the
    digit classifier reads as the prompt's digit; for a small digit the classifier (trained on
    full-size digits) reads the prompt's 16×16 corner, resized to 28×28, which undoes how small
    digits were made.
    """
    want = parse_prompt(prompt)
    if isinstance(images, torch.Tensor) and len(images) == 0:
        raise ValueError("no images to measure: got an empty batch")
    centre = ink_centroid(images).mean(0)
    out: dict[str, Any] = {
        **want,
        "stroke_width": float(stroke_width(images).mean()),
        "ink_height": float(ink_extent(images).mean()),
        "centroid": (float(centre[0]), float(centre[1])),
        "digit_accuracy": None,
    }
    if want["digit"] is not None:
        view = images
        if want["size"] == "small":
            side = images.shape[-1]
            top = 0 if want["position"].startswith("top") else side - SMALL_SIDE
            left = 0 if want["position"].endswith("left") else side - SMALL_SIDE
            crop = images[..., top : top + SMALL_SIDE, left : left + SMALL_SIDE]
            view = F.interpolate(crop, size=(side, side), mode="bilinear", align_corners=False)
        probs, _ = classify(view)
        out["digit_accuracy"] = float((probs.argmax(1) == want["digit"]).float().mean())
    return out
