"""A tiny CLIP for captioned digits: tokenizer, text and image towers, projection heads, contrastive loss.

CLIP (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision")
trains an image encoder and a text encoder together so that the embedding of an image and the
embedding of its caption point the same way, and away from the other captions in the batch. This
module builds the same thing at digit scale:

- :class:`Tokenizer`: a word-level tokenizer with the fixed vocabulary of ``chapter13.captions``.
- :class:`TextEncoder`: token and position embeddings and a small pre-norm transformer;
  ``forward(ids, mask) -> (tokens (B, L, D), pooled (B, D))``. 13.3 conditions its U-Net on
  ``tokens`` through cross-attention (as Stable Diffusion conditions on CLIP's text tower).
- :class:`ImageEncoder`: a small CNN, ``(B, 1, 28, 28) -> (B, D)``.
- :class:`MultimodalEncoder`: the chapter's 13.1.1 block, two linear projection heads into a joint
  space with L2-normalised outputs.
- :class:`TinyCLIP`: the three together plus the learnable temperature, stored as a log logit scale
  initialised to log(1/0.07) and clamped so that the scale never exceeds 100 (CLIP, Sec. 2.5).
- :func:`contrastive_loss`: CLIP's symmetric cross-entropy (Radford et al. 2021, Fig. 3).
- zero-shot classification with prompt ensembling, retrieval with Recall@K, and training through
  ``chapter13.train.fit``; :func:`build_clip_digits` makes the shipped ``clip-digits`` checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from chapter13.captions import (
    VOCABULARY,
    CaptionedDigits,
    attribute_combinations,
    caption_for,
    is_held_out,
    normalize,
    zero_shot_prompts,
)
from chapter13.config import check_finite, check_model_input

DEFAULT_TEMPERATURE = 0.07
"""CLIP's initial temperature: the log logit scale starts at log(1/0.07) ~ 2.659."""
MAX_LOGIT_SCALE = 100.0
"""CLIP clips the logit scale so that logits are never multiplied by more than 100."""
MAX_LENGTH = 16
"""Longest caption in tokens (the longest template caption has 13 words)."""


# --- tokenizer ---------------------------------------------------------------------------------------


