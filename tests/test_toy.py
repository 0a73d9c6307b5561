"""Checks of chapter13.toy (2-D data, MLP denoiser, field, exact score, distances), the noise-schedule
widget and the 13.2 exercise checkers. The chapter's 13.2 listings are checked in tests/test_book.py."""

from __future__ import annotations

import math
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot
import numpy as np
import pytest
import torch

from chapter13.diffusion import NoiseSchedule
from chapter13.exercises import sec13_2 as ex
from chapter13.toy import (
    TOY_DATASETS,
    ToyDenoiser,
    chamfer_distance,
    denoising_field,
    exact_score,
    field_figure,
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


def test_field_figure_has_one_colour_scale_and_a_colour_bar():
    torch.manual_seed(0)
    model, schedule = ToyDenoiser(hidden=16, depth=1, time_dim=8), NoiseSchedule.linear(100)
    fig = field_figure(model, schedule, make_toy_data("moons", 50), ts=(80, 10))
    panels, bar = fig.axes[:2], fig.axes[2:]
    assert len(bar) == 1 and "log" in bar[0].get_ylabel()
    arrows = [next(c for c in ax.collections if hasattr(c, "U")) for ax in panels]
    assert arrows[0].norm is arrows[1].norm  # one colour scale for every panel
    sizes = [denoising_field(model, schedule, t)[1].norm(dim=1).log() for t in (80, 10)]
    assert arrows[0].norm.vmin == pytest.approx(min(float(v.min()) for v in sizes), rel=1e-5)
    matplotlib.pyplot.close(fig)


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
# the exact score of the noised training set (13.2.2, denoising score matching)
def test_exact_score_is_the_gradient_of_the_log_density():
    g = torch.Generator().manual_seed(0)
    data = torch.randn(50, 2, generator=g, dtype=torch.float64) * 0.5
    x = torch.randn(7, 2, generator=g, dtype=torch.float64).requires_grad_()
    for ab in (0.999, 0.6, 0.01):
        means, var = math.sqrt(ab) * data, 1 - ab
        log_q = torch.logsumexp(-((x[:, None] - means[None]) ** 2).sum(-1) / (2 * var), dim=1)
        (grad,) = torch.autograd.grad(log_q.sum(), x)
        torch.testing.assert_close(exact_score(x.detach(), data, ab, chunk=3), grad)


def test_exact_score_of_one_point_and_the_optimal_denoiser():
    """One training point c: q_t = N(sqrt(ᾱ) c, (1 - ᾱ) I), score (sqrt(ᾱ) c - x)/(1 - ᾱ); the exact
    ε-predictor (x - sqrt(ᾱ) c)/sqrt(1 - ᾱ) is -sqrt(1 - ᾱ) times it (Ho et al. 2020, Sec. 3.2)."""
    c = torch.tensor([[0.2, -0.4]])
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))
    ab = 0.3
    score = exact_score(x, c, torch.tensor(ab))
    torch.testing.assert_close(score, ((math.sqrt(ab) * c - x) / (1 - ab)).double())
    eps_star = (x - math.sqrt(ab) * c) / math.sqrt(1 - ab)
    torch.testing.assert_close(-eps_star.double() / math.sqrt(1 - ab), score)


def test_exact_score_refuses_bad_input():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        exact_score(x, x, 1.0)
    with pytest.raises(TypeError, match="one number"):
        exact_score(x, x, torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="same dim"):
        exact_score(x, torch.zeros(3, 3), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        exact_score(x * math.nan, x, 0.5)
    with pytest.raises(ValueError, match="non-empty"):
        exact_score(x, x[:0], 0.5)
    with pytest.raises(TypeError, match="tensor"):
        exact_score(x.numpy(), x, 0.5)


def test_sinusoidal_time_embedding_has_constant_norm():
    t = torch.arange(1, 1000)
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
    assert not ex.check_snr_crossing(496.5) and ex.check_snr_crossing(torch.tensor([496]))
    assert ex.check_snr_crossing(259, family="linear") and not ex.check_snr_crossing(259, family="exp")


def test_cosine_snr_crossing_is_496_by_the_closed_form():
    """ᾱ_t (0-based t) is f(t + 1)/f(0), f(u) = cos²((u/T + s)/(1 + s) · π/2), s = 0.008 (Nichol & Dhariwal
    2021, eq. 17): it crosses 1/2 at u = T ((1 + s) (2/π) arccos(sqrt(f(0)/2)) - s) = 496.05, so the first
    table entry below 1/2 is u = 497, t = 496, not the midpoint 499 that cos² would give without s."""
    T, s = 1000, 0.008
    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    u = T * ((1 + s) * (2 / math.pi) * math.acos(math.sqrt(f0 / 2)) - s)
    assert 496 < u < 496.1
    assert ex.snr_crossing(NoiseSchedule.cosine(T)) == math.ceil(u) - 1 == 496


def test_the_notebook_states_the_crossing_the_checker_accepts():
    """13.2's solution to the SNR exercise gives the number that check_snr_crossing accepts and the
    schedule table prints (ex.snr_crossing)."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "notebooks" / "13.2-diffusion-models.ipynb"
    cells = ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]
    check = next(i for i, c in enumerate(cells) if "ex.check_snr_crossing(" in c)
    solution = cells[check + 1]
    assert solution.startswith("<details><summary>Solution</summary>")
    stated = [int(n) for n in re.findall(r"(?:# |\bt = )(\d+)", solution)]  # "# 496", "t = 496"
    truth = ex.snr_crossing(NoiseSchedule.cosine(1000))
    assert len(stated) >= 2 and set(stated) == {truth}, f"the solution states {stated}, the checker {truth}"
    assert any("ex.snr_crossing(s)" in c for c in cells[:check]), "the table prints ex.snr_crossing"


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
