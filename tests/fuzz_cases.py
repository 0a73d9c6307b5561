"""Bad-input calls over the public API, and how their outcomes are judged (issue 17).

One table for two users: ``tests/test_fuzz.py`` fails on any case that does not end as it should,
and ``benchmarks/probe_api.py`` prints the tally. Each :class:`Case` calls one public function once
with one bad input (or one extreme but legal input) and says what it expects:

- ``"error"``: the input is wrong, so the call must raise a clear error;
- ``"result"``: the input is legal, so the call must return a finite result (that passes ``check``);
- ``"either"``: a clear error and a correct result are both fine.

:func:`run_case` classifies what happened:

- ``clear``: a ``ValueError`` or ``TypeError`` raised by a ``raise`` statement of the package (whose
  message contains ``mentions`` when the case names what the message must be about);
- ``ok``: a legal input gave a finite result that passed the check;
- ``silent``: a bad input returned a result, or a result holds NaN or infinity, or fails the check;
- ``refused``: a legal input raised an error;
- ``crash``: any other exception: raised inside torch, NumPy or Python rather than by the package,
  of another type, or with a message that blames the wrong thing;
- ``hang``: the call ran past the time limit.

Inputs are seeded (every call starts from ``torch.manual_seed(0)``, the data are fixed digits and
seeded draws) and the table is fixed, so two runs give the same table.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import math
import os
import signal
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import chapter13

PACKAGE_DIR = Path(chapter13.__file__).resolve().parent
NAN, INF = float("nan"), float("inf")
OUTCOMES = ("clear", "ok", "silent", "refused", "crash", "hang")
GOOD = {"error": {"clear"}, "result": {"ok"}, "either": {"clear", "ok"}}
"""The outcomes each expectation accepts."""


@dataclass(frozen=True)
class Case:
    """One call: ``name`` says what it does, ``call()`` makes it."""

    name: str
    call: Callable[[], Any]
    expect: str = "error"
    check: Callable[[Any], str | None] | None = None
    """For a returned value: None if it is right, else what is wrong with it."""
    mentions: str | None = None
    """A word the error message must contain (case-insensitive) to count as clear."""
    module: str = ""
    """The package module the case probes (for the tally by module)."""


@dataclass(frozen=True)
class Outcome:
    kind: str
    detail: str = ""


# --- judging one call -------------------------------------------------------------------------------


class CallTimeout(BaseException):
    """Raised in the main thread by SIGALRM; a BaseException so that no ``except Exception`` eats it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`CallTimeout` in the block after ``seconds`` (SIGALRM; main thread, Unix)."""

    def alarm(signum: int, frame: Any) -> None:
        raise CallTimeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@functools.cache
def _raise_lines(filename: str) -> frozenset[int]:
    """Every line of ``filename`` that belongs to a ``raise`` statement."""
    tree = ast.parse(Path(filename).read_text(encoding="utf-8"))
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return frozenset(lines)


def raised_where(error: BaseException) -> tuple[str, int, bool]:
    """(file, line, whether it is a ``raise`` statement of the package) of where ``error`` started."""
    tb = error.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None:
        return "?", 0, False
    filename = last.tb_frame.f_code.co_filename
    inside = Path(filename).resolve().is_relative_to(PACKAGE_DIR)
    own = inside and last.tb_lineno in _raise_lines(filename)
    return filename, last.tb_lineno, own


def nonfinite(value: Any, depth: int = 0) -> str | None:
    """Where ``value`` (a tensor, array, number or a container of them) holds NaN or infinity."""
    if depth > 4:
        return None
    if isinstance(value, torch.Tensor):
        if (value.is_floating_point() or value.is_complex()) and value.device.type != "meta":
            if not bool(torch.isfinite(value).all()):
                return f"a {value.dtype} tensor {tuple(value.shape)} with NaN or infinity"
        return None
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc" and not np.isfinite(value).all():
            return f"an array {value.shape} with NaN or infinity"
        return None
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return f"the number {value}"
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value[:1000])
    else:
        return None
    for key, item in items:
        found = nonfinite(item, depth + 1)
        if found:
            return f"[{key!r}]: {found}"
    return None


def _short(text: str, limit: int = 150) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_case(case: Case, timeout: float = 10.0) -> Outcome:
    """Call ``case`` once (seeded, under ``timeout`` seconds) and classify what happened."""
    torch.manual_seed(0)
    try:
        with warnings.catch_warnings(), time_limit(timeout):
            warnings.simplefilter("ignore")
            result = case.call()
    except CallTimeout:
        return Outcome("hang", f"no answer within {timeout:g} s")
    except Exception as error:
        filename, line, own = raised_where(error)
        where = f"{Path(filename).name}:{line}"
        message = f"{type(error).__name__} at {where}: {_short(error)}"
        if case.expect == "result":
            return Outcome("refused", message)
        if not own or not isinstance(error, (ValueError, TypeError)) or not str(error).strip():
            return Outcome("crash", message)
        if case.mentions and case.mentions.lower() not in str(error).lower():
            return Outcome("crash", f"message does not mention {case.mentions!r}: {message}")
        return Outcome("clear", message)
    if case.expect == "error":
        return Outcome("silent", f"returned {_describe(result)}")
    bad = nonfinite(result)
    if bad:
        return Outcome("silent", f"returned {bad}")
    wrong = case.check(result) if case.check is not None else None
    if wrong:
        return Outcome("silent", f"wrong result: {wrong}")
    return Outcome("ok", f"returned {_describe(result)}")


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        found = nonfinite(value)
        return f"a {value.dtype} tensor {tuple(value.shape)}" + (" with NaN/inf" if found else "")
    if isinstance(value, np.ndarray):
        return f"an array {value.shape}"
    if isinstance(value, dict):
        found = nonfinite(value)
        return f"a dict {_short(value, 80)}" + (f" ({found})" if found else "")
    return _short(repr(value), 80)


# --- fixtures (built on first use, once) --------------------------------------------------------------


@functools.cache
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """32 bundled test digits (N, 1, 28, 28) in [-1, 1] and their labels, a few of each class."""
    from chapter13.data import load_mnist

    x, y = load_mnist("test")
    index = torch.arange(32) * 31
    return x[index], y[index]


def image_variants() -> dict[str, Any]:
    """The digits made wrong in the ways students make them wrong."""
    x = digits()[0]
    nan, inf = x.clone(), x.clone()
    nan[0, 0, 3, 3] = NAN
    inf[1, 0, 5, 5] = INF
    return {
        "an empty batch": x[:0],
        "images in [0, 1]": (x + 1) / 2,
        "images in 0..255 (float)": (x + 1) * 127.5,
        "uint8 images 0..255": ((x + 1) * 127.5).round().to(torch.uint8),
        "int64 images 0..255": ((x + 1) * 127.5).round().long(),
        "a NumPy array": x.numpy(),
        "a NaN pixel": nan,
        "an inf pixel": inf,
        "no channel axis (N, 28, 28)": x[:, 0],
        "a nested list": x[:2].tolist(),
    }


def model_input_variants() -> dict[str, Any]:
    """Inputs a model's forward pass must refuse with a clear error (no range or NaN checks there)."""
    x = digits()[0][:4]
    return {
        "float16 images": x.half(),
        "int64 images": x.long(),
        "uint8 images": ((x + 1) * 127.5).to(torch.uint8),
        "a NumPy array": x.numpy(),
        "a tensor on the meta device": x.to("meta"),
        "no channel axis (N, 28, 28)": x[:, 0],
    }


@functools.cache
def classifier() -> torch.nn.Module:
    from chapter13.evaluate import load_classifier

    return load_classifier()