class Tokenizer:
    """Word-level tokenizer with a fixed vocabulary (default: ``chapter13.captions.VOCABULARY``).

    Text is lower-cased and split into runs of letters and single digits (punctuation dropped). Id 0
    is padding (``<pad>``), id 1 stands for unknown words (``<unk>``, only with ``strict=False``).

        tok = Tokenizer()
        ids, mask = tok.encode(["a thick 3", "a small handwritten digit 7 in the top left corner"])
        ids: (2, 10) long, mask: (2, 10) bool (True = real token)
        tok.decode(ids, mask) -> ["a thick 3", "a small handwritten digit 7 in the top left corner"]
    """

    pad_token = "<pad>"
    unk_token = "<unk>"

    def __init__(self, vocabulary: Sequence[str] = VOCABULARY, max_length: int = MAX_LENGTH) -> None:
        vocabulary = tuple(vocabulary)
        if vocabulary[:2] != (self.pad_token, self.unk_token):
            raise ValueError(f"the vocabulary must start with {self.pad_token!r}, {self.unk_token!r}")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("the vocabulary has repeated words; every word needs one id")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be an int >= 1, got {max_length!r}")
        self.vocabulary = vocabulary
        self.max_length = max_length
        self.index = {word: i for i, word in enumerate(vocabulary)}
        self.pad_id = 0
        self.unk_id = 1

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def __len__(self) -> int:
        return len(self.vocabulary)

    def tokenize(self, text: str) -> list[str]:
        """``"A thick 3!" -> ["a", "thick", "3"]``."""
        return normalize(text)

    def unknown_words(self, texts: str | Sequence[str]) -> list[str]:
        """The words of ``texts`` that are not in the vocabulary (each once, in order of appearance)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        seen: dict[str, None] = {}
        for text in texts:
            for word in self.tokenize(text):
                if word not in self.index:
                    seen[word] = None
        return list(seen)

    def encode(
        self, texts: str | Sequence[str], strict: bool = True, pad_to: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and padding mask of a batch of captions.

        Args:
            texts: a list of B captions (a single string counts as a batch of one).
            strict: raise an error naming the unknown words (default); with ``False`` they become
                ``<unk>``.
            pad_to: pad to this length instead of the longest caption of the batch.
        Returns:
            ids: (B, L) int64, padded with 0; mask: (B, L) bool, True on real tokens.
        """
        texts = _as_captions(texts)
        if pad_to is not None and (isinstance(pad_to, bool) or not isinstance(pad_to, int)):
            raise TypeError(f"pad_to must be an int number of tokens (or None), got {pad_to!r}")
        words = [self.tokenize(t) for t in texts]
        empty = [i for i, w in enumerate(words) if not w]
        if empty:
            raise ValueError(
                f"caption(s) at position {empty} have no words ({[texts[i] for i in empty]!r}); "
                "every caption needs at least one word"
            )
        if strict:
            unknown = self.unknown_words(texts)
            if unknown:
                raise ValueError(
                    f"unknown word(s) {unknown}: this tokenizer knows only its fixed vocabulary of "
                    f"{self.vocab_size - 2} words: {' '.join(self.vocabulary[2:])}. Rephrase the "
                    "caption, or pass strict=False to map unknown words to <unk>."
                )
        longest = max(len(w) for w in words)
        length = longest if pad_to is None else pad_to
        if longest > self.max_length or length > self.max_length:
            raise ValueError(
                f"a caption has {max(longest, length)} tokens but the text encoder takes at most "
                f"{self.max_length}; shorten it"
            )
        if length < longest:
            raise ValueError(f"pad_to={pad_to} is shorter than the longest caption ({longest} tokens)")
        ids = torch.full((len(texts), length), self.pad_id, dtype=torch.long)
        for row, sentence in enumerate(words):
            ids[row, : len(sentence)] = torch.tensor([self.index.get(w, self.unk_id) for w in sentence])
        mask = torch.zeros_like(ids, dtype=torch.bool)
        for row, sentence in enumerate(words):
            mask[row, : len(sentence)] = True
        return ids, mask

    __call__ = encode

    def decode(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> list[str]:
        """Captions back from ``ids: (B, L)`` (padding dropped); inverse of :meth:`encode` on
        normalised text."""
        if not isinstance(ids, torch.Tensor) or ids.ndim != 2:
            shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
            raise ValueError(f"decode() expects an ids tensor (B, L), got {shape}")
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise TypeError(f"ids must be integer token ids (torch.long) from encode(), got {ids.dtype}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(
                f"ids must lie in 0..{self.vocab_size - 1} (this tokenizer's vocabulary), got values in "
                f"{int(ids.min())}..{int(ids.max())}"
            )
        if mask is None:
            mask = ids != self.pad_id
        out = []
        for row, keep in zip(ids.tolist(), mask.tolist(), strict=True):
            out.append(" ".join(self.vocabulary[i] for i, k in zip(row, keep, strict=True) if k))
        return out


# --- towers -------------------------------------------------------------------------------------------


def _as_captions(texts: object) -> list[str]:
    """A list of captions from a string (a batch of one) or a sequence of strings; a clear error else."""
    if isinstance(texts, str):
        return [texts]
    if texts is None or isinstance(texts, bytes) or not hasattr(texts, "__iter__"):
        raise TypeError(
            f"captions must be a string or a list of strings, got {type(texts).__name__} {texts!r}"
        )
    texts = list(texts)  # type: ignore[call-overload]
    if not texts:
        raise ValueError("got no captions; pass a non-empty list of strings")
    return texts


def _check_tokens(
    ids: torch.Tensor,
    mask: torch.Tensor,
    max_length: int,
    vocab_size: int | None = None,
    device: torch.device | None = None,
) -> None:
    if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.dtype != torch.long:
        raise ValueError(
            f"ids must be a (B, L) int64 tensor from Tokenizer.encode, got "
            f"{getattr(ids, 'dtype', type(ids).__name__)} {tuple(getattr(ids, 'shape', ()))}"
        )
    if not isinstance(mask, torch.Tensor) or mask.shape != ids.shape or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor shaped like ids {tuple(ids.shape)}, got "
            f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}"
        )
    if ids.shape[1] > max_length:
        raise ValueError(f"captions of {ids.shape[1]} tokens exceed the encoder's max_length {max_length}")
    if device is not None and (ids.device != device or mask.device != device):
        raise ValueError(
            f"ids and mask are on {ids.device} and {mask.device} but the text encoder is on {device}; "
            f"move them with ids.to({str(device)!r})"
        )
    if vocab_size is not None and ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(
            f"token ids must lie in 0..{vocab_size - 1} (the encoder's vocabulary), got values in "
            f"{int(ids.min())}..{int(ids.max())}; encode captions with the matching Tokenizer"
        )
    if ids.shape[0] and not bool(mask.any(dim=1).all()):
        raise ValueError("a caption in the batch is empty (its mask has no True); every caption needs a word")


