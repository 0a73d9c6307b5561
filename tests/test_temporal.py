"""13.4: video and audio denoisers, the consistency loss, temporal and pitch metrics.

Expected values are computed here by hand or with plain NumPy, independently of the code under test.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chapter13.audio import AudioDiffusion, dominant_frequency, pitch_metrics, spectrogram
from chapter13.diffusion import NoiseSchedule, diffusion_loss, make_schedule, sample_ddim
from chapter13.synthetic import PITCHES, SAMPLE_RATE, moving_digits, tones
from chapter13.temporal import (
    VideoUNet,
    consistency_loss,
    frame_difference,
    ink_variation,
    temporal_metrics,
    video_diffusion_loss,
    warp_error,
)

SMALL_VIDEO = dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, heads=2)
SMALL_AUDIO = dict(base_channels=8, channel_mults=(1, 2, 2), num_res_blocks=1, heads=2)


def _randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Zero-initialised layers make an untrained network the identity; give every weight a value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model.eval()


# --- shapes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("temporal", [True, False])
@pytest.mark.parametrize("patch", [1, 2])
def test_video_unet_keeps_the_shape(temporal, patch):
    model = VideoUNet(temporal=temporal, patch=patch, **SMALL_VIDEO)
    x = torch.randn(2, 1, 4, 16, 16)
    out = model(x, torch.tensor([3, 999]))
    assert out.shape == (2, 1, 4, 16, 16)


def test_video_unet_two_channels_and_out_channels():
    model = VideoUNet(in_channels=2, out_channels=3, **SMALL_VIDEO)
    assert model(torch.randn(1, 2, 2, 8, 8), torch.tensor([0])).shape == (1, 3, 2, 8, 8)


def test_video_unet_starts_at_zero():
    """The output convolution starts at zero (as in the 13.2 U-Net), so an untrained model predicts 0."""
    out = VideoUNet(**SMALL_VIDEO)(torch.randn(1, 1, 4, 8, 8), torch.tensor([5]))
    assert torch.count_nonzero(out) == 0


def test_per_frame_model_never_mixes_frames():
    """temporal=False: the prediction for frame f depends on frame f only."""
    model = _randomise(VideoUNet(temporal=False, **SMALL_VIDEO))
    x = torch.randn(2, 1, 4, 8, 8)
    y = x.clone()
    y[:, :, 0] += 1.0
    t = torch.tensor([10, 500])
    a, b = model(x, t), model(y, t)
    assert not torch.allclose(a[:, :, 0], b[:, :, 0])
    torch.testing.assert_close(a[:, :, 1:], b[:, :, 1:], rtol=0, atol=1e-6)


def test_joint_model_mixes_frames_across_the_clip():
    """temporal=True: changing the first frame changes the prediction for the last."""
    model = _randomise(VideoUNet(temporal=True, **SMALL_VIDEO))
    x = torch.randn(1, 1, 4, 8, 8)
    y = x.clone()
    y[:, :, 0] += 1.0
    t = torch.tensor([10])
    assert (model(x, t)[:, :, -1] - model(y, t)[:, :, -1]).abs().max() > 1e-4


def test_per_frame_model_equals_the_same_model_on_single_frames():
    model = _randomise(VideoUNet(temporal=False, **SMALL_VIDEO))
    x = torch.randn(1, 1, 4, 8, 8)
    t = torch.tensor([7])
    whole = model(x, t)
    for f in range(4):
        single = model(x[:, :, f : f + 1], t)
        torch.testing.assert_close(whole[:, :, f : f + 1], single, rtol=1e-5, atol=1e-5)


def test_video_unet_bad_input_is_explained():
    model = VideoUNet(**SMALL_VIDEO)  # 2 levels: halves once
    t = torch.tensor([1])
    with pytest.raises(ValueError, match=r"\(B, C, F, H, W\).*unsqueeze\(2\)"):
        model(torch.randn(1, 1, 8, 8), t)
    with pytest.raises(ValueError, match="5 dimensions"):
        model(torch.randn(1, 1, 2, 2, 8, 8), t)
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(1, 3, 2, 8, 8), t)
    with pytest.raises(ValueError, match=r"3 frames.*divisible by 2.*temporal_downsample=False"):
        model(torch.randn(1, 1, 3, 8, 8), t)
    with pytest.raises(ValueError, match="divisible by 2"):
        model(torch.randn(1, 1, 2, 7, 8), t)
    three = VideoUNet(base_channels=8, channel_mults=(1, 2, 2), heads=2)
    with pytest.raises(ValueError, match=r"6 frames cannot be halved 2 times.*divisible by 4"):
        three(torch.randn(1, 1, 6, 8, 8), t)
    # without temporal down-sampling any clip length works
    free = VideoUNet(base_channels=8, channel_mults=(1, 2, 2), heads=2, temporal_downsample=False)
    assert free(torch.randn(1, 1, 6, 8, 8), t).shape == (1, 1, 6, 8, 8)
    with pytest.raises(ValueError, match="one timestep per example"):
        model(torch.randn(2, 1, 2, 8, 8), torch.tensor([1, 2, 3]))


def test_video_unet_config_rebuilds_the_model():
    model = _randomise(VideoUNet(patch=2, **SMALL_VIDEO))
    copy = VideoUNet(**model.config)
    copy.load_state_dict(model.state_dict())
    x, t = torch.randn(1, 1, 2, 8, 8), torch.tensor([3])
    torch.testing.assert_close(copy.eval()(x, t), model(x, t))


@pytest.mark.parametrize("patch", [1, 4])
def test_audio_diffusion_keeps_the_shape(patch):
    model = AudioDiffusion(patch=patch, **SMALL_AUDIO)
    assert model(torch.randn(3, 1, 128), torch.tensor([0, 1, 2])).shape == (3, 1, 128)


def test_audio_patching_is_a_pure_reshape():
    """With patch=p the U-Net sees (B, C·p, L/p): sample j·p + i of channel c in channel c·p + i at
    position j, and the output is unfolded the same way back."""
    from chapter13.audio import fold_patches, unfold_patches

    b, length, p = 2, 64, 4
    x = torch.arange(b * 2 * length, dtype=torch.float32).reshape(b, 2, length)
    folded = fold_patches(x, p)
    assert folded.shape == (b, 2 * p, length // p)
    assert folded[0, 1, 2] == x[0, 0, 2 * p + 1] and folded[1, p + 3, 5] == x[1, 1, 5 * p + 3]
    assert torch.equal(unfold_patches(folded, p), x)
    # the model uses exactly these: its first layer sees the folded input, its output is unfolded
    model = AudioDiffusion(patch=p, **SMALL_AUDIO)
    seen = []
    model.init_conv.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    wave = torch.randn(b, 1, length)
    model(wave, torch.tensor([1, 2]))
    assert torch.equal(seen[0], fold_patches(wave, p))


def test_audio_bad_input_is_explained():
    model = AudioDiffusion(**SMALL_AUDIO)  # 3 levels: length divisible by 4
    t = torch.tensor([1])
    with pytest.raises(ValueError, match=r"\(B, C, L\).*unsqueeze\(1\)"):
        model(torch.randn(1, 128), t)
    with pytest.raises(ValueError, match="3 dimensions"):
        model(torch.randn(1, 1, 8, 16), t)
    with pytest.raises(ValueError, match=r"130 samples.*divisible by 4.*132"):
        model(torch.randn(1, 1, 130), t)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        AudioDiffusion(kernel_size=4)


def test_samplers_run_on_clips_and_waveforms():
    """The 13.2 samplers are layout-agnostic: they work on (B, C, F, H, W) and (B, C, L)."""
    schedule = NoiseSchedule.linear(100)
    gen = torch.Generator().manual_seed(0)
    video = _randomise(VideoUNet(**SMALL_VIDEO))
    clips = sample_ddim(video, schedule, (2, 1, 4, 8, 8), steps=3, generator=gen, progress=False)
    assert clips.shape == (2, 1, 4, 8, 8) and torch.isfinite(clips).all()
    audio = _randomise(AudioDiffusion(**SMALL_AUDIO))
    sounds = sample_ddim(audio, schedule, (2, 1, 64), steps=3, generator=gen, progress=False)
    assert sounds.shape == (2, 1, 64) and sounds.abs().max() <= 1.0


# --- consistency loss ------------------------------------------------------------------------------
def test_consistency_loss_is_zero_for_identical_clips():
    x = torch.randn(2, 3, 5, 4, 4)
    assert consistency_loss(x, x.clone()).item() == 0.0


def test_consistency_loss_hand_computed():
    """One pixel, frames [0, 1, 3] against a prediction of zeros:
    per-frame MSE (0 + 1 + 9) / 3, frame differences [1, 2] -> MSE (1 + 4) / 2, total 10/3 + 0.5 * 2.5."""
    target = torch.tensor([0.0, 1.0, 3.0]).reshape(1, 1, 3, 1, 1)
    pred = torch.zeros_like(target)
    assert consistency_loss(pred, target).item() == pytest.approx(10 / 3 + 0.5 * 2.5)
    assert consistency_loss(pred, target, temporal_weight=0.0).item() == pytest.approx(10 / 3)


def test_consistency_loss_differences_frames_not_channels():
    """Two channels, two frames: the difference must run along frames (dim 2)."""
    target = torch.tensor([[1.0, 2.0], [10.0, 20.0]]).reshape(1, 2, 2, 1, 1)  # channel c, frame f
    pred = torch.zeros_like(target)
    frame_term = (1 + 4 + 100 + 400) / 4
    diff_term = ((2 - 1) ** 2 + (20 - 10) ** 2) / 2
    assert consistency_loss(pred, target).item() == pytest.approx(frame_term + 0.5 * diff_term)


def test_consistency_loss_penalises_flicker_more_than_a_constant_error():
    target = torch.zeros(1, 1, 4, 2, 2)
    constant = torch.ones_like(target)
    flicker = torch.tensor([1.0, -1.0, 1.0, -1.0]).reshape(1, 1, 4, 1, 1).expand_as(target)
    assert consistency_loss(constant, target).item() == pytest.approx(1.0)
    assert consistency_loss(flicker, target).item() == pytest.approx(1.0 + 0.5 * 4.0)


def test_consistency_loss_bad_input():
    with pytest.raises(ValueError, match=r"\(B, C, F, H, W\)"):
        consistency_loss(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="same shape"):
        consistency_loss(torch.zeros(1, 1, 3, 4, 4), torch.zeros(1, 1, 4, 4, 4))
    with pytest.raises(ValueError, match="at least 2 frames"):
        consistency_loss(torch.zeros(1, 1, 1, 4, 4), torch.zeros(1, 1, 1, 4, 4))
    with pytest.raises(ValueError, match="temporal_weight"):
        consistency_loss(torch.zeros(1, 1, 2, 4, 4), torch.zeros(1, 1, 2, 4, 4), temporal_weight=-1)


def test_video_loss_without_the_temporal_term_is_the_ddpm_loss():
    """Same draws of t and ε: temporal_weight=0 reproduces chapter13.diffusion.diffusion_loss."""
    schedule = NoiseSchedule.linear(50)
    model = _randomise(VideoUNet(**SMALL_VIDEO))
    x0 = torch.rand(2, 1, 4, 8, 8) * 2 - 1
    ours = video_diffusion_loss(
        model, schedule, x0, temporal_weight=0.0, generator=torch.Generator().manual_seed(5)
    )
    ref = diffusion_loss(model, schedule, x0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(ours, ref)
    full = video_diffusion_loss(model, schedule, x0, generator=torch.Generator().manual_seed(5))
    assert full > ours  # the frame-difference term is non-negative and here positive


def test_video_loss_by_hand():
    """Rebuild the loss from its definition with the same random draws."""
    schedule = NoiseSchedule.linear(50)
    model = _randomise(VideoUNet(**SMALL_VIDEO))
    x0 = torch.rand(2, 1, 4, 8, 8) * 2 - 1
    gen = torch.Generator().manual_seed(9)
    t = torch.randint(0, 50, (2,), generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    ab = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 50, dtype=torch.float64), 0)[t].float()
    x_t = ab.sqrt().view(2, 1, 1, 1, 1) * x0 + (1 - ab).sqrt().view(2, 1, 1, 1, 1) * eps
    with torch.no_grad():
        e = model(x_t, t) - eps
    expected = e.pow(2).mean() + 0.5 * (e[:, :, 1:] - e[:, :, :-1]).pow(2).mean()
    with torch.no_grad():
        got = video_diffusion_loss(model, schedule, x0, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


# --- temporal metrics -------------------------------------------------------------------------------
def test_frame_difference_hand_computed():
    x = torch.tensor([0.0, 1.0, 3.0]).reshape(1, 1, 3, 1, 1)
    assert frame_difference(x).item() == pytest.approx((1 + 4) / 2)


def test_real_clips_have_zero_warp_error_and_constant_ink():
    clips, _, _ = moving_digits(16, seed=21)
    assert warp_error(clips).max().item() == pytest.approx(0.0, abs=1e-7)
    assert ink_variation(clips).max().item() < 1e-5
    assert frame_difference(clips).min().item() > 0  # they do move


def test_warp_error_of_a_known_translation_and_of_a_new_digit():
    frame = -torch.ones(1, 1, 1, 12, 12)
    frame[..., 2:5, 3:6] = 1.0
    moved = torch.roll(frame, shifts=(2, -1), dims=(3, 4))
    clip = torch.cat([frame, moved], dim=2)
    assert warp_error(clip, max_shift=2).item() == 0.0
    assert warp_error(clip, max_shift=1).item() > 0  # the motion is outside the search window
    other = -torch.ones_like(frame)
    other[..., 7:9, 7:11] = 1.0  # different shape and amount of ink: no translation explains it
    clip2 = torch.cat([frame, other], dim=2)
    # best possible: align as well as possible; 9 ink pixels vs 8 cannot all match
    assert warp_error(clip2, max_shift=4).item() > 0


def test_ink_variation_hand_computed():
    x = -torch.ones(1, 1, 2, 2, 2)
    x[0, 0, 0, 0, 0] = 1.0  # ink 1 in frame 0
    x[0, 0, 1, :, 0] = 1.0  # ink 2 in frame 1
    # mean 1.5, population std 0.5
    assert ink_variation(x).item() == pytest.approx(0.5 / 1.5)


def test_per_frame_shuffled_clips_score_worse_than_real_ones():
    """Frames drawn from different clips (what an image model sampled per frame gives) break all three."""
    clips, _, _ = moving_digits(32, seed=4)
    gen = torch.Generator().manual_seed(0)
    shuffled = clips.clone()
    for f in range(clips.shape[2]):
        shuffled[:, :, f] = clips[torch.randperm(32, generator=gen), :, f]
    real, mixed = temporal_metrics(clips), temporal_metrics(shuffled)
    # motion alone already changes many pixels, so flicker separates the two less than warping does
    assert mixed["frame_difference"] > 1.4 * real["frame_difference"]
    assert mixed["warp_error"] > 0.05 > real["warp_error"]
    assert mixed["ink_variation"] > 0.05 > real["ink_variation"]


def test_temporal_metrics_need_clips():
    with pytest.raises(ValueError, match=r"\(B, C, F, H, W\)"):
        temporal_metrics(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 2 frames"):
        frame_difference(torch.zeros(2, 1, 1, 8, 8))


# --- pitch ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("freq", [261.63, 437.3, 1000.0 / 3])
def test_dominant_frequency_recovers_a_pure_tone(freq):
    sr, n = 4000, 2048
    t = np.arange(n) / sr
    wave = torch.tensor(0.7 * np.sin(2 * math.pi * freq * t + 0.3), dtype=torch.float32)
    got = dominant_frequency(wave[None, None], sr).item()
    assert got == pytest.approx(freq, rel=1e-3)  # 0.1 %, 30x tighter than the 3 % criterion


def test_dominant_frequency_ignores_dc_and_finds_the_louder_partial():
    sr, n = 8000, 4096
    t = np.arange(n) / sr
    wave = 0.5 + 0.2 * np.sin(2 * math.pi * 300 * t) + 0.6 * np.sin(2 * math.pi * 1250 * t)
    assert dominant_frequency(torch.tensor(wave)[None], sr).item() == pytest.approx(1250, rel=1e-3)


def test_pitch_metrics_on_training_tones_and_on_detuned_ones():
    waves, labels, _ = tones(24, seed=1)
    m = pitch_metrics(waves, PITCHES, SAMPLE_RATE)
    assert m["within"] == 1.0
    assert torch.equal(m["nearest"], labels)
    assert sum(m["counts"]) == 24
    # 5 % sharp: every tone misses the 3 % window (neighbouring pitches are >= 19 % apart)
    sharp, _, _ = tones(24, pitches=[p * 1.05 for p in PITCHES], seed=1)
    assert pitch_metrics(sharp, PITCHES, SAMPLE_RATE)["within"] == 0.0
    # 2 % flat: still within 3 %
    flat, _, _ = tones(24, pitches=[p * 0.98 for p in PITCHES], seed=1)
    assert pitch_metrics(flat, PITCHES, SAMPLE_RATE)["within"] == 1.0


def test_pitch_metric_bad_input():
    with pytest.raises(ValueError, match="mono"):
        dominant_frequency(torch.zeros(2, 2, 64), 4000)
    with pytest.raises(ValueError, match="sample_rate"):
        dominant_frequency(torch.zeros(2, 64), 0)
    with pytest.raises(ValueError, match="tolerance"):
        pitch_metrics(torch.zeros(2, 64), PITCHES, 4000, tolerance=3)


def test_spectrogram_peaks_at_the_tone():
    sr = 4000
    t = np.arange(2048) / sr
    wave = torch.tensor(np.sin(2 * math.pi * 500 * t), dtype=torch.float32)
    spec = spectrogram(wave[None], n_fft=256, hop=64)
    assert spec.shape[:2] == (1, 129)
    assert int(spec[0].mean(dim=1).argmax()) == round(500 * 256 / sr)  # bin 32


# --- exercises ---------------------------------------------------------------------------------------
def test_exercise_checkers_accept_the_solutions_and_reject_wrong_answers(capsys):
    from chapter13.book.sec13_4 import consistency_loss as book_loss
    from chapter13.exercises.sec13_4 import (
        check_consistency_loss,
        check_dominant_frequency,
        check_factorised_cost,
        check_reversed_warp_error,
        check_samples_per_period,
    )

    assert check_factorised_cost(27 / 12)
    assert not check_factorised_cost(None)
    assert not check_factorised_cost(3.0)
    assert not check_factorised_cost([1])
    clips, _, _ = moving_digits(4, seed=8)
    assert check_reversed_warp_error(float(warp_error(clips.flip(2)).mean()))
    assert not check_reversed_warp_error(None)
    assert not check_reversed_warp_error(0.3)

    def along_dim_1(p, y):  # differences the channel axis of (B, C, F, H, W): empty for C = 1
        return F.mse_loss(p, y) + 0.5 * F.mse_loss(p[:, 1:] - p[:, :-1], y[:, 1:] - y[:, :-1])

    assert check_consistency_loss(consistency_loss)
    assert check_consistency_loss(book_loss)  # the printed listing differences dim 2, the frame axis
    capsys.readouterr()
    assert not check_consistency_loss(None)
    assert not check_consistency_loss(lambda p, y: None)  # the notebook's template, untouched
    assert capsys.readouterr().out.count("Not attempted yet: my_consistency_loss(pred, target)") == 2
    assert not check_consistency_loss(lambda p, y: ((p - y) ** 2).mean())  # frame term only
    assert not check_consistency_loss(along_dim_1)  # NaN for one channel
    assert "NaN" in capsys.readouterr().out
    assert not check_consistency_loss(lambda p, y: 1 / 0)  # raises: reported, not propagated
    assert not check_consistency_loss("loss")

    assert check_samples_per_period(4000 / 523.25)
    assert not check_samples_per_period(None)
    assert not check_samples_per_period(523.25 / 4000)
    assert not check_samples_per_period("many")

    def solution(wave, sr):
        spectrum = np.abs(np.fft.rfft(wave - wave.mean(), n=8 * len(wave)))
        return spectrum.argmax() * sr / (8 * len(wave))

    def with_dc(wave, sr):
        return np.abs(np.fft.rfft(wave)).argmax() * sr / len(wave)

    assert check_dominant_frequency(solution)
    capsys.readouterr()
    assert not check_dominant_frequency(None)
    assert not check_dominant_frequency(lambda w, sr: None)  # the notebook's template, untouched
    assert capsys.readouterr().out.count("Not attempted yet: my_dominant_frequency") == 2
    assert not check_dominant_frequency(with_dc)
    assert "DC" in capsys.readouterr().out
    assert not check_dominant_frequency(
        lambda w, sr: np.abs(np.fft.rfft(w - w.mean())).argmax()
    )  # a bin index


def test_book_listings_are_outlines_and_the_printed_loss_is_ours():
    """The chapter's VideoUNet and AudioDiffusion are outlines (their printed layers run, their frames and
    sample_rate arguments change nothing); its consistency_loss differences the frame axis, as ours does.
    tests/test_book.py checks the listings against the print."""
    from chapter13.book import sec13_4 as book

    video = book.VideoUNet(channels=3, frames=16)
    assert [p.shape for p in video.parameters()] == [p.shape for p in book.VideoUNet(frames=5).parameters()]
    layers = torch.nn.Sequential(video.conv3d_1, video.conv3d_2)
    assert layers(torch.randn(1, 3, 6, 8, 8)).shape == (1, 128, 6, 8, 8)  # any number of frames
    with pytest.raises(NotImplementedError):
        video(torch.randn(1, 3, 16, 8, 8), torch.tensor([1]), None)
    audio = book.AudioDiffusion(channels=1, sample_rate=16000)
    assert [p.shape for p in audio.parameters()] == [
        p.shape for p in book.AudioDiffusion(sample_rate=4000).parameters()
    ]
    with pytest.raises(NotImplementedError):
        audio(torch.randn(1, 1, 64))
    for shape in [(2, 1, 8, 5, 5), (2, 3, 4, 5, 5)]:
        pred, target = torch.randn(shape), torch.randn(shape)
        torch.testing.assert_close(book.consistency_loss(pred, target), consistency_loss(pred, target))
    # differencing dim 1 instead (the channel axis here) would be a different loss
    pred, target = torch.randn(2, 3, 4, 5, 5), torch.randn(2, 3, 4, 5, 5)
    swapped = book.consistency_loss(pred.transpose(1, 2), target.transpose(1, 2))
    assert not torch.allclose(swapped, consistency_loss(pred, target))


# --- v-prediction -----------------------------------------------------------------------------------------
def test_v_model_returns_the_true_noise_when_its_network_predicts_the_true_v():
    """v = sqrt(ab) eps - sqrt(1 - ab) x0 (Salimans & Ho 2022); forward must turn v back into eps."""
    model = VideoUNet(prediction="v", schedule="linear", T=100, **SMALL_VIDEO)
    x0 = torch.rand(3, 1, 2, 8, 8) * 2 - 1
    eps = torch.randn(3, 1, 2, 8, 8)
    t = torch.tensor([0, 40, 99])
    ab = (
        torch.cumprod(1 - torch.linspace(1e-4, 0.02, 100, dtype=torch.float64), 0)[t]
        .float()
        .view(3, 1, 1, 1, 1)
    )
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    v = ab.sqrt() * eps - (1 - ab).sqrt() * x0
    model.predict = lambda x, tt: v  # an oracle network
    torch.testing.assert_close(model(x_t, t), eps, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.target(x0, eps, t), v)


def test_v_model_loss_and_schedule_check():
    model = _randomise(AudioDiffusion(prediction="v", schedule="cosine", T=50, **SMALL_AUDIO))
    x0 = torch.rand(2, 1, 64) * 2 - 1
    gen = torch.Generator().manual_seed(1)
    loss = diffusion_loss(model, make_schedule("cosine", 50), x0, space="native", generator=gen)
    # by hand, same draws
    gen = torch.Generator().manual_seed(1)
    t = torch.randint(0, 50, (2,), generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    ab = make_schedule("cosine", 50).alpha_bars[t].float().view(2, 1, 1)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    with torch.no_grad():
        expected = (model.predict(x_t, t) - (ab.sqrt() * eps - (1 - ab).sqrt() * x0)).pow(2).mean()
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="built for the 'cosine' schedule"):
        diffusion_loss(model, NoiseSchedule.linear(50), x0, space="native")
    with pytest.raises(ValueError, match="prediction"):
        AudioDiffusion(prediction="x0")


def test_consistency_loss_per_clip_reduction():
    pred, target = torch.randn(3, 1, 4, 2, 2), torch.randn(3, 1, 4, 2, 2)
    per_clip = consistency_loss(pred, target, reduction="none")
    assert per_clip.shape == (3,)
    for i in range(3):
        torch.testing.assert_close(per_clip[i], consistency_loss(pred[i : i + 1], target[i : i + 1]))
    torch.testing.assert_close(per_clip.mean(), consistency_loss(pred, target))


def test_min_snr_weighting_by_hand():
    """Hang et al. 2023: weight min(SNR, g) / SNR for eps-targets, min(SNR, g) / (SNR + 1) for v
    (each in the model's own space, ``space="native"``)."""
    schedule = NoiseSchedule.cosine(40)
    x0 = torch.rand(4, 1, 32) * 2 - 1
    for prediction in ("eps", "v"):
        model = _randomise(AudioDiffusion(prediction=prediction, schedule="cosine", T=40, **SMALL_AUDIO))
        with torch.no_grad():
            plain = [
                diffusion_loss(
                    model, schedule, x0[i : i + 1], space="native", generator=torch.Generator().manual_seed(i)
                )
                for i in range(4)
            ]
            weighted = [
                diffusion_loss(
                    model,
                    schedule,
                    x0[i : i + 1],
                    space="native",
                    min_snr_gamma=2.0,
                    generator=torch.Generator().manual_seed(i),
                )
                for i in range(4)
            ]
        for i in range(4):
            t = int(torch.randint(0, 40, (1,), generator=torch.Generator().manual_seed(i)))
            ab = float(schedule.alpha_bars[t])
            snr = ab / (1 - ab)
            w = min(snr, 2.0) / (snr + 1 if prediction == "v" else snr)
            assert weighted[i].item() == pytest.approx(w * plain[i].item(), rel=1e-5)


def test_inflated_joint_model_starts_as_the_image_model():
    """Make-A-Video initialisation: spatial weights copied, temporal layers at zero -> same outputs."""
    from chapter13.temporal import inflate_from_image_model

    image = _randomise(VideoUNet(temporal=False, **SMALL_VIDEO))
    video = inflate_from_image_model(
        VideoUNet(temporal=True, temporal_downsample=False, **SMALL_VIDEO), image
    )
    x, t = torch.randn(2, 1, 4, 8, 8), torch.tensor([3, 70])
    with torch.no_grad():
        torch.testing.assert_close(video.eval()(x, t), image(x, t), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="temporal_downsample=False"):
        inflate_from_image_model(VideoUNet(temporal=True, **SMALL_VIDEO), image)
    with pytest.raises(ValueError, match="differ in"):
        inflate_from_image_model(
            VideoUNet(temporal=True, temporal_downsample=False, **{**SMALL_VIDEO, "base_channels": 4}), image
        )


# --- identity agreement ------------------------------------------------------------------------------
def test_digit_crops_follow_the_digit():
    """A sprite pasted at integer positions: every frame's crop is the same picture."""
    from chapter13.synthetic import render_clips
    from chapter13.temporal import digit_crops

    sprite = torch.zeros(1, 14, 14)
    sprite[0, 3:11, 6:8] = 1.0  # a "1"
    sprite[0, 3, 4:8] = 1.0
    positions = np.array([[[2, 3], [5, 7], [9, 12], [16, 16]]], dtype=float)  # top-left (row, col)
    clip = render_clips(sprite, positions, size=32)
    crops = digit_crops(clip, out_size=14)  # no resizing: the crop itself
    assert crops.shape == (1, 4, 1, 14, 14)
    for f in range(1, 4):
        torch.testing.assert_close(crops[0, f], crops[0, 0])
    # the crop is centred on the ink: its centroid sits in the middle of the crop
    ink = (crops[0, 0, 0] + 1) / 2
    rows = (ink.sum(1) * torch.arange(14)).sum() / ink.sum()
    assert abs(float(rows) - 6.5) <= 0.5


def test_identity_agreement_of_real_and_shuffled_clips():
    from chapter13.temporal import identity_consistency

    clips, labels, _ = moving_digits(24, split="test", seed=3)
    real = identity_consistency(clips)
    assert real["agreement"] == 1.0
    assert real["labels"].shape == (24, 8)
    majority = real["labels"].mode(dim=1).values
    assert (majority == labels).float().mean() > 0.85  # the classifier reads the right digit
    gen = torch.Generator().manual_seed(0)
    shuffled = clips.clone()
    for f in range(8):
        shuffled[:, :, f] = clips[torch.randperm(24, generator=gen), :, f]
    assert identity_consistency(shuffled)["agreement"] < 0.6


def test_space_time_attention_levels():
    model = _randomise(VideoUNet(space_time_attention=[0, 1], **SMALL_VIDEO))
    x = torch.randn(1, 1, 4, 8, 8)
    assert model(x, torch.tensor([3])).shape == x.shape
    assert model.config["space_time_attention"] == [0, 1]
    blocks = [m for name, m in model.named_modules() if name.endswith("st_attn") and m is not None]
    assert blocks and {b.attention.heads for b in blocks} == {SMALL_VIDEO["heads"]}  # the model's heads
    # 2 heads must also work where 4 would not divide the channels (6 = base_channels here)
    VideoUNet(**{**SMALL_VIDEO, "base_channels": 6}, space_time_attention=[0])
    # per-frame models ignore it: still no mixing between frames
    frames_only = VideoUNet(temporal=False, space_time_attention=[0], **SMALL_VIDEO)
    assert not any("st_attn" in k for k in frames_only.state_dict())
    with pytest.raises(ValueError, match=r"levels 0\.\.1"):
        VideoUNet(space_time_attention=[2], **SMALL_VIDEO)


def test_space_time_attention_sees_every_frame():
    from chapter13.temporal import SpaceTimeAttention

    attn = _randomise(SpaceTimeAttention(8, heads=2))
    x = torch.randn(1, 8, 4, 3, 3)
    y = x.clone()
    y[:, :, 0, 0, 0] += 1.0  # one position of the first frame
    change = (attn(y) - attn(x)).abs().amax(dim=(0, 1, 3, 4))
    assert (change[1:] > 0).all()  # reaches every other frame directly


def test_relative_flicker_hand_values():
    from chapter13.temporal import relative_flicker

    still = -torch.ones(1, 1, 3, 4, 4)
    still[..., 1, 1] = 1.0
    assert relative_flicker(still).item() == 0.0
    jump = -torch.ones(1, 1, 2, 4, 4)
    jump[0, 0, 0, 0, 0] = 1.0
    jump[0, 0, 1, 3, 3] = 0.0  # half as bright, elsewhere: disjoint ink -> 2
    assert relative_flicker(jump).item() == pytest.approx(2.0)
    half = -torch.ones(1, 1, 2, 1, 2)
    half[0, 0, 0, 0, :] = 1.0  # u = [2, 2]
    half[0, 0, 1, 0, 0] = 1.0  # u = [2, 0]
    # num = 4, den = 0.5 * (8 + 4) = 6
    assert relative_flicker(half).item() == pytest.approx(4 / 6)


# --- bad input (issue 17) ------------------------------------------------------------------------------


def _clips() -> torch.Tensor:
    return moving_digits(2, frames=4, size=16, digit_size=8)[0]


def test_temporal_metrics_refuse_empty_other_ranges_nan_and_huge_shifts():
    clips = _clips()
    with pytest.raises(ValueError, match="empty batch"):
        temporal_metrics(clips[:0])  # was a dict of NaN
    with pytest.raises(ValueError, match=r"x \* 2 - 1"):
        temporal_metrics((clips + 1) / 2)  # was scored as if in [-1, 1]
    with pytest.raises(TypeError, match=r"127\.5"):
        temporal_metrics(((clips + 1) * 127.5).to(torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        temporal_metrics(clips.index_fill(0, torch.tensor([0]), math.nan))
    with pytest.raises(ValueError, match="smaller than the frames"):
        temporal_metrics(clips, max_shift=16)
    want = temporal_metrics(clips)
    got = temporal_metrics((clips + 1) / 2, value_range=(0, 1))
    assert got == pytest.approx(want, abs=1e-6)


def test_frame_measures_and_the_consistency_loss_refuse_non_finite_values():
    clips = _clips()
    broken = clips.index_fill(0, torch.tensor([0]), math.nan)
    for measure in (frame_difference, ink_variation, warp_error):
        with pytest.raises(ValueError, match="NaN"):
            measure(broken)
    with pytest.raises(ValueError, match="background"):
        warp_error(clips, 2, math.nan)
    with pytest.raises(ValueError, match="temporal_weight"):
        consistency_loss(clips, clips, math.inf)  # inf * 0 used to give NaN
    with pytest.raises(TypeError, match="target"):
        consistency_loss(clips, clips.numpy())


def test_video_and_audio_models_name_dtype_and_device_fixes():
    video = VideoUNet(**SMALL_VIDEO, temporal_downsample=False, T=20)
    sound = AudioDiffusion(**SMALL_AUDIO, T=20)
    clips, waves = _clips(), torch.zeros(2, 1, 64)
    t = torch.zeros(2, dtype=torch.long)
    for model, x in ((video, clips), (sound, waves)):
        with pytest.raises(TypeError, match="float16"):
            model(x.half(), t)
        with pytest.raises(TypeError, match="floating point"):
            model(x.long(), t)
        with pytest.raises(ValueError, match="meta"):
            model(x.to("meta"), t)


def test_pitch_measures_refuse_infinite_rates_nan_waves_and_empty_batches():
    waves = tones(2, length=256)[0]
    with pytest.raises(ValueError, match="finite"):
        dominant_frequency(waves, math.inf)  # was inf Hz
    with pytest.raises(TypeError, match="number"):
        dominant_frequency(waves, "4000")
    with pytest.raises(ValueError, match="NaN"):
        dominant_frequency(waves * math.nan, SAMPLE_RATE)
    with pytest.raises(ValueError, match="empty batch"):
        pitch_metrics(waves[:0], PITCHES, SAMPLE_RATE)  # was an MKL error
    with pytest.raises(ValueError, match="positive frequencies"):
        pitch_metrics(waves, [math.nan], SAMPLE_RATE)
    for kwargs in ({"n_fft": 4096}, {"n_fft": 0}, {"hop": 0}):
        with pytest.raises(ValueError, match=r"n_fft|hop"):
            spectrogram(waves, **kwargs)


# --- class conditioning (the chapter's VideoUNet.forward(x, t, text_emb), with a digit label) --------
def test_one_channel_per_group_erases_the_embedding():
    """A ResBlock adds the time (and label) embedding as a per-channel bias before a GroupNorm; with one
    channel per group (``norm_groups`` gives 8 groups to 8 channels) that norm subtracts it exactly, so
    the network cannot tell t apart. Fewer groups (``max_norm_groups``) keep it."""
    x = torch.randn(2, 1, 4, 8, 8)
    a, b = torch.tensor([10, 10]), torch.tensor([900, 900])
    erased = _randomise(VideoUNet(**SMALL_VIDEO))  # 8 and 16 channels: 1 channel per group everywhere
    kept = _randomise(VideoUNet(max_norm_groups=2, **SMALL_VIDEO))
    with torch.no_grad():
        assert (erased(x, a) - erased(x, b)).abs().max() < 1e-5
        assert (kept(x, a) - kept(x, b)).abs().max() > 1e-2
    assert kept.config["max_norm_groups"] == 2 and "max_norm_groups" not in erased.config
    groups = {m.num_groups for m in kept.modules() if isinstance(m, torch.nn.GroupNorm)}
    assert groups == {2}
    with pytest.raises(ValueError, match="max_norm_groups"):
        VideoUNet(max_norm_groups=0, **SMALL_VIDEO)


def test_the_shipped_video_recipe_keeps_the_embedding():
    from chapter13.recipes.video import VIDEO_MODEL

    model = VideoUNet(**VIDEO_MODEL)
    for m in model.modules():
        if isinstance(m, torch.nn.GroupNorm):
            assert m.num_channels // m.num_groups >= 2, "one channel per group erases the time embedding"


def test_conditional_video_unet_uses_its_labels_and_none_is_the_null_label():
    model = _randomise(VideoUNet(num_classes=10, max_norm_groups=2, **SMALL_VIDEO))
    assert model.config["num_classes"] == 10
    x, t = torch.randn(2, 1, 4, 8, 8), torch.tensor([300, 300])
    with torch.no_grad():
        three, seven = model(x, t, labels=torch.tensor([3, 3])), model(x, t, labels=torch.tensor([7, 7]))
        none, null = model(x, t), model(x, t, labels=model.null_labels(2))
    assert (three - seven).abs().max() > 1e-3  # the label changes the prediction
    torch.testing.assert_close(none, null)  # labels=None is the null label of classifier-free guidance
    rebuilt = VideoUNet(**model.config)
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x, t, labels=torch.tensor([3, 3])), three)
    assert "num_classes" not in VideoUNet(**SMALL_VIDEO).config  # unconditional configs are unchanged


def test_video_labels_are_checked():
    x, t = torch.randn(2, 1, 4, 8, 8), torch.tensor([1, 2])
    with pytest.raises(ValueError, match="unconditional VideoUNet"):
        VideoUNet(**SMALL_VIDEO)(x, t, labels=torch.tensor([1, 2]))
    model = VideoUNet(num_classes=10, **SMALL_VIDEO)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        model(x, t, labels=torch.tensor([1]))
    with pytest.raises(ValueError, match=r"0\.\.10"):
        model(x, t, labels=torch.tensor([1, 11]))
    with pytest.raises(TypeError, match="long tensor"):
        model(x, t, labels=torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="num_classes"):
        VideoUNet(num_classes=0, **SMALL_VIDEO)
    with pytest.raises(ValueError, match="unconditional"):
        VideoUNet(**SMALL_VIDEO).null_labels()


def test_sample_clips_with_labels_and_guidance():
    from chapter13.guidance import guided_epsilon
    from chapter13.temporal import sample_clips

    model = _randomise(VideoUNet(num_classes=10, max_norm_groups=2, **SMALL_VIDEO, schedule="cosine"))
    one = sample_clips(model, 2, frames=4, size=8, steps=3, seed=1, labels=4, guidance_scale=2.0)
    again = sample_clips(model, 2, frames=4, size=8, steps=3, seed=1, labels=[4, 4], guidance_scale=2.0)
    torch.testing.assert_close(one, again)
    plain = sample_clips(model, 2, frames=4, size=8, steps=3, seed=1, labels=4)
    assert (one - plain).abs().max() > 1e-4  # guidance changes the samples
    # guidance scale 1 is the plain conditional model; the guided ε is ε(∅) + s (ε(y) - ε(∅))
    x, t = torch.randn(2, 1, 4, 8, 8), torch.tensor([500, 500])
    y = torch.tensor([4, 4])
    with torch.no_grad():
        eps = guided_epsilon(model, x, t, {"labels": y}, {"labels": model.null_labels(1)}, 2.0)
        by_hand = model(x, t) + 2.0 * (model(x, t, labels=y) - model(x, t))
    torch.testing.assert_close(eps, by_hand)
    with pytest.raises(ValueError, match="conditional video model"):
        sample_clips(_randomise(VideoUNet(**SMALL_VIDEO)), 2, frames=4, size=8, steps=2, labels=3)
    with pytest.raises(ValueError, match="one per clip"):
        sample_clips(model, 3, frames=4, size=8, steps=2, labels=[1, 2])
    with pytest.raises(ValueError, match=r"0\.\.9"):
        sample_clips(model, 2, frames=4, size=8, steps=2, labels=10)


def test_video_loss_drops_the_label_with_p_uncond():
    """p_uncond=1 replaces every label by the null label: the loss equals the unconditional one."""
    model = _randomise(
        VideoUNet(num_classes=10, max_norm_groups=2, prediction="v", schedule="cosine", **SMALL_VIDEO)
    )
    schedule = model.schedule
    x0 = torch.rand(3, 1, 4, 8, 8) * 2 - 1
    y = torch.tensor([1, 2, 3])

    def loss(**kw):
        with torch.no_grad():
            return video_diffusion_loss(model, schedule, x0, generator=torch.Generator().manual_seed(5), **kw)

    null, nothing = {"labels": model.null_labels(1)}, model.null_labels(3)
    # the dropout is drawn before t and ε, so both sides draw it
    dropped = loss(labels=y, p_uncond=1.0, null=null)
    torch.testing.assert_close(dropped, loss(labels=nothing, p_uncond=1.0, null=null))
    kept = loss(labels=y, p_uncond=0.0, null=null)
    assert abs(float(kept) - float(loss(labels=nothing, p_uncond=0.0, null=null))) > 1e-6


def test_train_video_joint_model_is_conditional_and_the_frame_model_is_not():
    from chapter13.recipes.video import VIDEO_CONDITIONING, train_video

    joint = train_video(temporal=True, steps=2, n_clips=8, progress=False, train_kwargs={"batch_size": 4})
    frames = train_video(temporal=False, steps=2, n_clips=8, progress=False, train_kwargs={"batch_size": 4})
    assert joint.ema_model.num_classes == VIDEO_CONDITIONING["num_classes"] == 10
    assert frames.ema_model.num_classes is None
    assert all(math.isfinite(v) for v in joint.losses + frames.losses)


# --- the digit crop's contrast ---------------------------------------------------------------------
def test_digit_crop_contrast_saturates_grey_strokes():
    from chapter13.temporal import digit_crops

    clip = torch.full((1, 1, 2, 32, 32), -1.0)
    clip[0, 0, :, 10:20, 10:20] = 0.0  # ink 0.5: a grey square
    clip[0, 0, :, 14:16, 14:16] = -0.5  # ink 0.25 in its middle
    plain = digit_crops(clip, out_size=14, contrast=1.0)
    doubled = digit_crops(clip, out_size=14)  # the default, contrast 2
    ink_plain, ink_doubled = (plain + 1) / 2, (doubled + 1) / 2
    torch.testing.assert_close(ink_doubled, (2 * ink_plain).clamp(max=1.0))
    assert float(ink_doubled.max()) == 1.0 and float(ink_doubled.min()) == 0.0  # background stays 0
    with pytest.raises(ValueError, match="contrast must be >= 1"):
        digit_crops(clip, contrast=0.5)


def test_real_clips_are_legible_through_the_crop():
    """With the default crop the package's classifier is confident on most frames of real clips, and
    every real clip shows one digit in all its frames."""
    from chapter13.temporal import identity_consistency

    clips, labels, _ = moving_digits(32, split="test", seed=12345)
    real = identity_consistency(clips)
    assert real["all_frames"] == 1.0
    assert real["confident_fraction"] > 0.9
    assert (real["clip_labels"] == labels).float().mean() > 0.9


def test_a_conditional_joint_model_inflates_from_an_unconditional_image_model():
    """The label embedding starts at zero: the inflated model is the image model for every label."""
    from chapter13.temporal import inflate_from_image_model

    small = {**SMALL_VIDEO, "max_norm_groups": 2}
    image = _randomise(VideoUNet(temporal=False, **small))
    video = VideoUNet(temporal=True, temporal_downsample=False, num_classes=10, **small)
    inflate_from_image_model(video, image)
    assert torch.count_nonzero(video.label_embed.weight) == 0
    x, t = torch.randn(2, 1, 4, 8, 8), torch.tensor([3, 700])
    with torch.no_grad():
        expected = image(x, t)
        for labels in (None, torch.tensor([2, 9])):
            torch.testing.assert_close(video.eval()(x, t, labels=labels), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"differ in \['max_norm_groups'\]"):  # checked both ways
        inflate_from_image_model(VideoUNet(temporal=True, temporal_downsample=False, **SMALL_VIDEO), image)
    conditional_image = VideoUNet(temporal=False, num_classes=5, **small)
    with pytest.raises(ValueError, match="num_classes=5"):
        inflate_from_image_model(video, conditional_image)


def test_requested_digit_hits_read_real_clips_as_their_digits():
    from chapter13.recipes.video import prompted_clips, requested_digit_hits

    clips, labels, _ = moving_digits(20, split="test", seed=4)
    assert requested_digit_hits(clips, labels).shape == (20, 8)
    assert requested_digit_hits(clips, labels).mean() > 0.85
    assert requested_digit_hits(clips, (labels + 1) % 10).mean() < 0.1
    model = _randomise(VideoUNet(num_classes=10, max_norm_groups=2, schedule="cosine", **SMALL_VIDEO))
    clips, wanted = prompted_clips(model, 12, steps=2)
    assert clips.shape == (12, 1, 8, 32, 32)
    assert wanted.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
