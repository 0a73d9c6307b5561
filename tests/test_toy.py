"""Checks of chapter13.toy (2-D data, MLP denoiser, field, distances), the 13.2 book listings, the
noise-schedule widget and the 13.2 exercise checkers."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from chapter13.book import sec13_2 as book
from chapter13.diffusion import NoiseSchedule, sample_ddpm
from chapter13.exercises import sec13_2 as ex
from chapter13.toy import (
    TOY_DATASETS,
    ToyDenoiser,
    chamfer_distance,
    denoising_field,
    make_toy_data,
    train_toy,
)
from chapter13.unet import UNet
from chapter13.widgets import schedule as widget


# ------------------------------------------------------------------------------------------------
# toy
@pytest.mark.parametrize("name", TOY_DATASETS)
def test_toy_data_shape_range_determinism(name):
    a = make_toy_data(name, 500, seed=1)
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert a.abs().max() <= 1.0
    assert torch.equal(a, make_toy_data(name, 500, seed=1))
    assert not torch.equal(a, make_toy_data(name, 500, seed=2))


def test_mixture_points_sit_near_eight_centres():
    x = make_toy_data("mixture", 4000).double()
    angles = torch.arange(8) * 2 * math.pi / 8
    centres = 0.7 * torch.stack([angles.cos(), angles.sin()], 1).double()
    nearest = torch.cdist(x, centres).min(1)
    assert nearest.values.mean() < 0.1  # std 0.05 in 2-D: mean distance 0.05·sqrt(π/2) ≈ 0.063
    counts = torch.bincount(nearest.indices, minlength=8)
    assert counts.min() > 400


def test_bad_toy_input():
    with pytest.raises(ValueError, match="spiral"):
        make_toy_data("circle")
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        ToyDenoiser()(torch.zeros(3, 3), torch.zeros(3, dtype=torch.long))


def test_chamfer_distance_by_hand():
    samples = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    data = torch.tensor([[0.0, 1.0], [3.0, 4.0], [10.0, 4.0]])
    precision, coverage = chamfer_distance(samples, data)
    assert precision == pytest.approx((1.0 + 0.0) / 2)
    assert coverage == pytest.approx((1.0 + 0.0 + 7.0) / 3)


def test_denoising_field_with_oracle_points_to_the_data():
    s = NoiseSchedule.linear(100)
    c = torch.tensor([0.2, -0.4])

    class Oracle(torch.nn.Module):
        def forward(self, x, t):
            a = s.alpha_bars[t].float()[:, None]
            return (x - a.sqrt() * c) / (1 - a).sqrt()

    points, vectors = denoising_field(Oracle(), s, 50, n=5)
    assert points.shape == vectors.shape == (25, 2)
    # for a point mass the score of p_t points from x to sqrt(ᾱ_t) c, with length |.|/sqrt(1-ᾱ_t)
    ab = float(np.prod(1 - np.linspace(1e-4, 0.02, 100)[:51]))
    expected = (math.sqrt(ab) * c - points) / math.sqrt(1 - ab)
    torch.testing.assert_close(vectors, expected, atol=1e-5, rtol=1e-5)


def test_train_toy_runs_and_restores_threads():
    threads = torch.get_num_threads()
    data = make_toy_data("mixture", 256)
    result = train_toy(data, steps=30, batch_size=64, progress=False)
    assert torch.get_num_threads() == threads
    assert len(result.losses) == 30 and all(math.isfinite(v) for v in result.losses)
    out = result.ema_model(torch.zeros(4, 2), torch.tensor([0, 10, 500, 999]))
    assert out.shape == (4, 2)
    ToyDenoiser(**result.model.config)


# ------------------------------------------------------------------------------------------------
# the book's listings reproduce the errata they are documented for
def test_book_forward_diffusion_uses_alpha_not_alpha_bar():
    s = NoiseSchedule.linear(1000)
    x0 = torch.rand(2, 1, 4, 4) * 2 - 1
    t = torch.tensor([999, 500])
    torch.manual_seed(0)
    x_t, noise = book.forward_diffusion(x0, t, s.betas.float())
    a = 1 - np.linspace(1e-4, 0.02, 1000)[t.numpy()]  # α_t, not ᾱ_t
    expected = (
        torch.tensor(np.sqrt(a)).float().view(-1, 1, 1, 1) * x0
        + torch.tensor(np.sqrt(1 - a)).float().view(-1, 1, 1, 1) * noise
    )
    torch.testing.assert_close(x_t, expected)
    assert not torch.allclose(x_t, s.q_sample(x0, t, noise))


def test_book_sample_step_coefficient_is_sqrt_beta():
    """T = 2, constant model ε̂ = 1: replay the book's two steps by hand with coefficient β/sqrt(1-α) =
    sqrt(β), and check that DDPM eq. 11 (coefficient β_t/sqrt(1-ᾱ_t)) gives something else."""
    betas = torch.tensor([0.1, 0.3])
    alphas = 1 - betas
    torch.manual_seed(0)
    x = torch.randn(5, 2)
    z = torch.randn(5, 2)
    torch.manual_seed(0)
    out = book.sample(lambda x, t: torch.ones_like(x), (5, 2), betas)
    x1 = (x - math.sqrt(0.3)) / math.sqrt(0.7) + math.sqrt(0.3) * z
    expected = (x1 - math.sqrt(0.1)) / math.sqrt(0.9)
    torch.testing.assert_close(out, expected)
    # the same two steps with DDPM eq. 11's coefficient β_t/sqrt(1-ᾱ_t) (ᾱ_2 = 0.9·0.7 = 0.63) land
    # elsewhere by a constant: the first step differs, the last (ᾱ_1 = α_1) does not
    shift = (math.sqrt(0.3) - 0.3 / math.sqrt(1 - alphas.prod().item())) / math.sqrt(0.7) / math.sqrt(0.9)
    x1_fixed = (x - 0.3 / math.sqrt(0.37)) / math.sqrt(0.7) + math.sqrt(0.3) * z
    fixed = (x1_fixed - 0.1 / math.sqrt(0.1)) / math.sqrt(0.9)
    torch.testing.assert_close(fixed - out, torch.full((5, 2), shift))
    assert shift > 0.05


def test_book_sample_from_model_stays_noisy_with_the_oracle():
    s = NoiseSchedule.linear(1000)
    c = torch.tensor([0.5, -0.5])

    def oracle(x, t):
        a = s.alpha_bars[t].float()[:, None]
        return (x - a.sqrt() * c) / (1 - a).sqrt()

    torch.manual_seed(0)
    book_out = book.sample_from_model(oracle, s.betas.float(), (256, 2), num_steps=50)
    ours = sample_ddpm(oracle, s, (256, 2), steps=50, progress=False, device="cpu")
    assert (book_out - c).norm(dim=1).mean() > 0.5  # still far from the data
    assert (ours - c).norm(dim=1).max() < 1e-3


def test_book_simple_unet_time_embedding_is_affine_in_t():
    torch.manual_seed(0)
    net = book.SimpleUNet(base=8, time_dim=16)
    assert net(torch.randn(2, 1, 28, 28), torch.tensor([1, 999])).shape == (2, 1, 28, 28)
    t = torch.arange(1, 1000)
    with torch.no_grad():
        emb = net.time_mlp(t.float().unsqueeze(-1))
        late = emb[99:] - emb[99:].mean(dim=0)  # t = 100..999
        s = torch.linalg.svdvals(late)
        ours = UNet(base_channels=16).time_embed(t)[99:]
        s_ours = torch.linalg.svdvals(ours - ours.mean(dim=0))
    assert s[1] / s[0] < 1e-4  # the book's embeddings lie on one straight line
    assert s_ours[1] / s_ours[0] > 0.1  # ours spread over many directions
    assert emb[-1].norm() > 100 * emb[0].norm()
    sin = UNet(base_channels=16).time_embed[0](t)
    torch.testing.assert_close(sin.norm(dim=1), torch.full((999,), math.sqrt(8.0)))


# ------------------------------------------------------------------------------------------------
# noise-schedule widget
def test_widget_pure_functions():
    assert widget.strip_timesteps(1000) == [0, 200, 400, 599, 799, 999]
    s = widget.family_schedule("quadratic", 300, 1e-4, 0.03)
    assert s.T == 300 and s.betas[-1].item() == pytest.approx(0.03)
    with pytest.raises(ValueError, match="beta_end"):
        widget.family_schedule("linear", 100, 0.02, 0.01)
    with pytest.raises(ValueError, match="family"):
        widget.family_schedule("exponential", 100)
    assert not hasattr(widget, "make_schedule")  # chapter13.diffusion.make_schedule is another function


def test_widget_figure_shows_the_schedule_and_q_sample():
    x0 = torch.rand(1, 28, 28) * 2 - 1
    view = widget.ScheduleView(x0, seed=3)
    schedule = view.update("cosine", 500, 1e-4, 0.02)
    ab_line, _ = view.lines["cosine"]
    np.testing.assert_allclose(ab_line.get_ydata(), schedule.alpha_bars.numpy())
    ts = widget.strip_timesteps(500)
    a = schedule.alpha_bars[ts[2]].item()
    expected = math.sqrt(a) * x0[0].double() + math.sqrt(1 - a) * view.noise
    np.testing.assert_allclose(np.asarray(view.images[2].get_array()), expected.numpy(), atol=1e-12)
    png = view.png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    fig = widget.schedule_figure(x0, "linear", 100)
    assert len(fig.axes) == 2 + widget.STRIP
    timing = widget.time_updates(x0, n=3)
    assert set(timing) == {"update_s", "update_and_render_s", "update_and_render_cpu_s"}
    assert 0 < timing["update_s"] < timing["update_and_render_s"]


def test_schedule_widget_moves_and_refuses_a_bad_beta_range():
    x0 = torch.rand(1, 28, 28) * 2 - 1
    box = widget.schedule_widget(x0)
    first = box.image.value
    box.controls["T"].value = 500
    assert box.image.value != first and box.view.state == ("linear", 500, 1e-4, 0.02)
    assert box.message.value.startswith("updated in") and len(box.timer) == 2
    box.controls["beta_start"].value = 5e-3
    shown = box.image.value
    box.controls["beta_end"].value = 1e-3  # below beta_start: refused, the picture stays
    assert box.image.value == shown and "beta_end" in box.message.value and len(box.timer) == 3
    box.controls["beta_end"].value = 0.05
    assert box.image.value != shown and box.message.value.startswith("updated in")
    box.controls["family"].value = "cosine"
    assert box.view.state == ("cosine", 500, 5e-3, 0.05) and len(box.timer) == 5


# ------------------------------------------------------------------------------------------------
# exercise checkers: True for the reference answer, False (never an exception) otherwise
def test_check_q_sample(capsys):
    def right(x0, t, noise, ab):
        a = ab[t].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def book_like(x0, t, noise, ab):
        alphas = torch.cat([ab[:1], ab[1:] / ab[:-1]])
        a = alphas[t].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    assert ex.check_q_sample(right)
    assert not ex.check_q_sample(book_like)
    assert "α_t" in capsys.readouterr().out
    assert not ex.check_q_sample(None)
    assert not ex.check_q_sample(lambda *a: 1 / 0)


def test_check_snr_crossing():
    s = NoiseSchedule.cosine(1000)
    truth = int(np.argmax(s.alpha_bars.numpy() < 0.5))
    assert ex.check_snr_crossing(truth)
    assert not ex.check_snr_crossing(truth + 1)
    assert not ex.check_snr_crossing(None)
    assert not ex.check_snr_crossing("soon")


def test_check_reverse_mean():
    def right(x_t, t, eps, betas, ab):
        return (x_t - betas[t] / (1 - ab[t]).sqrt() * eps) / (1 - betas[t]).sqrt()

    def book_like(x_t, t, eps, betas, ab):
        return (x_t - betas[t] / betas[t].sqrt() * eps) / (1 - betas[t]).sqrt()

    assert ex.check_reverse_mean(right)
    assert not ex.check_reverse_mean(book_like)
    assert not ex.check_reverse_mean(None)


def test_check_ddpm_eta_and_respaced_beta():
    assert ex.check_ddpm_eta(1.0) and not ex.check_ddpm_eta(0.0) and not ex.check_ddpm_eta(None)
    assert ex.check_respaced_beta(lambda ab_t, ab_prev: 1 - ab_t / ab_prev)
    assert not ex.check_respaced_beta(lambda ab_t, ab_prev: 1 - ab_t)
    assert not ex.check_respaced_beta(None)


# --- bad input (issue 17) ------------------------------------------------------------------------------


def test_toy_helpers_refuse_bad_input():
    with pytest.raises(ValueError, match="noise"):
        make_toy_data(n=8, noise=math.nan)  # was NaN points
    with pytest.raises(ValueError, match="seed"):
        make_toy_data(n=8, seed=2**70)
    points = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="at least one point"):
        chamfer_distance(points[:0], points)
    with pytest.raises(ValueError, match="data contain NaN"):
        chamfer_distance(points, points * math.nan)
    with pytest.raises(TypeError, match="tensors"):
        chamfer_distance(points.numpy(), points.numpy())
    model, schedule = ToyDenoiser(hidden=16, depth=1, time_dim=8), NoiseSchedule.linear(20)
    with pytest.raises(ValueError, match=r"0\.\.19"):
        denoising_field(model, schedule, 5000)
    with pytest.raises(ValueError, match="n must be"):
        denoising_field(model, schedule, 3, n=-1)
    with pytest.raises(ValueError, match="limit"):
        denoising_field(model, schedule, 3, limit=math.nan)
    with pytest.raises(TypeError, match="float16"):
        model(points.half(), torch.zeros(4, dtype=torch.long))
