"""Guidance-scale widget (13.3): one prompt, one fixed seed, a grid of samples as s moves from 0 to 10.

Classifier-free guidance mixes the unconditional and the conditional prediction,
ε̃ = ε_u + s (ε_c − ε_u) (s = 1 + w of Ho & Salimans 2022, eq. 6). With the start noise fixed, moving
the slider shows only what guidance does: at s = 0 the model ignores the prompt, at s = 1 it is the
plain conditional model, beyond that the digits become more typical and more alike until, at large s,
they saturate.

- :func:`guidance_samples`: the pure function, (prompt, s) → samples (n, 1, 28, 28); the start noise
  and the prompt's text encoding are cached, so an update is n guided DDIM samplings and nothing else.
- :func:`guidance_figure`: the same as a figure (one grid image), with what the digit classifier reads
  in each sample; pass the returned figure back to update it in place.
- :func:`guidance_widget`: prompt dropdown, free-text box, scale slider 0-10, seed box.

By default the widget samples the latent model (``latent-text2image-digits``, 10 DDIM steps, 8
samples): a denoising step on a 4×8×8 latent costs a fraction of one on 28×28 pixels, which is what
makes the update fit the 1 s budget on a 2-core CPU (measured in ``benchmarks/bench_text2image.py``).

Sampling runs on one CPU thread (``threads=1``, restored afterwards): with a model this small,
PyTorch's default of one thread per core is slower, and when another process holds a core its
threads wait on each other (``benchmarks/bench_latency.py --torch-threads 2`` on one core: 0.4-0.5 s
per update instead of 0.12 s; 44 s was seen in the browser on the loaded 2-core machine).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import lru_cache

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from chapter13.captions import caption_for, default_caption
from chapter13.config import torch_threads
from chapter13.text2image import TextToImageUNet, generate, parse_prompt

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
        from chapter13.evaluate import classify

        probs, _ = classify(samples)
    except Exception:  # the classifier checkpoint is optional for the widget
        return None
    return probs.argmax(1).tolist()


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
    digit classifier reads in each sample. Pass the ``fig`` returned earlier to update it in place.
    Sampling and classifying use ``threads`` CPU threads (``None`` keeps torch's setting)."""
    with torch_threads(threads):
        samples = guidance_samples(model, prompt, scale, n=n, steps=steps, seed=seed, threads=None)
        judged = _judge(samples)
    grid = make_grid(samples.add(1).div(2).clamp(0, 1), nrow=n, padding=2, pad_value=1.0)[0].numpy()
    want = prompt_digit(prompt)
    reading = ""
    if judged is not None:
        reading = "classifier reads: " + " ".join(map(str, judged))
        if want is not None:
            reading += f"   ({sum(j == want for j in judged)}/{len(judged)} are {want})"
    title = f"'{prompt}'   s = {float(scale):.2f}   (seed {seed}, DDIM {steps})\n{reading}"
    artists = getattr(fig, "_ch13_artists", None) if fig is not None else None
    if artists is not None and artists[0].get_array().shape == grid.shape:
        image, text = artists
        image.set_data(grid)
        text.set_text(title)
        return fig
    fig = plt.figure(figsize=(1.0 * n + 0.4, 2.0)) if fig is None else fig
    fig.clear()
    ax = fig.add_axes((0.01, 0.02, 0.98, 0.7))
    image = ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    text = fig.suptitle(title, fontsize=9)
    fig._ch13_artists = (image, text)
    return fig


def guidance_widget(
    model: TextToImageUNet | None = None,
    prompts: Sequence[str] | None = None,
    *,
    n: int = DEFAULT_SAMPLES,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    scale: float = 3.0,
    threads: int | None = DEFAULT_THREADS,
):
    """Prompt dropdown + free-text box + guidance slider (0-10) + seed over :func:`guidance_figure`.

    ``model`` defaults to the shipped ``latent-text2image-digits``. A non-empty free-text box
    overrides the dropdown; an unknown word shows the encoder's message instead of a figure. Each
    update samples on ``threads`` CPU threads (``None`` keeps torch's setting).
    """
    import ipywidgets as widgets
    from IPython.display import display

    if model is None:
        from chapter13.checkpoints import load_model

        model = load_model(DEFAULT_MODEL)
    options = list(prompts or example_prompts())
    dropdown = widgets.Dropdown(options=options, value=options[3 % len(options)], description="prompt")
    text = widgets.Text(value="", placeholder="or type a prompt, e.g. 'a thick small 5 in the top left corner'",
                        description="text", continuous_update=False, layout=widgets.Layout(width="60%"))  # fmt: skip
    slider = widgets.FloatSlider(value=scale, min=SCALE_RANGE[0], max=SCALE_RANGE[1], step=0.25,
                                 description="guidance s", continuous_update=False, readout_format=".2f")  # fmt: skip
    seed_box = widgets.IntText(value=seed, description="seed", layout=widgets.Layout(width="160px"))
    message = widgets.HTML()
    out = widgets.Output()
    with plt.ioff():
        fig = plt.figure(figsize=(1.0 * n + 0.4, 2.0))
    # Shown only through `out`: an open pyplot figure would also be shown by the inline backend when
    # the cell ends, a static copy that stays at the first value while the widget moves on.
    plt.close(fig)
    state = {"fig": fig}

    def redraw(change=None) -> None:
        prompt = text.value.strip() or dropdown.value
        try:
            state["fig"] = guidance_figure(
                model,
                prompt,
                slider.value,
                n=n,
                steps=steps,
                seed=seed_box.value,
                fig=state["fig"],
                threads=threads,
            )
        except ValueError as error:
            message.value = f"<span style='color:#b00'>{html.escape(str(error))}</span>"
            return
        message.value = ""
        with out:
            out.clear_output(wait=True)
            display(state["fig"])

    for control in (dropdown, text, slider, seed_box):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([dropdown, seed_box]), text, slider, message, out])
