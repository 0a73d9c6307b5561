"""Captioned digits: the bundled MNIST with attributes applied to each image and written in its caption.

Every image gets three attributes, drawn from a seeded generator and *applied* to the digit, so the
caption is true by construction (and :func:`stroke_width` / :func:`ink_centroid` measure it back):

- stroke thickness: ``regular`` (unchanged, not mentioned), ``thin`` (sub-pixel erosion: the image is
  upsampled 2x, eroded with a 3x3 minimum filter, i.e. half a pixel each side, and averaged back) or
  ``thick`` (3x3 grey dilation, one pixel each side). Measured stroke width: about 1.4, 2.3, 4.5 px.
- size: ``large`` (the original 28x28 digit, not mentioned) or ``small`` (resized to 16x16).
- position: ``centre`` for large digits; a small digit sits in one corner of the 28x28 canvas
  (``top left``, ``top right``, ``bottom left``, ``bottom right``).

Images stay 28x28 with one channel in [-1, 1], like ``chapter13.data.load_mnist``, so the same U-Nets
and classifiers work on them. Unmarked words mean the default: ``"a handwritten digit 3"`` is a large,
regular, centred 3 (exactly an unaltered MNIST digit), which is what :func:`default_caption` returns
and what 13.3's ``--label D`` asks for.

Captions come from five templates (:data:`TEMPLATES`), which name the digit as a numeral ("3") or a
word ("three"). Some attribute-digit combinations (:data:`HELD_OUT`) never occur in the training split;
the test split has them, to measure compositional generalisation.

    data = captioned_digits("train", copies=2)   # 8,000 images, captions, attributes
    data.images: (8000, 1, 28, 28), data.captions[0] -> "a thin small seven in the top left corner"
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from chapter13.config import check_finite, check_seed
from chapter13.data import as_model_range, load_mnist

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
THICKNESSES = ("regular", "thin", "thick")
"""Index 0 (``regular``) is the unaltered stroke and is not mentioned in captions."""
SIZES = ("large", "small")
"""Index 0 (``large``) is the unaltered 28x28 digit and is not mentioned in captions."""
POSITIONS = ("centre", "top left", "top right", "bottom left", "bottom right")
"""Index 0 (``centre``) belongs to large digits; small digits take one of the four corners."""
SMALL_SIDE = 16
"""Side length in pixels of a small digit on the 28x28 canvas."""

TEMPLATES = (
    "a {adj}handwritten digit {d}{loc}",
    "{art} {adj}{word}{loc}",
    "a picture of {art} {adj}{d}{loc}",
    "{adj}digit {d}{loc}",
    "an image of the {adj}number {word}{loc}",
)
"""Caption templates. ``{adj}`` holds the marked adjectives ("thin small "), ``{loc}`` the corner
(" in the top left corner"), ``{d}`` the numeral, ``{word}`` the number word, ``{art}`` "a" or "an"."""
CANONICAL_TEMPLATE = 0
"""Template used for default captions, retrieval galleries and zero-shot prompts' first entry."""

HELD_OUT: tuple[tuple[str, int], ...] = (("thick", 4), ("thin", 7), ("small", 2))
"""(attribute, digit) pairs that never occur in the training split: no thick 4, no thin 7, no small 2."""

SPECIAL_TOKENS = ("<pad>", "<unk>")
VOCABULARY: tuple[str, ...] = (
    *SPECIAL_TOKENS,
    *(str(d) for d in range(10)),
    *DIGIT_WORDS,
    "a",
    "an",
    "the",
    "handwritten",
    "digit",
    "number",
    "picture",
    "image",
    "of",
    "in",
    "corner",
    "thin",
    "thick",
    "small",
    "top",
    "bottom",
    "left",
    "right",
)
"""The fixed word-level vocabulary (ids are positions in this tuple; never reorder it, checkpoints
depend on it). Every word of every caption the templates can produce is in it (a test checks)."""

