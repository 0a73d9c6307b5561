"""Benchmark of the 13.6 code lab: the shipped codelab-mnist model and the digit classifier.

    python benchmarks/bench_codelab.py                     # shipped model: quality, speed, size
    python benchmarks/bench_codelab.py --train-notebook    # + the notebook's 10-minute TRAIN=True run
    python benchmarks/bench_codelab.py --ablations         # + what mattered (one short run per change)

Targets (issue 13.6): >= 85 % of 256 DDIM-50 samples confident and normalised class entropy >= 0.95;
DDIM-50 >= 95 % of DDPM-1000; 64 digits with DDIM-50 in < 5 s; a checkpoint of a few MB; the notebook's
training run within 10 minutes reaching >= 75 %. Timings depend on the machine's load, which is printed
(``os.getloadavg``); set ``--threads`` (default: torch's) to compare like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import torch

from chapter13 import checkpoints
from chapter13.codelab import sample_digits
from chapter13.cost import macs_per_image
from chapter13.data import load_mnist
from chapter13.evaluate import accuracy, load_classifier, reference_metrics, sample_metrics
from chapter13.recipes.codelab import NOTEBOOK_TRAINING, evaluate_codelab, train_codelab

ABLATIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "lab recipe (notebook length)": ({}, {}),
    "eps-prediction instead of v": ({"prediction": "eps"}, {}),
    "GroupNorm up to 32 groups (1 channel each)": ({"max_norm_groups": 32}, {}),
    "no Min-SNR weighting": ({}, {"min_snr_gamma": None}),
    "linear schedule instead of cosine": ({"schedule": "linear"}, {}),
    "no space-to-depth (28x28 U-Net, 4x the MACs)": ({"patch_size": 1}, {}),
}
"""Name -> (model overrides, training overrides), each trained like the notebook's TRAIN=True run;
every run also scores its raw (non-EMA) weights, which measures what the EMA adds."""


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} CPUs"


def row(name: str, value: str, target: str = "", ok: bool | None = None) -> None:
    mark = "" if ok is None else ("met" if ok else "MISSED")
    print(f"| {name:44s} | {value:34s} | {target:14s} | {mark:6s} |")


def time_sampling(model: torch.nn.Module, n: int = 64, steps: int = 50, repeats: int = 3) -> float:
    """Best of ``repeats`` wall-clock times for ``n`` DDIM-``steps`` samples (after one warm-up call)."""
    sample_digits(model, 4, steps=2)
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        sample_digits(model, n, steps=steps, seed=r)
        best = min(best, time.perf_counter() - t0)
    return best


def train_and_score(
    model_over: dict[str, Any],
    train_over: dict[str, Any],
    n: int,
    save: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """One notebook-length training run with overrides; scores the EMA and the raw weights.

    ``save``: also write both models' weights and configs to this file (to score them again later).
    """
    settings = {**NOTEBOOK_TRAINING, **train_over}
    result = train_codelab(model_over, progress=False, device=device, **settings)
    ema = result.ema_model
    if save:
        state = {"config": ema.config, "ema": ema.state_dict(), "raw": result.model.state_dict()}
        torch.save({**state, "seconds": result.seconds, "losses": result.losses}, save)
    scored = evaluate_codelab(ema, n, steps=50, seed=1)
    raw = evaluate_codelab(result.model.eval(), n, steps=50, seed=1)
    return {
        "minutes": result.seconds / 60,
        "steps": result.steps,
        "ema": scored["confident_fraction"],
        "raw": raw["confident_fraction"],
        "entropy": scored["class_entropy"],
        "frechet": scored["frechet_distance"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=256, help="samples per quality figure (default 256)")
    parser.add_argument("--ablation-n", type=int, default=512, help="samples per training run (default 512)")
    parser.add_argument("--ddpm-n", type=int, default=256, help="samples for DDPM-1000 (default 256)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--train-notebook", action="store_true", help="time the notebook's TRAIN=True run")
    parser.add_argument("--ablations", action="store_true", help="train one notebook-length run per change")
    parser.add_argument("--no-shipped", action="store_true", help="skip the shipped model (ablations only)")
    parser.add_argument("--save-dir", default=None, help="keep the weights of every training run here")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--device", default="cpu", help="where the training runs train (default cpu)")
    parser.add_argument("-k", default="", help="only the ablations whose name contains this text")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {load()}")
    print(f"| {'figure':44s} | {'value':34s} | {'target':14s} | {'':6s} |")
    print(f"|{'-' * 46}|{'-' * 36}|{'-' * 16}|{'-' * 8}|")

    # the yardstick: the classifier on real digits
    x_test, y_test = load_mnist("test")
    acc = accuracy(load_classifier(), x_test, y_test)
    real_test = sample_metrics(x_test)
    real_256 = reference_metrics(args.n)  # held-out test digits against the other test digits
    row("digit-classifier test accuracy", f"{acc:.2%}", ">= 97 %", acc >= 0.97)
    row("real test digits: confident", f"{real_test['confident_fraction']:.1%}", "(about 94 %)")
    row(f"held-out test digits (n={args.n}, FD vs the other test digits): conf / entropy / FD",
        f"{real_256['confident_fraction']:.1%} / {real_256['class_entropy']:.3f} / "
        f"{real_256['frechet_distance']:.2f}")  # fmt: skip
    results["classifier"] = {"accuracy": acc, "real_test": real_test, "real_held_out": real_256}

    if not args.no_shipped:
        shipped(args, results)
    save = (lambda tag: os.path.join(args.save_dir, f"{tag}.pt")) if args.save_dir else (lambda tag: None)
    if args.train_notebook:
        r = train_and_score({}, {}, args.ablation_n, save("notebook"), args.device)
        ok = r["minutes"] <= 10 and r["ema"] >= 0.75
        row(f"notebook TRAIN=True run ({r['steps']} steps)", f"{r['minutes']:.1f} min, {r['ema']:.1%} confident",
            "<= 10 min, 75 %", ok)  # fmt: skip
        results["notebook_run"] = r
    if args.ablations:
        for i, (name, (model_over, train_over)) in enumerate(ABLATIONS.items()):
            if args.k not in name:
                continue
            r = train_and_score(model_over, train_over, args.ablation_n, save(f"ablation{i}"), args.device)
            row(
                name,
                f"EMA {r['ema']:.1%} / raw {r['raw']:.1%}, {r['minutes']:.1f} min, FD {r['frechet']:.0f}",
            )
            results[f"ablation: {name}"] = r
    print(f"done; {load()}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2, default=str)


def shipped(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Size, quality (DDIM at several step counts, DDPM-1000) and sampling speed of codelab-mnist."""
    info = checkpoints.entry("codelab-mnist")
    model = checkpoints.load_model("codelab-mnist")
    macs = macs_per_image(model)
    size_mb = info["bytes"] / 1e6
    row("codelab-mnist size", f"{size_mb:.2f} MB, {info['parameters']:,d} params", "a few MB", size_mb < 5)
    row("codelab-mnist multiply-adds per image", f"{macs / 1e6:.1f} M")
    row(
        "recorded rebuild time (manifest)",
        f"{info['train_seconds'] / 60:.1f} min, {info['quality']['steps']} steps",
    )
    t0 = time.perf_counter()
    ddim = evaluate_codelab(model, args.n, steps=50, seed=1)
    ddim_s = time.perf_counter() - t0
    ok = ddim["confident_fraction"] >= 0.85 and ddim["class_entropy"] >= 0.95
    row(f"DDIM-50 (n={args.n}): confident / entropy",
        f"{ddim['confident_fraction']:.1%} / {ddim['class_entropy']:.3f}", ">= 85 % / 0.95", ok)  # fmt: skip
    row("DDIM-50 Fréchet distance to test digits", f"{ddim['frechet_distance']:.2f}")
    row("DDIM-50 class histogram", str(ddim["class_histogram"]))
    results["ddim50"] = {**ddim, "seconds": ddim_s}
    if args.ddpm_n:
        ddpm = evaluate_codelab(model, args.ddpm_n, sampler="ddpm", steps=None, seed=1)
        ratio = ddim["confident_fraction"] / max(ddpm["confident_fraction"], 1e-9)
        row(f"DDPM-1000 (n={args.ddpm_n}): confident / entropy",
            f"{ddpm['confident_fraction']:.1%} / {ddpm['class_entropy']:.3f}")  # fmt: skip
        row(
            "DDPM-1000 Fréchet distance; time",
            f"{ddpm['frechet_distance']:.2f}; {ddpm['sample_seconds']:.0f} s",
        )
        row("DDIM-50 / DDPM-1000 confident", f"{ratio:.1%}", ">= 95 %", ratio >= 0.95)
        results["ddpm1000"] = ddpm
    for steps in (10, 20, 100):
        m = evaluate_codelab(model, args.n, steps=steps, seed=1)
        row(f"DDIM-{steps}: confident / entropy", f"{m['confident_fraction']:.1%} / {m['class_entropy']:.3f}")
        results[f"ddim{steps}"] = m
    seconds = time_sampling(model)
    row(
        "64 digits with DDIM-50 (best of 3)",
        f"{seconds:.2f} s (1-min load {os.getloadavg()[0]:.1f})",
        "< 5 s",
        seconds < 5,
    )
    results["sample64_seconds"] = seconds


if __name__ == "__main__":
    main()
