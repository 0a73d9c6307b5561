"""Closed-form checks of chapter13.diffusion, with expected values computed here independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chapter13.diffusion import NoiseSchedule, diffusion_loss, sample_ddim, sample_ddpm, timesteps


def np_linear_alpha_bars(T: int, b0: float = 1e-4, b1: float = 0.02) -> np.ndarray:
    betas = np.linspace(b0, b1, T)
    out, prod = [], 1.0
    for b in betas:
        prod *= 1.0 - b
        out.append(prod)
    return np.array(out)


# ------------------------------------------------------------------------------------------------
# Schedules
def test_linear_schedule_endpoints_and_cumprod():
    s = NoiseSchedule.linear(T=1000)
    assert s.T == 1000 and len(s.betas) == len(s.alphas) == len(s.alpha_bars) == 1000
    assert s.betas.dtype == s.alphas.dtype == s.alpha_bars.dtype == torch.float64
    assert s.betas[0].item() == pytest.approx(1e-4, abs=1e-15)
    assert s.betas[-1].item() == pytest.approx(0.02, abs=1e-15)
    np.testing.assert_allclose(s.alpha_bars.numpy(), np_linear_alpha_bars(1000), rtol=1e-12)
    # DDPM's schedule leaves ᾱ_T ≈ 4e-5: almost pure noise at the end
    assert 1e-5 < s.alpha_bars[-1].item() < 1e-4
    np.testing.assert_allclose(s.snr.numpy(), s.alpha_bars.numpy() / (1 - s.alpha_bars.numpy()))


def test_cosine_schedule_matches_eq17_and_is_clipped():
    T, off = 1000, 0.008
    s = NoiseSchedule.cosine(T=T, s=off, max_beta=0.999)

    def f(t):
        return math.cos((t / T + off) / (1 + off) * math.pi / 2) ** 2

    for t in [0, 1, 10, 250, 500, 900]:  # 0-based index t is the paper's t+1
        assert s.alpha_bars[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-10)
    assert s.betas.max().item() <= 0.999
    assert s.betas[-1].item() == pytest.approx(0.999)  # the clip is active at t = T
    assert (s.alpha_bars[1:] < s.alpha_bars[:-1]).all()
    # cosine keeps more signal than linear in the first half
    lin = NoiseSchedule.linear(T)
    assert (s.alpha_bars[100:500] > lin.alpha_bars[100:500]).all()


def test_quadratic_and_sigmoid_endpoints():
    q = NoiseSchedule.quadratic(T=50, beta_start=1e-4, beta_end=0.02)
    assert q.betas[0].item() == pytest.approx(1e-4) and q.betas[-1].item() == pytest.approx(0.02)
    # midpoint of the square-root line, squared
    mid = ((math.sqrt(1e-4) + math.sqrt(0.02)) / 2) ** 2
    q51 = NoiseSchedule.quadratic(T=51)
    assert q51.betas[25].item() == pytest.approx(mid, rel=1e-12)
    sg = NoiseSchedule.sigmoid(T=51, beta_start=1e-4, beta_end=0.02)
    assert sg.betas[25].item() == pytest.approx((1e-4 + 0.02) / 2, rel=1e-12)
    assert (sg.betas[1:] > sg.betas[:-1]).all()


@pytest.mark.parametrize("betas", [[0.1, 1.0], [0.0, 0.5], [-0.1, 0.2], [0.1, float("nan")]])
def test_betas_outside_unit_interval_are_rejected(betas):
    with pytest.raises(ValueError, match=r"β|beta"):
        NoiseSchedule(betas)


def test_bad_family_arguments():
    with pytest.raises(ValueError, match="beta_end"):
        NoiseSchedule.linear(T=10, beta_end=1.5)
    with pytest.raises(ValueError, match="max_beta"):
        NoiseSchedule.cosine(T=10, max_beta=1.0)
    with pytest.raises(ValueError, match="T"):
        NoiseSchedule.linear(T=0)


def test_wrong_length_tables_are_rejected():
    with pytest.raises(ValueError, match="T=5"):
        NoiseSchedule([0.1, 0.2, 0.3], T=5)
    with pytest.raises(ValueError, match="1-D"):
        NoiseSchedule(torch.full((2, 3), 0.1))
    with pytest.raises(ValueError, match="1-D"):
        NoiseSchedule([])


def test_respace_keeps_alpha_bars():
    s = NoiseSchedule.linear(100)
    steps = [99, 74, 49, 24, 0]
    r = s.respace(steps)
    np.testing.assert_allclose(r.alpha_bars.numpy(), s.alpha_bars[sorted(steps)].numpy(), rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# Forward process
def test_q_sample_closed_form_with_given_noise():
    s = NoiseSchedule.linear(1000)
    ab = np_linear_alpha_bars(1000)
    x0 = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 500, 999])
    out = s.q_sample(x0, t, noise)
    for i, ti in enumerate(t.tolist()):
        expected = math.sqrt(ab[ti]) * x0[i] + math.sqrt(1 - ab[ti]) * noise[i]
        torch.testing.assert_close(out[i], expected, rtol=1e-12, atol=1e-12)


def test_q_sample_mean_and_variance_over_many_draws():
    s = NoiseSchedule.cosine(1000)
    g = torch.Generator().manual_seed(0)
    n = 200_000
    x0 = torch.full((n, 1), 0.7)
    for ti in [10, 300, 800]:
        f = lambda u: math.cos((u / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
        ab = f(ti + 1) / f(0)
        xt = s.q_sample(x0, torch.full((n,), ti), torch.randn(n, 1, generator=g))
        assert xt.mean().item() == pytest.approx(math.sqrt(ab) * 0.7, abs=4 * math.sqrt(1 / n))
        assert xt.var().item() == pytest.approx(1 - ab, rel=0.02)


def test_q_sample_dtype_and_bad_input():
    s = NoiseSchedule.linear(10)
    x32 = torch.zeros(2, 3)
    assert s.q_sample(x32, torch.tensor([1, 2])).dtype == torch.float32
    assert s.q_sample(x32.double(), torch.tensor([1, 2])).dtype == torch.float64
    with pytest.raises(IndexError, match=r"0\.\.9"):
        s.q_sample(x32, torch.tensor([1, 10]))
    with pytest.raises(IndexError, match="out of range"):
        s.q_sample(x32, torch.tensor([-1, 0]))
    with pytest.raises(TypeError, match="integer"):
        s.q_sample(x32, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="shape"):
        s.q_sample(x32, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="noise"):
        s.q_sample(x32, torch.tensor([1, 2]), torch.zeros(2, 4))


# ------------------------------------------------------------------------------------------------
# Reverse steps
def _posterior_by_hand(ab_t, ab_prev, x0, xt):
    beta = 1 - ab_t / ab_prev
    mean = math.sqrt(ab_prev) * beta / (1 - ab_t) * x0 + math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab_t) * xt
    var = (1 - ab_prev) / (1 - ab_t) * beta
    return mean, var


def test_ddpm_step_matches_posterior_eq6_7():
    s = NoiseSchedule.linear(1000)
    ab = np_linear_alpha_bars(1000)
    x_t = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    eps = torch.randn_like(x_t)
    z = torch.randn_like(x_t)
    t = 400
    x0 = (x_t - math.sqrt(1 - ab[t]) * eps) / math.sqrt(ab[t])
    mean, var = _posterior_by_hand(ab[t], ab[t - 1], x0, x_t)
    out = s.ddpm_step(x_t, t, eps, noise=z, clip=False)
    torch.testing.assert_close(out, mean + math.sqrt(var) * z, rtol=1e-10, atol=1e-12)
    # β̃ table agrees with the hand-written variance
    assert s.posterior_variance[t].item() == pytest.approx(var, rel=1e-12)
    # and the mean is DDPM eq. 11: (x_t - β_t/sqrt(1-ᾱ_t) ε)/sqrt(α_t)
    beta_t = np.linspace(1e-4, 0.02, 1000)[t]
    eq11 = (x_t - beta_t / math.sqrt(1 - ab[t]) * eps) / math.sqrt(1 - beta_t)
    torch.testing.assert_close(s.ddpm_step(x_t, t, eps, noise=torch.zeros_like(z), clip=False), eq11)


def test_ddpm_step_respaced_uses_beta_prime():
    s = NoiseSchedule.cosine(1000)
    x_t = torch.randn(4, 2, dtype=torch.float64)
    eps, z = torch.randn_like(x_t), torch.randn_like(x_t)
    t, prev = 700, 450
    ab_t, ab_p = s.alpha_bars[t].item(), s.alpha_bars[prev].item()
    x0 = (x_t - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
    mean, var = _posterior_by_hand(ab_t, ab_p, x0, x_t)
    out = s.ddpm_step(x_t, t, eps, noise=z, prev_t=prev, clip=False)
    torch.testing.assert_close(out, mean + math.sqrt(var) * z)


def test_ddpm_last_step_returns_clipped_x0_without_noise():
    s = NoiseSchedule.linear(100)
    x_t = torch.randn(5, 3) * 3
    eps = torch.randn(5, 3)
    ab0 = 1 - 1e-4
    x0 = ((x_t - math.sqrt(1 - ab0) * eps) / math.sqrt(ab0)).clamp(-1, 1)
    out1 = s.ddpm_step(x_t, 0, eps, noise=torch.randn(5, 3))
    out2 = s.ddpm_step(x_t, 0, eps, noise=torch.randn(5, 3))
    torch.testing.assert_close(out1, x0)
    torch.testing.assert_close(out1, out2)
    assert out1.abs().max() <= 1.0


def test_ddpm_step_bad_input():
    s = NoiseSchedule.linear(10)
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="shape of x_t"):
        s.ddpm_step(x, 5, torch.zeros(2, 4))
    with pytest.raises(IndexError, match=r"0\.\.9"):
        s.ddpm_step(x, 10, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="prev_t"):
        s.ddpm_step(x, 5, torch.zeros(2, 3), prev_t=5)
    with pytest.raises(TypeError, match="int"):
        s.ddpm_step(x, torch.tensor([1, 2]), torch.zeros(2, 3))


def test_ddim_step_eta0_matches_eq12():
    s = NoiseSchedule.linear(1000)
    ab = np_linear_alpha_bars(1000)
    x_t = torch.randn(3, 4, dtype=torch.float64)
    eps = torch.randn_like(x_t)
    t, prev = 900, 700
    x0 = (x_t - math.sqrt(1 - ab[t]) * eps) / math.sqrt(ab[t])
    expected = math.sqrt(ab[prev]) * x0 + math.sqrt(1 - ab[prev]) * eps
    torch.testing.assert_close(s.ddim_step(x_t, t, prev, eps, clip=False), expected)
    # prev_t = -1 means ᾱ = 1: the prediction of x_0 itself
    torch.testing.assert_close(s.ddim_step(x_t, t, -1, eps, clip=False), x0)


def test_ddim_eta1_step_equals_ddpm_step():
    s = NoiseSchedule.cosine(200)
    x_t = torch.randn(6, 5, dtype=torch.float64) * 2
    eps, z = torch.randn_like(x_t), torch.randn_like(x_t)
    for t, prev in [(150, 149), (150, 90), (3, 2)]:
        for clip in (False, True):
            a = s.ddim_step(x_t, t, prev, eps, eta=1.0, noise=z, clip=clip)
            b = s.ddpm_step(x_t, t, eps, noise=z, prev_t=prev, clip=clip)
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


class ToyEps(torch.nn.Module):
    """A fixed nonlinear 'ε-model' so that full samplers can be compared without training."""

    def forward(self, x, t, scale=1.0):
        return scale * torch.tanh(x) * (1 + t.to(x.dtype)[:, None] / 100)


def test_ddim_eta1_full_grid_equals_ddpm_sampler():
    s = NoiseSchedule.linear(40, beta_end=0.2)
    kw = dict(device="cpu", progress=False, dtype=torch.float64)
    a = sample_ddim(ToyEps(), s, (8, 3), steps=40, eta=1.0, generator=torch.Generator().manual_seed(3), **kw)
    b = sample_ddpm(ToyEps(), s, (8, 3), generator=torch.Generator().manual_seed(3), **kw)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_samplers_reach_a_point_mass_with_the_oracle_model():
    """For data x_0 = c the ideal ε is (x_t - sqrt(ᾱ_t) c)/sqrt(1 - ᾱ_t); every sampler must land on c."""
    s = NoiseSchedule.cosine(100)
    ab = s.alpha_bars.clone()
    c = torch.tensor([0.3, -0.8])

    def oracle(x, t):
        a = ab[t].to(x)[:, None]
        return (x - a.sqrt() * c) / (1 - a).sqrt()

    for sampler, kw in [
        (sample_ddpm, {}),
        (sample_ddpm, {"steps": 10}),
        (sample_ddim, {"steps": 10}),
        (sample_ddim, {"steps": 7, "spacing": "leading", "eta": 0.5}),
    ]:
        out = sampler(oracle, s, (16, 2), generator=torch.Generator().manual_seed(0), device="cpu",
                      progress=False, **kw)  # fmt: skip
        torch.testing.assert_close(out, c.expand(16, 2), atol=1e-4, rtol=0)


def test_sampler_trajectory_cond_and_dtype():
    s = NoiseSchedule.linear(20)
    out, traj = sample_ddim(ToyEps(), s, (2, 3), steps=5, progress=False, return_trajectory=True,
                            device="cpu", scale=0.5)  # fmt: skip
    assert len(traj) == 6 and torch.equal(traj[-1], out)
    assert out.dtype == torch.float32
    x64 = torch.randn(2, 3, dtype=torch.float64)
    assert s.ddim_step(x64, 5, 2, torch.randn(2, 3)).dtype == torch.float64


def test_sampler_rejects_wrong_model_output():
    s = NoiseSchedule.linear(10)
    with pytest.raises(ValueError, match="shaped like"):
        sample_ddim(lambda x, t: x[:, :1], s, (2, 3), steps=2, progress=False, device="cpu")


def test_timesteps_grids():
    assert timesteps(1000, 10) == list(range(999, 0, -100))
    assert timesteps(1000, 10, "leading") == list(range(900, -1, -100))
    for spacing in ("trailing", "leading", "linspace"):
        assert timesteps(7, 7, spacing) == [6, 5, 4, 3, 2, 1, 0]
        grid = timesteps(1000, 37, spacing)
        assert len(grid) == 37 and grid == sorted(grid, reverse=True)
        assert all(0 <= g < 1000 for g in grid)
    with pytest.raises(ValueError, match="steps"):
        timesteps(10, 11)
    with pytest.raises(ValueError, match="spacing"):
        timesteps(10, 5, "middle")


def test_diffusion_loss_with_oracle_is_zero_and_forwards_cond():
    """With x_0 = 0, x_t = sqrt(1 - ᾱ_t) ε, so ε = x_t / sqrt(1 - ᾱ_t) exactly."""
    s = NoiseSchedule.linear(100)
    ab = torch.tensor(np_linear_alpha_bars(100))
    seen = {}

    def oracle(x, t, label=None):
        seen["label"] = label
        return x / (1 - ab[t]).sqrt().to(x)[:, None, None, None]

    x0 = torch.zeros(64, 1, 4, 4)
    loss = diffusion_loss(oracle, s, x0, generator=torch.Generator().manual_seed(0), label="seven")
    assert loss.item() < 1e-10 and seen["label"] == "seven"
    zero = diffusion_loss(lambda x, t: torch.zeros_like(x), s, torch.randn(512, 1, 4, 4))
    assert zero.item() == pytest.approx(1.0, abs=0.05)  # E[ε²] = 1


def test_eps_from_v_recovers_the_noise():
    """v = sqrt(ᾱ) ε - sqrt(1 - ᾱ) x_0 (Salimans & Ho 2022, §4): eps_from_v(x_t, t, v) gives ε back."""
    schedule = NoiseSchedule.cosine(1000)
    g = torch.Generator().manual_seed(0)
    x0, eps = (
        torch.randn(4, 1, 5, 5, generator=g, dtype=torch.float64),
        torch.randn(4, 1, 5, 5, generator=g, dtype=torch.float64),
    )
    t = torch.tensor([0, 10, 500, 999])
    x_t = schedule.q_sample(x0, t, eps)
    ab = schedule.alpha_bars[t].view(-1, 1, 1, 1)
    v = ab.sqrt() * eps - (1 - ab).sqrt() * x0
    torch.testing.assert_close(schedule.eps_from_v(x_t, t, v), eps)
    # and x̂_0 from that ε is x_0 (except at t = 999, where 1/sqrt(ᾱ) ≈ 2e4 magnifies float64 rounding)
    torch.testing.assert_close(schedule.predict_x0(x_t, t, schedule.eps_from_v(x_t, t, v))[:3], x0[:3])
    with pytest.raises(ValueError, match="shape of x_t"):
        schedule.eps_from_v(x_t, t, v[:, :, :4])


# --- bad input (issue 17) ------------------------------------------------------------------------------


def test_a_timestep_out_of_range_is_an_index_error_and_a_value_error():
    schedule = NoiseSchedule.linear(10)
    for error in (IndexError, ValueError):
        with pytest.raises(error, match=r"0\.\.9"):
            schedule.q_sample(torch.zeros(2, 2), 10)
        with pytest.raises(error, match=r"0\.\.9"):
            schedule.ddpm_step(torch.zeros(2, 2), 10, torch.zeros(2, 2))


def test_schedules_refuse_non_finite_and_non_numeric_parameters():
    for name, make in (
        ("s", lambda: NoiseSchedule.cosine(10, s=math.inf)),  # the parameter is named, not the betas
        ("width", lambda: NoiseSchedule.sigmoid(10, width=math.inf)),
        ("beta_end", lambda: NoiseSchedule.linear(10, beta_end=math.nan)),
        ("alpha_bars", lambda: NoiseSchedule.from_alpha_bars([0.9, math.nan])),
    ):
        with pytest.raises(ValueError, match=rf"^{name} (must be a finite|contain NaN)"):
            make()
    with pytest.raises(TypeError, match="numbers"):
        NoiseSchedule(["a", "b"])


def test_q_sample_refuses_nan_data_and_noise_that_is_not_a_tensor():
    schedule = NoiseSchedule.linear(10)
    with pytest.raises(ValueError, match="NaN"):
        schedule.q_sample(torch.full((2, 2), math.nan), 3)
    with pytest.raises(TypeError, match="noise must be a tensor"):
        schedule.q_sample(torch.zeros(2, 2), 3, noise=np.zeros((2, 2)))


def test_samplers_name_bad_devices_dtypes_generators_shapes_and_start_noise():
    schedule = NoiseSchedule.linear(10)

    def model(x, t):
        return torch.zeros_like(x)

    def ddim(**kw):
        return sample_ddim(model, schedule, kw.pop("shape", (2, 2)), steps=2, progress=False, **kw)

    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        ddim(device="gpu")
    with pytest.raises(ValueError, match="x_T contains NaN"):
        ddim(x_T=torch.full((2, 2), math.nan))  # was a FloatingPointError after sampling
    with pytest.raises(TypeError, match="x_T must be a tensor"):
        ddim(x_T=np.zeros((2, 2)))
    with pytest.raises(TypeError, match=r"floating-point torch\.dtype"):
        ddim(dtype=torch.int64)
    with pytest.raises(TypeError, match=r"torch\.Generator"):
        ddim(generator=123)
    with pytest.raises(TypeError, match="tuple of ints"):
        ddim(shape=(2.5, 2))  # was silently truncated to 2
    with pytest.raises(ValueError, match="unknown device"):
        sample_ddpm(model, schedule, (2, 2), steps=2, progress=False, device="cpu:x")
