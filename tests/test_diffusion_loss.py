"""The one diffusion loss (``chapter13.diffusion.diffusion_loss``) and the ``DiffusionModel`` base that
every denoiser of the package subclasses: loss spaces under Min-SNR weighting, condition dropout,
the extra error term, and forward = the ε derived from predict."""

from __future__ import annotations

import functools
import importlib
import math
import pkgutil

import pytest
import torch

import chapter13
from chapter13.audio import AudioDiffusion
from chapter13.codelab import PatchUNet
from chapter13.diffusion import (
    DiffusionModel,
    NoiseSchedule,
    diffusion_loss,
    make_schedule,
    mse_per_example,
)
from chapter13.latent import LatentTextToImage
from chapter13.recipes.codelab import CODELAB_MODEL
from chapter13.temporal import VideoUNet, consistency_loss, video_diffusion_loss
from chapter13.text2image import TextToImageUNet

TINY_PATCH = dict(CODELAB_MODEL, base_channels=8, channel_mults=[1, 2])
TINY_TEXT = {"dim": 16, "depth": 1, "heads": 2}
TINY_TEXT_UNET = dict(
    in_channels=1, base_channels=8, channel_mults=[1, 2], num_res_blocks=1,
    attention_resolutions=[], context_dim=16, heads=2, image_size=28,
)  # fmt: skip
TINY_LATENT_UNET = dict(TINY_TEXT_UNET, in_channels=4, attention_resolutions=[4], image_size=8)
TINY_VAE = {"channels": [8, 8, 8]}
SMALL_VIDEO = dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, heads=2)
SMALL_AUDIO = dict(base_channels=8, channel_mults=(1, 2, 2), num_res_blocks=1, heads=2)
PROMPTS = ["a handwritten digit 3", "a thick small seven in the top left corner"]


