"""Classifier-free guidance (Ho & Salimans 2022) and the text-to-image model of section 13.3.

Classifier-free guidance trains ONE network both conditionally and unconditionally: during training
the condition is replaced by a null condition ∅ with probability ``p_uncond`` (0.1-0.2), so that the
same weights predict ε(x_t, c) and ε(x_t, ∅). At sampling time the two predictions are combined.

Two conventions for the guidance weight are in use; this module uses the scale ``s``:

* Ho & Salimans (2022), eq. 6, write ε̃ = (1 + w) ε(x_t, c) − w ε(x_t, ∅), with w = 0 the
  plain conditional model.
* Stable Diffusion and most code write ε̃ = ε_u + s (ε_c − ε_u) ("guidance_scale" 7.5), which is
  the same expression with **s = 1 + w**. Here s = 1 is the plain conditional model, s = 0 the
  unconditional model, s > 1 pushes samples further towards the condition.

Both predictions are computed in **one batched forward pass**: the batch is doubled to
``[x, x]`` with conditions ``[∅, c]`` and the output split in two (``guided_epsilon``). A
``GuidedModel`` wraps a conditional model into the plain ``model(x_t, t, **cond)`` callable that the
shared samplers of ``chapter13.diffusion`` expect, so guided sampling reuses DDPM and DDIM unchanged.

Conditions are dictionaries of tensors whose first dimension is the batch (for the text model:
``context`` (B, L, D) token features and ``context_mask`` (B, L) bool). A null condition has the
same keys, with batch dimension B or 1 (broadcast).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Condition = Mapping[str, torch.Tensor]
"""A condition: keyword tensors for ``model(x_t, t, **cond)``, first dimension the batch."""


def scale_from_w(w: float) -> float:
    """Ho & Salimans' guidance weight ``w`` (eq. 6) -> this package's scale ``s = 1 + w``."""
    return 1.0 + float(w)


def w_from_scale(s: float) -> float:
    """This package's scale ``s`` -> Ho & Salimans' weight ``w = s - 1`` (eq. 6)."""
    return float(s) - 1.0


def _batch_size(cond: Condition) -> int:
    if not cond:
        raise ValueError(
            "the condition is empty; pass the keyword tensors of the conditional model, "
            "e.g. {'context': tokens, 'context_mask': mask}"
        )
    sizes = {k: v.shape[0] for k, v in cond.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"condition tensors disagree in batch size: {sizes}")
    return next(iter(sizes.values()))


def expand_null(null: Condition, cond: Condition) -> dict[str, torch.Tensor]:
    """Broadcast the null condition to the batch and shapes of ``cond``.

    Each ``null[k]`` must have batch dimension 1 or B and otherwise the shape of ``cond[k]``.
    """
    missing = set(cond) - set(null)
    extra = set(null) - set(cond)
    if missing or extra:
        raise ValueError(
            f"the null condition must have the same keys as the condition: missing {sorted(missing)}, "
            f"extra {sorted(extra)}"
        )
    out = {}
    for key, value in cond.items():
        empty = null[key].to(device=value.device)
        if empty.shape[1:] != value.shape[1:] or empty.shape[0] not in (1, value.shape[0]):
            raise ValueError(
                f"null condition {key!r} has shape {tuple(empty.shape)}, which does not broadcast to the "
                f"condition's {tuple(value.shape)}; give it batch size 1 or {value.shape[0]} and the same "
                "trailing shape (pad text to the same length)"
            )
        out[key] = empty.expand_as(value) if empty.shape[0] == 1 else empty
    return out


def drop_condition(
    cond: Condition,
    null: Condition,
    p_uncond: float,
    *,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Condition dropout for classifier-free guidance training (Ho & Salimans 2022, Algorithm 1).

    Each example's condition is replaced by the null condition independently with probability
    ``p_uncond`` (the paper uses 0.1 or 0.2), so one network learns ε(x_t, c) and ε(x_t, ∅).

    Args:
        cond: tensors with batch dimension B (e.g. ``context`` (B, L, D), ``context_mask`` (B, L)).
        null: the null condition, batch dimension 1 or B (see ``expand_null``).
        p_uncond: probability in [0, 1] of dropping each example's condition.
        generator: a CPU ``torch.Generator`` for reproducible draws.

    Returns:
        A new dict of the same shapes in which the dropped rows equal the null condition.
    """
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond is a probability and must lie in [0, 1], got {p_uncond}")
    batch = _batch_size(cond)
    empty = expand_null(null, cond)
    drop = torch.rand(batch, generator=generator) < p_uncond
    out = {}
    for key, value in cond.items():
        where = drop.to(value.device).view(batch, *([1] * (value.ndim - 1)))
        out[key] = torch.where(where, empty[key], value)
    return out


