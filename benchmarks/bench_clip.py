"""Benchmark of 13.1's tiny CLIP: zero-shot accuracy, retrieval Recall@K, training time, widget speed.

    .venv/bin/python benchmarks/bench_clip.py            # measure the shipped clip-digits checkpoint
    .venv/bin/python benchmarks/bench_clip.py --train    # also retrain at full size (not saved) and time it

Targets (issue 13.1): full-size training <= 3 min on the 2-core CPU, zero-shot digit accuracy on the
bundled test split >= 90 %, retrieval Recall@1/@5 reported for attribute captions, temperature widget
update < 0.1 s (the widget's path: ``TemperatureView.render``). The machine is shared, so the load
average is printed next to every timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import textwrap
import time

import torch

from chapter13 import checkpoints
from chapter13.captions import captioned_digits
from chapter13.data import load_mnist
from chapter13.multimodal import TinyCLIP, caption_similarity, digit_prompts, zero_shot_accuracy
from chapter13.recipes.clip import (
    CLIP_DIGITS_CONFIG,
    CLIP_DIGITS_TRAINING,
    evaluate_clip,
    load_clip,
    train_clip,
)
from chapter13.widgets.temperature import TemperatureView, temperature_figure


def row(name: str, value: str, target: str = "", verdict: str = "") -> None:
    print(f"| {name:44s} | {value:>14s} | {target:>10s} | {verdict:>4s} |")


def widget_timing(model: TinyCLIP) -> tuple[list[float], list[float]]:
    """Update times of the temperature widget on what notebook 13.1 shows (eight test pairs).

    Returns (widget path: ``TemperatureView.render``, i.e. softmax + blitted redraw + PNG encoding;
    full redraw of ``temperature_figure`` for comparison), 20 temperatures each."""
    import matplotlib

    matplotlib.use("Agg")
    test = captioned_digits("test")
    show = test.subset([int((test.labels == d).nonzero()[0]) for d in range(8)])
    sim = caption_similarity(model, show)
    labels = [textwrap.shorten(c, 30, placeholder="…") for c in show.captions]
    view = TemperatureView(sim, labels)
    fig = temperature_figure(sim, 0.07, labels)
    widget, full = [], []
    for tau in torch.logspace(-2, 0, 20).tolist():
        start = time.perf_counter()
        view.render(tau)
        widget.append(time.perf_counter() - start)
        start = time.perf_counter()
        temperature_figure(sim, tau, fig=fig)
        fig.canvas.draw()
        full.append(time.perf_counter() - start)
    return widget, full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", action="store_true", help="retrain at full size (not saved) and time it")
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores shared)")
    print(f"| {'measure':44s} | {'value':>14s} | {'target':>10s} | {'met':>4s} |")
    print(f"|{'-' * 46}|{'-' * 16}|{'-' * 12}|{'-' * 6}|")
    info = checkpoints.entry("clip-digits")
    model, _ = load_clip()
    row("checkpoint size", f"{info['bytes'] / 1e6:.2f} MB", "few MB", "yes" if info["bytes"] < 3e6 else "NO")
    row("parameters", f"{info['parameters']:,}")
    q = info["quality"]
    t = info["train_seconds"]
    row("recorded training wall time", f"{t:.0f} s", "<= 180 s", "yes" if t <= 180 else "NO")
    row("  (CPU time of that run, 1 thread)", f"{q.get('train_cpu_seconds', float('nan')):.0f} s")
    load = q.get("load_average_before", q.get("load_average_at_start", float("nan")))  # older entries
    row("  (load average when it started)", f"{load:.1f}")

    start = time.perf_counter()
    quality = evaluate_clip(model)
    evaluation = time.perf_counter() - start
    zs = quality["zero_shot_accuracy"]
    row(
        "zero-shot accuracy, bundled MNIST test", f"{100 * zs:.1f} %", ">= 90 %", "yes" if zs >= 0.9 else "NO"
    )
    x, y = load_mnist("test")
    single = zero_shot_accuracy(model, x, y, prompts=digit_prompts([0]))
    row("  one prompt only ('a handwritten digit D')", f"{100 * single:.1f} %")
    row("zero-shot accuracy, captioned test split", f"{100 * quality['zero_shot_accuracy_captioned']:.1f} %")
    for direction, label in (("i2t", "image->text"), ("t2i", "text->image")):
        for k in (1, 5, 10):
            row(f"{label} Recall@{k} (attribute captions)", f"{100 * quality[f'{direction}_R@{k}']:.1f} %")
    row("image->text R@1, seen combinations", f"{100 * quality['i2t_R@1_seen']:.1f} %")
    row("image->text R@1, held-out combinations", f"{100 * quality['i2t_R@1_held_out']:.1f} %")
    row("learned temperature", f"{quality['temperature']:.4f}")
    row("evaluation time", f"{evaluation:.1f} s")

    times, full = widget_timing(model)
    median = statistics.median(times)
    row(
        "temperature widget update, median",
        f"{1000 * median:.0f} ms",
        "< 100 ms",
        "yes" if median < 0.1 else "NO",
    )
    row("temperature widget update, worst of 20", f"{1000 * max(times):.0f} ms")
    row("  (full matplotlib redraw instead, median)", f"{1000 * statistics.median(full):.0f} ms")

    if args.train:
        load = os.getloadavg()[0]
        cpu = time.process_time()
        torch.manual_seed(CLIP_DIGITS_TRAINING["seed"])
        result = train_clip(TinyCLIP(**CLIP_DIGITS_CONFIG), **CLIP_DIGITS_TRAINING, threads=1, progress=False)
        cpu = time.process_time() - cpu
        fresh = evaluate_clip(result.ema_model)
        ok = result.seconds <= 180
        row("retrained now: wall time", f"{result.seconds:.0f} s", "<= 180 s", "yes" if ok else "NO")
        row("  CPU time / load average at start", f"{cpu:.0f} s / {load:.1f}")
        row("  zero-shot accuracy", f"{100 * fresh['zero_shot_accuracy']:.1f} %", ">= 90 %")
        row("  image->text Recall@1 / @5", f"{100 * fresh['i2t_R@1']:.1f} / {100 * fresh['i2t_R@5']:.1f} %")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