def _randomise(model: torch.nn.Module, seed: int = 0, std: float = 0.1) -> torch.nn.Module:
    """Zero-initialised output layers make an untrained denoiser output 0; give every weight a value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model.eval()


def _rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- (a) loss spaces of a v-model under Min-SNR-γ ----------------------------------------------------


def test_v_model_min_snr_loss_is_the_same_objective_in_both_spaces():
    """diffusion_loss's docstring: with Min-SNR-γ the ε-space weight is min(SNR, γ)/SNR and the v-space
    weight min(SNR, γ)/(SNR + 1), "for a v-model the two spaces then give the same objective, since
    ε̂ - ε = sqrt(ᾱ_t) (v̂ - v)". Same seed -> same t and ε -> the same number."""
    model = _randomise(PatchUNet(**dict(TINY_PATCH, prediction="v"))).double()
    schedule = model.schedule
    x0 = torch.rand(32, 1, 28, 28, generator=_rng(0), dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        eps_space = diffusion_loss(model, schedule, x0, space="eps", min_snr_gamma=5.0, generator=_rng(3))
        native = diffusion_loss(model, schedule, x0, space="native", min_snr_gamma=5.0, generator=_rng(3))
        unweighted_eps = diffusion_loss(model, schedule, x0, space="eps", generator=_rng(3))
        unweighted_native = diffusion_loss(model, schedule, x0, space="native", generator=_rng(3))
    assert torch.isfinite(eps_space) and torch.isfinite(native) and native > 0
    torch.testing.assert_close(native, eps_space, rtol=1e-10, atol=0)
    # without the weighting the two spaces are different objectives (the test is not vacuous)
    assert not torch.allclose(unweighted_eps, unweighted_native, rtol=1e-3)
    # the draws span both sides of the clamp at γ = 5, so both branches of min(SNR, γ) are used
    snr = schedule.snr[torch.randint(0, schedule.T, (32,), generator=_rng(3))]
    assert (snr > 5).any() and (snr < 5).any()


def test_both_spaces_see_the_same_draws_and_differ_by_alpha_bar_per_example():
    """Per example, the ε-space error is ᾱ_t times the v-space error (ε̂ - ε = sqrt(ᾱ_t)(v̂ - v)), for
    the same t and ε: recorded through the ``error=`` hook."""
    model = _randomise(PatchUNet(**dict(TINY_PATCH, prediction="v"))).double()
    schedule = model.schedule
    x0 = torch.rand(8, 1, 28, 28, generator=_rng(1), dtype=torch.float64) * 2 - 1
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def recording(space):
        def error(pred, target):
            seen[space] = (pred, target)
            return mse_per_example(pred, target)

        return error

    with torch.no_grad():
        for space in ("eps", "native"):
            diffusion_loss(model, schedule, x0, space=space, error=recording(space), generator=_rng(7))
    # the draws, reproduced: t first, then ε (the documented order of ``generator``)
    g = _rng(7)
    t = torch.randint(0, schedule.T, (8,), generator=g)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    eps_hat, eps = seen["eps"]
    v_hat, v = seen["native"]
    torch.testing.assert_close(eps, noise, rtol=0, atol=0)
    torch.testing.assert_close(v, schedule.v_target(x0, noise, t))
    x_t = schedule.q_sample(x0, t, noise)
    torch.testing.assert_close(eps_hat, schedule.eps_from_v(x_t, t, v_hat))
    per_eps, per_v = mse_per_example(eps_hat, eps), mse_per_example(v_hat, v)
    torch.testing.assert_close(per_eps, schedule.alpha_bars[t] * per_v, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(per_eps, per_v, rtol=1e-2)


# --- (b, c) condition dropout --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_model():
    torch.manual_seed(0)
    model = TextToImageUNet(TINY_TEXT_UNET, TINY_TEXT, {"kind": "cosine", "T": 1000}, prediction="v")
    with torch.no_grad():
        for p in model.unet.parameters():
            if not p.any():
                p.normal_(std=0.3)
    return model.eval()


def test_p_uncond_one_is_the_loss_with_every_condition_null(text_model):
    """p_uncond = 1 drops every example's condition: exactly the loss computed with the null condition
    everywhere. The dropout is drawn first (one uniform per example), then t and ε, so the reference
    advances its generator by those B uniforms before calling with p_uncond = 0."""
    x0 = torch.rand(4, 1, 28, 28, generator=_rng(2)) * 2 - 1
    cond = text_model.encode_text(PROMPTS * 2)
    null = text_model.null_condition(1)
    received = []
    handle = text_model.unet.register_forward_pre_hook(
        lambda module, args, kwargs: received.append(
            (kwargs["context"].clone(), kwargs["context_mask"].clone())
        ),
        with_kwargs=True,
    )
    try:
        with torch.no_grad():
            dropped = diffusion_loss(
                text_model, text_model.schedule, x0, space="native", min_snr_gamma=5.0,
                p_uncond=1.0, null=null, generator=_rng(11), **cond,
            )  # fmt: skip
            g = _rng(11)
            torch.rand(4, generator=g)
            everywhere_null = {k: v.expand(4, *v.shape[1:]) for k, v in null.items()}
            reference = diffusion_loss(
                text_model, text_model.schedule, x0, space="native", min_snr_gamma=5.0,
                generator=g, **everywhere_null,
            )  # fmt: skip
            g = _rng(11)
            torch.rand(4, generator=g)
            conditional = diffusion_loss(
                text_model, text_model.schedule, x0, space="native", min_snr_gamma=5.0,
                generator=g, **cond,
            )  # fmt: skip
    finally:
        handle.remove()
    context, mask = received[0]  # what the network saw in the p_uncond = 1 call: ∅ for every example
    assert not mask.any() and not context.any(), "with p_uncond = 1 the network saw a caption"
    assert torch.equal(dropped, reference)
    assert not torch.allclose(dropped, conditional), (
        "the caption must change the loss for this to test anything"
    )


def test_p_uncond_without_a_null_condition_is_refused(text_model):
    x0 = torch.zeros(2, 1, 28, 28)
    cond = text_model.encode_text(PROMPTS)
    with pytest.raises(ValueError, match=r"p_uncond > 0.*null="):
        diffusion_loss(text_model, text_model.schedule, x0, p_uncond=0.1, **cond)
    with pytest.raises(ValueError, match="probability"):
        diffusion_loss(
            text_model, text_model.schedule, x0, p_uncond=1.5, null=text_model.null_condition(), **cond
        )


# --- (d) every DiffusionModel subclass ---------------------------------------------------------------


def _inputs(shape, cond=None):
    """x_t (2, *shape) and the condition; the test picks t = [3, T - 1] for the model's own T."""
    return torch.randn(2, *shape, generator=_rng(5)), cond or {}


def _text(cls, prediction):
    if cls is LatentTextToImage:
        model = LatentTextToImage(TINY_LATENT_UNET, TINY_TEXT, TINY_VAE, {"kind": "cosine", "T": 1000})
    else:
        model = TextToImageUNet(
            TINY_TEXT_UNET, TINY_TEXT, {"kind": "linear", "T": 500}, prediction=prediction
        )
    model = _randomise(model)
    return model, _inputs(model.sample_shape, model.encode_text(PROMPTS))


BUILDERS = {
    PatchUNet: (
        ("eps", "v"),
        lambda p: (_randomise(PatchUNet(**dict(TINY_PATCH, prediction=p))), _inputs((1, 28, 28))),
    ),
    TextToImageUNet: (("eps", "v"), functools.partial(_text, TextToImageUNet)),
    LatentTextToImage: (("eps",), functools.partial(_text, LatentTextToImage)),
    VideoUNet: (
        ("eps", "v"),
        lambda p: (
            _randomise(VideoUNet(prediction=p, schedule="cosine", T=1000, **SMALL_VIDEO)),
            _inputs((1, 4, 8, 8)),
        ),
    ),
    AudioDiffusion: (
        ("eps", "v"),
        lambda p: (
            _randomise(AudioDiffusion(prediction=p, schedule="linear", T=200, **SMALL_AUDIO)),
            _inputs((1, 64)),
        ),
    ),
}


def _package_subclasses() -> set[type]:
    for info in pkgutil.walk_packages(chapter13.__path__, "chapter13."):
        if ".widgets" not in info.name:
            importlib.import_module(info.name)
    found, todo = set(), [DiffusionModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("chapter13."):
                found.add(sub)
    return found


def test_the_builders_cover_every_diffusion_model_of_the_package():
    assert _package_subclasses() == set(BUILDERS), "give every DiffusionModel subclass a small config here"


CASES = [(cls, p) for cls, (predictions, _) in BUILDERS.items() for p in predictions]


@pytest.mark.parametrize(("cls", "prediction"), CASES, ids=[f"{c.__name__}-{p}" for c, p in CASES])
def test_forward_is_the_eps_derived_from_predict(cls, prediction):
    model, (x_t, cond) = BUILDERS[cls][1](prediction)
    t = torch.tensor([3, model.T - 1])
    assert isinstance(model, cls) and model.prediction == prediction
    assert isinstance(model.schedule, NoiseSchedule) and model.schedule.T == model.T
    torch.testing.assert_close(
        model.schedule.alpha_bars, make_schedule(model.schedule_name, model.T).alpha_bars, rtol=0, atol=0
    )
    with torch.no_grad():
        raw = model.predict(x_t, t, **cond)
        eps_hat = model(x_t, t, **cond)
    assert raw.shape == x_t.shape and raw.abs().max() > 1e-3, "an all-zero network tests nothing"
    expected = raw if prediction == "eps" else model.schedule.eps_from_v(x_t, t, raw)
    torch.testing.assert_close(eps_hat, expected)
    noise, x0 = torch.randn_like(x_t), torch.randn_like(x_t)
    target = model.target(x0, noise, t)
    torch.testing.assert_close(
        target, noise if prediction == "eps" else model.schedule.v_target(x0, noise, t)
    )
    if prediction == "v":
        assert not torch.allclose(eps_hat, raw, atol=1e-3)


# --- (e) the error= term ---------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [None, 5.0])
def test_video_loss_with_zero_consistency_weight_is_the_native_loss(gamma):
    """temporal.video_diffusion_loss is diffusion_loss(space="native") with consistency_loss as its
    error term; at temporal_weight = 0 that term is the per-clip MSE, so a v-model's value is exactly
    the plain native-space loss for the same draws."""
    model = _randomise(VideoUNet(prediction="v", schedule="cosine", T=1000, **SMALL_VIDEO))
    x0 = torch.rand(3, 1, 4, 8, 8, generator=_rng(4)) * 2 - 1
    schedule = model.schedule
    with torch.no_grad():
        video = video_diffusion_loss(
            model, schedule, x0, temporal_weight=0.0, min_snr_gamma=gamma, generator=_rng(6)
        )
        plain = diffusion_loss(model, schedule, x0, space="native", min_snr_gamma=gamma, generator=_rng(6))
        in_eps = diffusion_loss(model, schedule, x0, space="eps", generator=_rng(6))
        full = video_diffusion_loss(model, schedule, x0, min_snr_gamma=gamma, generator=_rng(6))
        extra = diffusion_loss(
            model, schedule, x0, space="native", min_snr_gamma=gamma, generator=_rng(6),
            error=functools.partial(consistency_loss, temporal_weight=0.5, reduction="none"),
        )  # fmt: skip
    assert torch.isfinite(video)
    torch.testing.assert_close(video, plain, rtol=1e-6, atol=0)
    torch.testing.assert_close(full, extra, rtol=1e-6, atol=0)
    assert full > video  # the frame-difference term is non-negative, and positive here
    if gamma is None:
        assert not torch.allclose(video, in_eps, rtol=1e-3), "ε- and v-space differ for a v-model"


# --- bad input (issue 17) ------------------------------------------------------------------------------


class _Scale(torch.nn.Module):
    """ε̂ = w x: one weight, so that the loss can see the model's dtype and device."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x * self.w


def test_loss_refuses_empty_batches_nan_data_and_mismatched_inputs():
    schedule, model = NoiseSchedule.linear(10), _Scale()
    x0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="empty batch"):
        diffusion_loss(model, schedule, x0[:0])  # was NaN
    with pytest.raises(ValueError, match="NaN or infinity"):
        diffusion_loss(model, schedule, x0 * math.nan)
    with pytest.raises(TypeError, match=r"x0 is torch.float16 but the model's weights are torch.float32"):
        diffusion_loss(model, schedule, x0.half())
    with pytest.raises(ValueError, match="x0 is on meta but the model is on cpu"):
        diffusion_loss(model, schedule, x0.to("meta"))
    assert torch.isfinite(diffusion_loss(model, schedule, x0))


@pytest.mark.parametrize(
    "kwargs", [{"min_snr_gamma": math.nan}, {"min_snr_gamma": math.inf}, {"p_uncond": math.nan}]
)
def test_loss_refuses_non_finite_weights(kwargs):
    x0 = torch.randn(4, 2)
    with pytest.raises(ValueError, match="finite"):
        diffusion_loss(_Scale(), NoiseSchedule.linear(10), x0, null={}, **kwargs)


# --- (f) EDM preconditioning (Karras et al. 2022) ------------------------------------------------------


class _Fixed(DiffusionModel):
    """A DiffusionModel whose network outputs ``self.out`` and records the input it was given."""

    def __init__(self, prediction: str, sigma_data: float | None = None) -> None:
        super().__init__(prediction, "cosine", 1000, sigma_data)

    def predict(self, x_t, t):
        self.seen = x_t
        return self.out


T_GRID = torch.tensor([0, 1, 10, 100, 500, 900, 998, 999])


def _draws(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    x0 = torch.rand(len(T_GRID), 1, 4, 4, generator=_rng(seed), dtype=torch.float64) * 2 - 1
    return x0, torch.randn(x0.shape, generator=_rng(seed + 1), dtype=torch.float64)


@pytest.mark.parametrize("sigma_data", [0.25, 0.5, 1.0, 2.0])
def test_edm_coefficients_are_karras_table_1_in_vp_coordinates(sigma_data):
    """Karras et al. 2022, Table 1: c_skip = σ_d²/(σ²+σ_d²), c_out = σσ_d/sqrt(σ²+σ_d²),
    c_in = 1/sqrt(σ²+σ_d²) act on x = x_t/sqrt(ᾱ) with σ² = (1-ᾱ)/ᾱ; ours act on x_t."""
    model = _Fixed("edm", sigma_data)
    a = model.schedule.alpha_bars[T_GRID].view(-1, 1, 1, 1)
    sigma = ((1 - a) / a).sqrt()
    c_in, c_skip, c_out = model.edm_coefficients(
        T_GRID, torch.zeros(len(T_GRID), 1, 4, 4, dtype=torch.float64)
    )
    k = sigma**2 + sigma_data**2
    torch.testing.assert_close(c_in, k.rsqrt() / a.sqrt())
    torch.testing.assert_close(c_skip, sigma_data**2 / k / a.sqrt())
    torch.testing.assert_close(c_out, sigma * sigma_data / k.sqrt())


@pytest.mark.parametrize("sigma_data", [0.5, 1.0])
def test_edm_model_with_the_exact_output_returns_the_noise_and_the_clean_digit(sigma_data):
    """If the network outputs the training target F, forward gives back ε at every t (the cosine
    schedule's two ends included) and c_skip x_t + c_out F gives back x_0: target and forward invert
    each other (eq. 7 and 8)."""
    model = _Fixed("edm", sigma_data)
    x0, noise = _draws()
    x_t = model.schedule.q_sample(x0, T_GRID, noise)
    model.out = model.target(x0, noise, T_GRID)
    torch.testing.assert_close(model(x_t, T_GRID), noise, rtol=1e-9, atol=1e-9)
    c_in, c_skip, c_out = model.edm_coefficients(T_GRID, x0)
    torch.testing.assert_close(c_skip * x_t + c_out * model.out, x0, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(model.seen, c_in * x_t)  # the network sees c_in x_t
    # the input scaling gives unit variance for data of scale σ_d: Var(c_in x_t) = 1 at every t
    a = model.schedule.alpha_bars[T_GRID]
    torch.testing.assert_close(c_in.flatten() ** 2 * (a * sigma_data**2 + 1 - a), torch.ones_like(a))


def test_edm_with_unit_sigma_data_is_v_prediction():
    """With σ_d = 1: c_in = 1, and F = -v, so forward equals the v-model's for the negated output."""
    edm, v = _Fixed("edm", 1.0), _Fixed("v")
    x0, noise = _draws(2)
    torch.testing.assert_close(edm.target(x0, noise, T_GRID), -v.target(x0, noise, T_GRID))
    x_t = edm.schedule.q_sample(x0, T_GRID, noise)
    out = torch.randn(x_t.shape, generator=_rng(9), dtype=torch.float64)
    edm.out, v.out = out, -out
    torch.testing.assert_close(edm(x_t, T_GRID), v(x_t, T_GRID))
    torch.testing.assert_close(edm.seen, x_t)


def test_edm_min_snr_loss_is_the_same_objective_in_both_spaces():
    """Min-SNR-γ weights an x_0-error by min(SNR, γ) in either space (x0_gain² = c_out² in F space),
    so for an EDM model too the ε-space and the native loss are one number for the same draws."""
    model = _randomise(PatchUNet(**dict(TINY_PATCH, prediction="edm", sigma_data=0.5))).double()
    assert model.config["sigma_data"] == 0.5 and PatchUNet(**model.config).config == model.config
    assert "sigma_data" not in PatchUNet(**TINY_PATCH).config  # v and ε configs stay as they were
    schedule = model.schedule
    x0 = torch.rand(32, 1, 28, 28, generator=_rng(0), dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        eps_space = diffusion_loss(model, schedule, x0, space="eps", min_snr_gamma=5.0, generator=_rng(3))
        native = diffusion_loss(model, schedule, x0, space="native", min_snr_gamma=5.0, generator=_rng(3))
        unweighted = diffusion_loss(model, schedule, x0, space="native", generator=_rng(3))
    torch.testing.assert_close(native, eps_space, rtol=1e-10, atol=0)
    assert not torch.allclose(native, unweighted, rtol=1e-3)


@pytest.mark.parametrize(
    ("prediction", "sigma_data", "message"),
    [
        ("edm", None, "needs sigma_data"),
        ("edm", 0.0, "positive number"),
        ("edm", -0.5, "positive number"),
        ("edm", True, "positive number"),
        ("edm", float("nan"), "sigma_data"),
        ("v", 0.5, "belongs to prediction='edm'"),
        ("x0", None, "prediction must be one of"),
    ],
)
def test_bad_edm_settings_say_what_is_wrong(prediction, sigma_data, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _Fixed(prediction, sigma_data)