def _as_scale(scale: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor | float:
    """A float, or a (B,) tensor broadcast over the image dimensions of ``x``."""
    if isinstance(scale, torch.Tensor):
        if scale.ndim == 0:
            return float(scale)
        if scale.shape != (x.shape[0],):
            raise ValueError(
                f"a tensor guidance scale must have shape (B,) = ({x.shape[0]},), got {tuple(scale.shape)}"
            )
        return scale.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.ndim - 1)))
    if not isinstance(scale, (int, float)) or isinstance(scale, bool):
        raise TypeError(f"guidance scale must be a number or a (B,) tensor, got {type(scale).__name__}")
    if scale != scale:  # NaN
        raise ValueError("guidance scale is NaN")
    return float(scale)


def guided_epsilon(
    model: Callable[..., torch.Tensor],
    x_t: torch.Tensor,
    t: torch.Tensor,
    cond: Condition,
    null: Condition,
    scale: float | torch.Tensor,
    *,
    return_parts: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The classifier-free guided prediction ε̃ = ε_u + s (ε_c − ε_u) in one batched forward pass.

    This is Ho & Salimans (2022) eq. 6, ε̃ = (1 + w) ε_c − w ε_u, written with s = 1 + w: s = 0
    gives the unconditional prediction ε_u, s = 1 the conditional ε_c, s > 1 extrapolates beyond it.
    The batch is doubled, ``[x_t, x_t]`` with conditions ``[∅, c]``, so the network runs once on 2B
    examples instead of twice on B (one call keeps the matrix multiplies large, which is what makes
    it faster on a GPU and no slower on a CPU). For a plain number s = 0 or s = 1 only the needed
    half is computed.

    Args:
        model: ``model(x_t, t, **cond) -> ε``, trained with condition dropout.
        x_t: noisy inputs (B, C, H, W).
        t: timesteps (B,) long.
        cond: the condition, batch B; ``null``: the null condition, batch 1 or B.
        scale: s, a number or a (B,) tensor (one scale per example, e.g. for a trade-off curve).
        return_parts: also return ``(eps_uncond, eps_cond)``.

    Returns:
        ε̃ shaped like ``x_t`` (and ε_u, ε_c when ``return_parts``).
    """
    s = _as_scale(scale, x_t)
    batch = x_t.shape[0]
    if _batch_size(cond) != batch or t.shape[0] != batch:
        raise ValueError(
            f"x_t has batch {batch}, t has {t.shape[0]} and the condition has {_batch_size(cond)}; "
            "they must agree"
        )
    empty = expand_null(null, cond)
    if not return_parts and isinstance(s, float) and s == 1.0:
        return model(x_t, t, **cond)
    if not return_parts and isinstance(s, float) and s == 0.0:
        return model(x_t, t, **empty)
    both = {k: torch.cat([empty[k], cond[k]]) for k in cond}
    eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), **both)
    if eps.shape[0] != 2 * batch:
        raise ValueError(f"the model returned batch {eps.shape[0]} for an input batch of {2 * batch}")
    eps_u, eps_c = eps.chunk(2)
    guided = eps_u + s * (eps_c - eps_u)
    if return_parts:
        return guided, eps_u, eps_c
    return guided


class GuidedModel(nn.Module):
    """A conditional model turned into the plain ``model(x_t, t, **cond) -> ε̃`` of the samplers.

    ``GuidedModel(model, null, scale)(x_t, t, **cond)`` returns ``guided_epsilon(...)``, so
    ``diffusion.sample_ddim(GuidedModel(m, null, 3.0), schedule, shape, **cond)`` samples with
    classifier-free guidance at s = 3 through the unchanged DDIM sampler.

    Args:
        model: the conditional network ``model(x_t, t, **cond)``.
        null: the null condition (dict of tensors, batch 1 or B), or a callable ``null(cond)``
            returning it.
        scale: s = 1 + w (Ho & Salimans 2022, eq. 6); a number or a (B,) tensor.
    """

    def __init__(
        self,
        model: Callable[..., torch.Tensor],
        null: Condition | Callable[[Condition], Condition],
        scale: float | torch.Tensor,
    ) -> None:
        super().__init__()
        self.model = model
        self.null = null
        self.scale = scale

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, **cond: torch.Tensor) -> torch.Tensor:
        null = self.null(cond) if callable(self.null) else self.null
        return guided_epsilon(self.model, x_t, t, cond, null, self.scale)  # type: ignore[return-value]


def cfg_diffusion_loss(
    model: Callable[..., torch.Tensor],
    schedule: Any,
    x0: torch.Tensor,
    cond: Condition,
    null: Condition,
    *,
    p_uncond: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The ε-prediction loss of DDPM with condition dropout (Ho & Salimans 2022, Algorithm 1).

    ``x0``: (B, C, H, W). Each row's condition is replaced by ``null`` with probability
    ``p_uncond``; then ``chapter13.diffusion.diffusion_loss`` draws t and noise and returns the MSE.
    """
    from chapter13.diffusion import diffusion_loss

    dropped = drop_condition(cond, null, p_uncond, generator=generator)
    return diffusion_loss(model, schedule, x0, generator=generator, **dropped)


def sample_guided(
    model: Callable[..., torch.Tensor],
    schedule: Any,
    shape: tuple[int, ...],
    cond: Condition,
    null: Condition,
    scale: float | torch.Tensor = 3.0,
    *,
    steps: int = 50,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    return_trajectory: bool = False,
    clip: bool = True,
) -> Any:
    """Guided DDIM sampling: ``sample_ddim`` on ``GuidedModel(model, null, scale)``.

    ``shape``: (B, C, H, W); ``cond`` tensors have batch B. Returns what ``sample_ddim`` returns.
    """
    from chapter13.diffusion import sample_ddim

    return sample_ddim(
        GuidedModel(model, null, scale),
        schedule,
        shape,
        steps=steps,
        eta=eta,
        generator=generator,
        device=device,
        progress=progress,
        return_trajectory=return_trajectory,
        clip=clip,
        **cond,
    )


# ==================================================================================================
# The text-to-image model: a U-Net that attends to the 13.1 CLIP text encoder's token features
# ==================================================================================================

TEXT2IMAGE_NAME = "text2image-digits"
CLIP_NAME = "clip-digits"


class TextToImageUNet(nn.Module):
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
        super().__init__()
        from chapter13.multimodal import TextEncoder, Tokenizer
        from chapter13.unet import UNet

        self.config = {
            "unet": dict(unet),
            "text_encoder": dict(text_encoder),
            "schedule": dict(schedule or {}),
        }
        if prediction not in ("eps", "v"):
            raise ValueError(f"prediction must be 'eps' or 'v', got {prediction!r}")
        if prediction != "eps":
            self.config["prediction"] = prediction
        self.prediction = prediction
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
        from chapter13.diffusion import make_schedule

        schedule = schedule or {}
        self.noise_schedule = make_schedule(schedule.get("kind", "cosine"), schedule.get("T", 1000))

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

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ε̂ for ``x_t`` (B, C, H, W)."""
        out = self.unet(x_t, t, context=context, context_mask=context_mask)
        return out if self.prediction == "eps" else self.noise_schedule.eps_from_v(x_t, t, out)

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

    def load_text_encoder(self, name: str = CLIP_NAME) -> None:
        """Copy the text tower of the shipped CLIP checkpoint ``name`` into this model (frozen)."""
        from chapter13.checkpoints import load_model

        clip = load_model(name)
        encoder = getattr(clip, "text_encoder", None)
        if encoder is None:
            raise ValueError(
                f"checkpoint {name!r} has no text_encoder; it must be a chapter13.multimodal.TinyCLIP"
            )
        self.text_encoder.load_state_dict(encoder.state_dict())
        self._text_cache.clear()


def label_prompts(labels: torch.Tensor | list[int]) -> list[str]:
    """The default caption of each digit label (what ``--label D`` asks for): 3 → "a handwritten digit 3"."""
    from chapter13.captions import default_caption

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
    if isinstance(prompts, str):
        prompts = [prompts]
    cond = model.encode_text(list(prompts))
    null = model.null_condition(1)
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    shape = (len(prompts), *model.sample_shape)
    from chapter13.diffusion import sample_ddim

    out = sample_ddim(
        GuidedModel(model, null, guidance),
        model.noise_schedule,
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

    from chapter13.attention import CrossAttention2d

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
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


# --- training --------------------------------------------------------------------------------------


def caption_table(
    model: TextToImageUNet, captions: list[str], batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode each distinct caption once with the frozen text encoder.

    Returns ``context`` (U, L, D), ``context_mask`` (U, L) for the U distinct captions and ``index``
    (N,) long with ``captions[i]`` ↔ row ``index[i]``.
    """
    unique = list(dict.fromkeys(captions))
    lookup = {c: i for i, c in enumerate(unique)}
    parts = [model.encode_text(unique[i : i + batch_size]) for i in range(0, len(unique), batch_size)]
    context = torch.cat([p["context"] for p in parts]).cpu()
    mask = torch.cat([p["context_mask"] for p in parts]).cpu()
    model._text_cache.clear()  # the training table holds them now
    index = torch.tensor([lookup[c] for c in captions], dtype=torch.long)
    return context, mask, index


def train_text_to_image(
    model: TextToImageUNet,
    data: torch.Tensor,
    captions: list[str],
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    p_uncond: float = 0.15,
    min_snr_gamma: float | None = 5.0,
    ema_decay: float = 0.999,
    seed: int = 0,
    device: torch.device | str | None = "cpu",
    progress: bool = True,
    desc: str = "text-to-image",
) -> Any:
    """Train a text-conditioned ε-model with condition dropout through ``chapter13.train.fit``.

    Args:
        model: a ``TextToImageUNet`` (or the latent one) with its frozen text encoder loaded.
        data: what the model diffuses, (N, C, H, W): pixels in [-1, 1] or scaled latents.
        captions: N captions (``data[i]`` is described by ``captions[i]``).
        p_uncond: probability of the null condition per example (Ho & Salimans use 0.1-0.2).
        min_snr_gamma: Min-SNR-γ loss weighting (Hang et al. 2023, eq. 7; γ = 5), which converges
            faster for the same compute; ``None`` for DDPM's plain loss.

    Returns:
        ``chapter13.train.TrainResult`` (``.ema_model`` is the model to sample from).
    """
    from chapter13.diffusion import diffusion_loss
    from chapter13.train import fit

    if len(captions) != len(data):
        raise ValueError(f"got {len(data)} training examples but {len(captions)} captions; pass one each")
    context, mask, index = caption_table(model, captions)
    generator = torch.Generator().manual_seed(seed + 1)
    schedule = model.noise_schedule

    def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x0, rows = batch
        rows = rows.cpu()
        cond = {"context": context[rows].to(x0.device), "context_mask": mask[rows].to(x0.device)}
        null = {
            "context": torch.zeros_like(cond["context"][:1]),
            "context_mask": torch.zeros_like(cond["context_mask"][:1]),
        }
        dropped = drop_condition(cond, null, p_uncond, generator=generator)
        return diffusion_loss(m, schedule, x0, generator=generator, min_snr_gamma=min_snr_gamma, **dropped)

    return fit(
        model,
        loss_fn,
        (data, index),
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        ema_decay=ema_decay,
        seed=seed,
        device=device,
        progress=progress,
        desc=desc,
    )


# --- evaluation --------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate_labels(
    model: TextToImageUNet,
    scales: list[float] | tuple[float, ...] = (3.0,),
    *,
    per_digit: int = 20,
    steps: int = 25,
    seed: int = 0,
    batch_size: int = 200,
) -> dict[float, dict[str, float]]:
    """Judge ``--label D`` samples for every digit at several guidance scales on the same noise.

    For each scale s, ``per_digit`` samples of each digit's default caption are drawn from the
    **same** start noise (so the scales differ only in guidance) and judged by the shipped digit
    classifier (``chapter13.evaluate``):

    - ``accuracy``: share classified as the requested digit (``class_accuracy``);
    - ``confident``: share classified with probability > 0.9;
    - ``diversity``: mean pairwise distance of the classifier's penultimate features among samples
      of the same prompt, averaged over the ten digits (falls as guidance trades variety for fidelity);
    - ``frechet``: Fréchet distance of all samples' features to the real test digits.

    Returns ``{s: {"accuracy", "confident", "diversity", "frechet"}}``.
    """
    from chapter13.data import load_mnist
    from chapter13.evaluate import classify, confident_fraction, frechet_distance

    labels = torch.arange(10).repeat_interleave(per_digit)
    prompts = label_prompts(labels)
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn((len(labels), *model.sample_shape), generator=g)
    reference = classify(load_mnist("test")[0])[1]
    results: dict[float, dict[str, float]] = {}
    for s in scales:
        images = []
        for i in range(0, len(labels), batch_size):
            images.append(
                generate(
                    model,
                    prompts[i : i + batch_size],
                    guidance=float(s),
                    steps=steps,
                    x_T=x_T[i : i + batch_size],
                    generator=torch.Generator().manual_seed(seed + 1),
                )
            )
        samples = torch.cat(images).cpu()
        probs, feats = classify(samples)
        spread = [torch.pdist(feats[labels == d]).mean() for d in range(10)]
        results[float(s)] = {
            "accuracy": float((probs.argmax(1) == labels).float().mean()),
            "confident": confident_fraction(probs),
            "diversity": float(torch.stack(spread).mean()),
            "frechet": frechet_distance(feats, reference),
        }
    return results