@functools.cache
def clip() -> torch.nn.Module:
    from chapter13.multimodal import TinyCLIP

    torch.manual_seed(0)
    return TinyCLIP(image_width=8, image_dim=16, text_dim=16, text_depth=1, text_heads=2, joint_dim=8).eval()


@functools.cache
def vae() -> torch.nn.Module:
    from chapter13.latent import VAE

    torch.manual_seed(0)
    return VAE(channels=(8, 8, 8)).eval()


@functools.cache
def video_model() -> torch.nn.Module:
    from chapter13.temporal import VideoUNet

    torch.manual_seed(0)
    return VideoUNet(
        base_channels=8, channel_mults=(1, 2), temporal_downsample=False, mid_attention=False, T=20
    ).eval()


@functools.cache
def audio_model() -> torch.nn.Module:
    from chapter13.audio import AudioDiffusion

    torch.manual_seed(0)
    return AudioDiffusion(base_channels=8, channel_mults=(1, 2), mid_attention=False, T=20).eval()


@functools.cache
def text_model() -> torch.nn.Module:
    from chapter13.text2image import TextToImageUNet

    torch.manual_seed(0)
    unet = dict(base_channels=8, channel_mults=[1], num_res_blocks=1, context_dim=16, heads=2)
    return TextToImageUNet(unet, dict(dim=16, depth=1, heads=2), {"kind": "cosine", "T": 20}).eval()


@functools.cache
def patch_model() -> torch.nn.Module:
    from chapter13.codelab import PatchUNet

    torch.manual_seed(0)
    return PatchUNet(base_channels=8, channel_mults=(1,), T=20).eval()


@functools.cache
def hierarchy_model() -> torch.nn.Module:
    from chapter13.hierarchy import TwoStreamFusion

    torch.manual_seed(0)
    return TwoStreamFusion().eval()


@functools.cache
def toy_model() -> torch.nn.Module:
    from chapter13.toy import ToyDenoiser

    torch.manual_seed(0)
    return ToyDenoiser(hidden=16, depth=1, time_dim=8).eval()


@functools.cache
def schedule() -> Any:
    from chapter13.diffusion import NoiseSchedule

    return NoiseSchedule.linear(20)


def clips(n: int = 2, frames: int = 4, size: int = 16) -> torch.Tensor:
    """Seeded clips (n, 1, frames, size, size) in [-1, 1]: a dark canvas with a bright moving square."""
    out = torch.full((n, 1, frames, size, size), -1.0)
    for f in range(frames):
        out[:, :, f, 4 + f : 8 + f, 4:8] = 1.0
    return out


def waves(n: int = 2, length: int = 256) -> torch.Tensor:
    t = torch.arange(length, dtype=torch.float32) / 4000.0
    return (0.5 * torch.sin(2 * math.pi * 440.0 * t)).repeat(n, 1).unsqueeze(1)


