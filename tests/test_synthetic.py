"""Seeded generators of 13.4: moving digits and tones, checked against independent constructions."""

import math

import numpy as np
import pytest
import torch

from chapter13.synthetic import (
    PITCHES,
    SAMPLE_RATE,
    adsr_envelope,
    bounce,
    digit_sprites,
    moving_digits,
    render_clips,
    tones,
)


@pytest.fixture(scope="module")
def clips():
    return moving_digits(12, frames=8, size=32, digit_size=14, seed=3)


def test_moving_digits_shapes_and_range(clips):
    x, y, pos = clips
    assert x.shape == (12, 1, 8, 32, 32) and x.dtype == torch.float32
    assert y.shape == (12,) and y.dtype == torch.int64
    assert pos.shape == (12, 8, 2)
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert ((pos >= 0) & (pos <= 32 - 14)).all()


def test_moving_digits_deterministic_for_a_seed(clips):
    x, y, pos = clips
    x2, y2, pos2 = moving_digits(12, frames=8, size=32, digit_size=14, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2) and torch.equal(pos, pos2)
    x3, _, _ = moving_digits(12, frames=8, size=32, digit_size=14, seed=4)
    assert not torch.equal(x, x3)


def test_each_frame_is_the_sprite_pasted_at_its_rounded_position():
    """Rebuild clip 0 pixel by pixel with NumPy and compare."""
    x, y, pos = moving_digits(3, frames=6, size=32, digit_size=14, seed=11)
    sprites, labels = digit_sprites("train", 14)
    # find clip 0's sprite: the one whose paste reproduces frame 0
    r, c = (int(v) for v in np.round(pos[0, 0].numpy()))
    patch = ((x[0, 0, 0, r : r + 14, c : c + 14] + 1) / 2).numpy()
    match = [i for i in range(len(sprites)) if np.allclose(sprites[i].numpy(), patch, atol=1e-6)]
    assert match and int(labels[match[0]]) == int(y[0])
    sprite = sprites[match[0]].numpy()
    for f in range(6):
        canvas = np.zeros((32, 32), dtype=np.float32)
        r, c = (int(v) for v in np.round(pos[0, f].numpy()))
        canvas[r : r + 14, c : c + 14] = sprite
        np.testing.assert_allclose(x[0, 0, f].numpy(), canvas * 2 - 1, atol=1e-6)


def test_ink_is_constant_over_a_clip(clips):
    ink = ((clips[0] + 1) / 2).sum(dim=(1, 3, 4))  # (B, F)
    torch.testing.assert_close(ink, ink[:, :1].expand_as(ink), rtol=1e-5, atol=1e-4)


def test_bounce_matches_a_step_by_step_reflection():
    rng = np.random.default_rng(0)
    limit = 18.0
    start = rng.uniform(0, limit, size=(20, 2))
    velocity = rng.uniform(-7, 7, size=(20, 2))
    folded = bounce(start, velocity, 30, limit)
    # simulate: move, then reflect off any wall crossed (velocity flips)
    p, v = start.copy(), velocity.copy()
    for f in range(30):
        np.testing.assert_allclose(folded[:, f], p, atol=1e-9)
        p = p + v
        for _ in range(3):  # a fast point may cross both walls within one frame
            low, high = p < 0, p > limit
            p = np.where(low, -p, np.where(high, 2 * limit - p, p))
            v = np.where(low | high, -v, v)


def test_speed_between_frames_is_in_range_away_from_walls(clips):
    _, _, pos = moving_digits(200, seed=5, speed=(1.0, 3.0))
    step = (pos[:, 1:] - pos[:, :-1]).norm(dim=-1)
    # a bounce folds the path, which can only shorten a step
    assert step.max() <= 3.0 + 1e-9
    assert (step > 0.999).float().mean() > 0.8


def test_render_clips_rejects_positions_off_the_canvas():
    sprites = torch.ones(1, 4, 4)
    with pytest.raises(ValueError, match="positions must lie"):
        render_clips(sprites, np.array([[[0.0, 30.0]]]), size=32)
    with pytest.raises(ValueError, match=r"\(N, D, D\)"):
        render_clips(torch.ones(4, 4), np.zeros((1, 1, 2)), size=32)


def test_moving_digits_bad_arguments():
    with pytest.raises(ValueError, match="smaller than the canvas"):
        moving_digits(2, size=14, digit_size=14)
    with pytest.raises(ValueError, match="frames"):
        moving_digits(2, frames=1)
    with pytest.raises(ValueError, match="speed"):
        moving_digits(2, speed=(3.0, 1.0))
    with pytest.raises(ValueError, match="digits"):
        moving_digits(2, digits=[10])


def test_digit_filter():
    _, y, _ = moving_digits(30, digits=[3, 7], seed=1)
    assert set(y.tolist()) <= {3, 7}


# --- audio ----------------------------------------------------------------------------------------
def test_tones_shapes_range_and_determinism():
    w, y, f = tones(16, seed=2)
    assert w.shape == (16, 1, 2048) and w.dtype == torch.float32
    assert w.abs().max() <= 1.0
    assert torch.equal(f, torch.tensor(PITCHES, dtype=torch.float64)[y])
    w2, y2, _ = tones(16, seed=2)
    assert torch.equal(w, w2) and torch.equal(y, y2)
    assert not torch.equal(w, tones(16, seed=3)[0])