# --- attribute prompts --------------------------------------------------------------------------------


def parse_prompt(prompt: str) -> dict[str, Any]:
    """The attributes a caption asks for: ``{"digit", "thickness", "size", "position"}``.

    Words absent from the caption take the data set's defaults (regular stroke, large, centre), as in
    ``chapter13.captions``: "a thin small seven in the top left corner" →
    ``{"digit": 7, "thickness": "thin", "size": "small", "position": "top left"}``; ``digit`` is
    None when the caption names none.
    """
    from chapter13.captions import DIGIT_WORDS, normalize

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
    from chapter13.captions import SMALL_SIDE, ink_centroid, ink_extent, stroke_width
    from chapter13.evaluate import classify

    want = parse_prompt(prompt)
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


# --- the shipped pixel-space model -------------------------------------------------------------------

TEXT2IMAGE_UNET: dict[str, Any] = {
    "in_channels": 1,
    "base_channels": 32,
    "channel_mults": [1, 2, 2],
    "num_res_blocks": 1,
    "attention_resolutions": [7],
    "context_dim": 64,
    "heads": 4,
    "image_size": 28,
}
"""U-Net of ``text2image-digits``: 28 → 14 → 7, self- and cross-attention at 7×7 and in the middle."""
SCHEDULE: dict[str, Any] = {"kind": "cosine", "T": 1000}
TEXT2IMAGE_PREDICTION = "v"
"""The pixel model predicts v (``TextToImageUNet``). With the same 1,600 training steps (14 min on one
CPU core), 99.5 % of its guided samples (s = 3) are judged the asked-for digit; an ε-network reached
85.5 %, and needed 3,000 steps (26 min) for 98 %: its x̂_0 at the first DDIM step is its error times
1/√ᾱ ≈ 2·10⁴."""
TEXT2IMAGE_TRAINING: dict[str, Any] = {
    "steps": 1600,
    "batch_size": 64,
    "lr": 2e-3,
    "p_uncond": 0.15,
    "min_snr_gamma": 5.0,
    "copies": 2,
    "seed": 0,
}
"""Full-size training of ``text2image-digits`` on captioned training digits (13.1's data set)."""
EVAL_SETTINGS: dict[str, Any] = {"per_digit": 20, "steps": 25, "seed": 0, "scales": [0.0, 1.0, 3.0]}
"""How the recipes judge a model: 20 samples per digit, DDIM-25, on fixed noise."""


