"""Guidance-scale widget (13.3): one prompt, one fixed seed, a grid of samples as s moves from 0 to 10.

Classifier-free guidance mixes the unconditional and the conditional prediction,
ε̃ = ε_u + s (ε_c − ε_u) (s = 1 + w of Ho & Salimans 2022, eq. 6). With the start noise fixed, moving
the slider shows only what guidance does: at s = 0 the model ignores the prompt, at s = 1 it is the
plain conditional model, beyond that the digits become more typical and more alike until, at large s,
they saturate.

- :func:`guidance_samples`: the pure function, (prompt, s) → samples (n, 1, 28, 28); the start noise
  and the prompt's text encoding are cached, so an update is n guided DDIM samplings and nothing else.
- :class:`GuidanceView`: the samples as one grid image titled with the prompt, s and what the digit
  classifier reads in each sample (a :class:`~chapter13.widgets.view.View`: an update blits the
  image and the title);
- :func:`guidance_figure`: the same as a pyplot figure, for a notebook cell;
- :func:`guidance_widget`: prompt dropdown, free-text box, scale slider 0-10, seed box over one view.

By default the widget samples the latent model (``latent-text2image-digits``, 10 DDIM steps, 8
samples): a denoising step on a 4×8×8 latent costs a fraction of one on 28×28 pixels, which is what
makes the update fit the 1 s budget on a 2-core CPU (measured in ``benchmarks/bench_text2image.py``).

Sampling runs on one CPU thread (``threads=1``, restored afterwards): with a model this small,
PyTorch's default of one thread per core is slower, and when another process holds a core its
threads wait on each other (``benchmarks/bench_latency.py --torch-threads 2`` on one core: 0.4-0.5 s
per update instead of 0.12 s; 44 s was seen in the browser on the loaded 2-core machine).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from chapter13.captions import caption_for, default_caption
from chapter13.checkpoints import load_model
from chapter13.config import torch_threads
from chapter13.evaluate import classify
from chapter13.text2image import TextToImageUNet, generate, parse_prompt
from chapter13.widgets.view import View, ViewBox, interactive

SCALE_RANGE = (0.0, 10.0)
DEFAULT_MODEL = "latent-text2image-digits"
DEFAULT_STEPS = 10
DEFAULT_SAMPLES = 8
DEFAULT_THREADS = 1
"""CPU threads torch uses while the widget samples (see the module's docstring)."""


def example_prompts() -> list[str]:
    """The dropdown's captions: each digit's default caption, then attribute captions, including the
    three combinations held out of training (a thick 4, a thin 7, a small 2)."""
    extra = [
        caption_for(4, "thick"),
        caption_for(7, "thin"),
        caption_for(2, size="small", position="top left"),
        caption_for(3, "thick", "small", "bottom right", template=1),
        caption_for(8, "thin", template=4),
    ]
    return [default_caption(d) for d in range(10)] + extra


def prompt_digit(prompt: str) -> int | None:
    """The digit a prompt names (numeral or word), or None: "a thin seven" → 7."""
    return parse_prompt(prompt)["digit"]


@lru_cache(maxsize=16)
def _start_noise(seed: int, n: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def guidance_samples(
    model: TextToImageUNet,
    prompt: str,
    scale: float,
    *,
    n: int = DEFAULT_SAMPLES,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    threads: int | None = DEFAULT_THREADS,
) -> torch.Tensor:
    """``n`` samples of ``prompt`` at guidance scale ``scale`` from fixed start noise: (n, 1, 28, 28).

    Deterministic DDIM (η = 0) from noise drawn with ``seed``, so the same arguments give the same
    images and a change of ``scale`` changes only the guidance. Sampling uses ``threads`` CPU threads
    (:func:`torch_threads`; ``None`` keeps torch's setting). Raises ``ValueError`` for words the text
    encoder does not know (the message lists the vocabulary).
    """
    if not SCALE_RANGE[0] <= float(scale) <= SCALE_RANGE[1]:
        raise ValueError(f"the guidance scale must lie in {SCALE_RANGE}, got {scale}")
    if n < 1 or steps < 1:
        raise ValueError(f"n and steps must be at least 1, got n={n}, steps={steps}")
    x_T = _start_noise(int(seed), int(n), tuple(model.sample_shape))
    with torch_threads(threads):
        return generate(model, [prompt] * n, guidance=float(scale), steps=steps, x_T=x_T.clone(), seed=None)


def _judge(samples: torch.Tensor) -> list[int] | None:
    try:
        probs, _ = classify(samples)
    except Exception:  # the classifier checkpoint is optional for the widget
        return None
    return probs.argmax(1).tolist()


def _sample_and_judge(
    model: TextToImageUNet, prompt: str, scale: float, n: int, steps: int, seed: int, threads: int | None
) -> tuple[torch.Tensor, list[int] | None]:
    """:func:`guidance_samples` and what the digit classifier reads in them, on ``threads`` threads."""
    with torch_threads(threads):
        samples = guidance_samples(model, prompt, scale, n=n, steps=steps, seed=seed, threads=None)
        return samples, _judge(samples)


def _figsize(n: int) -> tuple[float, float]:
    return (1.0 * n + 0.4, 2.0)


class GuidanceView(View):
    """One row of ``n`` samples as a grid image under a two-line title (prompt, s, seed and steps;
    what the digit classifier reads). :meth:`update` samples and shows; :meth:`show_samples` shows
    samples computed elsewhere.

    Args:
        n: samples per row.
        figure: draw on this figure (cleared first) instead of a new ``Figure`` of ``dpi``.
    """

    def __init__(self, n: int = DEFAULT_SAMPLES, *, figure: Figure | None = None, dpi: float = 100) -> None:
        super().__init__(figure, figsize=_figsize(n), dpi=dpi)
        self.n = n
        self.figure.clear()
        self.ax = self.figure.add_axes((0.01, 0.02, 0.98, 0.7))
        self.ax.set_axis_off()
        self.grid_image = None
        self.text = self.figure.suptitle(" ", fontsize=9)
        self.samples: torch.Tensor | None = None

    def _show_grid(self, grid: np.ndarray) -> None:
        if self.grid_image is not None and self.grid_image.get_array().shape == grid.shape:
            self.grid_image.set_data(grid)
            return
        if self.grid_image is not None:  # another sample size: a new image, and a new background
            self.grid_image.remove()
        self.grid_image = self.ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        self.dynamic = [self.grid_image, self.text]
        self.invalidate()

    def show_samples(self, samples: torch.Tensor, judged: list[int] | None, prompt: str, scale: float,
                     *, seed: int, steps: int) -> Figure:  # fmt: skip
        """Show ``samples`` (k, 1, H, W) in [-1, 1] and the classifier's ``judged`` digits (or None)."""
        grid = make_grid(samples.add(1).div(2).clamp(0, 1), nrow=self.n, padding=2, pad_value=1.0)[0].numpy()
        want = prompt_digit(prompt)
        reading = ""
        if judged is not None:
            reading = "classifier reads: " + " ".join(map(str, judged))
            if want is not None:
                reading += f"   ({sum(j == want for j in judged)}/{len(judged)} are {want})"
        self._show_grid(grid)
        self.text.set_text(f"'{prompt}'   s = {float(scale):.2f}   (seed {seed}, DDIM {steps})\n{reading}")
        self.samples = samples
        return self.figure

    def update(
        self,
        model: TextToImageUNet,
        prompt: str,
        scale: float,
        *,
        steps: int = DEFAULT_STEPS,
        seed: int = 0,
        threads: int | None = DEFAULT_THREADS,
    ) -> Figure:
        """Sample ``n`` images of ``prompt`` at scale ``scale`` (:func:`guidance_samples`), classify
        them and show them; raises ``ValueError`` (the figure unchanged) for an unknown word."""
        samples, judged = _sample_and_judge(model, prompt, scale, self.n, steps, seed, threads)
        return self.show_samples(samples, judged, prompt, scale, seed=seed, steps=steps)


def guidance_figure(
    model: TextToImageUNet,
    prompt: str,
    scale: float,
    *,
    n: int = DEFAULT_SAMPLES,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    fig: Figure | None = None,
    threads: int | None = DEFAULT_THREADS,
) -> Figure:
    """The samples of :func:`guidance_samples` as one grid, titled with the prompt, s and what the
    digit classifier reads in each sample: a new pyplot figure, or ``fig`` cleared and drawn again.
    Sampling and classifying use ``threads`` CPU threads (``None`` keeps torch's setting)."""
    samples, judged = _sample_and_judge(model, prompt, scale, n, steps, seed, threads)
    fig = plt.figure(figsize=_figsize(n)) if fig is None else fig
    return GuidanceView(n, figure=fig).show_samples(samples, judged, prompt, scale, seed=seed, steps=steps)


def guidance_widget(
    model: TextToImageUNet | None = None,
    prompts: Sequence[str] | None = None,
    *,
    n: int = DEFAULT_SAMPLES,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    scale: float = 3.0,
    threads: int | None = DEFAULT_THREADS,
) -> ViewBox:
    """Prompt dropdown + free-text box + guidance slider (0-10) + seed over one :class:`GuidanceView`.

    ``model`` defaults to the shipped ``latent-text2image-digits``. A non-empty free-text box
    overrides the dropdown; an unknown word shows the encoder's message under the picture, which
    keeps the last samples. Each update samples on ``threads`` CPU threads (``None`` keeps torch's
    setting). The figure is no pyplot figure, so the inline backend never shows a stale copy of it.
    """
    if model is None:
        model = load_model(DEFAULT_MODEL)
    options = list(prompts or example_prompts())
    controls = {
        "prompt": ipywidgets.Dropdown(options=options, value=options[3 % len(options)], description="prompt"),
        "seed": ipywidgets.IntText(value=seed, description="seed", layout=ipywidgets.Layout(width="160px")),
        "text": ipywidgets.Text(value="", placeholder="or type a prompt, e.g. 'a thick small 5 in the top left corner'",
                                description="text", continuous_update=False, layout=ipywidgets.Layout(width="60%")),
        "scale": ipywidgets.FloatSlider(value=scale, min=SCALE_RANGE[0], max=SCALE_RANGE[1], step=0.25,
                                        description="guidance s", continuous_update=False, readout_format=".2f"),
    }  # fmt: skip
    view = GuidanceView(n)

    def update(prompt: str, seed: int, text: str, scale: float) -> None:
        view.update(model, text.strip() or prompt, scale, steps=steps, seed=seed, threads=threads)

    return interactive(
        view, controls, [["prompt", "seed"], ["text"], ["scale"]], update, errors=(ValueError,)
    )
