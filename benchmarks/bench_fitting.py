"""Benchmark for 13.5, from model to data: parameter recovery and fit time of chapter13.fitting.

    .venv/bin/python benchmarks/bench_fitting.py            # 20 data sets of 1,000 trials per observer
    .venv/bin/python benchmarks/bench_fitting.py --quick    # 3 data sets per observer, two observers

Each row simulates seeded data sets of Körding et al.'s design (five flash and five sound positions,
-10° to 10°, all 25 pairings and each alone; both positions reported by button presses) from a known
observer and strategy, fits all three strategies (averaging, selection, matching; Wozny, Beierholm &
Shams 2010) to each by maximum likelihood, and reports, per parameter, the median estimate, the
spread of the estimates and in how many data sets the generating strategy's 95 % interval contains
the true value; then how often AIC picked each strategy, and the time to fit one data set.

Observers:
- Körding et al. (2007, PLoS ONE 2:e943): sigma_V 2.14°, sigma_A 9.2°, sigma_P 12.3°, p_common 0.28
  (``neuro.KORDING_2007``), fitted in that paper with model averaging: generated with averaging, and
  with probability matching, the strategy Wozny et al. (2010) found for most of their observers.
- Wozny et al.'s (2010) mean parameters could not be retrieved for this benchmark (the text of the
  paper's results was not available to us); in their place a contrast observer, labelled as
  illustrative: a blurrier flash and a stronger belief in a common cause (sigma_V 4°, sigma_A 10°,
  sigma_P 20°, p_common 0.5), generated with model selection.
- With ``--all``, Körding's observer generated with selection too: with p_common 0.28 that observer
  almost never infers a common cause within ±10° (p(C=1 | x) > 0.5 needs both measurements beyond
  about ±15°), so p_common is not identified and the strategies cannot be told apart; the row shows
  the fitter saying so (infinite standard errors) rather than a failure of recovery.

All observers press buttons with 1.5° of motor noise and lapse on 2 % of trials
(``fitting.SIMULATION_RESPONSE``, illustrative values of ours).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from chapter13 import fitting, neuro

CONTRAST_OBSERVER = {
    **fitting.KORDING_OBSERVER,
    "sigma_v": 4.0,
    "sigma_a": 10.0,
    "sigma_p": 20.0,
    "p_common": 0.5,
}
"""An illustrative second observer (not a published fit)."""

MAIN = ("sigma_v", "sigma_a", "sigma_p", "p_common")


def rows(quick: bool, every: bool) -> list[tuple[str, dict[str, float], str]]:
    found = [
        ("Körding et al. 2007", fitting.KORDING_OBSERVER, "averaging"),
        ("Körding et al. 2007", fitting.KORDING_OBSERVER, "matching"),
        ("contrast observer (illustrative, not Wozny 2010)", CONTRAST_OBSERVER, "selection"),
    ]
    if every:
        found.append(("Körding et al. 2007", fitting.KORDING_OBSERVER, "selection"))
    return found[::2] if quick else found


def verdict(rec: fitting.Recovery) -> str:
    n = len(rec.comparisons)
    coverage = rec.coverage()
    covered = all(2 * coverage[p] > n for p in coverage)
    picked = 2 * rec.picked[rec.strategy] > n
    main = ", ".join(f"{p} {coverage[p]}/{n}" for p in MAIN)
    return (
        f"  every parameter inside its 95% interval in most data sets: {'yes' if covered else 'NO'} ({main}); "
        f"{rec.strategy} picked by AIC in most: {'yes' if picked else 'NO'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 data sets per observer, two observers")
    parser.add_argument("--datasets", type=int, default=None, help="data sets per observer (default 20)")
    parser.add_argument("--trials", type=int, default=1000, help="trials per data set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all", action="store_true", help="also Körding's observer generated with selection")
    args = parser.parse_args()
    n_datasets = args.datasets or (3 if args.quick else 20)

    print(f"load before: {os.getloadavg()}  (2-core CPU shared with other jobs)")
    table = fitting.simulate_table(fitting.KORDING_OBSERVER, "matching", args.trials, rng=args.seed)
    t0 = time.perf_counter()
    comparison = fitting.compare_strategies(table)
    total = time.perf_counter() - t0
    print(f"\nTable 1. Fit time, one data set of {args.trials} trials (Körding's observer, matching)")
    print(f"{'strategy':10s} {'seconds':>8s} {'likelihood evaluations':>23s}")
    for name, result in comparison.fits.items():
        print(f"{name:10s} {result.seconds:8.2f} {result.n_evaluations:23d}")
    print(f"{'all three':10s} {total:8.2f}   (budget: under 10 s)")

    print(f"\nTable 2. Parameter recovery, {n_datasets} seeded data sets of {args.trials} trials per row")
    recoveries = []
    for k, (label, truth, strategy) in enumerate(rows(args.quick, args.all)):
        t0 = time.perf_counter()
        rec = fitting.recover(
            truth, strategy, n_datasets, args.trials, seed=args.seed + 1000 * (k + 1), label=label
        )
        recoveries.append(rec)
        print(fitting.recovery_table([rec]))
        print(verdict(rec))
        unidentified = sum(any(np.isinf(c.fits[strategy].se[p]) for p in MAIN) for c in rec.comparisons)
        if unidentified:
            print(
                f"  data sets with a main parameter not identified (infinite SE): {unidentified}/{n_datasets}"
            )
        print(f"  ({time.perf_counter() - t0:.0f} s for this row)\n")
    times = [c.seconds for rec in recoveries for c in rec.comparisons]
    print(
        f"fit time over all {len(times)} data sets (three strategies each): median {np.median(times):.1f} s, "
        f"max {np.max(times):.1f} s"
    )
    print(f"strategies: {neuro.STRATEGIES}; load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