def text_encoder_config(name: str = CLIP_NAME) -> dict[str, Any]:
    """``TextEncoder`` constructor arguments of the shipped CLIP's text tower (from the manifest)."""
    from chapter13.checkpoints import entry

    clip = entry(name)["config"]
    keys = {"vocab_size": "vocab_size", "text_dim": "dim", "text_depth": "depth", "text_heads": "heads"}
    config = {new: clip[old] for old, new in keys.items() if old in clip}
    config["max_length"] = clip.get("max_length", 16)
    return config


def new_text_to_image(
    unet: dict[str, Any] | None = None, clip: str | None = CLIP_NAME, prediction: str = TEXT2IMAGE_PREDICTION
) -> TextToImageUNet:
    """A fresh pixel-space ``TextToImageUNet`` with the frozen text tower of checkpoint ``clip``
    (``clip=None``: a randomly initialised text encoder, for quick tests only)."""
    text = {"dim": 64, "depth": 1} if clip is None else text_encoder_config(clip)
    model = TextToImageUNet(dict(unet or TEXT2IMAGE_UNET), text, SCHEDULE, prediction=prediction)
    if clip is not None:
        model.load_text_encoder(clip)
    return model


def train_text2image(
    steps: int | None = None, progress: bool = True, **overrides: Any
) -> tuple[TextToImageUNet, dict[str, Any]]:
    """Train the pixel-space text-to-image U-Net as the shipped recipe does.

    Two captioned copies of the 4,000 training digits (13.1's data set, held-out attribute pairs
    excluded), the frozen ``clip-digits`` text tower, condition dropout ``p_uncond``. Returns the EMA
    model (eval mode) and a record of the run: wall and CPU seconds, load average before and after.
    ``overrides`` change entries of ``TEXT2IMAGE_TRAINING``.
    """
    from chapter13.captions import captioned_digits
    from chapter13.config import seed_everything
    from chapter13.train import RunRecord

    settings = {**TEXT2IMAGE_TRAINING, **overrides}
    if steps is not None:
        settings["steps"] = steps
    seed_everything(settings["seed"])
    data = captioned_digits("train", copies=settings["copies"], seed=settings["seed"])
    model = new_text_to_image()
    with RunRecord() as record:
        result = train_text_to_image(
            model,
            data.images,
            data.captions,
            steps=settings["steps"],
            batch_size=settings["batch_size"],
            lr=settings["lr"],
            p_uncond=settings["p_uncond"],
            min_snr_gamma=settings["min_snr_gamma"],
            seed=settings["seed"],
            progress=progress,
            desc=TEXT2IMAGE_NAME,
        )
    return result.ema_model.eval(), {"record": record, "train_seconds": result.seconds, "settings": settings}