def cond_model(x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """A conditional 'model' for guidance: ε = x/2 + the condition's first feature."""
    return 0.5 * x + context[:, :1].expand_as(x)


@contextlib.contextmanager
def environment(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _with_env(name: str, value: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    def call() -> Any:
        with environment(name, value):
            return fn()

    return call


def _threads(n: Any) -> Any:
    from chapter13.config import torch_threads

    with torch_threads(n):
        return torch.get_num_threads()


# --- checks of legal results --------------------------------------------------------------------------


def _shape(*shape: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        got = tuple(value.shape) if hasattr(value, "shape") else None
        return None if got == shape else f"shape {got}, expected {shape}"

    return check


def _area_one(dt: float) -> Callable[[Any], str | None]:
    def check(kernel: Any) -> str | None:
        area = float(np.sum(kernel) * dt)
        return None if abs(area - 1.0) < 0.05 else f"kernel area {area:.3g}, expected 1"

    return check


def _weights_sum_to_one(result: Any) -> str | None:
    weights = np.asarray(result[2])
    return None if np.allclose(weights.sum(axis=-1), 1.0) else f"weights {weights} do not sum to 1"


def _probability(value: Any) -> str | None:
    v = float(np.asarray(value))
    return None if 0.0 <= v <= 1.0 else f"{v} is not a probability"


def _histogram(expected: list[int]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if list(value) == expected else f"{list(value)}, expected {expected}"

    return check


# --- the table ------------------------------------------------------------------------------------------


def build_cases() -> list[Case]:
    """Every case, in a fixed order (inputs are built lazily, when a case runs)."""
    from chapter13 import (
        audio,
        captions,
        codelab,
        config,
        cost,
        data,
        diffusion,
        evaluate,
        guidance,
        hierarchy,
        latent,
        multimodal,
        neuro,
        synthetic,
        temporal,
        text2image,
        toy,
        train,
    )

    cases: list[Case] = []
    current = [""]

    def group(module: str) -> None:
        current[0] = module

    def add(name: str, call: Callable[[], Any], expect: str = "error", **kw: Any) -> None:
        cases.append(Case(name, call, expect, module=current[0], **kw))

    x4 = lambda: digits()[0][:4]
    y4 = lambda: digits()[1][:4]

    # evaluate: metrics of digit images ------------------------------------------------------------
    group("evaluate")
    for label in image_variants():
        img = lambda label=label: image_variants()[label]
        add(f"evaluate.classify({label})", lambda img=img: evaluate.classify(img()))
        add(f"evaluate.sample_metrics({label})", lambda img=img: evaluate.sample_metrics(img()))
        add(f"evaluate.check_samples({label})", lambda img=img: evaluate.check_samples(img()))
        add(
            f"evaluate.class_accuracy({label})",
            lambda img=img: evaluate.class_accuracy(img(), digits()[1][: len(img())]),
        )
        add(
            f"text2image.measure_attributes({label})",
            lambda img=img: text2image.measure_attributes(img(), "a handwritten digit 3"),
        )
        either = "either" if label == "an empty batch" else "error"
        for fn in (captions.stroke_width, captions.ink_centroid, captions.ink_extent):
            add(f"captions.{fn.__name__}({label})", lambda fn=fn, img=img: fn(img()), either)
    add("evaluate.classify(float16 digits)", lambda: evaluate.classify(digits()[0].half()), "result")
    add("evaluate.sample_metrics(real digits)", lambda: evaluate.sample_metrics(digits()[0]), "result")
    for t in (NAN, INF, -0.5, 1.5, "0.9"):
        add(
            f"evaluate.sample_metrics(threshold={t!r})",
            lambda t=t: evaluate.sample_metrics(x4(), threshold=t),
        )
    add("evaluate.classify(batch_size=0)", lambda: evaluate.classify(x4(), batch_size=0))
    add("evaluate.classify(batch_size=-1)", lambda: evaluate.classify(x4(), batch_size=-1))
    add("evaluate.class_accuracy(labels 2.5)", lambda: evaluate.class_accuracy(x4(), [2.5] * 4))
    add("evaluate.class_accuracy(labels 12)", lambda: evaluate.class_accuracy(x4(), [12] * 4))
    add("evaluate.class_accuracy(3 labels for 4)", lambda: evaluate.class_accuracy(x4(), [1, 2, 3]))
    probs = lambda: torch.full((4, 10), 0.1)
    add("evaluate.confident_fraction(empty)", lambda: evaluate.confident_fraction(torch.zeros(0, 10)))
    add("evaluate.confident_fraction(NumPy)", lambda: evaluate.confident_fraction(np.full((4, 10), 0.1)))
    add("evaluate.confident_fraction(NaN probs)", lambda: evaluate.confident_fraction(probs() * NAN))
    add("evaluate.confident_fraction(1-D)", lambda: evaluate.confident_fraction(torch.rand(10)))
    for t in (NAN, INF, -1.0, 2.0):
        add(
            f"evaluate.confident_fraction(threshold={t})", lambda t=t: evaluate.confident_fraction(probs(), t)
        )
    add("evaluate.class_histogram([12, 2])", lambda: evaluate.class_histogram(torch.tensor([12, 2])))
    add("evaluate.class_histogram([-1, 2])", lambda: evaluate.class_histogram(torch.tensor([-1, 2])))
    add(
        "evaluate.class_histogram(float [1.5, 2])", lambda: evaluate.class_histogram(torch.tensor([1.5, 2.0]))
    )
    add("evaluate.class_histogram(probabilities (4, 10))", lambda: evaluate.class_histogram(probs()))
    add("evaluate.class_histogram(num_classes=0)", lambda: evaluate.class_histogram(torch.tensor([0]), 0))
    add(
        "evaluate.class_histogram(list [3, 3, 1])",
        lambda: evaluate.class_histogram([3, 3, 1]),
        "result",
        check=_histogram([0, 1, 0, 2, 0, 0, 0, 0, 0, 0]),
    )
    add(
        "evaluate.class_histogram(NumPy [3, 1])",
        lambda: evaluate.class_histogram(np.array([3, 1])),
        "result",
        check=_histogram([0, 1, 0, 1, 0, 0, 0, 0, 0, 0]),
    )
    for counts in ([NAN, 1.0], [INF, 1.0], [], "abc", [0, 0]):
        add(f"evaluate.normalised_entropy({counts!r})", lambda c=counts: evaluate.normalised_entropy(c))
    feats = lambda: torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    add("evaluate.frechet_distance(NaN features)", lambda: evaluate.frechet_distance(feats() * NAN, feats()))
    add("evaluate.frechet_distance(inf features)", lambda: evaluate.frechet_distance(feats() * INF, feats()))
    add("evaluate.frechet_distance(strings)", lambda: evaluate.frechet_distance([["a", "b"]] * 3, feats()))
    add("evaluate.frechet_distance(D 4 vs 3)", lambda: evaluate.frechet_distance(feats(), feats()[:, :3]))
    add(
        "evaluate.frechet_distance(random)", lambda: evaluate.frechet_distance(feats(), feats() + 1), "result"
    )
    add("evaluate.accuracy(empty batch)", lambda: evaluate.accuracy(classifier(), x4()[:0], y4()[:0]))
    add("evaluate.accuracy(batch_size=0)", lambda: evaluate.accuracy(classifier(), x4(), y4(), batch_size=0))
    add("evaluate.accuracy(3 labels for 4)", lambda: evaluate.accuracy(classifier(), x4(), y4()[:3]))
    add("evaluate.augment(max_shift=-1)", lambda: evaluate.augment(x4(), max_shift=-1))
    add("evaluate.augment(max_shift=2.5)", lambda: evaluate.augment(x4(), max_shift=2.5))
    add("evaluate.augment(max_rotation_deg=nan)", lambda: evaluate.augment(x4(), max_rotation_deg=NAN))
    add("evaluate.augment(max_rotation_deg=inf)", lambda: evaluate.augment(x4(), max_rotation_deg=INF))
    add("evaluate.augment(NumPy)", lambda: evaluate.augment(x4().numpy()))
    add("evaluate.augment(no channel axis)", lambda: evaluate.augment(x4()[:, 0]))
    add("evaluate.make_outliers(3 labels for 4)", lambda: evaluate.make_outliers(x4(), y4()[:3]))
    add("evaluate.make_outliers(NumPy)", lambda: evaluate.make_outliers(x4().numpy(), y4().numpy()))
    for device in ("gpu", "cuda:99", "cpu:x", 5):
        add(f"evaluate.load_classifier({device!r})", lambda d=device: evaluate.load_classifier(d))
    if not torch.cuda.is_available():
        add("evaluate.load_classifier('cuda') without CUDA", lambda: evaluate.load_classifier("cuda"))
    for label, bad in model_input_variants().items():
        add(f"DigitClassifier({label})", lambda b=bad: classifier()(b))

    # data ----------------------------------------------------------------------------------------------
    group("data")
    for limit in (-5, 0, 2.5, "5", True):
        add(f"data.load_mnist(limit={limit!r})", lambda n=limit: data.load_mnist("test", limit=n))
    add("data.load_mnist(limit=10**9)", lambda: data.load_mnist("test", limit=10**9), "result")
    add("data.load_mnist(split='valid')", lambda: data.load_mnist("valid"))
    add("data.to_model_range(floats in [-1, 1])", lambda: data.to_model_range(x4()[:, 0]))
    add("data.to_model_range(NumPy uint8)", lambda: data.to_model_range(np.zeros((2, 28, 28), np.uint8)))
    add("data.to_unit_range(NumPy)", lambda: data.to_unit_range(x4().numpy()))
    add("data.split_balanced(3 labels)", lambda: data.split_balanced(np.array([0, 1, 2])))
    add("data.split_balanced(train_per_class=-1)", lambda: data.split_balanced(np.arange(50) % 10, -1, 1))

    # diffusion -------------------------------------------------------------------------------------------
    group("diffusion")
    ns = diffusion.NoiseSchedule
    add("NoiseSchedule(['a', 'b'])", lambda: ns(["a", "b"]))
    add("NoiseSchedule([])", lambda: ns([]))
    add("NoiseSchedule([0.1, nan])", lambda: ns([0.1, NAN]))
    add("NoiseSchedule(NumPy betas)", lambda: ns(np.full(5, 0.1)), "result", check=lambda s: None)
    for kw in ({"T": 0}, {"T": 2.5}, {"T": "10"}, {"beta_start": NAN}, {"beta_end": INF}, {"beta_end": 1.5}):
        add(f"NoiseSchedule.linear({kw})", lambda kw=kw: ns.linear(**kw))
    for kw in ({"s": INF}, {"s": NAN}, {"s": -0.1}, {"max_beta": NAN}, {"max_beta": 1.0}):
        add(f"NoiseSchedule.cosine({kw})", lambda kw=kw: ns.cosine(10, **kw))
    add("NoiseSchedule.sigmoid(width=inf)", lambda: ns.sigmoid(10, width=INF))
    add("NoiseSchedule.sigmoid(width=nan)", lambda: ns.sigmoid(10, width=NAN))
    add("NoiseSchedule.from_alpha_bars([0.9, nan])", lambda: ns.from_alpha_bars([0.9, NAN]))
    add("NoiseSchedule.from_alpha_bars(['a'])", lambda: ns.from_alpha_bars(["a"]))
    add("diffusion.make_schedule('bogus')", lambda: diffusion.make_schedule("bogus"))
    add("diffusion.make_schedule(T=-1)", lambda: diffusion.make_schedule("cosine", -1))
    pts = lambda: torch.randn(4, 2, generator=torch.Generator().manual_seed(2))
    add("q_sample(t=5000)", lambda: schedule().q_sample(pts(), 5000))
    add("q_sample(t=-1)", lambda: schedule().q_sample(pts(), -1))
    add("q_sample(t=1.5)", lambda: schedule().q_sample(pts(), 1.5))
    add("q_sample(float t tensor)", lambda: schedule().q_sample(pts(), torch.full((4,), 1.0)))
    add("q_sample(NumPy x0)", lambda: schedule().q_sample(pts().numpy(), 3))
    add("q_sample(int x0)", lambda: schedule().q_sample(pts().long(), 3))
    add("q_sample(NaN x0)", lambda: schedule().q_sample(pts() * NAN, 3))
    add("q_sample(NumPy noise)", lambda: schedule().q_sample(pts(), 3, noise=pts().numpy()))
    add("q_sample(noise of another shape)", lambda: schedule().q_sample(pts(), 3, noise=pts()[:2]))
    add("predict_x0(NumPy eps)", lambda: schedule().predict_x0(pts(), 3, pts().numpy()))
    add("ddpm_step(t=nan)", lambda: schedule().ddpm_step(pts(), NAN, pts()))
    add("ddpm_step(t=20)", lambda: schedule().ddpm_step(pts(), 20, pts()))
    for eta in (NAN, INF, -1.0, "0"):
        add(f"ddim_step(eta={eta!r})", lambda e=eta: schedule().ddim_step(pts(), 5, 4, pts(), eta=e))
    loss = lambda x0, **kw: diffusion.diffusion_loss(toy_model(), schedule(), x0, **kw)
    add("diffusion_loss(empty batch)", lambda: loss(pts()[:0]))
    add("diffusion_loss(NaN x0)", lambda: loss(pts() * NAN))
    add("diffusion_loss(inf x0)", lambda: loss(pts() * INF))
    add("diffusion_loss(float16 x0, float32 model)", lambda: loss(pts().half()))
    add("diffusion_loss(x0 on the meta device)", lambda: loss(pts().to("meta")))
    add("diffusion_loss(NumPy x0)", lambda: loss(pts().numpy()))
    add("diffusion_loss(1-D x0)", lambda: loss(pts()[:, 0]))
    for g in (NAN, INF, 0.0, -5.0):
        add(f"diffusion_loss(min_snr_gamma={g})", lambda g=g: loss(pts(), min_snr_gamma=g))
    add("diffusion_loss(p_uncond=nan)", lambda: loss(pts(), p_uncond=NAN, null={}))
    add("diffusion_loss(space='x0')", lambda: loss(pts(), space="x0"))
    add("diffusion_loss(random points)", lambda: loss(pts()), "result")
    for kw in ({"steps": 0}, {"steps": 11}, {"steps": 2.5}, {"spacing": "bogus"}):
        add(f"diffusion.timesteps(10, {kw})", lambda kw=kw: diffusion.timesteps(10, **{"steps": 5, **kw}))
    ddim = lambda shape=(4, 2), **kw: diffusion.sample_ddim(
        toy_model(), schedule(), shape, **{"steps": 3, "progress": False, **kw}
    )
    ddpm = lambda shape=(4, 2), **kw: diffusion.sample_ddpm(
        toy_model(), schedule(), shape, **{"steps": 3, "progress": False, **kw}
    )
    for kw in ({"steps": 0}, {"steps": NAN}, {"eta": NAN}, {"eta": INF}):
        add(f"sample_ddim({kw})", lambda kw=kw: ddim(**kw))
    for device in ("gpu", "cuda:99", "cpu:x"):
        add(f"sample_ddim(device={device!r})", lambda d=device: ddim(device=d))
        add(f"sample_ddpm(device={device!r})", lambda d=device: ddpm(device=d))
    add("sample_ddim(x_T with NaN)", lambda: ddim(x_T=pts() * NAN))
    add("sample_ddim(x_T NumPy)", lambda: ddim(x_T=pts().numpy()))
    add("sample_ddim(shape (0, 2))", lambda: ddim((0, 2)))
    add("sample_ddim(shape (2.5, 2))", lambda: ddim((2.5, 2)))
    add("sample_ddim(dtype=torch.int64)", lambda: ddim(dtype=torch.int64))
    add("sample_ddim(dtype='float32')", lambda: ddim(dtype="float32"))
    add("sample_ddim(generator=123)", lambda: ddim(generator=123))
    add("sample_ddpm(steps=-1)", lambda: ddpm(steps=-1))
    add("sample_ddim(seeded, legal)", lambda: ddim(generator=torch.Generator().manual_seed(0)), "result")
    add("DiffusionModel(prediction='x0')", lambda: diffusion.DiffusionModel("x0"))
    add("DiffusionModel(schedule='bogus')", lambda: diffusion.DiffusionModel("eps", "bogus"))

    # guidance ----------------------------------------------------------------------------------------------
    group("guidance")
    for w in (NAN, INF, "2"):
        add(f"guidance.scale_from_w({w!r})", lambda w=w: guidance.scale_from_w(w))
        add(f"guidance.w_from_scale({w!r})", lambda w=w: guidance.w_from_scale(w))
    gx = lambda: torch.randn(3, 2, generator=torch.Generator().manual_seed(3))
    gt = lambda: torch.zeros(3, dtype=torch.long)
    cond = lambda: {"context": torch.ones(3, 2)}
    null = lambda: {"context": torch.zeros(1, 2)}
    guided = lambda scale, **kw: guidance.guided_epsilon(cond_model, gx(), gt(), cond(), null(), scale, **kw)
    for scale in (NAN, INF, -INF, "3"):
        add(f"guided_epsilon(scale={scale!r})", lambda s=scale: guided(s))
    add("guided_epsilon(scale tensor with NaN)", lambda: guided(torch.tensor([1.0, NAN, 2.0])))
    add("guided_epsilon(scale 0-d tensor NaN)", lambda: guided(torch.tensor(NAN)))
    add("guided_epsilon(scale tensor with inf)", lambda: guided(torch.tensor([1.0, INF, 2.0])))
    add(
        "guided_epsilon(t NumPy)",
        lambda: guidance.guided_epsilon(cond_model, gx(), np.zeros(3), cond(), null(), 2.0),
    )
    add("guided_epsilon(scale 3.0)", lambda: guided(3.0), "result")
    add("GuidedModel(scale=nan)", lambda: guidance.GuidedModel(cond_model, null(), NAN)(gx(), gt(), **cond()))
    add("GuidedModel(scale=inf)", lambda: guidance.GuidedModel(cond_model, null(), INF)(gx(), gt(), **cond()))
    add("drop_condition(p_uncond=nan)", lambda: guidance.drop_condition(cond(), null(), NAN))
    add("drop_condition(p_uncond=1.5)", lambda: guidance.drop_condition(cond(), null(), 1.5))
    add(
        "drop_condition(NumPy condition)",
        lambda: guidance.drop_condition({"context": np.ones((3, 2))}, null(), 0.5),
    )
    add("drop_condition(empty condition)", lambda: guidance.drop_condition({}, {}, 0.5))
    add("expand_null(NumPy null)", lambda: guidance.expand_null({"context": np.zeros((1, 2))}, cond()))
    gen = lambda prompts="a handwritten digit 3", **kw: text2image.generate(
        text_model(), prompts, **{"steps": 2, **kw}
    )
    for g in (NAN, INF, "3"):
        add(f"text2image.generate(guidance={g!r})", lambda g=g: gen(guidance=g))
    add("text2image.generate(prompts=[])", lambda: gen([]))
    add("text2image.generate(prompts=5)", lambda: gen(5))
    add("text2image.generate(unknown word)", lambda: gen("a purple digit 3"))
    for seed in (2**70, "0", 2.5):
        add(f"text2image.generate(seed={seed!r})", lambda s=seed: gen(seed=s))
    add("text2image.generate(seed=-1)", lambda: gen(seed=-1), "either")
    add("text2image.generate(steps=0)", lambda: gen(steps=0))
    add("text2image.label_prompts([12])", lambda: text2image.label_prompts([12]))
    add("text2image.parse_prompt(5)", lambda: text2image.parse_prompt(5))

    # multimodal ----------------------------------------------------------------------------------------------
    group("multimodal")
    tok = multimodal.Tokenizer
    add("Tokenizer.encode(5)", lambda: tok().encode(5))
    add("Tokenizer.encode([])", lambda: tok().encode([]))
    add("Tokenizer.encode(['a', 3])", lambda: tok().encode(["a", 3]))
    add("Tokenizer.encode(pad_to=2.5)", lambda: tok().encode(["a digit 3"], pad_to=2.5))
    add("Tokenizer.encode(pad_to=-1)", lambda: tok().encode(["a digit 3"], pad_to=-1))
    add(
        "Tokenizer.encode('a digit 3')",
        lambda: tok().encode("a digit 3"),
        "result",
        check=lambda r: _shape(1, 3)(r[0]),
    )
    add("Tokenizer.decode(id 999)", lambda: tok().decode(torch.tensor([[999]])))
    add("Tokenizer.decode(id -1)", lambda: tok().decode(torch.tensor([[-1]])))
    add("Tokenizer.decode(float ids)", lambda: tok().decode(torch.tensor([[2.0, 3.0]])))
    add("Tokenizer(max_length=0)", lambda: tok(max_length=0))
    add("Tokenizer(max_length=None)", lambda: tok(max_length=None))
    add("Tokenizer(max_length=2.5)", lambda: tok(max_length=2.5))
    ids = lambda: tok().encode(["a digit 3", "a thick 7"])
    add("TextEncoder(ids out of the vocabulary)", lambda: clip().text_encoder(ids()[0] + 1000, ids()[1]))
    add("TextEncoder(negative ids)", lambda: clip().text_encoder(ids()[0] - 100, ids()[1]))
    add("TextEncoder(int32 ids)", lambda: clip().text_encoder(ids()[0].int(), ids()[1]))
    add(
        "TextEncoder(ids on the meta device)",
        lambda: clip().text_encoder(ids()[0].to("meta"), ids()[1].to("meta")),
    )
    for label, bad in model_input_variants().items():
        add(f"TinyCLIP.encode_image({label})", lambda b=bad: clip().encode_image(b))
        add(f"VAE.encode({label})", lambda b=bad: vae().encode(b))
        add(f"HierarchicalCNN({label})", lambda b=bad: hierarchy_model().visual(b))
    emb = lambda n=4, d=8, seed=4: torch.nn.functional.normalize(
        torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=-1
    )
    closs = multimodal.contrastive_loss
    add("contrastive_loss(temperature=nan)", lambda: closs(emb(), emb(seed=5), NAN))
    add("contrastive_loss(temperature=0)", lambda: closs(emb(), emb(seed=5), 0.0))
    add("contrastive_loss(logit_scale=nan)", lambda: closs(emb(), emb(seed=5), logit_scale=torch.tensor(NAN)))
    add("contrastive_loss(logit_scale=inf)", lambda: closs(emb(), emb(seed=5), logit_scale=torch.tensor(INF)))
    add(
        "contrastive_loss(logit_scale=-inf)",
        lambda: closs(emb(), emb(seed=5), logit_scale=torch.tensor(-INF)),
    )
    add(
        "contrastive_loss(logit_scale float 2.0)",
        lambda: closs(emb(), emb(seed=5), logit_scale=2.0),
        "result",
    )
    add(
        "contrastive_loss(max_logit_scale=nan)",
        lambda: closs(emb(), emb(5), logit_scale=torch.tensor(2.0), max_logit_scale=NAN),
    )
    add(
        "contrastive_loss(max_logit_scale=-1)",
        lambda: closs(emb(), emb(5), logit_scale=torch.tensor(2.0), max_logit_scale=-1.0),
    )
    add(
        "contrastive_loss(int64 embeddings)",
        lambda: closs(emb().long(), emb(seed=5).long()),
        mentions="image_emb",
    )
    add("contrastive_loss(float16 vs float32)", lambda: closs(emb().half(), emb(seed=5)))
    add("contrastive_loss(NaN embedding)", lambda: closs(emb() * NAN, emb(seed=5)))
    add("contrastive_loss(NumPy embeddings)", lambda: closs(emb().numpy(), emb(seed=5).numpy()))
    add("contrastive_loss(empty batch)", lambda: closs(emb(0), emb(0)))
    add("contrastive_loss(3 vs 4 rows)", lambda: closs(emb(3), emb(seed=5)))
    add("contrastive_loss(random unit vectors)", lambda: closs(emb(), emb(seed=5)), "result")
    add("similarity_matrix(NaN)", lambda: multimodal.similarity_matrix(emb() * NAN, emb()))
    add(
        "symmetric_cross_entropy(int logits)", lambda: multimodal.symmetric_cross_entropy(torch.eye(3).long())
    )
    add("symmetric_cross_entropy(NaN logits)", lambda: multimodal.symmetric_cross_entropy(torch.eye(3) * NAN))
    add("clamped_scale(nan)", lambda: multimodal.clamped_scale(torch.tensor(NAN)))
    add("clamped_scale(max_scale=0)", lambda: multimodal.clamped_scale(torch.tensor(1.0), 0.0))
    add("clamped_scale(max_scale=-1)", lambda: multimodal.clamped_scale(torch.tensor(1.0), -1.0))
    add("TinyCLIP(init_temperature=nan)", lambda: multimodal.TinyCLIP(init_temperature=NAN))
    add("TinyCLIP(max_logit_scale=inf)", lambda: multimodal.TinyCLIP(max_logit_scale=INF))
    add("TinyCLIP(max_logit_scale=nan)", lambda: multimodal.TinyCLIP(max_logit_scale=NAN))
    add(
        "embed_texts('a digit 3')",
        lambda: multimodal.embed_texts(clip(), "a digit 3"),
        "result",
        check=_shape(1, 8),
    )
    add("embed_texts([])", lambda: multimodal.embed_texts(clip(), []))
    add("embed_texts(None)", lambda: multimodal.embed_texts(clip(), None))
    add("embed_texts([3])", lambda: multimodal.embed_texts(clip(), [3]))
    add("embed_images(empty batch)", lambda: multimodal.embed_images(clip(), x4()[:0]))
    add("embed_images(batch_size=0)", lambda: multimodal.embed_images(clip(), x4(), batch_size=0))
    add("embed_images(NumPy)", lambda: multimodal.embed_images(clip(), x4().numpy()))
    add("embed_images(float16)", lambda: multimodal.embed_images(clip(), x4().half()))
    add("class_embeddings('a zero')", lambda: multimodal.class_embeddings(clip(), "a zero"), mentions="class")
    add(
        "class_embeddings(['a zero', 'a one'])",
        lambda: multimodal.class_embeddings(clip(), ["a zero", "a one"]),
        mentions="class",
    )
    add("class_embeddings([[]])", lambda: multimodal.class_embeddings(clip(), [[]]))
    add(
        "zero_shot_classify(prompts='abc')",
        lambda: multimodal.zero_shot_classify(clip(), x4(), "abc"),
        mentions="class",
    )
    add("zero_shot_classify(empty batch)", lambda: multimodal.zero_shot_classify(clip(), x4()[:0]))
    add(
        "zero_shot_accuracy(labels as a list)",
        lambda: multimodal.zero_shot_accuracy(clip(), x4(), y4().tolist()),
        "result",
        check=_probability,
    )
    add("zero_shot_accuracy(3 labels for 4)", lambda: multimodal.zero_shot_accuracy(clip(), x4(), y4()[:3]))
    sim = lambda q=3, g=5: torch.randn(q, g, generator=torch.Generator().manual_seed(6))
    rel = lambda q=3, g=5: torch.eye(q, g, dtype=torch.bool)
    add("recall_at_k(empty queries)", lambda: multimodal.recall_at_k(sim(0), rel(0)))
    add("recall_at_k(empty gallery)", lambda: multimodal.recall_at_k(sim(3, 0), rel(3, 0)))
    add("recall_at_k(NumPy)", lambda: multimodal.recall_at_k(sim().numpy(), rel().numpy()))
    add("recall_at_k(NaN similarity)", lambda: multimodal.recall_at_k(sim() * NAN, rel()))
    add("recall_at_k(ks=[0])", lambda: multimodal.recall_at_k(sim(), rel(), [0]))
    add("recall_at_k(ks=[2.5])", lambda: multimodal.recall_at_k(sim(), rel(), [2.5]))
    add("recall_at_k(random)", lambda: multimodal.recall_at_k(sim(), rel()), "result")

    # temporal --------------------------------------------------------------------------------------------------
    group("temporal")
    c = clips
    add("temporal_metrics(empty batch)", lambda: temporal.temporal_metrics(c()[:0]))
    add("temporal_metrics(clips in [0, 1])", lambda: temporal.temporal_metrics((c() + 1) / 2))
    add("temporal_metrics(clips 0..255)", lambda: temporal.temporal_metrics((c() + 1) * 127.5))
    add(
        "temporal_metrics(uint8 clips)",
        lambda: temporal.temporal_metrics(((c() + 1) * 127.5).to(torch.uint8)),
    )
    add(
        "temporal_metrics(NaN pixel)",
        lambda: temporal.temporal_metrics(c().index_fill(0, torch.tensor([0]), NAN)),
    )
    add("temporal_metrics(NumPy)", lambda: temporal.temporal_metrics(c().numpy()))
    add("temporal_metrics(4-D)", lambda: temporal.temporal_metrics(c()[:, 0]))
    add("temporal_metrics(one frame)", lambda: temporal.temporal_metrics(c()[:, :, :1]))
    add("temporal_metrics(max_shift=-1)", lambda: temporal.temporal_metrics(c(), -1))
    add("temporal_metrics(max_shift=2.5)", lambda: temporal.temporal_metrics(c(), 2.5))
    add("temporal_metrics(max_shift=1000)", lambda: temporal.temporal_metrics(c(), 1000))
    add("temporal_metrics(float16 clips)", lambda: temporal.temporal_metrics(c().half()), "result")
    add("temporal_metrics(clips)", lambda: temporal.temporal_metrics(c()), "result")
    nanclip = lambda: c().index_fill(0, torch.tensor([0]), NAN)
    for fn in (
        temporal.frame_difference,
        temporal.relative_flicker,
        temporal.warp_error,
        temporal.ink_variation,
    ):
        add(f"temporal.{fn.__name__}(NaN clip)", lambda fn=fn: fn(nanclip()))
        add(f"temporal.{fn.__name__}(NumPy)", lambda fn=fn: fn(c().numpy()))
    add("relative_flicker(background=nan)", lambda: temporal.relative_flicker(c(), NAN))
    add("warp_error(background=nan)", lambda: temporal.warp_error(c(), 2, NAN))
    add("digit_crops(digit_size=2.5)", lambda: temporal.digit_crops(c(), 2.5))
    add("digit_crops(digit_size=0)", lambda: temporal.digit_crops(c(), 0))
    add("digit_crops(out_size=0)", lambda: temporal.digit_crops(c(), 8, 0))
    add("identity_consistency(empty batch)", lambda: temporal.identity_consistency(c()[:0]))
    add("consistency_loss(temporal_weight=nan)", lambda: temporal.consistency_loss(c(), c(), NAN))
    add("consistency_loss(temporal_weight=inf)", lambda: temporal.consistency_loss(c(), c(), INF))
    add("consistency_loss(NumPy target)", lambda: temporal.consistency_loss(c(), c().numpy()))
    add("consistency_loss(reduction='sum')", lambda: temporal.consistency_loss(c(), c(), reduction="sum"))
    vloss = lambda x0, **kw: temporal.video_diffusion_loss(video_model(), video_model().schedule, x0, **kw)
    add("video_diffusion_loss(empty batch)", lambda: vloss(c()[:0]))
    add("video_diffusion_loss(temporal_weight=inf)", lambda: vloss(c(), temporal_weight=INF))
    add("video_diffusion_loss(NaN clip)", lambda: vloss(nanclip()))
    t2 = lambda: torch.zeros(2, dtype=torch.long)
    add("VideoUNet(float16 clips)", lambda: video_model()(c().half(), t2()))
    add("VideoUNet(int clips)", lambda: video_model()(c().long(), t2()))
    add("VideoUNet(clips on the meta device)", lambda: video_model()(c().to("meta"), t2()))
    add("VideoUNet(4-D input)", lambda: video_model()(c()[:, :, 0], t2()))
    add("VideoUNet(NumPy)", lambda: video_model()(c().numpy(), t2()))
    sclips = lambda **kw: temporal.sample_clips(
        video_model(), **{"n": 1, "frames": 2, "size": 16, "steps": 2, **kw}
    )
    for kw in (
        {"n": 0},
        {"steps": 0},
        {"seed": 2**70},
        {"seed": 2.5},
        {"frames": 0},
        {"size": 7},
        {"eta": NAN},
    ):
        add(f"temporal.sample_clips({kw})", lambda kw=kw: sclips(**kw))

    # audio -----------------------------------------------------------------------------------------------------------
    group("audio")
    w = waves
    for sr in (NAN, INF, 0.0, "4000"):
        add(f"dominant_frequency(sample_rate={sr!r})", lambda sr=sr: audio.dominant_frequency(w(), sr))
    add("dominant_frequency(pad_factor=0)", lambda: audio.dominant_frequency(w(), 4000.0, 0))
    add("dominant_frequency(NaN sample)", lambda: audio.dominant_frequency(w() * NAN, 4000.0))
    add("dominant_frequency(NumPy)", lambda: audio.dominant_frequency(w().numpy(), 4000.0))
    add("dominant_frequency(empty batch)", lambda: audio.dominant_frequency(w()[:0], 4000.0))
    add("dominant_frequency(440 Hz tone)", lambda: audio.dominant_frequency(w(), 4000.0), "result")
    pm = lambda wv=None, p=(440.0,), sr=4000.0, **kw: audio.pitch_metrics(
        w() if wv is None else wv, p, sr, **kw
    )
    add("pitch_metrics(pitches=[nan])", lambda: pm(p=[NAN]))
    add("pitch_metrics(pitches=[inf])", lambda: pm(p=[INF]))
    add("pitch_metrics(pitches=[])", lambda: pm(p=[]))
    add("pitch_metrics(tolerance=nan)", lambda: pm(tolerance=NAN))
    add("pitch_metrics(empty batch)", lambda: pm(w()[:0]))
    add("pitch_metrics(sample_rate=inf)", lambda: pm(sr=INF))
    for kw in ({"n_fft": 0}, {"n_fft": 4096}, {"n_fft": 2.5}, {"hop": 0}, {"hop": -1}):
        add(f"spectrogram({kw})", lambda kw=kw: audio.spectrogram(w(), **kw))
    add("spectrogram(NaN sample)", lambda: audio.spectrogram(w() * NAN))
    t2a = lambda: torch.zeros(2, dtype=torch.long)
    add("AudioDiffusion(float16 waves)", lambda: audio_model()(w().half(), t2a()))
    add("AudioDiffusion(int waves)", lambda: audio_model()(w().long(), t2a()))
    add("AudioDiffusion(waves on the meta device)", lambda: audio_model()(w().to("meta"), t2a()))
    add("AudioDiffusion((B, L) waves)", lambda: audio_model()(w()[:, 0], t2a()))
    ssounds = lambda **kw: audio.sample_sounds(audio_model(), **{"n": 1, "length": 64, "steps": 2, **kw})
    for kw in ({"n": 0}, {"length": 63}, {"seed": 2**70}, {"steps": 0}):
        add(f"audio.sample_sounds({kw})", lambda kw=kw: ssounds(**kw))

    # latent ---------------------------------------------------------------------------------------------------------
    group("latent")
    for kl in (NAN, INF, -1.0, "1e-4"):
        add(f"vae_loss(kl_weight={kl!r})", lambda kl=kl: latent.vae_loss(vae(), x4(), kl))
    add("vae_loss(empty batch)", lambda: latent.vae_loss(vae(), x4()[:0]))
    add("vae_loss(NaN pixel)", lambda: latent.vae_loss(vae(), x4() * NAN))
    add("vae_loss(NumPy)", lambda: latent.vae_loss(vae(), x4().numpy()))
    add("vae_loss(float16)", lambda: latent.vae_loss(vae(), x4().half()))
    add("vae_loss(digits)", lambda: latent.vae_loss(vae(), x4()), "result")
    add("kl_divergence(shapes differ)", lambda: latent.kl_divergence(torch.zeros(2, 4), torch.zeros(2, 3)))
    add("kl_divergence(NumPy)", lambda: latent.kl_divergence(np.zeros((2, 4)), np.zeros((2, 4))))
    add("VAE.decode(latents (B, 4, 7, 7))", lambda: vae().decode(torch.zeros(2, 4, 7, 7)))
    add("VAE.decode(float16 latents)", lambda: vae().decode(torch.zeros(2, 4, 8, 8).half()))
    add("VAE.decode(NumPy latents)", lambda: vae().decode(np.zeros((2, 4, 8, 8))))
    add("VAE.fit_latent_scale(empty batch)", lambda: vae().fit_latent_scale(x4()[:0]))
    add("VAE.fit_latent_scale(batch_size=0)", lambda: vae().fit_latent_scale(x4(), 0))
    add("VAE(channels=(8, 8))", lambda: latent.VAE(channels=(8, 8)))
    add("VAE(latent_channels=0)", lambda: latent.VAE(latent_channels=0))
    add("VAE(image_size=2.5)", lambda: latent.VAE(image_size=2.5))

    # synthetic --------------------------------------------------------------------------------------------------------
    group("synthetic")
    z2, o2 = np.zeros((1, 2)), np.ones((1, 2))
    add("bounce(limit=nan)", lambda: synthetic.bounce(z2, o2, 5, NAN))
    add("bounce(limit=inf)", lambda: synthetic.bounce(z2, o2, 5, INF))
    add("bounce(velocity nan)", lambda: synthetic.bounce(z2, o2 * NAN, 5, 10.0))
    add("bounce(frames=-1)", lambda: synthetic.bounce(z2, o2, -1, 10.0))
    add("bounce(frames=2.5)", lambda: synthetic.bounce(z2, o2, 2.5, 10.0))
    add(
        "bounce(lists)",
        lambda: synthetic.bounce([[0.0, 0.0]], [[1.0, 1.0]], 5, 10.0),
        "result",
        check=_shape(1, 5, 2),
    )
    spr = lambda: torch.ones(1, 4, 4)
    add("render_clips(NumPy sprites)", lambda: synthetic.render_clips(spr().numpy(), np.zeros((1, 2, 2)), 8))
    add("render_clips(NaN positions)", lambda: synthetic.render_clips(spr(), np.full((1, 2, 2), NAN), 8))
    add("render_clips(size=2.5)", lambda: synthetic.render_clips(spr(), np.zeros((1, 2, 2)), 2.5))
    md = lambda **kw: synthetic.moving_digits(**{"n": 2, "frames": 2, "size": 16, **kw})
    for kw in (
        {"n": 0}, {"n": 2.5}, {"speed": (1.0, INF)}, {"speed": (NAN, 1.0)}, {"speed": "fast"},
        {"digit_size": 40}, {"digits": [12]}, {"digits": []}, {"seed": -1}, {"seed": 2.5},
        {"split": "valid"}, {"frames": 1},
    ):  # fmt: skip
        add(f"synthetic.moving_digits({kw})", lambda kw=kw: md(**kw))
    add("synthetic.digit_sprites(limit=-5)", lambda: synthetic.digit_sprites("test", limit=-5))
    adsr = lambda **kw: synthetic.adsr_envelope(
        **{"length": 64, "attack": 0.01, "decay": 0.01, "sustain": 0.5, "release": 0.01, **kw}
    )
    for kw in (
        {"attack": NAN},
        {"decay": INF},
        {"release": NAN},
        {"sustain": NAN},
        {"sample_rate": 0},
        {"sample_rate": NAN},
    ):
        add(f"synthetic.adsr_envelope({kw})", lambda kw=kw: adsr(**kw))
    tn = lambda **kw: synthetic.tones(**{"n": 2, "length": 64, **kw})
    for kw in (
        {"pitches": [NAN]}, {"pitches": [INF]}, {"pitches": []}, {"amplitude": (NAN, 1.0)},
        {"amplitude": (0.0, 5.0)}, {"harmonics": [1.0, -0.5]}, {"harmonics": [NAN]},
        {"sample_rate": 4000.5}, {"seed": -1},
    ):  # fmt: skip
        add(f"synthetic.tones({kw})", lambda kw=kw: tn(**kw))

    # captions -------------------------------------------------------------------------------------------------------------
    group("captions")
    for kw in ({"template": 1.5}, {"template": -1}, {"template": 99}, {"thickness": "bold"}):
        add(f"captions.caption_for(3, {kw})", lambda kw=kw: captions.caption_for(3, **kw))
    add("captions.caption_for(12)", lambda: captions.caption_for(12))
    add("captions.zero_shot_prompts(12)", lambda: captions.zero_shot_prompts(12))
    add("captions.normalize(5)", lambda: captions.normalize(5))
    add("captions.stroke_width(threshold=nan)", lambda: captions.stroke_width(x4(), NAN))
    add("captions.ink_extent(threshold=nan)", lambda: captions.ink_extent(x4(), NAN))
    cd = lambda **kw: captions.captioned_digits(**{"split": "test", "limit": 4, **kw})
    for kw in (
        {"copies": 0},
        {"copies": 2.5},
        {"copies": NAN},
        {"limit": -5},
        {"split": "valid"},
        {"templates": [99]},
        {"templates": [1.5]},
        {"seed": 2.5},
    ):
        add(f"captions.captioned_digits({kw})", lambda kw=kw: cd(**kw))
    add("CaptionedDigits.subset([10**6])", lambda: cd().subset([10**6]))
    add("CaptionedDigits.subset([1.5])", lambda: cd().subset([1.5]))

    # hierarchy ---------------------------------------------------------------------------------------------------------------
    group("hierarchy")
    for kw in ({"image_size": "28"}, {"image_size": 2.5}, {"in_channels": 0}, {"widths": (8, 16)}):
        add(f"HierarchicalCNN({kw})", lambda kw=kw: hierarchy.HierarchicalCNN(**kw))
    labels = lambda: torch.tensor([1, 2, 3])
    add("auditory_code(labels [12])", lambda: hierarchy.auditory_code(torch.tensor([12])))
    add(
        "auditory_code(labels as a list)",
        lambda: hierarchy.auditory_code([1, 2]),
        "result",
        check=_shape(2, 1, 256),
    )
    add("auditory_code(float labels)", lambda: hierarchy.auditory_code(torch.tensor([1.5])))
    for kw in (
        {"noise_std": NAN},
        {"noise_std": INF},
        {"noise_std": -1.0},
        {"sample_rate": NAN},
        {"sample_rate": 0.0},
        {"n_samples": 0},
        {"jitter": NAN},
    ):
        add(f"auditory_code({kw})", lambda kw=kw: hierarchy.auditory_code(labels(), **kw))
    add(
        "auditory_code(noise_std (2,) for 3 labels)", lambda: hierarchy.auditory_code(labels(), torch.ones(2))
    )
    add("add_image_noise(noise_std=nan)", lambda: hierarchy.add_image_noise(x4(), NAN))
    add("add_image_noise(noise_std=inf)", lambda: hierarchy.add_image_noise(x4(), INF))
    add("add_image_noise(NumPy)", lambda: hierarchy.add_image_noise(x4().numpy(), 0.1))
    add("add_image_noise(noise_std (3,) for 4)", lambda: hierarchy.add_image_noise(x4(), torch.ones(3)))
    ef = lambda **kw: hierarchy.evaluate_fusion(
        hierarchy_model(), **{"x": x4(), "y": y4(), "noise_levels": [(0.1, 0.1)], **kw}
    )
    add("evaluate_fusion(batch_size=0)", lambda: ef(batch_size=0))
    add("evaluate_fusion(empty batch)", lambda: ef(x=x4()[:0], y=y4()[:0]))
    add("evaluate_fusion(noise (nan, 0))", lambda: ef(noise_levels=[(NAN, 0.0)]))
    add("evaluate_fusion(3 labels for 4)", lambda: ef(y=y4()[:3]))
    add(
        "empirical_receptive_field(stage='V9')",
        lambda: hierarchy.empirical_receptive_field(hierarchy_model().visual, "V9"),
    )
    add(
        "empirical_receptive_field(n_probes=-1)",
        lambda: hierarchy.empirical_receptive_field(hierarchy_model().visual, "V1", -1),
    )
    add("TwoStreamFusion(sound (B, 256))", lambda: hierarchy_model()(x4(), torch.zeros(4, 256)))

    # codelab, toy, config, cost ---------------------------------------------------------------------------------------------
    group("codelab")
    sd = lambda **kw: codelab.sample_digits(patch_model(), **{"n": 2, "steps": 2, **kw})
    for kw in (
        {"n": 0},
        {"steps": 0},
        {"sampler": "euler"},
        {"device": "gpu"},
        {"seed": 2**70},
        {"batch_size": 0},
        {"eta": NAN},
    ):
        add(f"codelab.sample_digits({kw})", lambda kw=kw: sd(**kw))
    add("PatchUNet(patch_size=0)", lambda: codelab.PatchUNet(patch_size=0))
    group("toy")
    for kw in ({"name": "bogus"}, {"n": 0}, {"noise": NAN}, {"noise": -0.1}, {"seed": 2**70}, {"seed": 2.5}):
        add(f"toy.make_toy_data({kw})", lambda kw=kw: toy.make_toy_data(**{"n": 8, **kw}))
    add("toy.chamfer_distance(empty samples)", lambda: toy.chamfer_distance(pts()[:0], pts()))
    add("toy.chamfer_distance(NaN data)", lambda: toy.chamfer_distance(pts(), pts() * NAN))
    add("toy.chamfer_distance(NumPy)", lambda: toy.chamfer_distance(pts().numpy(), pts().numpy()))
    add("toy.denoising_field(t=5000)", lambda: toy.denoising_field(toy_model(), schedule(), 5000))
    add("toy.denoising_field(n=-1)", lambda: toy.denoising_field(toy_model(), schedule(), 3, n=-1))
    add("toy.denoising_field(limit=nan)", lambda: toy.denoising_field(toy_model(), schedule(), 3, limit=NAN))
    group("config")
    for seed in (2**70, "1", 2.5):
        add(f"config.seed_everything({seed!r})", lambda s=seed: config.seed_everything(s))
    add("config.torch_threads(0)", lambda: _threads(0))
    add("config.torch_threads(2.5)", lambda: _threads(2.5))
    add(
        "config.default_device() with CH13_DEVICE=gpu", _with_env("CH13_DEVICE", "gpu", config.default_device)
    )
    add("config.pick()", lambda: config.pick())
    group("cost")
    add("cost.parameter_count('model')", lambda: cost.parameter_count("model"))
    add("cost.macs_per_image(shape=(1, 27, 27))", lambda: cost.macs_per_image(patch_model(), (1, 27, 27)))

    # train (train.py) -------------------------------------------------------------------------------------------------------
    group("train")

    def fit(**kw: Any) -> Any:
        model = torch.nn.Linear(2, 2)
        settings = {"steps": 2, "batch_size": 4, "progress": False, "device": "cpu", **kw}
        return train.fit(model, lambda m, b: m(b[0]).pow(2).mean(), (pts(),), **settings)

    for kw in ({"lr": NAN}, {"lr": INF}, {"lr": -1.0}, {"steps": 0}, {"batch_size": 0}):
        add(f"train.fit({kw})", lambda kw=kw: fit(**kw))

    # neuro (NumPy) ----------------------------------------------------------------------------------------------------------
    group("neuro")
    add(
        "neuro.gamma_kernel(0.01, 1.0)", lambda: neuro.gamma_kernel(0.01, 1.0), "either", check=_area_one(1.0)
    )
    add(
        "neuro.gamma_kernel(1.0, 0.01)",
        lambda: neuro.gamma_kernel(1.0, 0.01),
        "result",
        check=_area_one(0.01),
    )
    add("neuro.gamma_kernel(nan, 1.0)", lambda: neuro.gamma_kernel(NAN, 1.0))
    add("neuro.normalization_neuron(r_max=-1)", lambda: neuro.normalization_neuron(1.0, 1.0, r_max=-1.0))
    add("neuro.normalization_neuron(r_max=nan)", lambda: neuro.normalization_neuron(1.0, 1.0, r_max=NAN))
    add(
        "neuro.normalization_neuron(exponent=nan)", lambda: neuro.normalization_neuron(1.0, 1.0, exponent=NAN)
    )
    add(
        "neuro.normalization_neuron(weights=(nan, 1))",
        lambda: neuro.normalization_neuron(1.0, 1.0, (NAN, 1.0)),
    )
    add("neuro.mle_combine([], [])", lambda: neuro.mle_combine([], []))
    add("neuro.mle_combine(strings)", lambda: neuro.mle_combine(["a"], [1.0]))
    for sig in ([1e-200, 1.0], [1e200, 1e200], [1e-160, 1e-160], [1e-170, 1e170]):
        add(
            f"neuro.mle_combine([0, 1], {sig})",
            lambda s=sig: neuro.mle_combine([0.0, 1.0], s),
            "result",
            check=_weights_sum_to_one,
        )
    for sv, sa, sp in ((1e-200, 1.0, 1.0), (1e200, 1e200, 1e200), (1e-170, 1e-170, 1.0), (1.0, 1.0, 1e-200)):
        add(
            f"neuro.causal_inference_posterior(sigmas {sv:g}, {sa:g}, {sp:g})",
            lambda sv=sv, sa=sa, sp=sp: neuro.causal_inference_posterior(0.0, 1.0, sv, sa, sp, 0.5),
            "result",
            check=_probability,
        )
    add(
        "neuro.causal_inference_posterior(x_v=nan)",
        lambda: neuro.causal_inference_posterior(NAN, 1.0, 1.0, 1.0, 1.0, 0.5),
    )
    add(
        "neuro.causal_inference_posterior(p_common=1.5)",
        lambda: neuro.causal_inference_posterior(0.0, 1.0, 1.0, 1.0, 1.0, 1.5),
    )
    return cases


@functools.cache
def cases() -> tuple[Case, ...]:
    built = build_cases()
    names = [c.name for c in built]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"case names must be unique: {duplicates}")
    return tuple(built)


_TRAIN = (
    "chapter13/train.py belongs to another engineer (issue 17 item 6: the learning rate is not validated)"
)
KNOWN_OPEN: dict[str, str] = {}
"""Cases that still fail, by name, with who owns the fix (test_fuzz marks them xfail, strictly)."""
