"""Seeded synthetic data for 13.4: clips of moving, bouncing MNIST digits and short tones.

Nothing is stored: every clip and every sound is a deterministic function of its seed.

Video (in the spirit of Moving MNIST, Srivastava, Mansimov & Salakhutdinov 2015, "Unsupervised
Learning of Video Representations using LSTMs", §3, here smaller so that a CPU can learn it)::

    clips, labels, positions = moving_digits(256, frames=8, size=32, seed=0)
    clips: (256, 1, 8, 32, 32) float32 in [-1, 1]    labels: (256,) int64    positions: (256, 8, 2)

A digit of the bundled MNIST, shrunk to ``digit_size`` pixels, starts at a random place on a dark
``size``×``size`` canvas and moves with constant velocity, bouncing off the walls (the velocity
component normal to a wall changes sign, the position is reflected).

Audio::

    waves, labels, freqs = tones(256, seed=0)
    waves: (256, 1, 2048) float32 in [-1, 1]    labels: (256,) index into PITCHES    freqs: (256,) Hz

A tone is ``env(t) · a · Σ_k h_k sin(2π k f t + φ) / Σ_k h_k`` at one of a few pitches ``f``, with a
random amplitude ``a``, phase ``φ`` and an attack-decay-sustain-release (ADSR) envelope ``env``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from chapter13.config import check_finite, check_seed
from chapter13.data import load_mnist

__all__ = [
    "PITCHES",
    "SAMPLE_RATE",
    "TONE_LENGTH",
    "adsr_envelope",
    "bounce",
    "digit_sprites",
    "moving_digits",
    "render_clips",
    "tones",
]

SAMPLE_RATE = 4000
"""Hz. Nyquist is 2 kHz, above every pitch and its second harmonic."""
TONE_LENGTH = 2048
"""Samples per tone: 0.512 s at 4 kHz; an FFT bin is 1.95 Hz wide."""
PITCHES: tuple[float, ...] = (261.63, 329.63, 392.00, 523.25)
"""C4, E4, G4 and C5 in Hz (equal temperament, A4 = 440 Hz): neighbours differ by >= 19 %."""


def _finite_array(name: str, value: object) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers, got {value!r}") from None
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinity; pass finite numbers")
    return array


def _check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------------
# Video
def digit_sprites(
    split: str = "train", digit_size: int = 14, limit: int | None = None
) -> tuple[Tensor, Tensor]:
    """MNIST digits shrunk to ``digit_size``×``digit_size`` with area averaging (anti-aliased).

    Returns ``sprites``: (N, digit_size, digit_size) float32 in [0, 1] (ink = 1) and ``labels``: (N,).
    """
    digit_size = _check_positive_int("digit_size", digit_size, 4)
    x, y = load_mnist(split, limit=limit)
    ink = (x + 1.0) / 2.0  # [-1, 1] -> [0, 1]
    small = F.interpolate(ink, size=(digit_size, digit_size), mode="area")
    return small[:, 0].clamp(0.0, 1.0), y


def bounce(start: np.ndarray, velocity: np.ndarray, frames: int, limit: float) -> np.ndarray:
    """Positions of points moving with constant velocity inside [0, limit], reflected at the walls.

    A free path ``p(f) = start + f · v`` is folded back into the interval: with period ``2 limit``,
    ``q = p mod 2 limit`` and the position is ``q`` if ``q <= limit`` else ``2 limit - q``. This is
    exactly an elastic bounce (the normal velocity flips sign at each wall).

    Args:
        start: (..., 2) start positions in [0, limit].
        velocity: (..., 2) pixels per frame.
        frames: number of frames F.
        limit: largest position (canvas size minus sprite size).

    Returns:
        (..., F, 2) positions.
    """
    if check_finite(limit, "limit") <= 0:
        raise ValueError(
            f"the digit must be smaller than the canvas (free room {limit} px); shrink digit_size"
        )
    frames = _check_positive_int("frames", frames)
    start, velocity = _finite_array("start", start), _finite_array("velocity", velocity)
    f = np.arange(frames, dtype=np.float64).reshape(*([1] * (start.ndim - 1)), frames, 1)
    free = start[..., None, :] + f * velocity[..., None, :]
    q = np.mod(free, 2.0 * limit)
    return np.where(q <= limit, q, 2.0 * limit - q)


def render_clips(sprites: Tensor, positions: np.ndarray | Tensor, size: int) -> Tensor:
    """Paste ``sprites`` (N, D, D) in [0, 1] at integer ``positions`` (N, F, 2) (row, col of the top-left
    corner, rounded) on a ``size``×``size`` canvas.

    Returns clips (N, 1, F, size, size) float32 in the model range [-1, 1] (background -1, ink +1).
    """
    if not isinstance(sprites, Tensor) or sprites.dim() != 3 or sprites.shape[1] != sprites.shape[2]:
        shape = tuple(sprites.shape) if isinstance(sprites, Tensor) else type(sprites).__name__
        raise ValueError(f"sprites must be a tensor of shape (N, D, D), got {shape}")
    size = _check_positive_int("size", size)
    pos = torch.as_tensor(_finite_array("positions", positions)).round().long()
    if pos.dim() != 3 or pos.shape[0] != sprites.shape[0] or pos.shape[2] != 2:
        raise ValueError(f"positions must have shape (N={sprites.shape[0]}, F, 2), got {tuple(pos.shape)}")
    n, frames = pos.shape[:2]
    d = sprites.shape[1]
    if pos.min() < 0 or pos.max() > size - d:
        raise ValueError(f"positions must lie in 0..{size - d} so that a {d}-px digit stays on the canvas")
    canvas = torch.zeros(n, frames, size, size, dtype=sprites.dtype)
    offset = torch.arange(d)
    rows = (pos[:, :, 0, None, None] + offset[:, None]).expand(n, frames, d, d)
    cols = (pos[:, :, 1, None, None] + offset[None, :]).expand(n, frames, d, d)
    clip_index = torch.arange(n)[:, None, None, None].expand(n, frames, d, d)
    frame_index = torch.arange(frames)[None, :, None, None].expand(n, frames, d, d)
    canvas[clip_index, frame_index, rows, cols] = sprites[:, None].expand(n, frames, d, d)
    return (canvas * 2.0 - 1.0).unsqueeze(1)


def moving_digits(
    n: int,
    frames: int = 8,
    size: int = 32,
    digit_size: int = 14,
    *,
    speed: tuple[float, float] = (1.0, 3.0),
    split: str = "train",
    seed: int = 0,
    digits: Sequence[int] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``n`` clips of one MNIST digit moving in a straight line and bouncing off the walls.

    Each clip draws (from ``numpy.random.default_rng(seed)``): a digit of ``split`` (optionally only
    the classes in ``digits``), a start position uniform over the free room ``[0, size - digit_size]²``,
    a direction uniform on the circle and a speed uniform in ``speed`` (pixels per frame).

    Returns:
        clips: (n, 1, frames, size, size) float32 in [-1, 1];
        labels: (n,) int64 digit classes;
        positions: (n, frames, 2) float64 top-left (row, col) before rounding.
    """
    n = _check_positive_int("n", n)
    frames = _check_positive_int("frames", frames, 2)
    size = _check_positive_int("size", size, 8)
    digit_size = _check_positive_int("digit_size", digit_size, 4)
    if digit_size >= size:
        raise ValueError(
            f"digit_size ({digit_size}) must be smaller than the canvas size ({size}) so it can move"
        )
    seed = check_seed(seed, 0)
    if isinstance(speed, str) or not isinstance(speed, Sequence) or len(speed) != 2:
        raise TypeError(
            f"speed must be a pair (low, high) of pixels per frame, e.g. (1.0, 3.0), got {speed!r}"
        )
    lo, hi = (check_finite(v, "speed") for v in speed)
    if not 0 <= lo <= hi:
        raise ValueError(f"speed must be (low, high) with 0 <= low <= high pixels per frame, got {speed}")
    sprites, labels = digit_sprites(split, digit_size)
    if digits is not None:
        wanted = torch.tensor(sorted(set(int(d) for d in digits)))
        if wanted.numel() == 0 or wanted.min() < 0 or wanted.max() > 9:
            raise ValueError(f"digits must be classes in 0..9, got {list(digits)}")
        keep = torch.isin(labels, wanted)
        sprites, labels = sprites[keep], labels[keep]
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(sprites), size=n)
    room = float(size - digit_size)
    start = rng.uniform(0.0, room, size=(n, 2))
    angle = rng.uniform(0.0, 2.0 * math.pi, size=n)
    v = rng.uniform(lo, hi, size=n)[:, None] * np.stack([np.sin(angle), np.cos(angle)], axis=1)
    positions = bounce(start, v, frames, room)
    idx = torch.from_numpy(index)
    clips = render_clips(sprites[idx], positions, size)
    return clips, labels[idx].clone(), torch.from_numpy(positions)