def save_text_to_image(name: str, model: TextToImageUNet, run: dict[str, Any], notes: str) -> dict[str, Any]:
    """Judge ``model`` (``EVAL_SETTINGS``) and save it as checkpoint ``name`` with the run record."""
    from chapter13 import checkpoints

    quality = _quality(model)
    quality.update(run["record"].quality_fields())
    checkpoints.save(
        name,
        model,
        model.config,
        train_seconds=run["train_seconds"],
        quality=quality,
        notes=f"{notes}; EMA weights; training {run['settings']}; evaluation {EVAL_SETTINGS}; "
        "wall time on a shared 2-core CPU (load averages in quality)",
    )
    print(f"{name}: {quality}, {run['train_seconds']:.0f} s")
    return quality


def build_text2image_digits() -> TextToImageUNet:
    """Recipe of the shipped ``text2image-digits`` (``python -m chapter13.train text2image-digits``).

    Trains with ``train_text2image`` and judges ``--label D`` samples at guidance 0, 1 and 3.
    """
    model, run = train_text2image()
    save_text_to_image(TEXT2IMAGE_NAME, model, run, "pixel space; frozen clip-digits text tower")
    return model


def _quality(model: TextToImageUNet) -> dict[str, Any]:
    settings = dict(EVAL_SETTINGS)
    scales = settings.pop("scales")
    results = evaluate_labels(model, scales, **settings)
    quality: dict[str, Any] = {}
    for s, metrics in results.items():
        for key, value in metrics.items():
            quality[f"{key}_s{s:g}"] = round(value, 4)
    return quality