def test_each_tone_peaks_at_its_pitch():
    """Independent of the package's pitch metric: plain zero-padded FFT argmax."""
    w, _, f = tones(12, seed=7)
    n = 16 * 2048
    spectrum = np.abs(np.fft.rfft(w[:, 0].numpy() * np.hanning(2048), n=n))
    peak = spectrum.argmax(axis=1) * SAMPLE_RATE / n
    np.testing.assert_allclose(peak, f.numpy(), atol=SAMPLE_RATE / n)


def test_pure_tone_matches_the_formula():
    """With one harmonic, constant envelope pieces: the middle of a tone is a * sustain * sin(...)."""
    w, y, f = tones(1, harmonics=(1.0,), seed=0)
    rng = np.random.default_rng(0)
    label = rng.integers(0, len(PITCHES), size=1)
    amp = rng.uniform(0.5, 0.9, size=1)
    phase = rng.uniform(0, 2 * math.pi, size=1)
    rng.uniform(0.01, 0.06, size=1)  # attack
    rng.uniform(0.05, 0.15, size=1)  # decay
    sustain = rng.uniform(0.5, 0.9, size=1)
    assert int(y[0]) == int(label[0])
    t = np.arange(900, 1100) / SAMPLE_RATE  # 0.225-0.275 s: after attack+decay (<= 0.21 s), before release
    expected = amp[0] * sustain[0] * np.sin(2 * math.pi * f[0].item() * t + phase[0])
    np.testing.assert_allclose(w[0, 0, 900:1100].numpy(), expected, atol=1e-5)


def test_adsr_envelope_hand_values():
    env = adsr_envelope(100, attack=0.01, decay=0.01, sustain=0.5, release=0.01, sample_rate=1000)
    assert env[0] == 0.0
    assert env[5] == pytest.approx(0.5)  # halfway up the attack
    assert env[10] == pytest.approx(1.0)  # top of the attack
    assert env[15] == pytest.approx(0.75)  # halfway down the decay
    assert env[50] == pytest.approx(0.5)  # sustain
    assert env[95] == pytest.approx(0.5 * 0.5)  # halfway through the release
    assert env[-1] == pytest.approx(0.5 * 0.1)  # 1 ms before the end: a tenth of the release left


def test_tones_bad_arguments():
    with pytest.raises(ValueError, match="Nyquist"):
        tones(2, pitches=(1500.0,), sample_rate=4000)
    with pytest.raises(ValueError, match="pitches"):
        tones(2, pitches=(-1.0,))
    with pytest.raises(ValueError, match="attack"):
        adsr_envelope(10, -0.1, 0.1, 0.5, 0.1)


# --- bad input (issue 17) ------------------------------------------------------------------------------


def test_bounce_refuses_non_finite_input_and_takes_lists():
    start, velocity = np.zeros((1, 2)), np.ones((1, 2))
    for limit in (math.nan, math.inf):
        with pytest.raises(ValueError, match="limit"):
            bounce(start, velocity, 5, limit)
    with pytest.raises(ValueError, match="velocity"):
        bounce(start, velocity * math.nan, 5, 10.0)
    with pytest.raises(ValueError, match="frames"):
        bounce(start, velocity, 2.5, 10.0)
    assert bounce([[0.0, 0.0]], [[1.0, 1.0]], 5, 10.0).shape == (1, 5, 2)
    with pytest.raises(ValueError, match="sprites"):
        render_clips(np.ones((1, 4, 4)), np.zeros((1, 2, 2)), 8)


def test_moving_digits_checks_speed_seed_and_sizes():
    with pytest.raises(ValueError, match="finite"):
        moving_digits(2, 2, 16, speed=(1.0, math.inf))  # was an OverflowError inside NumPy
    with pytest.raises(TypeError, match="pair"):
        moving_digits(2, 2, 16, speed="fast")
    with pytest.raises(ValueError, match="seed"):
        moving_digits(2, 2, 16, seed=-1)
    with pytest.raises(ValueError, match="smaller than the canvas"):
        moving_digits(2, 2, 16, digit_size=40)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pitches": [math.nan]},
        {"harmonics": [1.0, -0.5]},
        {"amplitude": (0.0, 5.0)},
        {"amplitude": (math.nan, 1.0)},
    ],
)
def test_tones_refuse_non_finite_or_out_of_range_parameters(kwargs):
    with pytest.raises(ValueError):
        tones(2, length=64, **kwargs)


def test_envelopes_refuse_non_finite_times_and_rates():
    for kwargs in ({"attack": math.nan}, {"decay": math.inf}, {"sample_rate": 0}):
        args = {"length": 64, "attack": 0.01, "decay": 0.01, "sustain": 0.5, "release": 0.01, **kwargs}
        with pytest.raises(ValueError):
            adsr_envelope(**args)
    with pytest.raises(ValueError, match="seed"):
        tones(2, length=64, seed=-1)