# --------------------------------------------------------------------------------------------------
# Audio
def adsr_envelope(
    length: int, attack: float, decay: float, sustain: float, release: float, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Attack-decay-sustain-release envelope, (length,) in [0, 1].

    Rises linearly 0 -> 1 over ``attack`` seconds, falls linearly to ``sustain`` over ``decay``
    seconds and holds; the last ``release`` seconds are multiplied by a linear fade to 0.
    """
    length = _check_positive_int("length", length)
    attack, decay, sustain, release = (
        check_finite(v, name)
        for v, name in ((attack, "attack"), (decay, "decay"), (sustain, "sustain"), (release, "release"))
    )
    if not check_finite(sample_rate, "sample_rate") > 0:
        raise ValueError(f"sample_rate must be positive (samples per second), got {sample_rate}")
    if min(attack, decay, release) < 0 or not 0 <= sustain <= 1:
        raise ValueError("attack, decay and release must be >= 0 seconds and sustain in [0, 1]")
    t = np.arange(length) / sample_rate
    end = length / sample_rate
    rise = np.clip(t / attack, 0.0, 1.0) if attack > 0 else np.ones(length)
    fall = np.clip((t - attack) / decay, 0.0, 1.0) if decay > 0 else (t >= attack).astype(np.float64)
    env = np.where(t < attack, rise, 1.0 - (1.0 - sustain) * fall)
    if release > 0:
        env = env * np.clip((end - t) / release, 0.0, 1.0)
    return np.clip(env, 0.0, 1.0)


def tones(
    n: int,
    pitches: Sequence[float] = PITCHES,
    *,
    sample_rate: int = SAMPLE_RATE,
    length: int = TONE_LENGTH,
    harmonics: Sequence[float] = (1.0, 0.25),
    amplitude: tuple[float, float] = (0.5, 0.9),
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """``n`` tones, each at one of ``pitches`` (Hz), with random amplitude, phase and ADSR envelope.

    ``wave(t) = env(t) · a · Σ_k h_k sin(2π k f t + k φ) / Σ_k h_k`` with ``h = harmonics`` (the
    fundamental first; the default adds a quiet second harmonic), ``a`` uniform in ``amplitude``,
    ``φ`` uniform in [0, 2π), attack 10-60 ms, decay 50-150 ms to a sustain of 0.5-0.9, release 50-150 ms.

    Returns:
        waves: (n, 1, length) float32 in [-1, 1];
        labels: (n,) int64 index into ``pitches``;
        freqs: (n,) float64 fundamental frequency in Hz.
    """
    n = _check_positive_int("n", n)
    length = _check_positive_int("length", length, 16)
    sample_rate = _check_positive_int("sample_rate", sample_rate)
    seed = check_seed(seed, 0)
    pitches = _finite_array("pitches", pitches)
    h = _finite_array("harmonics", harmonics)
    if pitches.ndim != 1 or pitches.size == 0 or (pitches <= 0).any():
        raise ValueError(f"pitches must be a non-empty list of positive frequencies in Hz, got {pitches}")
    if h.ndim != 1 or h.size == 0 or (h < 0).any() or h.sum() <= 0:
        raise ValueError(f"harmonics must be a non-empty list of non-negative weights, got {h}")
    bounds = _finite_array("amplitude", amplitude)
    if bounds.shape != (2,) or not 0 <= bounds[0] <= bounds[1] <= 1:
        raise ValueError(f"amplitude must be (low, high) with 0 <= low <= high <= 1, got {amplitude!r}")
    top = pitches.max() * len(h)
    if top >= sample_rate / 2:
        raise ValueError(
            f"the highest partial ({top:.0f} Hz) is above the Nyquist frequency {sample_rate / 2:.0f} Hz; "
            "raise sample_rate or use lower pitches / fewer harmonics"
        )
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(pitches), size=n)
    amp = rng.uniform(*amplitude, size=n)
    phase = rng.uniform(0.0, 2.0 * math.pi, size=n)
    attack = rng.uniform(0.01, 0.06, size=n)
    decay = rng.uniform(0.05, 0.15, size=n)
    sustain = rng.uniform(0.5, 0.9, size=n)
    release = rng.uniform(0.05, 0.15, size=n)
    t = np.arange(length) / sample_rate
    freqs = pitches[labels]
    k = np.arange(1, len(h) + 1)
    # (n, K, L): k-th partial of each tone
    partials = np.sin(
        2 * math.pi * k[None, :, None] * (freqs[:, None, None] * t + phase[:, None, None] / (2 * math.pi))
    )
    tone = (h[None, :, None] * partials).sum(axis=1) / h.sum()
    env = np.stack(
        [adsr_envelope(length, attack[i], decay[i], sustain[i], release[i], sample_rate) for i in range(n)]
    )
    waves = (amp[:, None] * env * tone).astype(np.float32)
    return torch.from_numpy(waves).unsqueeze(1), torch.from_numpy(labels).long(), torch.from_numpy(freqs)