# --- command line (python -m chapter13.sample text2image-digits --label 3 --guidance 3) ------------------


def text_sampler_spec(name: str = TEXT2IMAGE_NAME) -> Any:
    """The ``chapter13.sample.SamplerSpec`` of a shipped text-to-image checkpoint.

    ``--prompt TEXT`` samples that caption, ``--label D`` the default caption of digit D
    (``chapter13.captions.default_caption``), ``--guidance S`` sets s (default 3; s = 1 + w of Ho &
    Salimans 2022, eq. 6, so 1 is the plain conditional model and 0 the unconditional one).
    """
    from chapter13.checkpoints import load_model
    from chapter13.sample import SampleError, SamplerSpec

    def draw(
        n: int,
        *,
        steps: int,
        eta: float,
        seed: int,
        device: str | None,
        progress: bool,
        label: int | None = None,
        prompt: str | None = None,
        guidance: float | None = None,
    ) -> torch.Tensor:
        if label is not None and prompt is not None:
            raise SampleError(
                "give either --label or --prompt, not both (--label D means the default caption of D)"
            )
        if label is None and prompt is None:
            raise SampleError(
                f"{name} is text-conditional: give --prompt 'a thick seven' or --label D "
                "(add --guidance 0 for unconditional samples)"
            )
        text = label_prompts([label])[0] if label is not None else prompt
        model = load_model(name, device=device)
        try:
            model.encode_text([text])
        except ValueError as error:
            raise SampleError(str(error)) from error
        return generate(
            model,
            [text] * n,
            guidance=3.0 if guidance is None else float(guidance),
            steps=steps,
            eta=eta,
            seed=seed,
            progress=progress,
        )

    return SamplerSpec(draw=draw, accepts=frozenset({"label", "prompt", "guidance"}), max_steps=1000)


def sampler_spec() -> Any:
    """``SamplerSpec`` of ``text2image-digits`` (named in ``chapter13.sample.SAMPLERS``)."""
    return text_sampler_spec(TEXT2IMAGE_NAME)
