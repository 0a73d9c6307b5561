"""13.3 text-to-image: guidance trade-off, latent vs pixel cost, widget latency, training cost.

Measures the shipped ``text2image-digits`` (pixel space), ``latent-text2image-digits`` and
``autoencoder-digits`` with the package's own evaluation (``chapter13.evaluate``'s digit classifier):

1. Judged class accuracy of ``--label D`` samples (the default caption of each digit, same start
   noise for every scale) against the guidance scale s, with the within-prompt diversity (mean
   pairwise distance of classifier features) and the Fréchet distance; asserts that accuracy rises
   from s = 0 to 3 while diversity falls, and reports the target: accuracy at s = 3 >= 95 %.
2. Sampling cost per image (guided DDIM, same steps and batch) of the pixel and the latent model,
   the latter including the VAE decoder, with the judged accuracy of each at s = 3.
3. Guidance-widget update time (median and worst of several new slider values, pure function incl.
   the PNG render) for the widget's default latent model, and for the pixel model for comparison.
4. Training time and file size of each checkpoint, from the manifest.

    .venv/bin/python benchmarks/bench_text2image.py            # full (several minutes on 2 cores)
    .venv/bin/python benchmarks/bench_text2image.py --quick    # a rough pass in about a minute

The load average is printed with the results: this CPU is shared, so wall times depend on it.
Figures go to ``benchmarks/out/`` (not versioned). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from chapter13 import checkpoints, text2image
from chapter13.captions import default_caption
from chapter13.config import CHECKPOINT_DIR
from chapter13.recipes.text2image import evaluate_labels
from chapter13.widgets import guidance as widget

OUT = Path(__file__).resolve().parent / "out"
NAMES = ("text2image-digits", "latent-text2image-digits", "autoencoder-digits")


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def tradeoff(model, scales, per_digit, steps, seed) -> dict[float, dict[str, float]]:
    return evaluate_labels(model, scales, per_digit=per_digit, steps=steps, seed=seed)


def cost_per_image(model, n: int, steps: int, repeats: int = 2) -> float:
    """Seconds per image of guided DDIM (s = 3) on ``n`` label prompts, best of ``repeats``."""
    prompts = text2image.label_prompts(torch.arange(n) % 10)
    model.encode_text(prompts)  # text encodings are cached; time the diffusion (and decoding) only
    best = float("inf")
    for r in range(repeats):
        start = time.perf_counter()
        text2image.generate(model, prompts, guidance=3.0, steps=steps, seed=r)
        best = min(best, time.perf_counter() - start)
    return best / n


def flops_per_image(model, steps: int) -> float:
    """Floating-point operations of guided DDIM (s = 3) per image, counted by torch (deterministic)."""
    from torch.utils.flop_counter import FlopCounterMode

    prompts = text2image.label_prompts([3, 7])
    with FlopCounterMode(display=False) as counter:
        text2image.generate(model, prompts, guidance=3.0, steps=steps, seed=0)
    return counter.get_total_flops() / len(prompts)


def widget_latency(model, values, **kwargs) -> tuple[float, float, float]:
    """(first, median, worst) seconds of ``guidance_figure`` updates plus the PNG render."""
    times = []
    fig = None
    for v in values:
        start = time.perf_counter()
        fig = widget.guidance_figure(model, default_caption(3), v, fig=fig, **kwargs)
        fig.savefig(io.BytesIO(), format="png")
        times.append(time.perf_counter() - start)
    plt.close(fig)
    return times[0], statistics.median(times[1:]), max(times[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples and steps (rough numbers)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    per_digit = 4 if args.quick else 20
    steps = 10 if args.quick else 25
    scales = [0.0, 1.0, 3.0] if args.quick else [0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0]
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"13.3 text-to-image benchmark ({'quick' if args.quick else 'full'}); {load()}")
    print(f"torch threads {torch.get_num_threads()}")
    failures: list[str] = []

    pixel = checkpoints.load_model("text2image-digits")
    latent = checkpoints.load_model("latent-text2image-digits")

    # 1. guidance trade-off ---------------------------------------------------------------------------
    curves = {}
    for name, model in (("pixel", pixel), ("latent", latent)):
        start = time.perf_counter()
        curves[name] = tradeoff(model, scales, per_digit, steps, args.seed)
        seconds = time.perf_counter() - start
        print(
            f"\n[{name}] --label D samples, {per_digit} per digit, DDIM-{steps}, seed {args.seed} ({seconds:.0f} s)"
        )
        print(f"{'s':>6} {'accuracy':>9} {'confident':>10} {'diversity':>10} {'Frechet':>9}")
        for s, m in curves[name].items():
            print(
                f"{s:6.2f} {m['accuracy']:9.1%} {m['confident']:10.1%} {m['diversity']:10.3f} {m['frechet']:9.2f}"
            )
        c = curves[name]
        if not (c[0.0]["accuracy"] < c[1.0]["accuracy"] <= c[3.0]["accuracy"]):
            failures.append(f"{name}: accuracy does not rise from s=0 to s=1 to s=3")
        if not (c[0.0]["diversity"] > c[3.0]["diversity"] and c[1.0]["diversity"] > c[3.0]["diversity"]):
            failures.append(f"{name}: diversity does not fall from s=0 and s=1 to s=3")
    acc3 = curves["pixel"][3.0]["accuracy"]
    print(f"\nTARGET judged accuracy of text2image-digits --label D at s=3 >= 95 %: {acc3:.1%}")
    if acc3 < 0.95:
        failures.append(f"text2image-digits accuracy at s=3 is {acc3:.1%} < 95 %")

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, c in curves.items():
        axes[0].plot(list(c), [m["accuracy"] for m in c.values()], "o-", label=name)
        axes[1].plot(list(c), [m["diversity"] for m in c.values()], "o-", label=name)
    axes[0].set(xlabel="guidance scale s", ylabel="judged class accuracy", title="fidelity")
    axes[1].set(xlabel="guidance scale s", ylabel="feature spread within a prompt", title="diversity")
    for ax in axes:
        ax.axvline(1.0, color="0.7", ls=":")
        ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "guidance_tradeoff.png", dpi=120)
    plt.close(fig)

    # 2. latent vs pixel cost ---------------------------------------------------------------------------
    n = 20 if args.quick else 40
    cost = {name: cost_per_image(m, n, steps) for name, m in (("pixel", pixel), ("latent", latent))}
    flops = {name: flops_per_image(m, steps) for name, m in (("pixel", pixel), ("latent", latent))}
    ratio = cost["pixel"] / cost["latent"]
    print(f"\nsampling cost per image (guided DDIM-{steps}, batch {n}; {load()})")
    print(f"{'model':>8} {'ms/image':>9} {'GFLOP/image':>12} {'accuracy s=3':>13} {'Frechet s=3':>12}")
    for name in ("pixel", "latent"):
        m = curves[name][3.0]
        print(
            f"{name:>8} {1000 * cost[name]:9.1f} {flops[name] / 1e9:12.2f} {m['accuracy']:13.1%} {m['frechet']:12.2f}"
        )
    print(
        f"TARGET latent at least 3x cheaper per image: {ratio:.1f}x in wall time, {flops['pixel'] / flops['latent']:.1f}x in FLOPs"
    )
    if ratio < 3.0:
        failures.append(f"latent sampling is only {ratio:.1f}x cheaper than pixel")

    # 3. widget latency ------------------------------------------------------------------------------------
    values = [3.0, 0.5, 1.75, 4.25, 6.5, 8.0, 9.75, 2.25]
    print(
        f"\nguidance widget update ({widget.DEFAULT_SAMPLES} samples, DDIM-{widget.DEFAULT_STEPS}, PNG render; {load()})"
    )
    for name, model in (("latent (default)", latent), ("pixel", pixel)):
        first, median, worst = widget_latency(model, values)
        print(f"{name:>17}: first {first:.2f} s, median {median:.2f} s, worst {worst:.2f} s")
        if name.startswith("latent") and median > 1.0:
            failures.append(f"widget median update {median:.2f} s > 1 s")

    # 4. training cost and size -------------------------------------------------------------------------------
    manifest = checkpoints.read_manifest()
    print(f"\n{'checkpoint':>26} {'wall s':>7} {'CPU s':>6} {'load':>10} {'MB':>5}  quality")
    for name in NAMES:
        info = manifest.get(name)
        if info is None:
            print(f"{name:>26} missing")
            failures.append(f"{name} is not built")
            continue
        q = info["quality"]
        mb = (CHECKPOINT_DIR / info["file"]).stat().st_size / 1e6
        cpu = q.get("train_cpu_seconds", float("nan"))
        loads = f"{q.get('load_average_before', '?')}-{q.get('load_average_after', '?')}"
        shown = {
            k: v
            for k, v in q.items()
            if k.startswith(("accuracy_s3", "confident_s3", "frechet_s3", "test_mse", "classifier"))
        }
        print(f"{name:>26} {info['train_seconds']:7.0f} {cpu:6.0f} {loads:>10} {mb:5.2f}  {shown}")
        if info["train_seconds"] > 15 * 60:
            failures.append(
                f"{name} trained for {info['train_seconds'] / 60:.0f} min wall (> 15; {cpu / 60:.0f} CPU min, load {loads})"
            )
    print(f"\n{load()}")
    if failures:
        print("MISSED: " + "; ".join(failures))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