_WORD = re.compile(r"[a-z]+|[0-9]")
_SPLITS = {"train": 0, "test": 1}


def normalize(text: str) -> list[str]:
    """Lower-case ``text`` and split it into words: runs of letters and single digits.

    Punctuation and whitespace separate words and are dropped: ``"A thick 3!" -> ["a", "thick", "3"]``.
    """
    if not isinstance(text, str):
        raise TypeError(f"a caption must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


def _article(word: str) -> str:
    """English article before ``word``; in this vocabulary only "eight" and "8" start with a vowel sound."""
    return "an" if word in ("eight", "8") else "a"


def _check_digit(digit: int) -> int:
    if isinstance(digit, bool) or not isinstance(digit, int) or not 0 <= digit <= 9:
        raise ValueError(f"digit must be an int from 0 to 9, got {digit!r}")
    return digit


def caption_for(
    digit: int,
    thickness: str = "regular",
    size: str = "large",
    position: str = "centre",
    template: int = CANONICAL_TEMPLATE,
) -> str:
    """The caption of ``digit`` with the given attributes, written with template number ``template``.

    ``caption_for(3) -> "a handwritten digit 3"``;
    ``caption_for(7, "thin", "small", "top left", 1) -> "a thin small seven in the top left corner"``.
    """
    _check_digit(digit)
    if thickness not in THICKNESSES:
        raise ValueError(f"thickness must be one of {THICKNESSES}, got {thickness!r}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
    if (size == "small") == (position == "centre"):
        raise ValueError(
            f"size {size!r} with position {position!r}: large digits sit in the centre and small "
            "digits in a corner ('top left', 'top right', 'bottom left' or 'bottom right')"
        )
    if isinstance(template, bool) or not isinstance(template, int) or not 0 <= template < len(TEMPLATES):
        raise ValueError(f"template must be an int 0..{len(TEMPLATES) - 1}, got {template!r}")
    adjectives = [w for w in (thickness, size) if w not in ("regular", "large")]
    adj = "".join(f"{w} " for w in adjectives)
    loc = f" in the {position} corner" if size == "small" else ""
    word = DIGIT_WORDS[digit]
    # the article agrees with the next word: "an eight", "a thick eight", "an 8", "a small 8"
    text = TEMPLATES[template]
    after_art = adjectives[0] if adjectives else (word if "{word}" in text.split("{art}")[-1] else str(digit))
    return text.format(adj=adj, loc=loc, d=digit, word=word, art=_article(after_art))


def default_caption(digit: int) -> str:
    """The caption of a plain (large, regular, centred) ``digit``: ``"a handwritten digit 3"``.

    This is what 13.3's ``--label D`` uses as its prompt.
    """
    return caption_for(digit)


def zero_shot_prompts(digit: int) -> list[str]:
    """One prompt per template for a plain ``digit`` (CLIP's prompt ensembling, Radford et al. 2021,
    Sec. 3.1.4): ``["a handwritten digit 3", "a three", "a picture of a 3", ...]``."""
    return [caption_for(digit, template=k) for k in range(len(TEMPLATES))]


def attribute_combinations() -> list[tuple[int, str, str, str]]:
    """Every (digit, thickness, size, position) the data set can produce: 10 x 3 x 5 = 150."""
    places = [("large", "centre")] + [("small", p) for p in POSITIONS[1:]]
    return [(d, t, s, p) for d in range(10) for t in THICKNESSES for s, p in places]


def is_held_out(digit: int, thickness: str, size: str) -> bool:
    """True when the combination contains one of the :data:`HELD_OUT` (attribute, digit) pairs."""
    return any(d == digit and a in (thickness, size) for a, d in HELD_OUT)


# --- measuring the attributes back ----------------------------------------------------------------


def stroke_width(images: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Mean stroke width in pixels, estimated as ``2 * area / perimeter`` of the binarised digit.

    A stroke of length l and width w has area l*w and perimeter about 2l, so 2A/P ~ w.
    ``images``: (N, 1, H, W) in [-1, 1]; pixels above ``threshold`` count as ink. Returns (N,).
    """
    _check_measured(images, threshold)
    ink = (images > threshold).float()
    area = ink.sum(dim=(1, 2, 3))
    edges = (ink[..., :, 1:] != ink[..., :, :-1]).sum(dim=(1, 2, 3)) + (
        ink[..., 1:, :] != ink[..., :-1, :]
    ).sum(dim=(1, 2, 3))
    return 2.0 * area / edges.clamp_min(1).float()


def ink_centroid(images: torch.Tensor) -> torch.Tensor:
    """Centre of mass of the ink, (row, column) in pixels. ``images``: (N, 1, H, W) in [-1, 1] -> (N, 2)."""
    _check_measured(images)
    mass = (images + 1.0).clamp_min(0.0)[:, 0]
    total = mass.sum(dim=(1, 2)).clamp_min(1e-8)
    rows = torch.arange(images.shape[-2], dtype=mass.dtype)
    cols = torch.arange(images.shape[-1], dtype=mass.dtype)
    r = (mass.sum(dim=2) * rows).sum(dim=1) / total
    c = (mass.sum(dim=1) * cols).sum(dim=1) / total
    return torch.stack([r, c], dim=1)


def ink_extent(images: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Height of the ink's bounding box in pixels. ``images``: (N, 1, H, W) in [-1, 1] -> (N,)."""
    _check_measured(images, threshold)
    rows = (images > threshold).any(dim=-1)[:, 0]  # (N, H)
    index = torch.arange(images.shape[-2])
    first = torch.where(rows, index, images.shape[-2]).min(dim=1).values
    last = torch.where(rows, index, -1).max(dim=1).values
    return (last - first + 1).clamp_min(0).float()


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected images (N, 1, H, W) in [-1, 1], got {shape}")


def _check_measured(images: torch.Tensor, threshold: float = 0.0) -> None:
    """Images a measurement can read: (N, 1, H, W), floating point, finite, in the model range (an
    empty batch gives empty measurements); one pass for the finite check, one min and max."""
    _check_images(images)
    if not images.is_floating_point():
        raise TypeError(
            f"images must be floating point in [-1, 1], got {images.dtype}; convert 0..255 pixels with "
            "x.float() / 127.5 - 1"
        )
    check_finite(threshold, "threshold")
    if images.numel():
        if not bool(torch.isfinite(images).all()):
            raise ValueError("images contain NaN or infinity; the measurements would be meaningless")
        as_model_range(images)


# --- applying the attributes -----------------------------------------------------------------------


def _thin(unit: torch.Tensor) -> torch.Tensor:
    """Sub-pixel erosion: 2x bilinear upsampling, 3x3 minimum filter, 2x2 average back down."""
    up = F.interpolate(unit, scale_factor=2, mode="bilinear", align_corners=False)
    eroded = -F.max_pool2d(-up, 3, stride=1, padding=1)
    down = F.avg_pool2d(eroded, 2)
    return down / down.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)


def _thick(unit: torch.Tensor) -> torch.Tensor:
    """Grey dilation with a 3x3 maximum filter (one pixel each side)."""
    return F.max_pool2d(unit, 3, stride=1, padding=1)


def _place_small(unit: torch.Tensor, position: int) -> torch.Tensor:
    small = F.interpolate(unit, size=(SMALL_SIDE, SMALL_SIDE), mode="bilinear", antialias=True)
    side = unit.shape[-1]
    top = 0 if POSITIONS[position].startswith("top") else side - SMALL_SIDE
    left = 0 if POSITIONS[position].endswith("left") else side - SMALL_SIDE
    canvas = torch.zeros_like(unit)
    canvas[..., top : top + SMALL_SIDE, left : left + SMALL_SIDE] = small
    return canvas


def render(
    images: torch.Tensor, thickness: torch.Tensor, size: torch.Tensor, position: torch.Tensor
) -> torch.Tensor:
    """Apply attributes to MNIST digits.

    Args:
        images: (N, 1, 28, 28) in [-1, 1], plain digits.
        thickness, size, position: (N,) integer indices into :data:`THICKNESSES`, :data:`SIZES`,
            :data:`POSITIONS` (position 0 for large digits, 1..4 for small ones).
    Returns:
        (N, 1, 28, 28) in [-1, 1].
    """
    _check_images(images)
    n = len(images)
    for name, t in (("thickness", thickness), ("size", size), ("position", position)):
        if t.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) like the images, got {tuple(t.shape)}")
    bad = ((size == 1) & (position == 0)) | ((size == 0) & (position != 0))
    if bad.any():
        raise ValueError("large digits need position 0 (centre) and small digits a corner (1..4)")
    unit = (images.float() + 1.0) / 2.0
    out = unit.clone()
    for k, fn in ((1, _thin), (2, _thick)):
        where = thickness == k
        if where.any():
            out[where] = fn(unit[where])
    for p in range(1, len(POSITIONS)):
        where = (size == 1) & (position == p)
        if where.any():
            out[where] = _place_small(out[where], p)
    return out.clamp(0.0, 1.0) * 2.0 - 1.0


# --- the data set ------------------------------------------------------------------------------------


@dataclass
class CaptionedDigits:
    """Images with their captions and the attributes behind them (all rows index the same example).

    images: (N, 1, 28, 28) float32 in [-1, 1]; labels, thickness, size, position, template,
    source: (N,) int64 (``source`` is the row of the MNIST split the image came from);
    captions: N strings.
    """

    images: torch.Tensor
    labels: torch.Tensor
    thickness: torch.Tensor
    size: torch.Tensor
    position: torch.Tensor
    template: torch.Tensor
    source: torch.Tensor
    captions: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def attributes(self, i: int) -> tuple[int, str, str, str]:
        """(digit, thickness, size, position) of example ``i``."""
        return (
            int(self.labels[i]),
            THICKNESSES[int(self.thickness[i])],
            SIZES[int(self.size[i])],
            POSITIONS[int(self.position[i])],
        )

    def attribute_captions(self, template: int = CANONICAL_TEMPLATE) -> list[str]:
        """Every example's caption written with one template (the canonical one by default)."""
        return [caption_for(*self.attributes(i), template=template) for i in range(len(self))]

    def combination_ids(self) -> torch.Tensor:
        """(N,) index of each example's (digit, thickness, size, position) in
        :func:`attribute_combinations`; equal ids mean interchangeable captions."""
        lookup = {combo: k for k, combo in enumerate(attribute_combinations())}
        return torch.tensor([lookup[self.attributes(i)] for i in range(len(self))], dtype=torch.long)

    def held_out_mask(self) -> torch.Tensor:
        """(N,) bool: True where the example's combination is one of :data:`HELD_OUT`."""
        return torch.tensor(
            [is_held_out(*self.attributes(i)[:3]) for i in range(len(self))], dtype=torch.bool
        )

    def subset(self, index: torch.Tensor | Sequence[int]) -> CaptionedDigits:
        """The examples at ``index`` (a 1-D long tensor, bool mask or list of ints)."""
        index = torch.as_tensor(index)
        if index.dtype == torch.bool:
            index = index.nonzero().flatten()
        if index.is_floating_point() or index.is_complex():
            raise TypeError(f"index must hold integer rows or be a bool mask, got {index.dtype}")
        if index.numel() and (index.min() < -len(self) or index.max() >= len(self)):
            raise ValueError(
                f"index must lie in 0..{len(self) - 1} for these {len(self)} examples, got values in "
                f"{int(index.min())}..{int(index.max())}"
            )
        rows = index.tolist()
        return CaptionedDigits(
            images=self.images[index],
            labels=self.labels[index],
            thickness=self.thickness[index],
            size=self.size[index],
            position=self.position[index],
            template=self.template[index],
            source=self.source[index],
            captions=[self.captions[i] for i in rows],
        )


def _sample_attributes(
    labels: torch.Tensor, generator: torch.Generator, hold_out: Iterable[tuple[str, int]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = len(labels)
    thickness = torch.randint(0, len(THICKNESSES), (n,), generator=generator)
    size = torch.randint(0, len(SIZES), (n,), generator=generator)
    pending = torch.ones(n, dtype=torch.bool)
    pairs = list(hold_out)
    for a, d in pairs:
        if a not in THICKNESSES[1:] + SIZES[1:]:
            raise ValueError(f"held-out attribute {a!r} must be one of 'thin', 'thick', 'small'")
        _check_digit(d)
    for _ in range(100):  # redraw the held-out rows until none is left (deterministic for the seed)
        bad = torch.zeros(n, dtype=torch.bool)
        for a, d in pairs:
            if a in THICKNESSES:
                bad |= (labels == d) & (thickness == THICKNESSES.index(a))
            else:
                bad |= (labels == d) & (size == SIZES.index(a))
        pending = bad
        if not pending.any():
            break
        k = int(pending.sum())
        thickness[pending] = torch.randint(0, len(THICKNESSES), (k,), generator=generator)
        size[pending] = torch.randint(0, len(SIZES), (k,), generator=generator)
    else:  # pragma: no cover - impossible unless every combination of a digit is held out
        raise ValueError(f"held-out pairs {pairs} leave some digit no allowed combination")
    corner = torch.randint(1, len(POSITIONS), (n,), generator=generator)
    position = torch.where(size == 1, corner, torch.zeros_like(corner))
    return thickness, size, position


def captioned_digits(
    split: str = "train",
    *,
    copies: int = 1,
    seed: int = 0,
    limit: int | None = None,
    hold_out: Iterable[tuple[str, int]] | None = None,
    templates: Sequence[int] | None = None,
) -> CaptionedDigits:
    """Build the captioned-digits data set from the bundled MNIST split, deterministically.

    Args:
        split: ``"train"`` (4,000 digits) or ``"test"`` (1,000).
        copies: how many captioned versions of each digit (each with its own attributes).
        seed: seeds the attributes and templates (the same seed gives the same data set).
        limit: keep only the first ``limit`` MNIST digits (before making copies).
        hold_out: (attribute, digit) pairs that must not occur. Default: :data:`HELD_OUT` for the
            training split, nothing for the test split.
        templates: template numbers to draw from (default: all of :data:`TEMPLATES`).
    """
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies must be an int >= 1, got {copies!r}")
    seed = check_seed(seed)
    x, y = load_mnist(split, limit=limit)
    if hold_out is None:
        hold_out = HELD_OUT if split == "train" else ()
    picked = list(range(len(TEMPLATES)) if templates is None else templates)
    if any(isinstance(k, bool) or not isinstance(k, int) for k in picked):
        raise ValueError(
            f"templates must be a non-empty list of ints 0..{len(TEMPLATES) - 1}, got {picked!r}"
        )
    choices = torch.tensor(picked, dtype=torch.long)
    if len(choices) == 0 or choices.min() < 0 or choices.max() >= len(TEMPLATES):
        raise ValueError(f"templates must be a non-empty list of numbers 0..{len(TEMPLATES) - 1}")
    generator = torch.Generator().manual_seed(1000 * seed + _SPLITS[split])
    source = torch.arange(len(y)).repeat(copies)
    labels = y[source]
    thickness, size, position = _sample_attributes(labels, generator, hold_out)
    template = choices[torch.randint(0, len(choices), (len(labels),), generator=generator)]
    images = render(x[source], thickness, size, position)
    captions = [
        caption_for(
            int(labels[i]),
            THICKNESSES[int(thickness[i])],
            SIZES[int(size[i])],
            POSITIONS[int(position[i])],
            int(template[i]),
        )
        for i in range(len(labels))
    ]
    return CaptionedDigits(images, labels, thickness, size, position, template, source, captions)
