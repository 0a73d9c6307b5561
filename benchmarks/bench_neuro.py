"""Benchmark for 13.5: widget update latency, and the networks' accuracy across noise levels.

    .venv/bin/python benchmarks/bench_neuro.py            # everything
    .venv/bin/python benchmarks/bench_neuro.py --updates 20 --images 1000

Table 1: each widget of ``chapter13.widgets.neuro`` is built once, then one control is moved through
``--updates`` values; every update runs the model, moves the figure's artists and renders the PNG that
the widget displays (exactly what a slider move costs). Wall-clock time depends on the machine's load
(printed with ``uptime``), so the process CPU time is reported beside it.

Table 2: accuracy of the shipped ``hierarchy-digits`` CNN on the bundled test split with added image
noise; table 3: ``av-fusion-digits``' visual stream, auditory stream, learned fusion and the
product-of-experts rule, and the enhancement index, across paired noise levels.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from chapter13 import hierarchy, neuro
from chapter13.checkpoints import load_model
from chapter13.data import load_mnist
from chapter13.evaluate import accuracy
from chapter13.widgets import neuro as nw

BUDGET_S = 0.1


def _sweeps(n: int) -> list[tuple[str, object, str, list]]:
    """(name, widget builder, control, values): each value differs from its predecessor."""
    return [
        ("McGurk congruence", nw.mcgurk_widget, "congruence", list(np.round(np.linspace(0.05, 1, n), 2))),
        ("McGurk sigma hearing", nw.mcgurk_widget, "sigma_a", list(np.round(np.linspace(0.2, 1.2, n), 2))),
        (
            "ventriloquist disparity",
            nw.ventriloquist_widget,
            "disparity",
            list(np.round(np.linspace(1, 39, n), 1)),
        ),
        (
            "ventriloquist p_common",
            nw.ventriloquist_widget,
            "p_common",
            list(np.round(np.linspace(0.05, 0.95, n), 2)),
        ),
        ("tug-of-war conflict", nw.tug_of_war_widget, "conflict", list(np.round(np.linspace(0.5, 29, n), 1))),
        (
            "flash-beep beeps",
            nw.flash_beep_widget,
            "n_beeps",
            [(i % 4) + 1 if i % 2 else 0 for i in range(n)],
        ),
        (
            "flash-beep sigma vision",
            nw.flash_beep_widget,
            "sigma_v",
            list(np.round(np.linspace(0.2, 1.4, n), 2)),
        ),
    ]


def latency_table(updates: int) -> list[dict]:
    rows = []
    for name, build, control, values in _sweeps(updates):
        box = build()
        wall, cpu = [], []
        for value in values:
            t0, c0 = time.perf_counter(), time.process_time()
            box.controls[control].value = value
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        rows.append(
            dict(name=name, n=len(values), wall_med=np.median(wall), wall_max=max(wall),
                 cpu_med=np.median(cpu), cpu_max=max(cpu))
        )  # fmt: skip
    return rows


def hierarchy_table(x: torch.Tensor, y: torch.Tensor, levels=(0.0, 0.5, 1.0, 1.5, 2.0, 3.0)) -> list[tuple]:
    model = load_model("hierarchy-digits")
    rows = []
    for level in levels:
        noisy = hierarchy.add_image_noise(x, level, generator=torch.Generator().manual_seed(0))
        rows.append((level, accuracy(model, noisy, y)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=20, help="updates per widget sweep")
    parser.add_argument("--images", type=int, default=1000, help="test digits (at most 1000)")
    args = parser.parse_args()

    print(f"load before: {os.getloadavg()}  (2-core CPU shared with other jobs; see uptime)")
    print(f"torch threads {torch.get_num_threads()}")
    print(
        f"\nTable 1. Widget update latency over {args.updates} updates (model + artists + PNG); budget {BUDGET_S} s"
    )
    print(
        f"{'widget / control':28s} {'wall median':>11s} {'wall worst':>10s} {'CPU median':>10s} {'CPU worst':>9s}"
    )
    for r in latency_table(args.updates):
        print(
            f"{r['name']:28s} {r['wall_med']:10.3f}s {r['wall_max']:9.3f}s {r['cpu_med']:9.3f}s {r['cpu_max']:8.3f}s"
        )

    x, y = load_mnist("test", limit=args.images)
    print(f"\nTable 2. hierarchy-digits accuracy on {len(x)} bundled test digits with Gaussian image noise")
    print(f"{'image noise std':>16s} {'accuracy':>9s}")
    for level, acc in hierarchy_table(x, y):
        print(f"{level:16.1f} {acc:9.1%}")

    rows = hierarchy.evaluate_fusion(load_model("av-fusion-digits"), x, y)
    print(f"\nTable 3. av-fusion-digits on {len(x)} test digits (image noise / sound noise std)")
    print(
        f"{'noise':>10s} {'visual':>7s} {'auditory':>8s} {'fused':>6s} {'product':>8s} {'enhancement':>11s}"
    )
    for r in rows:
        print(
            f"{r['image_noise']:4.1f}/{r['sound_noise']:<4.1f} {r['visual']:7.1%} {r['auditory']:8.1%} "
            f"{r['fused']:6.1%} {r['product']:8.1%} {r['enhancement']:+10.1f}%"
        )

    print("\nTable 4. McGurk model (defaults): P(report) for voice + face")
    for aud, vis in [("ba", "ga"), ("ga", "ba"), ("ba", "ba"), ("ga", "ga")]:
        probs = neuro.mcgurk_responses(aud, vis)
        print(f"  voice {aud} + face {vis}: " + "  ".join(f"{k} {v:.2f}" for k, v in probs.items()))
    print(f"\nload after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