class TextEncoder(nn.Module):
    """Token + learned position embeddings, a pre-norm transformer encoder, a final LayerNorm.

    Bidirectional attention over the real tokens (padding is masked out of attention). The pooled
    embedding is the mean of the real tokens' outputs (CLIP pools the end-of-text token instead;
    the mean is order-free and works as well on captions this short).

    Args:
        vocab_size: number of token ids (``len(Tokenizer())``).
        dim: width D. depth: transformer layers. heads: attention heads (``dim % heads == 0``).
        max_length: longest caption in tokens.
    """

    def __init__(
        self,
        vocab_size: int = len(VOCABULARY),
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        max_length: int = MAX_LENGTH,
        mlp_ratio: int = 2,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.dim = dim
        self.max_length = max_length
        self.token_embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.position_embedding = nn.Parameter(torch.randn(max_length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim * mlp_ratio, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.token_embedding.weight, std=0.02)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids: (B, L) int64, mask: (B, L) bool (True = real token) -> tokens (B, L, D), pooled (B, D).

        Padded positions of ``tokens`` are set to zero; ``pooled`` is the masked mean of ``tokens``.
        """
        _check_tokens(
            ids, mask, self.max_length, self.token_embedding.num_embeddings, self.position_embedding.device
        )
        h = self.token_embedding(ids) + self.position_embedding[: ids.shape[1]]
        h = self.transformer(h, src_key_padding_mask=~mask)
        weights = mask.unsqueeze(-1).to(h.dtype)
        tokens = self.norm(h) * weights
        pooled = tokens.sum(dim=1) / weights.sum(dim=1)
        return tokens, pooled


class ImageEncoder(nn.Module):
    """A small CNN: 28x28 -> 14 -> 7 -> 7 -> 4 with GroupNorm and GELU, then a linear layer to ``dim``.

    The first convolution (4x4, stride 2) halves the image at once, which makes the tower about 3.5x
    cheaper than a stride-1 stem on a CPU at the same parameter count. The final 4x4 map is flattened
    rather than pooled, so the encoder keeps *where* the ink is (the captions name corners).
    ``forward(images: (B, C, 28, 28)) -> (B, dim)``.
    """

    def __init__(self, in_channels: int = 1, width: int = 32, dim: int = 128, image_size: int = 28) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, stride, 1), nn.GroupNorm(8, c_out), nn.GELU()]

        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {image_size}")
        self.in_channels = in_channels
        self.image_size = image_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, 2, 1),
            nn.GELU(),
            *block(width, 2 * width, 2),
            *block(2 * width, 2 * width, 1),
            *block(2 * width, 2 * width, 2),
        )
        side = (image_size // 4 + 1) // 2
        self.head = nn.Linear(2 * width * side * side, dim)
        self.dim = dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, C, H, W) in [-1, 1] -> features (B, dim)."""
        check_model_input(images, self, "images")
        if images.ndim != 4 or images.shape[1:] != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(
                f"expected images (B, {self.in_channels}, {self.image_size}, {self.image_size}), "
                f"got {tuple(images.shape)}"
            )
        return self.head(self.features(images).flatten(1))


class MultimodalEncoder(nn.Module):
    """A joint embedding as CLIP builds it: one linear projection per modality, L2-normalised.

    The chapter's 13.1.1 ``MultimodalEncoder`` (``chapter13.book.sec13_1``) uses a two-layer MLP head
    with biases per modality instead (SimCLR's choice); both give unit vectors in one joint space.

    ``visual_features: (B, visual_dim)`` and ``text_features: (B', text_dim)`` map to
    ``(B, joint_dim)`` and ``(B', joint_dim)`` unit vectors, so their dot product is the cosine
    similarity. Bias-free projections, as in CLIP (Radford et al. 2021, Fig. 3: W_i, W_t).
    """

    def __init__(self, visual_dim: int, text_dim: int, joint_dim: int) -> None:
        super().__init__()
        for name, value in (("visual_dim", visual_dim), ("text_dim", text_dim), ("joint_dim", joint_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.visual_dim, self.text_dim, self.joint_dim = visual_dim, text_dim, joint_dim
        self.visual_projection = nn.Linear(visual_dim, joint_dim, bias=False)
        self.text_projection = nn.Linear(text_dim, joint_dim, bias=False)

    def embed_visual(self, visual_features: torch.Tensor) -> torch.Tensor:
        """(B, visual_dim) -> (B, joint_dim), unit length."""
        _check_features(visual_features, self.visual_dim, "visual_features", "visual_dim")
        return F.normalize(self.visual_projection(visual_features), dim=-1)

    def embed_text(self, text_features: torch.Tensor) -> torch.Tensor:
        """(B, text_dim) -> (B, joint_dim), unit length."""
        _check_features(text_features, self.text_dim, "text_features", "text_dim")
        return F.normalize(self.text_projection(text_features), dim=-1)

    def forward(
        self, visual_features: torch.Tensor, text_features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (image_emb (B, joint_dim), text_emb (B', joint_dim)), both L2-normalised."""
        return self.embed_visual(visual_features), self.embed_text(text_features)


def _check_features(x: torch.Tensor, dim: int, name: str, dim_name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != dim:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be (B, {dim_name}={dim}), got {shape}")


class TinyCLIP(nn.Module):
    """Image tower, text tower, projection heads and a learnable temperature (Radford et al. 2021).

    ``logit_scale`` is log(1/temperature), initialised to log(1/0.07); the scale used in the loss is
    ``exp(logit_scale)`` clamped at 100 (the paper: "clipped to prevent scaling the logits by more
    than 100"). Every constructor argument is JSON-serialisable (checkpoints store them).

        model = TinyCLIP()
        image_emb, text_emb = model(images, ids, mask)       # (B, J), (B, J), unit length
        loss = contrastive_loss(image_emb, text_emb, logit_scale=model.logit_scale)
    """

    def __init__(
        self,
        vocab_size: int = len(VOCABULARY),
        max_length: int = MAX_LENGTH,
        image_width: int = 32,
        image_dim: int = 128,
        text_dim: int = 64,
        text_depth: int = 2,
        text_heads: int = 4,
        joint_dim: int = 64,
        init_temperature: float = DEFAULT_TEMPERATURE,
        max_logit_scale: float = MAX_LOGIT_SCALE,
    ) -> None:
        super().__init__()
        if not check_finite(max_logit_scale, "max_logit_scale") > 0:
            raise ValueError(
                f"max_logit_scale must be a positive finite number (CLIP uses 100), got {max_logit_scale}"
            )
        if not (
            check_finite(init_temperature, "init_temperature") > 0
            and 1.0 / init_temperature <= max_logit_scale
        ):
            raise ValueError(
                f"init_temperature must be positive with 1/init_temperature <= max_logit_scale "
                f"({max_logit_scale}), got {init_temperature}"
            )
        self.image_encoder = ImageEncoder(1, image_width, image_dim)
        self.text_encoder = TextEncoder(vocab_size, text_dim, text_depth, text_heads, max_length)
        self.projection = MultimodalEncoder(image_dim, text_dim, joint_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.max_logit_scale = max_logit_scale

    def scale(self) -> torch.Tensor:
        """exp(logit_scale) clamped at ``max_logit_scale`` (a 0-d tensor that carries the gradient)."""
        return clamped_scale(self.logit_scale, self.max_logit_scale)

    @property
    def temperature(self) -> float:
        """The current temperature tau = 1 / scale."""
        return float(1.0 / self.scale().detach())

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, 1, 28, 28) in [-1, 1] -> (B, joint_dim) unit vectors."""
        return self.projection.embed_visual(self.image_encoder(images))

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask: (B, L) from :class:`Tokenizer` -> (B, joint_dim) unit vectors."""
        return self.projection.embed_text(self.text_encoder(ids, mask)[1])

    def forward(
        self, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (image_emb (B, J), text_emb (B', J)), both L2-normalised."""
        return self.encode_image(images), self.encode_text(ids, mask)


# --- the contrastive objective -----------------------------------------------------------------------


def clamped_scale(logit_scale: torch.Tensor, max_scale: float = MAX_LOGIT_SCALE) -> torch.Tensor:
    """exp(min(logit_scale, log(max_scale))): CLIP's learnable logit scale, never above ``max_scale``.

    The clamp is applied in the forward pass, so the gradient reaches ``logit_scale`` while it is
    below the cap and is zero above it (the reference implementation clamps the parameter in place
    after each optimiser step; the resulting scale is the same). ``logit_scale``: a one-element tensor
    (or a number); NaN or infinity is an error, as is a ``max_scale`` that is not a positive number.
    """
    if not check_finite(max_scale, "max_scale") > 0:
        raise ValueError(f"max_scale must be a positive number (CLIP uses 100), got {max_scale}")
    if not isinstance(logit_scale, torch.Tensor):
        logit_scale = torch.tensor(check_finite(logit_scale, "logit_scale"))
    if logit_scale.numel() != 1 or not logit_scale.is_floating_point():
        raise ValueError(
            f"logit_scale must be one floating-point number, got {logit_scale.dtype} {tuple(logit_scale.shape)}"
        )
    if not bool(torch.isfinite(logit_scale.detach()).all()):
        raise ValueError(
            f"logit_scale is {float(logit_scale)}; it must be finite (log(1/temperature), CLIP starts at "
            "log(1/0.07) = 2.66). A NaN here usually means training diverged."
        )
    return logit_scale.clamp(max=math.log(max_scale)).exp()


def similarity_matrix(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Cosine similarities S_ij = <u_i, v_j> of L2-normalised rows: (B, J), (B', J) -> (B, B')."""
    _check_embeddings(image_emb, text_emb, same_batch=False)
    return F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T


def _check_embeddings(image_emb: torch.Tensor, text_emb: torch.Tensor, same_batch: bool = True) -> None:
    for name, x in (("image_emb", image_emb), ("text_emb", text_emb)):
        if not isinstance(x, torch.Tensor) or x.ndim != 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a (B, D) tensor, got {shape}")
        if len(x) == 0:
            raise ValueError(f"{name} is an empty batch; the loss needs at least one pair")
        if not x.is_floating_point():
            raise TypeError(
                f"{name} must be a floating-point tensor (embeddings), got {x.dtype}; use .float()"
            )
        if not bool(torch.isfinite(x.detach()).all()):
            raise ValueError(
                f"{name} contains NaN or infinity; check the encoder's output (training diverged?)"
            )
    if image_emb.dtype != text_emb.dtype or image_emb.device != text_emb.device:
        raise TypeError(
            f"image_emb is {image_emb.dtype} on {image_emb.device} but text_emb is {text_emb.dtype} on "
            f"{text_emb.device}; bring them together, e.g. text_emb.to(image_emb)"
        )
    if image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(
            f"embedding sizes differ: image_emb has D={image_emb.shape[1]}, text_emb D={text_emb.shape[1]}; "
            "project both into the same joint space (MultimodalEncoder) first"
        )
    if same_batch and len(image_emb) != len(text_emb):
        raise ValueError(
            f"batch sizes differ: {len(image_emb)} images but {len(text_emb)} captions; the "
            "contrastive loss pairs image i with caption i, so pass as many of each"
        )


def contrastive_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    temperature: float | torch.Tensor = DEFAULT_TEMPERATURE,
    *,
    logit_scale: torch.Tensor | None = None,
    max_logit_scale: float = MAX_LOGIT_SCALE,
) -> torch.Tensor:
    """CLIP's symmetric InfoNCE loss (Radford et al. 2021, Fig. 3).

    With unit vectors u_i (images) and v_j (captions), logits ``L_ij = <u_i, v_j> / tau`` and

        loss = 1/2 [ CE(L, arange(B)) over rows + CE(L^T, arange(B)) over columns ]
             = -1/(2B) sum_i [ log softmax_j(L_ij) at j=i + log softmax_j(L_ji) at j=i ],

    i.e. image i must pick caption i among the batch's B captions and caption i must pick image i.

    Args:
        image_emb: (B, D); text_emb: (B, D). Rows are L2-normalised here (a no-op for unit vectors).
        temperature: tau > 0, a float or a 0-d tensor (the chapter's call form,
            ``contrastive_loss(image_emb, text_emb, temperature=0.07)``). Not clamped.
        logit_scale: instead of ``temperature``, CLIP's learnable log(1/tau) (e.g.
            ``model.logit_scale``); the scale exp(logit_scale) is clamped at ``max_logit_scale``.
    Returns:
        the scalar loss. For B = 1 it is 0 (the only caption is always the right one).
    """
    _check_embeddings(image_emb, text_emb)
    if logit_scale is not None:
        scale = clamped_scale(logit_scale, max_logit_scale).to(image_emb.device)  # e.g. a GPU model's
    else:
        if not isinstance(temperature, torch.Tensor):
            check_finite(temperature, "temperature")
        t = torch.as_tensor(temperature, dtype=image_emb.dtype, device=image_emb.device)
        if t.numel() != 1 or not bool(t > 0) or not bool(torch.isfinite(t)):
            raise ValueError(f"temperature must be one positive finite number, got {temperature!r}")
        scale = 1.0 / t
    return symmetric_cross_entropy(scale * similarity_matrix(image_emb, text_emb))


def symmetric_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """CLIP's loss from the (B, B) logit matrix: the mean of the row-wise cross-entropy (image i picks
    caption i) and the column-wise one (caption i picks image i), targets on the diagonal."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a (B, B) tensor, got {type(logits).__name__}")
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1] or logits.shape[0] == 0:
        raise ValueError(f"logits must be a non-empty square (B, B) matrix, got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got {logits.dtype}; use logits.float()")
    if not bool(torch.isfinite(logits.detach()).all()):
        raise ValueError("logits contain NaN or infinity; check the embeddings and the logit scale")
    targets = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


# --- training -----------------------------------------------------------------------------------------


def clip_loss(model: TinyCLIP, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """``loss_fn`` for ``train.fit``: batch = (images, ids, mask) -> CLIP loss with the learnable scale."""
    images, ids, mask = batch[:3]
    image_emb, text_emb = model(images, ids, mask)
    return contrastive_loss(image_emb, text_emb, logit_scale=model.logit_scale)


# --- zero-shot classification and retrieval -----------------------------------------------------------


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def embed_images(model: TinyCLIP, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """images: (N, 1, 28, 28) -> (N, J) unit vectors (in eval mode, batched, on the CPU)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a tensor (N, 1, 28, 28), got {type(images).__name__}")
    if len(images) == 0:
        raise ValueError("no images to embed: got an empty batch")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    was_training = model.training
    model.eval()
    device = _model_device(model)
    out = [
        model.encode_image(images[i : i + batch_size].to(device)).cpu()
        for i in range(0, len(images), batch_size)
    ]
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def embed_texts(
    model: TinyCLIP, texts: Sequence[str], tokenizer: Tokenizer | None = None, strict: bool = True
) -> torch.Tensor:
    """N captions -> (N, J) unit vectors (a single string is one caption: (1, J)). Unknown words raise
    an error naming them (``strict``)."""
    tokenizer = tokenizer or Tokenizer(max_length=model.text_encoder.max_length)
    ids, mask = tokenizer.encode(_as_captions(texts), strict=strict)
    was_training = model.training
    model.eval()
    device = _model_device(model)
    emb = model.encode_text(ids.to(device), mask.to(device)).cpu()
    model.train(was_training)
    return emb


def caption_similarity(model: TinyCLIP, data: Any) -> torch.Tensor:
    """Cosine similarity of every image of ``data`` with every caption of ``data`` (anything with
    ``images`` (N, 1, 28, 28) and ``captions``, e.g. ``captioned_digits``): (N, N), the matched
    pairs on the diagonal."""
    return embed_images(model, data.images) @ embed_texts(model, data.captions).T


@torch.no_grad()
def class_embeddings(
    model: TinyCLIP, prompts: Sequence[Sequence[str]], tokenizer: Tokenizer | None = None
) -> torch.Tensor:
    """One embedding per class from its prompts: the normalised mean of the prompts' unit embeddings
    (CLIP's prompt ensembling, Radford et al. 2021, Sec. 3.1.4). prompts: C lists -> (C, J)."""
    if (
        isinstance(prompts, str)
        or not isinstance(prompts, Sequence)
        or any(isinstance(p, str) or not isinstance(p, Sequence) for p in prompts)
    ):
        raise TypeError(
            "prompts must be one list of prompts per class, e.g. [['a zero', 'a 0'], ['a one', 'a 1']]; "
            f"got {prompts!r}"
        )
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("give at least one prompt for every class")
    rows = [F.normalize(embed_texts(model, list(p), tokenizer).mean(dim=0), dim=-1) for p in prompts]
    return torch.stack(rows)


def digit_prompts(templates: Sequence[int] | None = None) -> list[list[str]]:
    """Zero-shot prompts for the ten digits: ``[[ "a handwritten digit 0", "a zero", ...], ...]``.

    ``templates`` picks template numbers (default: all, i.e. :func:`~chapter13.captions.zero_shot_prompts`).
    """
    return [
        [p for k, p in enumerate(zero_shot_prompts(d)) if templates is None or k in templates]
        for d in range(10)
    ]


@torch.no_grad()
def zero_shot_classify(
    model: TinyCLIP,
    images: torch.Tensor,
    prompts: Sequence[Sequence[str]] | None = None,
    tokenizer: Tokenizer | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-shot classification: the class whose prompt embedding is most similar to the image.

    images: (N, 1, 28, 28); prompts: one list of prompts per class (default :func:`digit_prompts`).
    Returns (predictions (N,), probabilities (N, C)) with probabilities = softmax(scale * cosine).
    """
    prompts = digit_prompts() if prompts is None else prompts
    classes = class_embeddings(model, prompts, tokenizer)
    image_emb = embed_images(model, images)
    logits = model.scale().detach().cpu() * image_emb @ classes.T
    probs = logits.softmax(dim=-1)
    return probs.argmax(dim=-1), probs


def zero_shot_accuracy(
    model: TinyCLIP,
    images: torch.Tensor,
    labels: torch.Tensor,
    prompts: Sequence[Sequence[str]] | None = None,
) -> float:
    """Fraction of ``images`` whose zero-shot prediction equals ``labels`` (N,)."""
    labels = torch.as_tensor(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    predictions, _ = zero_shot_classify(model, images, prompts)
    return float((predictions == labels.cpu()).float().mean())


def recall_at_k(
    similarity: torch.Tensor, relevant: torch.Tensor, ks: Sequence[int] = (1, 5, 10)
) -> dict[int, float]:
    """Recall@K for retrieval: the fraction of queries with at least one relevant item in their top K.

    similarity: (Q, G) scores of each query against each gallery item; relevant: (Q, G) bool (True
    where gallery item g answers query q; several may). Items are ranked with ``topk``.
    """
    if not isinstance(similarity, torch.Tensor) or not isinstance(relevant, torch.Tensor):
        raise TypeError(
            f"similarity and relevant must be tensors, got {type(similarity).__name__} and "
            f"{type(relevant).__name__}; convert with torch.as_tensor"
        )
    if similarity.ndim != 2 or relevant.shape != similarity.shape:
        raise ValueError(
            f"similarity (Q, G) and relevant (Q, G) must match, got {tuple(similarity.shape)} and "
            f"{tuple(relevant.shape)}"
        )
    if similarity.shape[0] == 0 or similarity.shape[1] == 0:
        raise ValueError(
            f"recall needs at least one query and one gallery item, got similarity {tuple(similarity.shape)}"
        )
    if not bool(torch.isfinite(similarity).all()):
        raise ValueError("similarity contains NaN or infinity; the ranking would be meaningless")
    if not bool(relevant.any(dim=1).all()):
        raise ValueError("every query needs at least one relevant gallery item")
    out = {}
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"every K must be an int >= 1, got {k!r}")
        top = similarity.topk(min(k, similarity.shape[1]), dim=1).indices
        out[k] = float(relevant.gather(1, top).any(dim=1).float().mean())
    return out


@torch.no_grad()
def retrieval_metrics(
    model: TinyCLIP, data: CaptionedDigits, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, Any]:
    """Image->text and text->image Recall@K on attribute captions.

    Captions that state the same (digit, thickness, size, corner) are interchangeable, so relevance is
    by combination rather than by instance:

    - image->text: each image queries the gallery of all 150 canonical attribute captions
      (``caption_for(digit, thickness, size, position)``); the right answer is its own combination.
    - text->image: each distinct combination present in ``data`` queries its images; any image with
      that combination is relevant.
    Also reports image->text Recall@1 separately for held-out and seen combinations (``None`` where
    ``data`` has no image of that kind).
    """
    combos = attribute_combinations()
    gallery = embed_texts(model, [caption_for(*c) for c in combos])
    image_emb = embed_images(model, data.images)
    ids = data.combination_ids()
    sim = image_emb @ gallery.T  # (N, 150)
    relevant = torch.zeros_like(sim, dtype=torch.bool)
    relevant[torch.arange(len(ids)), ids] = True
    i2t = recall_at_k(sim, relevant, ks)
    present = ids.unique()
    t2i = recall_at_k(sim.T[present], relevant.T[present], ks)
    hits = relevant.gather(1, sim.argmax(dim=1, keepdim=True)).flatten()
    held = torch.tensor([is_held_out(*combos[int(i)][:3]) for i in ids], dtype=torch.bool)
    result: dict[str, Any] = {f"i2t_R@{k}": v for k, v in i2t.items()}
    result.update({f"t2i_R@{k}": v for k, v in t2i.items()})
    result["i2t_R@1_seen"] = float(hits[~held].float().mean()) if (~held).any() else None
    result["i2t_R@1_held_out"] = float(hits[held].float().mean()) if held.any() else None
    result["queries_i2t"] = len(ids)
    result["queries_t2i"] = len(present)
    return result
